// reexec(path, argv): execv(2) of the agent's own program in place, for the rejuvenation ladder's
// "re-exec the agent" rung. In place, not a new process: the pid (which systemd and the test rigs watch)
// stays, the V8 heap, every thread and every descriptor opened close-on-exec (all of the agent's) go.
// Native because Node 20 has no process.execve.
#pragma once

#include <napi.h>

namespace vigil {

Napi::Value Reexec(const Napi::CallbackInfo& info);

}  // namespace vigil

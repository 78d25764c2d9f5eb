// getPeerCred(fd): the credentials (pid, uid, gid) of the process at the other end of a connected unix
// socket, as the kernel recorded them when it connected (SO_PEERCRED). The control socket authorises
// its clients with this; JavaScript has no way to ask.
#pragma once

#include <napi.h>

namespace vigil {

Napi::Value GetPeerCred(const Napi::CallbackInfo& info);

}  // namespace vigil

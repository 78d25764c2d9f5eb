#include "reexec.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "system_error.h"

namespace vigil {

// reexec(path: string, argv: string[]) -> never returns; throws a SystemError (ENOENT, EACCES, ...) when
// execv refuses, and the agent carries on as before. The environment is the process's own (environ).
Napi::Value Reexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "reexec(path: string, argv: string[])").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) {
      Napi::TypeError::New(env, "reexec: every argument must be a string").ThrowAsJavaScriptException();
      return Napi::Value();
    }
    args.push_back(v.As<Napi::String>().Utf8Value());
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Node opens its own stdio close-on-exec: the new image would start with no stdin, stdout or stderr
  // (and its log would go nowhere). They are the ones descriptors meant to cross.
  for (int fd = 0; fd <= 2; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  // The new image inherits the signal mask: unblock everything, as a fresh start would have it.
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  execv(path.c_str(), argv.data());
  SystemError(env, errno, "execv", "cannot re-exec " + path).ThrowAsJavaScriptException();
  return Napi::Value();
}

}  // namespace vigil

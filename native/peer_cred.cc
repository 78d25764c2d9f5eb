#include "peer_cred.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <string>

#include "system_error.h"

namespace vigil {

// getPeerCred(fd) -> {pid, uid, gid}. A failed getsockopt throws an Error carrying errno (positive, as
// the device paths report it), code (the errno's name, e.g. 'ENOTSOCK') and syscall 'getsockopt'.
// getsockopt on a local socket does not block, so this runs on the JS thread.
Napi::Value GetPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "getPeerCred(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= -1 && n <= 2147483647.0) || n != static_cast<double>(static_cast<int>(n))) {
    Napi::RangeError::New(env, "fd must be an integer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = static_cast<int>(n);
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) < 0) {
    const int err = errno;
    Napi::Error e = SystemError(env, err, "getsockopt",
                                "getsockopt(SO_PEERCRED) on fd " + std::to_string(fd));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}

}  // namespace vigil

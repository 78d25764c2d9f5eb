#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "system_error.h"

namespace vigil {

namespace {

Napi::Value Throw(Napi::Error e) {
  e.ThrowAsJavaScriptException();
  return Napi::Value();
}

}  // namespace

// sdNotify(message: string) -> boolean. false: $NOTIFY_SOCKET unset or empty (not started by systemd with
// Type=notify); true: the datagram was queued. Throws a SystemError (errno, code, syscall) when the
// address is unusable (EAFNOSUPPORT: not '/...' or '@...'; ENAMETOOLONG) or socket/sendto fails.
// The send is non-blocking (MSG_DONTWAIT): if the manager's queue is full we get EAGAIN rather than stall
// the event loop, which is what the watchdog is there to detect. Runs on the JS thread.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    return Throw(Napi::TypeError::New(env, "sdNotify(message: string)"));
  }
  const std::string message = info[0].As<Napi::String>().Utf8Value();
  const char* env_socket = getenv("NOTIFY_SOCKET");
  if (env_socket == nullptr || env_socket[0] == '\0') return Napi::Boolean::New(env, false);
  const std::string path = env_socket;

  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path[0] != '/' && path[0] != '@') {
    return Throw(SystemError(env, EAFNOSUPPORT, "sendto", "NOTIFY_SOCKET " + path + " is not a unix socket path"));
  }
  // A path socket's name may fill sun_path without its NUL (the length says where it ends); an abstract
  // one is a NUL then the name, and its length must be exact (no trailing NUL: that would be another name).
  if (path.size() > sizeof(address.sun_path)) {
    return Throw(SystemError(env, ENAMETOOLONG, "sendto", "NOTIFY_SOCKET " + path));
  }
  memcpy(address.sun_path, path.data(), path.size());
  if (path[0] == '@') address.sun_path[0] = '\0';
  const socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    return Throw(SystemError(env, err, "socket", "sd_notify: socket(AF_UNIX, SOCK_DGRAM)"));
  }
  const ssize_t sent = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                              reinterpret_cast<const sockaddr*>(&address), length);
  const int err = errno;
  close(fd);
  if (sent < 0) return Throw(SystemError(env, err, "sendto", "sd_notify to " + path));
  if (static_cast<size_t>(sent) != message.size()) {
    return Throw(SystemError(env, EMSGSIZE, "sendto", "sd_notify to " + path + ": short send"));
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace vigil

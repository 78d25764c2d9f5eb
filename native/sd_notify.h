// sdNotify(message): systemd's sd_notify(3) protocol — one datagram to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a leading '@' names an abstract socket). Native because Node's dgram has no unix
// datagram sockets.
#pragma once

#include <napi.h>

namespace vigil {

Napi::Value SdNotify(const Napi::CallbackInfo& info);

}  // namespace vigil

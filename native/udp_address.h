// Numeric host:port → socket address, for the native threads that send UDP (heartbeats, distress). Numeric
// only (AI_NUMERICHOST): a name lookup could block, and the config holds addresses anyway.
#pragma once

#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace vigil {

inline bool ResolveNumeric(const std::string& host, uint16_t port, sockaddr_storage* out, socklen_t* length) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || res == nullptr) return false;
  memcpy(out, res->ai_addr, res->ai_addrlen);
  *length = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

}  // namespace vigil

// What the heartbeat thread and the distress sender share of the wire format (docs/cluster.md, "Wire
// format"): the header's constants, big-endian fields, the HMAC, the clocks they stamp with, and how a
// cluster socket is opened. src/wire/datagram.ts is the JavaScript side of the same format.
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mono_clock.h"
#include "udp_address.h"

namespace vigil {
namespace wire {

constexpr uint8_t kMagic[4] = {'V', 'G', 'L', 0x01};
constexpr size_t kHeaderLength = 30;
constexpr size_t kMacLength = 32;

using ::vigil::MonoNs;

inline int64_t RealNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline void Put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void Put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (24 - 8 * i)); }
inline void Put64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (56 - 8 * i)); }
// The common header (docs/cluster.md "Wire format"): magic, type, stream, sender id, cluster tag,
// incarnation, sequence, payload length. A sender that numbers each datagram rewrites the sequence with
// PutSequence.
constexpr size_t kSequenceOffset = 20;
inline void PutHeader(uint8_t* d, uint8_t type, uint8_t stream, uint16_t sender, uint32_t clusterTag, uint64_t incarnation,
                      uint64_t sequence, uint16_t payloadLength) {
  for (int i = 0; i < 4; i++) d[i] = kMagic[i];
  d[4] = type;
  d[5] = stream;
  Put16(d + 6, sender);
  Put32(d + 8, clusterTag);
  Put64(d + 12, incarnation);
  Put64(d + kSequenceOffset, sequence);
  Put16(d + 28, payloadLength);
}
inline void PutSequence(uint8_t* d, uint64_t sequence) { Put64(d + kSequenceOffset, sequence); }

inline uint16_t Get16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline uint32_t Get32(const uint8_t* p) { uint32_t v = 0; for (int i = 0; i < 4; i++) v = (v << 8) | p[i]; return v; }
inline uint64_t Get64(const uint8_t* p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = (v << 8) | p[i]; return v; }

// HMAC-SHA256 of the first `length` bytes into out[kMacLength].
inline bool Mac(const std::vector<uint8_t>& key, const uint8_t* data, size_t length, uint8_t* out) {
  unsigned int outLength = 0;
  return HMAC(EVP_sha256(), key.data(), int(key.size()), data, length, out, &outLength) != nullptr && outLength == kMacLength;
}

// A UDP socket for cluster traffic, bound to this node's address on one network (port 0: any): non-blocking,
// close-on-exec, queued ahead of bulk traffic (SO_PRIORITY 6, TC_PRIO_INTERACTIVE) and marked network
// control (DSCP CS6) for the switches. Returns the fd (and its address family), or -1 with *err and
// *syscall set.
inline int OpenClusterSocket(const std::string& host, uint16_t port, int* err, const char** syscall, int* family = nullptr) {
  sockaddr_storage addr{};
  socklen_t length = 0;
  if (!ResolveNumeric(host, port, &addr, &length)) {
    *err = EINVAL;
    *syscall = "getaddrinfo";
    return -1;
  }
  int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *err = errno;
    *syscall = "socket";
    return -1;
  }
  int prio = 6;
  setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio);
  int tos = 0xc0;
  if (addr.ss_family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
  else setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), length) < 0) {
    *err = errno;
    *syscall = "bind";
    close(fd);
    return -1;
  }
  if (family != nullptr) *family = addr.ss_family;
  return fd;
}

// What failed in OpenClusterSocket, for the error JavaScript sees: "bad local address 10.0.0.x", "bind 10.0.0.1".
inline std::string ClusterSocketProblem(const char* syscall, const std::string& host) {
  return std::string(syscall) == "getaddrinfo" ? "bad local address " + host : std::string(syscall) + " " + host;
}

}  // namespace wire
}  // namespace vigil

#include "service_addresses.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

namespace vigil {

bool ParseServiceAddress(const std::string& ifname, const std::string& address, int prefixLength, ServiceAddress* out, std::string* why) {
  ServiceAddress a;
  if (inet_pton(AF_INET, address.c_str(), a.address) == 1) {
    a.family = AF_INET;
    if (prefixLength < 0 || prefixLength > 32) { *why = "bad prefix length"; return false; }
  } else if (inet_pton(AF_INET6, address.c_str(), a.address) == 1) {
    a.family = AF_INET6;
    if (prefixLength < 0 || prefixLength > 128) { *why = "bad prefix length"; return false; }
  } else {
    *why = "not an IP address: " + address;
    return false;
  }
  a.prefixLength = uint8_t(prefixLength);
  a.ifindex = int(if_nametoindex(ifname.c_str()));
  if (a.ifindex == 0) { *why = "no interface " + ifname; return false; }
  *out = a;
  return true;
}

namespace {

void AddAttribute(nlmsghdr* h, size_t capacity, uint16_t type, const void* data, size_t length) {
  size_t at = NLMSG_ALIGN(h->nlmsg_len);
  size_t total = RTA_LENGTH(length);
  if (at + RTA_ALIGN(total) > capacity) return;
  rtattr* attribute = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(h) + at);
  attribute->rta_type = type;
  attribute->rta_len = uint16_t(total);
  memcpy(RTA_DATA(attribute), data, length);
  h->nlmsg_len = uint32_t(at + RTA_ALIGN(total));
}

int RemoveOne(int fd, const ServiceAddress& a, uint32_t seq) {
  alignas(nlmsghdr) char buffer[256] = {};
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buffer);
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  h->nlmsg_type = RTM_DELADDR;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = seq;
  ifaddrmsg* m = reinterpret_cast<ifaddrmsg*>(NLMSG_DATA(h));
  m->ifa_family = uint8_t(a.family);
  m->ifa_prefixlen = a.prefixLength;
  m->ifa_index = uint32_t(a.ifindex);
  size_t length = a.family == AF_INET ? 4 : 16;
  AddAttribute(h, sizeof buffer, IFA_LOCAL, a.address, length);
  AddAttribute(h, sizeof buffer, IFA_ADDRESS, a.address, length);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return errno;
  alignas(nlmsghdr) char reply[1024];
  for (;;) {
    ssize_t n = recv(fd, reply, sizeof reply, 0);
    if (n < 0) return errno == EINTR ? 0 : errno;
    for (nlmsghdr* r = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(r, size_t(n)); r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != seq || r->nlmsg_type != NLMSG_ERROR) continue;
      int error = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(r))->error;
      return error == EADDRNOTAVAIL ? 0 : error;  // gone already is what was wanted
    }
  }
}

}  // namespace

int RemoveServiceAddresses(const std::vector<ServiceAddress>& addresses) {
  if (addresses.empty()) return 0;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  timeval timeout{0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  int first = 0;
  uint32_t seq = 1;
  for (const ServiceAddress& a : addresses) {
    int rc = RemoveOne(fd, a, seq++);
    if (rc != 0 && first == 0) first = rc;
  }
  close(fd);
  return first;
}

}  // namespace vigil

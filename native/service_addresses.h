// The node's service addresses, removed by the heartbeat thread itself when the agent's lease lapses.
//
// Why: a peer takes an address over only when nothing answers for it any more (duplicate address
// detection, src/resources/ip-address.ts). An agent whose event loop hangs past its lease stops
// heartbeating, so its peers declare it failed, but its kernel would go on answering for the addresses of
// the apps it hosted and the takeover would wait for ever. The heartbeat thread still runs in that case,
// and it is the one that decided to fall silent: it also drops the addresses (RTM_DELADDR over netlink),
// so the node stops presenting the service the moment it stops vouching for itself, and the peer can
// take it. The agent gives the thread the current list whenever it changes, and adds them back itself
// when its lease is renewed and it still hosts the apps. A node frozen whole (SIGSTOP, a VM paused)
// drops nothing: its addresses stay, and its peers wait for it or fence it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vigil {

struct ServiceAddress {
  int family = 0;       // AF_INET or AF_INET6
  int ifindex = 0;
  uint8_t address[16] = {};
  uint8_t prefixLength = 0;
};

// Parses "10.3.0.100" / "fd00::10" on the interface `ifname` (resolved now). False with a reason.
bool ParseServiceAddress(const std::string& ifname, const std::string& address, int prefixLength, ServiceAddress* out, std::string* why);

// Removes each address from its interface through netlink; returns 0 or the first errno (an address
// already gone is not an error). Blocks at most ~100 ms per address waiting for the kernel's ack.
int RemoveServiceAddresses(const std::vector<ServiceAddress>& addresses);

}  // namespace vigil

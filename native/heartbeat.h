// The heartbeat engine: sends and receives the cluster's heartbeat datagrams on a thread of its own.
//
// Why native: a node whose JavaScript event loop stalls (a long GC, a slow synchronous call) would stop
// sending heartbeats and look dead to its peers, and would misjudge their heartbeats queued behind the
// stall. corosync avoids this by running its totem protocol at real-time priority; vigil does the same
// with one owned thread that signs and sends a heartbeat to every peer on every network each interval,
// verifies and timestamps what arrives, and keeps the result in a table JavaScript reads with
// `snapshot()`. The agent renews a lease every tick; when the lease runs out (the agent is hung, not
// just slow) the thread stops sending, so a hung agent is detected like a dead one, and it removes the
// node's service addresses (native/service_addresses.h), so that a peer can take them over.
//
// The datagram layout is the one in docs/cluster.md ("Wire format") and src/wire/datagram.ts; the unit
// tests check that both sides read each other's bytes.
#pragma once

#include <napi.h>

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "service_addresses.h"

namespace vigil {

struct HeartbeatLink {  // what this node knows of one peer on one network
  int network = 0;
  sockaddr_storage address{};
  socklen_t addressLength = 0;
  // Guarded by HeartbeatState::mutex.
  int64_t heardNs = 0;       // monotonic time of the last valid heartbeat from the peer on this network
  uint64_t heardCount = 0;
  uint64_t lastSeq = 0;      // the peer's sequence number in that heartbeat (our ack to it)
  uint64_t peerSentUs = 0;   // the peer's send stamp in it, echoed back so it can measure the round trip
  int64_t ackedNs = 0;       // last time the peer acknowledged a newer heartbeat of ours on this network
  uint64_t ackedSeq = 0;     // the newest of our sequence numbers it acknowledged (a repeated one is stale)
  int64_t rttUs = -1;
};

struct HeartbeatPeer {
  uint16_t id = 0;
  std::vector<HeartbeatLink> links;
  // Guarded by HeartbeatState::mutex.
  uint64_t incarnation = 0;  // the newest one seen; older ones are replays or a stale process
  uint64_t windowTop = 0;    // replay window: highest sequence accepted in this incarnation ...
  uint64_t windowBits[2] = {0, 0};  // ... and which of the 128 below it were seen (bit 0 = top)
  uint32_t digest = 0;
  uint8_t flags = 0;
};

struct HeartbeatState {
  std::vector<uint8_t> key;
  uint32_t clusterTag = 0;
  uint16_t selfId = 0;
  uint64_t incarnation = 0;
  int64_t intervalNs = 0;
  std::vector<int> sockets;  // index = network
  std::vector<HeartbeatPeer> peers;
  int wakeFd = -1;           // eventfd: stop

  std::mutex mutex;
  uint64_t seq = 0;                        // thread only
  std::atomic<int64_t> leaseUntilNs{0};
  std::atomic<uint32_t> digest{0};
  std::atomic<bool> stopping{false};
  // Guarded by mutex: the node's service addresses, removed when the lease lapses (once per lapse).
  std::vector<ServiceAddress> addresses;
  bool lapsed = false;                     // thread only: the lease ran out and has not been renewed since
  // Counters, guarded by mutex.
  uint64_t sent = 0, sendErrors = 0, received = 0, leaseLapsed = 0;
  uint64_t addressDrops = 0;               // lapses on which addresses were removed
  int addressDropError = 0;                // errno of the last removal that failed (0: none)
  uint64_t dropped[10] = {0};
  bool realtime = false;
  int schedError = 0;
};

class HeartbeatEngine : public Napi::ObjectWrap<HeartbeatEngine> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit HeartbeatEngine(const Napi::CallbackInfo& info);
  ~HeartbeatEngine() override;

 private:
  Napi::Value RenewLease(const Napi::CallbackInfo& info);
  Napi::Value SetDigest(const Napi::CallbackInfo& info);
  Napi::Value SetAddresses(const Napi::CallbackInfo& info);
  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  void StopThread();

  std::shared_ptr<HeartbeatState> state_;
  pthread_t thread_{};
  bool threadRunning_ = false;  // started and not yet joined
  int64_t leaseNs_ = 0;
};

}  // namespace vigil

// The armed distress sender's state and triggers (seed 002, issue 5; docs/distress.md): when this node is about
// to die, tell every peer on every network at once, so they fail it over without waiting for a heartbeat
// timeout. Plain C++, no JavaScript: the fatal-signal handlers and native watchers use it (the JavaScript
// object is distress.h).
//
// Everything that costs time is done at arming, before any fault: the datagrams are built and signed (one
// set of copies per reason code and trigger "slot", sequences pre-assigned), the sockets are open and bound,
// the destinations resolved, the memory locked, the thread started. What is left for the moment of failure
// is sendto() of fixed bytes, so a send can run on a thread that is about to die, in a signal handler, or on
// the dedicated thread woken by one write() to an eventfd:
//
//   - DistressTriggerAsync(state, k): async-signal-safe; one lock-free atomic add and one write(eventfd).
//   - DistressSendSync(state, k): async-signal-safe; sendto(MSG_DONTWAIT) of the pre-built copies to every
//     destination on the calling thread, returning the number the kernel accepted.
//
// Re-arming (new key, incarnation or peers) builds a new set aside and publishes it with one atomic pointer
// swap. Senders pin the set they load (a two-phase reader count, lock-free), and the old set is unmapped only
// once no sender can hold it; a set still pinned after a second (a thread stopped mid-send) is never freed.
#pragma once

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace vigil {

constexpr size_t kDistressMaxReasons = 16;
constexpr size_t kDistressMaxNetworks = 16;
constexpr size_t kDistressMaxRepeats = 16;
constexpr size_t kDistressMaxSlots = 64;

struct DistressSet;  // one armed, immutable set of datagrams and destinations (distress_internal.h)

struct DistressDest {  // one peer on one network
  sockaddr_storage address;
  socklen_t length;
  uint32_t network;
  uint16_t peer;
};

struct DistressReasonStats {
  std::atomic<uint64_t> triggers{0};   // trigger calls (async and sync)
  std::atomic<uint64_t> events{0};     // events sent (each = `repeats` copies to every destination)
  std::atomic<uint64_t> datagrams{0};  // datagrams the kernel accepted
  std::atomic<uint64_t> errors{0};     // sendto failures
  std::atomic<int64_t> lastSentRealMs{0};
  std::atomic<int64_t> lastSentMonoNs{0};
};

struct DistressNetworkStats {
  std::atomic<uint64_t> datagrams{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int> lastErrno{0};
};

// Lives in its own mmap'd, mlock'd pages (everything a send touches is resident), shared by the JS object,
// the thread and test threads; the sockets and eventfd close when the last owner lets go.
struct DistressState {
  ~DistressState();

  // Fixed at construction.
  uint16_t reasonCodes[kDistressMaxReasons] = {};
  size_t reasonCount = 0;
  int sockets[kDistressMaxNetworks] = {};
  int families[kDistressMaxNetworks] = {};
  size_t networkCount = 0;
  uint32_t slots = 0;
  uint32_t repeats = 0;
  int64_t repeatGapNs = 0;
  int wakeFd = -1;
  bool lockMemory = false;
  int askedPriority = 0;
  int askedNice = 0;

  // The armed set, and the readers' pins (see PinEnter in distress.cc).
  std::atomic<DistressSet*> current{nullptr};
  std::atomic<uint32_t> epoch{0};
  std::atomic<uint32_t> readers[2] = {};
  // Arming: JS thread only, under armMutex.
  std::mutex armMutex;
  std::vector<DistressSet*> leaked;  // sets a stuck sender still held at a re-arm: never unmapped
  uint32_t generation = 0;

  // Triggers pending for the thread, per reason.
  std::atomic<uint32_t> pending[kDistressMaxReasons] = {};
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};

  // Counters (any thread, signal handlers included: lock-free atomics only).
  DistressReasonStats reasons[kDistressMaxReasons];
  DistressNetworkStats networks[kDistressMaxNetworks];
  std::atomic<uint64_t> asyncEvents{0}, syncEvents{0}, wakeups{0}, sendErrors{0};
  std::atomic<int> lastErrno{0};

  // Set once at start.
  pthread_t thread{};
  bool threadStarted = false;
  void* threadStack = nullptr;
  size_t threadStackLength = 0;
  std::atomic<bool> threadReady{false};
  bool realtime = false;
  int schedError = 0;
  int nice = 0;
  int niceError = 0;
  bool memoryLocked = false;  // this state, the thread's stack and every set so far
  int memoryLockError = 0;
  bool codeLocked = false;  // the executable pages of the addon and of the C library
  int codeLockError = 0;
};

// The triggers, for native code too (a power-fail watcher thread, signal handlers). `reasonIndex` is the
// position in the armed reason list (DistressReasonIndex maps a wire code). Both are async-signal-safe.
bool DistressTriggerAsync(DistressState& s, size_t reasonIndex);
int DistressSendSync(DistressState& s, size_t reasonIndex);
// -1 when `code` was not armed.
int DistressReasonIndex(const DistressState& s, uint32_t code);

}  // namespace vigil

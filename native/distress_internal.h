// The distress sender's parts, shared between its files (its state and triggers: distress_state.h; its
// JavaScript object: distress.h):
//   distress_set.cc   the armed set: built and signed aside, published with one swap, pinned by senders
//   distress_send.cc  sending: one event's copies to every destination, the thread, the triggers
//   fatal_signals.cc  the fatal-signal handlers that send from a dying thread and write the stay-out record
//   distress.cc       the JavaScript object; distress_test_hooks.cc its test and bench methods
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "distress_state.h"
#include "wire.h"

namespace vigil {

// The distress part of the wire format (docs/cluster.md "Wire format", docs/distress.md; the rest in wire.h).
namespace distress_wire {
constexpr uint8_t kTypeDistress = 5;
constexpr uint8_t kStreamDistress = 2;
constexpr size_t kPayloadLength = 32;
constexpr size_t kDatagramLength = wire::kHeaderLength + kPayloadLength + wire::kMacLength;  // 94
constexpr uint8_t kPayloadVersion = 1;
}  // namespace distress_wire

// An armed set: one mapping holding this header, the destinations and every datagram, never written after
// it is published (except nextSlot). Datagram (k, slot, r) has sequence firstSequence + (k*slots+slot)*repeats + r.
struct DistressSet {
  size_t mapLength = 0;
  uint32_t generation = 0;
  uint64_t incarnation = 0;
  uint64_t firstSequence = 0;
  uint64_t span = 0;
  int64_t armedAtMs = 0;
  uint32_t reasonCount = 0, slots = 0, repeats = 0;
  size_t destCount = 0;
  bool locked = false;
  int lockError = 0;
  std::atomic<uint32_t> nextSlot[kDistressMaxReasons] = {};
  DistressDest* dests = nullptr;
  uint8_t* datagrams = nullptr;

  const uint8_t* Datagram(size_t k, uint32_t slot, uint32_t r) const;
};

static_assert(std::atomic<uint32_t>::is_always_lock_free, "signal handlers need lock-free atomics");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "signal handlers need lock-free atomics");
static_assert(std::atomic<int64_t>::is_always_lock_free, "signal handlers need lock-free atomics");
static_assert(std::atomic<DistressSet*>::is_always_lock_free, "signal handlers need lock-free atomics");

size_t PageSize();
size_t RoundUp(size_t n, size_t to);
// Anonymous, pre-faulted pages, locked when asked: what a send touches must not need the disk.
void* MapLocked(size_t length, bool lock, bool* locked, int* lockError);

// What a set is built from (the constructor's options, then each re-arm's).
struct ArmParams {
  std::vector<uint8_t> key;
  uint32_t clusterTag = 0;
  uint16_t selfId = 0;
  uint64_t incarnation = 0;
  uint64_t firstSequence = 1;
  std::vector<DistressDest> dests;
};

// Builds and signs a complete set aside (nothing shared is touched). nullptr with *error on failure.
DistressSet* BuildSet(const DistressState& s, const ArmParams& a, uint32_t generation, std::string* error);
void FreeSet(DistressSet* set);
// A sender pins the phase it loads `current` in (distress_set.cc); a re-arm waits the old phase out.
uint32_t PinEnter(DistressState& s);
void PinExit(DistressState& s, uint32_t phase);
// Under armMutex, after publishing a new set. false: a sender stayed pinned for a whole second (stopped in
// a debugger, or a thread frozen mid-send); the caller must not unmap the old set.
bool WaitForReaders(DistressState& s);

// Sends one event of reason k (distress_send.cc). async-signal-safe; gapNs > 0 only on the dedicated thread.
int SendEvent(DistressState& s, size_t k, int64_t gapNs, bool async);
// Locks the executable pages a send runs (the addon's and the C library's): 0 or an errno.
int LockCode();
// Binds every function a send or a signal handler calls through the PLT now.
void WarmUp();
// The dedicated thread, on a locked stack of its own with a guard page. 0, or an errno with *call naming
// the failed call.
int StartSenderThread(DistressState& s, const char** call);

}  // namespace vigil

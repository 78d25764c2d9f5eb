// The armed set of distress datagrams: built and signed aside at arming, published with one atomic swap,
// pinned by every sender while it reads it, unmapped only once no sender can hold it.
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <new>

#include "distress_internal.h"

namespace vigil {

using namespace wire;  // the format's shared part: constants, fields, clocks, HMAC (wire.h)
using namespace distress_wire;

size_t PageSize() { return size_t(sysconf(_SC_PAGESIZE)); }
size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

void* MapLocked(size_t length, bool lock, bool* locked, int* lockError) {
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  *locked = false;
  *lockError = 0;
  if (lock) {
    if (mlock(p, length) == 0) *locked = true; else *lockError = errno;
  }
  return p;
}

const uint8_t* DistressSet::Datagram(size_t k, uint32_t slot, uint32_t r) const {
  return datagrams + ((k * slots + slot) * repeats + r) * kDatagramLength;
}

// ---- pinning: which sets a sender may still be reading ----
//
// A sender counts itself in readers[epoch & 1] before it loads `current`, and re-reads the epoch after
// counting (so it never counts itself in a phase a re-arm already waited out). A re-arm swaps `current`,
// flips the epoch and waits for the old phase to drain: whoever could have loaded the old set is counted
// there. Lock-free on both sides; a sender never waits.
uint32_t PinEnter(DistressState& s) {
  for (;;) {
    uint32_t e = s.epoch.load();
    s.readers[e & 1].fetch_add(1);
    if (s.epoch.load() == e) return e & 1;
    s.readers[e & 1].fetch_sub(1);
  }
}

void PinExit(DistressState& s, uint32_t phase) { s.readers[phase].fetch_sub(1); }

bool WaitForReaders(DistressState& s) {
  uint32_t e = s.epoch.load();
  s.epoch.store(e + 1);
  int64_t deadline = MonoNs() + 1000000000;
  for (int spins = 0; s.readers[e & 1].load() != 0; spins++) {
    if (MonoNs() > deadline) return false;
    if (spins < 100) {
      sched_yield();
    } else {
      timespec ts{0, 50000};
      nanosleep(&ts, nullptr);
    }
  }
  return true;
}

void FreeSet(DistressSet* set) {
  if (set == nullptr) return;
  size_t length = set->mapLength;
  set->~DistressSet();
  munmap(set, length);
}

// ---- building ----

namespace {

bool Sign(const std::vector<uint8_t>& key, uint8_t* d) {
  return wire::Mac(key, d, kHeaderLength + kPayloadLength, d + kHeaderLength + kPayloadLength);
}

// Copy r of event `event` of reason k, as docs/distress.md lays it out.
void Encode(uint8_t* d, const DistressState& s, const ArmParams& a, size_t k, uint64_t event, uint32_t r, int64_t armedAtMs) {
  PutHeader(d, kTypeDistress, kStreamDistress, a.selfId, a.clusterTag, a.incarnation, event + r, kPayloadLength);
  uint8_t* p = d + kHeaderLength;
  p[0] = kPayloadVersion;
  p[1] = uint8_t(r);
  p[2] = uint8_t(s.repeats);
  p[3] = 0;
  Put16(p + 4, s.reasonCodes[k]);
  Put16(p + 6, a.selfId);
  Put64(p + 8, a.incarnation);
  Put64(p + 16, event);
  Put64(p + 24, uint64_t(armedAtMs));
}

}  // namespace

DistressSet* BuildSet(const DistressState& s, const ArmParams& a, uint32_t generation, std::string* error) {
  size_t count = s.reasonCount * s.slots * s.repeats;
  uint64_t span = count;
  if (a.firstSequence == 0 || a.firstSequence - 1 > UINT64_MAX - span) {
    *error = "sequence numbers exhausted for this incarnation";
    return nullptr;
  }
  size_t header = RoundUp(sizeof(DistressSet), 64);
  size_t destBytes = RoundUp(a.dests.size() * sizeof(DistressDest), 64);
  size_t length = RoundUp(header + destBytes + count * kDatagramLength, PageSize());
  bool locked = false;
  int lockError = 0;
  void* mem = MapLocked(length, s.lockMemory, &locked, &lockError);
  if (mem == nullptr) {
    *error = std::string("mmap: ") + strerror(errno);
    return nullptr;
  }
  DistressSet* set = new (mem) DistressSet();
  set->mapLength = length;
  set->generation = generation;
  set->incarnation = a.incarnation;
  set->firstSequence = a.firstSequence;
  set->span = span;
  set->armedAtMs = RealNs() / 1000000;
  set->reasonCount = uint32_t(s.reasonCount);
  set->slots = s.slots;
  set->repeats = s.repeats;
  set->destCount = a.dests.size();
  set->locked = locked;
  set->lockError = lockError;
  set->dests = reinterpret_cast<DistressDest*>(static_cast<uint8_t*>(mem) + header);
  set->datagrams = static_cast<uint8_t*>(mem) + header + destBytes;
  for (size_t i = 0; i < a.dests.size(); i++) set->dests[i] = a.dests[i];
  for (size_t k = 0; k < s.reasonCount; k++) {
    for (uint32_t slot = 0; slot < s.slots; slot++) {
      uint64_t event = a.firstSequence + (uint64_t(k) * s.slots + slot) * s.repeats;
      for (uint32_t r = 0; r < s.repeats; r++) {
        uint8_t* d = const_cast<uint8_t*>(set->Datagram(k, slot, r));
        Encode(d, s, a, k, event, r, set->armedAtMs);
        if (!Sign(a.key, d)) {
          FreeSet(set);
          *error = "HMAC-SHA256 failed";
          return nullptr;
        }
      }
    }
  }
  return set;
}

}  // namespace vigil

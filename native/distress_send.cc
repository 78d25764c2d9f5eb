// Sending distress: one event's pre-built copies to every destination, from the dedicated thread (woken by
// one write to an eventfd) or synchronously on the calling thread (a signal handler). Only sendto of fixed
// bytes, clock_gettime, nanosleep and atomics at the moment of failure.
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alt_stack.h"
#include "distress_internal.h"
#include "owned_thread.h"

namespace vigil {

using namespace wire;
using namespace distress_wire;

namespace {
constexpr size_t kStackLength = 256 * 1024;
}  // namespace

// Sends one event of reason k: `repeats` copies, each to every destination, copy-major (every peer gets its
// first copy before anyone gets a second).
int SendEvent(DistressState& s, size_t k, int64_t gapNs, bool async) {
  int accepted = 0, failed = 0, lastError = 0;
  uint32_t phase = PinEnter(s);
  const DistressSet* set = s.current.load();
  if (set != nullptr) {
    uint32_t slot = const_cast<DistressSet*>(set)->nextSlot[k].fetch_add(1, std::memory_order_relaxed);
    if (slot >= set->slots) slot = set->slots - 1;  // slots used up: resend the last event (receivers dedup it)
    for (uint32_t r = 0; r < set->repeats; r++) {
      if (r > 0 && gapNs > 0) {
        timespec ts{time_t(gapNs / 1000000000), long(gapNs % 1000000000)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
      }
      const uint8_t* d = set->Datagram(k, slot, r);
      for (size_t i = 0; i < set->destCount; i++) {
        const DistressDest& dest = set->dests[i];
        // MSG_DONTWAIT: a full queue or a dead interface costs one failed call, never a wait.
        ssize_t rc = sendto(s.sockets[dest.network], d, kDatagramLength, MSG_DONTWAIT | MSG_NOSIGNAL,
                            reinterpret_cast<const sockaddr*>(&dest.address), dest.length);
        DistressNetworkStats& n = s.networks[dest.network];
        if (rc == ssize_t(kDatagramLength)) {
          accepted++;
          n.datagrams.fetch_add(1, std::memory_order_relaxed);
        } else {
          failed++;
          lastError = rc < 0 ? errno : EMSGSIZE;
          n.errors.fetch_add(1, std::memory_order_relaxed);
          n.lastErrno.store(lastError, std::memory_order_relaxed);
        }
      }
    }
  }
  PinExit(s, phase);
  DistressReasonStats& st = s.reasons[k];
  st.events.fetch_add(1, std::memory_order_relaxed);
  st.datagrams.fetch_add(uint64_t(accepted), std::memory_order_relaxed);
  if (failed) {
    st.errors.fetch_add(uint64_t(failed), std::memory_order_relaxed);
    s.sendErrors.fetch_add(uint64_t(failed), std::memory_order_relaxed);
    s.lastErrno.store(lastError, std::memory_order_relaxed);
  }
  st.lastSentRealMs.store(RealNs() / 1000000, std::memory_order_relaxed);
  st.lastSentMonoNs.store(MonoNs(), std::memory_order_relaxed);
  (async ? s.asyncEvents : s.syncEvents).fetch_add(1, std::memory_order_relaxed);
  return accepted;
}

bool DistressTriggerAsync(DistressState& s, size_t reasonIndex) {
  if (reasonIndex >= s.reasonCount) return false;
  s.reasons[reasonIndex].triggers.fetch_add(1, std::memory_order_relaxed);
  s.pending[reasonIndex].fetch_add(1);
  uint64_t one = 1;
  return write(s.wakeFd, &one, sizeof one) == ssize_t(sizeof one);
}

int DistressSendSync(DistressState& s, size_t reasonIndex) {
  if (reasonIndex >= s.reasonCount) return 0;
  s.reasons[reasonIndex].triggers.fetch_add(1, std::memory_order_relaxed);
  return SendEvent(s, reasonIndex, 0, false);
}

int DistressReasonIndex(const DistressState& s, uint32_t code) {
  for (size_t i = 0; i < s.reasonCount; i++) if (s.reasonCodes[i] == code) return int(i);
  return -1;
}

DistressState::~DistressState() {
  for (size_t i = 0; i < networkCount; i++) if (sockets[i] >= 0) close(sockets[i]);
  if (wakeFd >= 0) close(wakeFd);
  FreeSet(current.load());  // the sets in `leaked` may still be in use by a stuck sender: never unmapped
  if (threadStack != nullptr) munmap(threadStack, threadStackLength);
}

// ---- the thread ----

namespace {

void* ThreadMain(void* arg) {
  DistressState& s = *static_cast<DistressState*>(arg);
  pthread_setname_np(pthread_self(), "vigil-distress");
  // Signals for the JavaScript thread, not this one; and a stack for the fatal handler if this one faults.
  BlockAsyncSignals();
  EnsureAltStack(s.lockMemory);
  if (s.askedPriority > 0) {
    sched_param param{};
    param.sched_priority = s.askedPriority;
    int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
    s.realtime = rc == 0;
    s.schedError = rc;
  }
  if (!s.realtime && s.askedNice != 0) {
    if (setpriority(PRIO_PROCESS, id_t(gettid()), s.askedNice) == 0) s.nice = s.askedNice; else s.niceError = errno;
  }
  s.threadReady.store(true);
  for (;;) {
    uint64_t value;
    ssize_t n = read(s.wakeFd, &value, sizeof value);  // blocks until a trigger (or stop) writes
    if (n < 0 && errno == EINTR) continue;
    if (s.stopping.load() || n < 0) break;
    s.wakeups.fetch_add(1, std::memory_order_relaxed);
    for (size_t k = 0; k < s.reasonCount; k++) {
      uint32_t p = s.pending[k].exchange(0);
      // Beyond `slots` triggers at once the copies are the same bytes again: no point sending them.
      if (p > s.slots) p = s.slots;
      for (uint32_t i = 0; i < p; i++) SendEvent(s, k, s.repeatGapNs, true);
    }
  }
  return nullptr;
}

}  // namespace

int StartSenderThread(DistressState& s, const char** call) {
  // On a stack of its own, locked, with a guard page below it.
  bool stackLocked = false;
  int stackLockError = 0;
  s.threadStackLength = kStackLength;
  s.threadStack = MapLocked(kStackLength, s.lockMemory, &stackLocked, &stackLockError);
  if (s.threadStack == nullptr) {
    *call = "mmap";
    return errno;
  }
  mprotect(s.threadStack, PageSize(), PROT_NONE);
  if (!stackLocked && s.lockMemory) {
    s.memoryLocked = false;
    if (!s.memoryLockError) s.memoryLockError = stackLockError;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, s.threadStack, kStackLength);
  int rc = pthread_create(&s.thread, &attr, ThreadMain, &s);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    *call = "pthread_create";
    return rc;
  }
  s.threadStarted = true;
  // The thread sets its own policy first thing; wait so snapshot() reports it from the start.
  int64_t deadline = MonoNs() + 2000000000;
  while (!s.threadReady.load() && MonoNs() < deadline) sched_yield();
  return 0;
}

// ---- locking the code a send runs ----

namespace {

struct CodeLock {
  const void* address;
  bool found;
  int error;
};

// Locks the executable segments of the loaded object that contains `address`.
int LockObjectCode(dl_phdr_info* info, size_t, void* data) {
  CodeLock& c = *static_cast<CodeLock*>(data);
  uintptr_t a = reinterpret_cast<uintptr_t>(c.address);
  bool contains = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && a >= start && a < start + ph.p_memsz) contains = true;
  }
  if (!contains) return 0;
  c.found = true;
  size_t page = PageSize();
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t start = (info->dlpi_addr + ph.p_vaddr) / page * page;
    uintptr_t end = RoundUp(info->dlpi_addr + ph.p_vaddr + ph.p_memsz, page);
    if (mlock(reinterpret_cast<void*>(start), end - start) != 0) c.error = errno;
  }
  return 1;
}

}  // namespace

int LockCode() {
  const void* targets[] = {reinterpret_cast<const void*>(&SendEvent), reinterpret_cast<const void*>(&sendto)};
  int error = 0;
  for (const void* t : targets) {
    CodeLock c{t, false, 0};
    dl_iterate_phdr(LockObjectCode, &c);
    if (!c.found) error = ENOENT;
    if (c.error) error = c.error;
  }
  return error;
}

void WarmUp() {
  int saved = errno;
  ssize_t ignored = sendto(-1, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
  ignored = write(-1, nullptr, 0);
  (void)ignored;
  timespec zero{0, 0};
  nanosleep(&zero, nullptr);
  sched_yield();
  MonoNs();
  RealNs();
  raise(0);
  sigaction(SIGSEGV, nullptr, nullptr);
  errno = saved;
}

}  // namespace vigil

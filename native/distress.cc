#include "distress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <netdb.h>
#include <netinet/ip.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>

#include "owned_thread.h"
#include "system_error.h"
#include "udp_address.h"
#include "wire.h"

// V8's hook for embedders' SIGSEGV/SIGBUS handlers: true when the fault was a WebAssembly bounds check it
// turned into a trap (not a crash). Node exports it; weak, so a build without it loads and simply never
// asks. Declared here because Node's headers do not ship v8-wasm-trap-handler-posix.h.
namespace v8 {
__attribute__((weak)) bool TryHandleWebAssemblyTrapPosix(int sig_code, siginfo_t* info, void* context);
}

namespace vigil {

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

namespace {

// The distress part of the wire format (docs/cluster.md "Wire format", docs/distress.md; the rest in wire.h).
using namespace wire;  // the format's shared part: constants, fields, clocks, HMAC (wire.h)
constexpr uint8_t kTypeDistress = 5;
constexpr uint8_t kStreamDistress = 2;
constexpr size_t kPayloadLength = 32;
constexpr size_t kDatagramLength = kHeaderLength + kPayloadLength + kMacLength;  // 94
constexpr uint8_t kPayloadVersion = 1;
constexpr size_t kStackLength = 256 * 1024;
constexpr size_t kAltStackLength = 64 * 1024;

static_assert(std::atomic<uint32_t>::is_always_lock_free, "signal handlers need lock-free atomics");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "signal handlers need lock-free atomics");
static_assert(std::atomic<int64_t>::is_always_lock_free, "signal handlers need lock-free atomics");
static_assert(std::atomic<DistressSet*>::is_always_lock_free, "signal handlers need lock-free atomics");

size_t PageSize() { return size_t(sysconf(_SC_PAGESIZE)); }
size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Anonymous, pre-faulted pages, locked when asked: what a send touches must not need the disk.
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

// Under armMutex. false: a sender stayed pinned for a whole second (stopped in a debugger, or a thread
// frozen mid-send); the caller must not unmap the old set.
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

// ---- sending ----

// Sends one event of reason k: `repeats` copies, each to every destination, copy-major (every peer gets its
// first copy before anyone gets a second). Only sendto of fixed bytes, clock_gettime, nanosleep and atomics:
// async-signal-safe. gapNs > 0 only on the dedicated thread.
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

int EnsureAltStack(bool lock);

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

// ---- arming ----

struct ArmParams {
  std::vector<uint8_t> key;
  uint32_t clusterTag = 0;
  uint16_t selfId = 0;
  uint64_t incarnation = 0;
  uint64_t firstSequence = 1;
  std::vector<DistressDest> dests;
};

bool Sign(const std::vector<uint8_t>& key, uint8_t* d) {
  return wire::Mac(key, d, kHeaderLength + kPayloadLength, d + kHeaderLength + kPayloadLength);
}

// Builds and signs a complete set aside (nothing shared is touched). nullptr with *error on failure.
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
        memcpy(d, kMagic, 4);
        d[4] = kTypeDistress;
        d[5] = kStreamDistress;
        Put16(d + 6, a.selfId);
        Put32(d + 8, a.clusterTag);
        Put64(d + 12, a.incarnation);
        Put64(d + 20, event + r);
        Put16(d + 28, kPayloadLength);
        uint8_t* p = d + kHeaderLength;
        p[0] = kPayloadVersion;
        p[1] = uint8_t(r);
        p[2] = uint8_t(s.repeats);
        p[3] = 0;
        Put16(p + 4, s.reasonCodes[k]);
        Put16(p + 6, a.selfId);
        Put64(p + 8, a.incarnation);
        Put64(p + 16, event);
        Put64(p + 24, uint64_t(set->armedAtMs));
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

// ---- locking the code a send runs ----

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

// Binds every function a send or a signal handler calls through the PLT now, so the first real send does
// not run the dynamic linker's lazy resolution.
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

// ---- fatal signals ----

const int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
constexpr size_t kFatalCount = sizeof kFatalSignals / sizeof kFatalSignals[0];
struct sigaction g_previous[kFatalCount];
struct sigaction g_ours;
bool g_installed = false;                                 // JS thread
std::shared_ptr<DistressState>* g_fatalOwner = nullptr;  // keeps the state alive; never destroyed at exit
std::atomic<DistressState*> g_fatalState{nullptr};
std::atomic<int> g_fatalReason{-1};
std::atomic<uint32_t> g_fatalActive{0};
bool (*g_wasmTrap)(int, siginfo_t*, void*) = nullptr;
thread_local bool t_altStack = false;
// The one distress a fatal signal sends (FatalHandler): idle, being sent by one thread, sent.
constexpr int kFatalIdle = 0, kFatalSending = 1, kFatalSent = 2;
std::atomic<int> g_fatalOnce{kFatalIdle};

// The agent's stay-out record (src/daemon/stay-out.ts), written by the handler after the send: the JS that
// would write it never runs again, and a node that sent distress must not rejoin when it is restarted.
// Path and bytes are fixed at install time; open/write/fsync/close are async-signal-safe.
char g_stayOutPath[4096];
char g_stayOutContent[1024];
size_t g_stayOutLength = 0;
std::atomic<bool> g_stayOutSet{false};

void WriteStayOut() {
  if (!g_stayOutSet.load()) return;
  int fd = open(g_stayOutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return;
  size_t done = 0;
  while (done < g_stayOutLength) {
    ssize_t n = write(fd, g_stayOutContent + done, g_stayOutLength - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  fsync(fd);
  close(fd);
}

int FatalSlot(int sig) {
  for (size_t i = 0; i < kFatalCount; i++) if (kFatalSignals[i] == sig) return int(i);
  return -1;
}

// SA_SIGINFO | SA_ONSTACK: runs on the alternate stack (a stack overflow leaves none). The first fatal
// signal sends the armed reason synchronously from here and writes the stay-out record, once (g_fatalOnce);
// a fault on another thread meanwhile waits for that to finish rather than end the process first. Then the
// signal goes back to whoever had it before (Node's WebAssembly handler for SEGV/BUS, else the default
// action) and is re-raised; it is blocked while we run, so it lands as soon as we return, and a genuine
// fault would re-fault anyway. Not SA_RESETHAND: that reset the handler at every WebAssembly bounds check
// and re-installed it after, and a second fault in between killed the process without distress.
void FatalHandler(int sig, siginfo_t* info, void* context) {
  int saved = errno;
  if ((sig == SIGSEGV || sig == SIGBUS) && g_wasmTrap != nullptr && g_wasmTrap(sig, info, context)) {
    errno = saved;  // a WebAssembly bounds check, handled: not fatal, and the handler never left
    return;
  }
  int idle = kFatalIdle;
  if (g_fatalOnce.compare_exchange_strong(idle, kFatalSending)) {
    g_fatalActive.fetch_add(1);
    DistressState* s = g_fatalState.load();
    int k = g_fatalReason.load();
    if (s != nullptr && k >= 0) DistressSendSync(*s, size_t(k));
    if (s != nullptr) WriteStayOut();
    g_fatalActive.fetch_sub(1);
    g_fatalOnce.store(kFatalSent);
  } else {
    timespec pause{0, 1000000};
    for (int i = 0; i < 2000 && g_fatalOnce.load() != kFatalSent; i++) nanosleep(&pause, nullptr);
  }
  int slot = FatalSlot(sig);
  if (slot >= 0) sigaction(sig, &g_previous[slot], nullptr);
  raise(sig);
  errno = saved;
}

// An alternate signal stack for the calling thread (sigaltstack is per thread), unless it has one.
int EnsureAltStack(bool lock) {
  if (t_altStack) return 0;
  stack_t old{};
  if (sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
    t_altStack = true;
    return 0;
  }
  bool locked = false;
  int lockError = 0;
  void* p = MapLocked(kAltStackLength, lock, &locked, &lockError);
  if (p == nullptr) return errno;
  stack_t ss{};
  ss.ss_sp = p;
  ss.ss_size = kAltStackLength;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) {
    int err = errno;
    munmap(p, kAltStackLength);
    return err;
  }
  t_altStack = true;  // kept for the thread's life: a handler may run on it at any time
  return 0;
}

// An owner the handlers no longer load: freed once no handler that loaded it before the swap can still be
// sending with it (a second at most); leaked if one is stuck inside.
void ReleaseFatalOwner(std::shared_ptr<DistressState>* owner) {
  if (owner == nullptr) return;
  int64_t deadline = MonoNs() + 1000000000;
  while (g_fatalActive.load() != 0 && MonoNs() < deadline) sched_yield();
  if (g_fatalActive.load() == 0) delete owner;
}

void UninstallFatal(const DistressState* owner) {
  if (!g_installed || (owner != nullptr && g_fatalState.load() != owner)) return;
  for (size_t i = 0; i < kFatalCount; i++) sigaction(kFatalSignals[i], &g_previous[i], nullptr);
  g_fatalState.store(nullptr);
  g_fatalReason.store(-1);
  g_stayOutSet.store(false);
  ReleaseFatalOwner(g_fatalOwner);
  g_fatalOwner = nullptr;
  g_installed = false;
}

// ---- argument helpers ----

bool GetU32(Napi::Object o, const char* name, uint32_t min, uint32_t max, uint32_t* out, bool optional = false) {
  Napi::Value v = o.Get(name);
  if (optional && v.IsUndefined()) return true;
  if (!v.IsNumber()) {
    Napi::TypeError::New(o.Env(), std::string("distress: ") + name + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != double(uint64_t(d))) {
    Napi::RangeError::New(o.Env(), std::string("distress: ") + name + " must be an integer " + std::to_string(min) + ".." +
                                        std::to_string(max))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = uint32_t(d);
  return true;
}

bool GetU64(Napi::Env env, Napi::Value v, const char* name, uint64_t* out) {
  if (!v.IsBigInt()) {
    Napi::TypeError::New(env, std::string("distress: ") + name + " must be a bigint").ThrowAsJavaScriptException();
    return false;
  }
  bool lossless = false;
  *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || *out == 0) {
    Napi::RangeError::New(env, std::string("distress: ") + name + " must be 1..2^64-1").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool GetKey(Napi::Env env, Napi::Value v, std::vector<uint8_t>* key) {
  if (!v.IsBuffer()) {
    Napi::TypeError::New(env, "distress: key must be a Buffer").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 32) {
    Napi::RangeError::New(env, "distress: key must be at least 32 bytes").ThrowAsJavaScriptException();
    return false;
  }
  key->assign(b.Data(), b.Data() + b.Length());
  return true;
}

// peers: [{ id, addresses: [{ network, host, port }] }] → destinations, checked against the bound sockets.
bool GetPeers(Napi::Env env, Napi::Value v, const DistressState& s, uint16_t selfId, std::vector<DistressDest>* out) {
  if (!v.IsArray()) {
    Napi::TypeError::New(env, "distress: peers must be an array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array peers = v.As<Napi::Array>();
  out->clear();
  for (uint32_t i = 0; i < peers.Length(); i++) {
    Napi::Object p = peers.Get(i).As<Napi::Object>();
    uint32_t id = 0;
    if (!GetU32(p, "id", 1, 65535, &id)) return false;
    if (id == selfId) {
      Napi::RangeError::New(env, "distress: a peer cannot be this node").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Value av = p.Get("addresses");
    if (!av.IsArray()) {
      Napi::TypeError::New(env, "distress: peer addresses must be an array").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Array addresses = av.As<Napi::Array>();
    for (uint32_t j = 0; j < addresses.Length(); j++) {
      Napi::Object a = addresses.Get(j).As<Napi::Object>();
      uint32_t network = 0, port = 0;
      if (!GetU32(a, "network", 0, uint32_t(s.networkCount ? s.networkCount - 1 : 0), &network)) return false;
      if (!GetU32(a, "port", 1, 65535, &port)) return false;
      Napi::Value hv = a.Get("host");
      std::string host = hv.IsString() ? hv.As<Napi::String>().Utf8Value() : "";
      DistressDest d{};
      d.network = network;
      d.peer = uint16_t(id);
      if (s.networkCount == 0 || !ResolveNumeric(host, uint16_t(port), &d.address, &d.length)) {
        Napi::Error::New(env, "distress: bad peer address " + host).ThrowAsJavaScriptException();
        return false;
      }
      if (d.address.ss_family != s.families[network]) {
        Napi::Error::New(env, "distress: peer address " + host + " is not of network " + std::to_string(network) +
                                  "'s address family")
            .ThrowAsJavaScriptException();
        return false;
      }
      out->push_back(d);
    }
  }
  return true;
}

Napi::Value U64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }
Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

Napi::Value BigArray(Napi::Env env, const std::vector<int64_t>& v, size_t n) {
  Napi::BigInt64Array a = Napi::BigInt64Array::New(env, n);
  for (size_t i = 0; i < n; i++) a[i] = v[i];
  return a;
}

}  // namespace

const uint8_t* DistressSet::Datagram(size_t k, uint32_t slot, uint32_t r) const {
  return datagrams + ((k * slots + slot) * repeats + r) * kDatagramLength;
}

DistressState::~DistressState() {
  for (size_t i = 0; i < networkCount; i++) if (sockets[i] >= 0) close(sockets[i]);
  if (wakeFd >= 0) close(wakeFd);
  FreeSet(current.load());  // the sets in `leaked` may still be in use by a stuck sender: never unmapped
  if (threadStack != nullptr) munmap(threadStack, threadStackLength);
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

// ---- the JavaScript object ----

struct DistressSender::TestTrigger {
  std::shared_ptr<DistressState> state;
  size_t reason = 0;
  bool sync = false;
  int64_t delayNs = 0, intervalNs = 0;
  uint32_t count = 0;
  int priority = 0;
  std::vector<int64_t> mono, real;
  std::atomic<uint32_t> done{0};
  std::atomic<bool> finished{false};
  std::atomic<bool> cancel{false};
  pthread_t thread{};
};

Napi::Function DistressSender::Init(Napi::Env env) {
  return DefineClass(env, "DistressSender",
                     {InstanceMethod("trigger", &DistressSender::Trigger),
                      InstanceMethod("rearm", &DistressSender::Rearm),
                      InstanceMethod("installFatalHandlers", &DistressSender::InstallFatalHandlers),
                      InstanceMethod("uninstallFatalHandlers", &DistressSender::UninstallFatalHandlers),
                      InstanceMethod("snapshot", &DistressSender::Snapshot),
                      InstanceMethod("stop", &DistressSender::Stop),
                      InstanceMethod("triggerFromThread", &DistressSender::TriggerFromThread),
                      InstanceMethod("threadTriggerTimes", &DistressSender::ThreadTriggerTimes),
                      InstanceMethod("crashForTest", &DistressSender::CrashForTest)});
}

// new DistressSender({ key, clusterTag, selfId, incarnation: bigint, reasons: number[], slots, repeats,
//   repeatGapUs, priority, nice, lockMemory, networks: [{ bind }], peers: [{ id, addresses: [{ network, host, port }] }] })
// Throws (errno, code, syscall) when a socket cannot be bound; the thread starts only once everything is armed.
DistressSender::DistressSender(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DistressSender>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    Napi::TypeError::New(env, "distress: options object expected").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  bool lockMemory = !o.Get("lockMemory").IsBoolean() || o.Get("lockMemory").As<Napi::Boolean>().Value();

  // The state itself in locked pages: its counters and the sockets table are touched by every send.
  size_t stateLength = RoundUp(sizeof(DistressState), PageSize());
  bool stateLocked = false;
  int stateLockError = 0;
  void* mem = MapLocked(stateLength, lockMemory, &stateLocked, &stateLockError);
  if (mem == nullptr) {
    SystemError(env, errno, "mmap", "distress: state").ThrowAsJavaScriptException();
    return;
  }
  std::shared_ptr<DistressState> s(new (mem) DistressState(), [stateLength](DistressState* p) {
    p->~DistressState();
    munmap(p, stateLength);
  });
  for (size_t i = 0; i < kDistressMaxNetworks; i++) s->sockets[i] = -1;
  s->lockMemory = lockMemory;
  s->memoryLocked = stateLocked;
  s->memoryLockError = stateLockError;

  ArmParams a;
  uint32_t clusterTag = 0, selfId = 0, slots = 0, repeats = 0, gapUs = 0, priority = 0;
  if (!GetKey(env, o.Get("key"), &a.key)) return;
  if (!GetU32(o, "clusterTag", 0, UINT32_MAX, &clusterTag)) return;
  if (!GetU32(o, "selfId", 1, 65535, &selfId)) return;
  if (!GetU64(env, o.Get("incarnation"), "incarnation", &a.incarnation)) return;
  slots = 4;
  repeats = 3;
  gapUs = 1000;
  if (!GetU32(o, "slots", 1, kDistressMaxSlots, &slots, true)) return;
  if (!GetU32(o, "repeats", 1, kDistressMaxRepeats, &repeats, true)) return;
  if (!GetU32(o, "repeatGapUs", 0, 1000000, &gapUs, true)) return;
  if (!GetU32(o, "priority", 0, 99, &priority, true)) return;
  Napi::Value niceValue = o.Get("nice");
  int nice = niceValue.IsNumber() ? niceValue.As<Napi::Number>().Int32Value() : 0;
  if (nice < -20 || nice > 19) {
    Napi::RangeError::New(env, "distress: nice must be -20..19").ThrowAsJavaScriptException();
    return;
  }
  a.clusterTag = clusterTag;
  a.selfId = uint16_t(selfId);
  s->slots = slots;
  s->repeats = repeats;
  s->repeatGapNs = int64_t(gapUs) * 1000;
  s->askedPriority = int(priority);
  s->askedNice = nice;

  Napi::Value rv = o.Get("reasons");
  if (!rv.IsArray() || rv.As<Napi::Array>().Length() == 0 || rv.As<Napi::Array>().Length() > kDistressMaxReasons) {
    Napi::TypeError::New(env, "distress: reasons must be an array of 1 to 16 reason codes").ThrowAsJavaScriptException();
    return;
  }
  Napi::Array reasons = rv.As<Napi::Array>();
  for (uint32_t i = 0; i < reasons.Length(); i++) {
    Napi::Value c = reasons.Get(i);
    double d = c.IsNumber() ? c.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= 65535) || d != double(uint32_t(d)) || DistressReasonIndex(*s, uint32_t(d)) >= 0) {
      Napi::RangeError::New(env, "distress: reason codes must be distinct integers 1..65535").ThrowAsJavaScriptException();
      return;
    }
    s->reasonCodes[s->reasonCount++] = uint16_t(d);
  }

  Napi::Value nv = o.Get("networks");
  if (!nv.IsArray() || nv.As<Napi::Array>().Length() == 0 || nv.As<Napi::Array>().Length() > kDistressMaxNetworks) {
    Napi::TypeError::New(env, "distress: networks must be an array of 1 to 16 { bind }").ThrowAsJavaScriptException();
    return;
  }
  Napi::Array networks = nv.As<Napi::Array>();
  for (uint32_t i = 0; i < networks.Length(); i++) {
    Napi::Value bv = networks.Get(i).As<Napi::Object>().Get("bind");
    std::string local = bv.IsString() ? bv.As<Napi::String>().Utf8Value() : "";
    int err = 0, family = 0;
    const char* syscall = "";
    int fd = wire::OpenClusterSocket(local, 0, &err, &syscall, &family);
    if (fd < 0) {
      SystemError(env, err, syscall, "distress: " + wire::ClusterSocketProblem(syscall, local)).ThrowAsJavaScriptException();
      return;
    }
    s->sockets[i] = fd;
    s->families[i] = family;
    s->networkCount = i + 1;
  }
  if (!GetPeers(env, o.Get("peers"), *s, a.selfId, &a.dests)) return;

  std::string error;
  DistressSet* set = BuildSet(*s, a, 1, &error);
  if (set == nullptr) {
    Napi::Error::New(env, "distress: " + error).ThrowAsJavaScriptException();
    return;
  }
  s->generation = 1;
  if (!set->locked) {
    s->memoryLocked = false;
    if (!s->memoryLockError) s->memoryLockError = set->lockError;
  }
  s->current.store(set);
  s->wakeFd = eventfd(0, EFD_CLOEXEC);  // blocking: the thread sleeps in read(); writers never block (2^64 counts)
  if (s->wakeFd < 0) {
    SystemError(env, errno, "eventfd", "distress: eventfd").ThrowAsJavaScriptException();
    return;
  }
  // Kept for re-arming with only some of the parameters changed.
  armKey_ = a.key;
  armTag_ = a.clusterTag;
  armSelf_ = a.selfId;
  armIncarnation_ = a.incarnation;
  armDests_ = a.dests;

  if (lockMemory) s->codeLocked = (s->codeLockError = LockCode()) == 0;
  WarmUp();

  // The thread on a stack of our own, locked, with a guard page below it.
  bool stackLocked = false;
  int stackLockError = 0;
  s->threadStackLength = kStackLength;
  s->threadStack = MapLocked(kStackLength, lockMemory, &stackLocked, &stackLockError);
  if (s->threadStack == nullptr) {
    SystemError(env, errno, "mmap", "distress: thread stack").ThrowAsJavaScriptException();
    return;
  }
  mprotect(s->threadStack, PageSize(), PROT_NONE);
  if (!stackLocked && lockMemory) {
    s->memoryLocked = false;
    if (!s->memoryLockError) s->memoryLockError = stackLockError;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, s->threadStack, kStackLength);
  int rc = pthread_create(&s->thread, &attr, ThreadMain, s.get());
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    SystemError(env, rc, "pthread_create", "distress: thread").ThrowAsJavaScriptException();
    return;
  }
  s->threadStarted = true;
  // The thread sets its own policy first thing; wait so snapshot() reports it from the start.
  int64_t deadline = MonoNs() + 2000000000;
  while (!s->threadReady.load() && MonoNs() < deadline) sched_yield();
  state_ = s;
}

DistressSender::~DistressSender() { StopAll(); }

void DistressSender::JoinTestThread() {
  if (test_) {
    test_->cancel.store(true);  // (only ever reached with the thread finished, or from stop())
    pthread_join(test_->thread, nullptr);
    test_.reset();
  }
}

void DistressSender::StopAll() {
  if (!state_) return;
  DistressState& s = *state_;
  UninstallFatal(&s);
  JoinTestThread();
  if (s.threadStarted && !s.stopped.load()) {
    s.stopping.store(true);
    uint64_t one = 1;
    ssize_t ignored = write(s.wakeFd, &one, sizeof one);
    (void)ignored;
    pthread_join(s.thread, nullptr);
  }
  s.stopped.store(true);
}

Napi::Value DistressSender::Stop(const Napi::CallbackInfo& info) {
  StopAll();
  return info.Env().Undefined();
}

// The reason code in info[0] as an index into the armed set; -1 with a JS exception pending when the sender is
// stopped or the code was not armed.
int DistressSender::ArmedReasonArgument(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || state_->stopped.load()) {
    Napi::Error::New(env, "distress: the sender is stopped").ThrowAsJavaScriptException();
    return -1;
  }
  int k = info[0].IsNumber() ? DistressReasonIndex(*state_, info[0].As<Napi::Number>().Uint32Value()) : -1;
  if (k < 0) Napi::RangeError::New(env, "distress: reason code not armed").ThrowAsJavaScriptException();
  return k;
}

// trigger(code, 'async' | 'sync'): async → true when the thread was woken; sync → the number of datagrams the
// kernel accepted, sent on this thread before returning.
Napi::Value DistressSender::Trigger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int k = ArmedReasonArgument(info);
  if (k < 0) return env.Undefined();
  std::string mode = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (mode == "sync") return Num(env, DistressSendSync(*state_, size_t(k)));
  if (mode == "async") return Napi::Boolean::New(env, DistressTriggerAsync(*state_, size_t(k)));
  Napi::TypeError::New(env, "distress: mode must be 'sync' or 'async'").ThrowAsJavaScriptException();
  return env.Undefined();
}

// rearm({ key?, incarnation?, peers? }): a new set with what changed, built aside and published in one swap.
// The same incarnation continues its sequence numbers (peers' replay windows would refuse old ones); a
// lower one is refused. Returns the new generation.
Napi::Value DistressSender::Rearm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || state_->stopped.load()) {
    Napi::Error::New(env, "distress: the sender is stopped").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  DistressState& s = *state_;
  Napi::Object o = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  std::lock_guard<std::mutex> lock(s.armMutex);
  ArmParams a;
  a.key = armKey_;
  a.clusterTag = armTag_;
  a.selfId = armSelf_;
  a.incarnation = armIncarnation_;
  a.dests = armDests_;
  if (!o.Get("key").IsUndefined() && !GetKey(env, o.Get("key"), &a.key)) return env.Undefined();
  if (!o.Get("incarnation").IsUndefined() && !GetU64(env, o.Get("incarnation"), "incarnation", &a.incarnation)) {
    return env.Undefined();
  }
  if (!o.Get("peers").IsUndefined() && !GetPeers(env, o.Get("peers"), s, a.selfId, &a.dests)) return env.Undefined();
  if (a.incarnation < armIncarnation_) {
    Napi::RangeError::New(env, "distress: re-arming with an older incarnation").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  DistressSet* old = s.current.load();
  a.firstSequence = a.incarnation == old->incarnation ? old->firstSequence + old->span : 1;
  std::string error;
  DistressSet* set = BuildSet(s, a, s.generation + 1, &error);
  if (set == nullptr) {
    Napi::Error::New(env, "distress: " + error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!set->locked && s.lockMemory) {
    s.memoryLocked = false;
    if (!s.memoryLockError) s.memoryLockError = set->lockError;
  }
  s.generation++;
  s.current.store(set);  // the one publication: a sender loads either the old set or this one, whole
  if (WaitForReaders(s)) FreeSet(old); else s.leaked.push_back(old);
  armKey_ = a.key;
  armIncarnation_ = a.incarnation;
  armDests_ = a.dests;
  return Num(env, s.generation);
}

// installFatalHandlers(code): SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE send `code` synchronously from the
// handler, then die as they would have. One sender per process holds them; a second install moves them.
Napi::Value DistressSender::InstallFatalHandlers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int k = ArmedReasonArgument(info);
  if (k < 0) return env.Undefined();
  // Optional second argument { path, content }: the record the handler writes after sending. Checked before
  // anything changes; the buffers are rewritten only while the handlers ignore them (g_stayOutSet false).
  bool stayOut = info.Length() > 1 && info[1].IsObject();
  std::string path, content;
  if (stayOut) {
    Napi::Object o = info[1].As<Napi::Object>();
    path = o.Get("path").IsString() ? o.Get("path").As<Napi::String>().Utf8Value() : "";
    content = o.Get("content").IsString() ? o.Get("content").As<Napi::String>().Utf8Value() : "";
    if (path.empty() || path.size() >= sizeof g_stayOutPath || content.size() > sizeof g_stayOutContent) {
      Napi::RangeError::New(env, "distress: stay-out path (1..4095 bytes) and content (at most 1024 bytes) expected").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  g_stayOutSet.store(false);
  if (stayOut) {
    memcpy(g_stayOutPath, path.c_str(), path.size() + 1);
    memcpy(g_stayOutContent, content.data(), content.size());
    g_stayOutLength = content.size();
    g_stayOutSet.store(true);
  }
  int err = EnsureAltStack(state_->lockMemory);
  if (err != 0) {
    SystemError(env, err, "sigaltstack", "distress: alternate signal stack").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  g_wasmTrap = &v8::TryHandleWebAssemblyTrapPosix;  // resolved now (weak: null without it), never lazily in the handler
  auto* owner = new std::shared_ptr<DistressState>(state_);
  std::shared_ptr<DistressState>* previousOwner = g_fatalOwner;
  g_fatalReason.store(k);
  g_fatalState.store(state_.get());
  g_fatalOwner = owner;
  ReleaseFatalOwner(previousOwner);
  if (!g_installed) {
    memset(&g_ours, 0, sizeof g_ours);
    g_ours.sa_sigaction = FatalHandler;
    sigemptyset(&g_ours.sa_mask);
    g_ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    for (size_t i = 0; i < kFatalCount; i++) {
      if (sigaction(kFatalSignals[i], &g_ours, &g_previous[i]) != 0) {
        int e = errno;
        for (size_t j = 0; j < i; j++) sigaction(kFatalSignals[j], &g_previous[j], nullptr);
        g_fatalState.store(nullptr);
        g_fatalReason.store(-1);
        delete g_fatalOwner;
        g_fatalOwner = nullptr;
        SystemError(env, e, "sigaction", "distress: fatal signal handlers").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    g_installed = true;
  }
  return env.Undefined();
}

Napi::Value DistressSender::UninstallFatalHandlers(const Napi::CallbackInfo& info) {
  if (state_) UninstallFatal(state_.get());
  return info.Env().Undefined();
}

Napi::Value DistressSender::Snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  if (!state_) return out;
  DistressState& s = *state_;
  int64_t nowMono = MonoNs();
  bool stopped = s.stopped.load();
  out.Set("running", Napi::Boolean::New(env, s.threadStarted && !stopped));
  out.Set("armed", Napi::Boolean::New(env, !stopped && s.current.load() != nullptr));
  {
    std::lock_guard<std::mutex> lock(s.armMutex);
    const DistressSet* set = s.current.load();
    out.Set("generation", Num(env, s.generation));
    out.Set("incarnation", U64(env, set ? set->incarnation : 0));
    out.Set("firstSequence", U64(env, set ? set->firstSequence : 0));
    out.Set("armedAtMs", Num(env, set ? double(set->armedAtMs) : 0));
    out.Set("destinations", Num(env, set ? double(set->destCount) : 0));
    out.Set("leakedSets", Num(env, double(s.leaked.size())));
  }
  out.Set("networks", Num(env, double(s.networkCount)));
  out.Set("slots", Num(env, s.slots));
  out.Set("repeats", Num(env, s.repeats));
  out.Set("repeatGapUs", Num(env, double(s.repeatGapNs / 1000)));
  out.Set("priority", Num(env, s.askedPriority));
  out.Set("realtime", Napi::Boolean::New(env, s.realtime));
  out.Set("schedError", Num(env, s.schedError));
  out.Set("nice", Num(env, s.nice));
  out.Set("niceError", Num(env, s.niceError));
  out.Set("memoryLocked", Napi::Boolean::New(env, s.memoryLocked));
  out.Set("memoryLockError", Num(env, s.memoryLockError));
  out.Set("codeLocked", Napi::Boolean::New(env, s.codeLocked));
  out.Set("codeLockError", Num(env, s.codeLockError));
  bool fatal = g_installed && g_fatalState.load() == &s;
  out.Set("fatalHandlers", Napi::Boolean::New(env, fatal));
  int fk = g_fatalReason.load();
  out.Set("fatalReason", fatal && fk >= 0 ? Num(env, s.reasonCodes[fk]) : env.Null());
  out.Set("asyncEvents", Num(env, double(s.asyncEvents.load())));
  out.Set("syncEvents", Num(env, double(s.syncEvents.load())));
  out.Set("wakeups", Num(env, double(s.wakeups.load())));
  out.Set("sendErrors", Num(env, double(s.sendErrors.load())));
  int lastErrno = s.lastErrno.load();
  out.Set("lastErrno", Num(env, lastErrno));
  out.Set("lastError", lastErrno ? Napi::String::New(env, ErrnoName(lastErrno)) : env.Null());
  Napi::Array reasons = Napi::Array::New(env, s.reasonCount);
  for (size_t k = 0; k < s.reasonCount; k++) {
    const DistressReasonStats& st = s.reasons[k];
    Napi::Object r = Napi::Object::New(env);
    r.Set("code", Num(env, s.reasonCodes[k]));
    r.Set("triggers", Num(env, double(st.triggers.load())));
    r.Set("events", Num(env, double(st.events.load())));
    r.Set("datagrams", Num(env, double(st.datagrams.load())));
    r.Set("errors", Num(env, double(st.errors.load())));
    int64_t lastMono = st.lastSentMonoNs.load();
    r.Set("lastSentAtMs", Num(env, double(st.lastSentRealMs.load())));
    r.Set("lastSentAgoMs", Num(env, lastMono ? double(nowMono - lastMono) / 1e6 : -1));
    reasons.Set(uint32_t(k), r);
  }
  out.Set("reasons", reasons);
  Napi::Array nets = Napi::Array::New(env, s.networkCount);
  for (size_t i = 0; i < s.networkCount; i++) {
    Napi::Object n = Napi::Object::New(env);
    n.Set("datagrams", Num(env, double(s.networks[i].datagrams.load())));
    n.Set("errors", Num(env, double(s.networks[i].errors.load())));
    int e = s.networks[i].lastErrno.load();
    n.Set("lastError", e ? Napi::String::New(env, ErrnoName(e)) : env.Null());
    nets.Set(uint32_t(i), n);
  }
  out.Set("perNetwork", nets);
  return out;
}

// ---- tests and the bench ----

namespace {

void* TestTriggerMain(void* arg) {
  auto* t = static_cast<DistressSender::TestTrigger*>(arg);
  DistressState& s = *t->state;
  pthread_setname_np(pthread_self(), "vigil-dtest");
  if (t->priority > 0) {
    sched_param param{};
    param.sched_priority = t->priority;
    pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);  // best effort: the test thread's own wake-up is not measured
  }
  int64_t start = MonoNs() + t->delayNs;
  for (uint32_t i = 0; i < t->count && !t->cancel.load(); i++) {
    int64_t at = start + int64_t(i) * t->intervalNs;
    timespec ts{time_t(at / 1000000000), long(at % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    // The trigger time, taken just before the write (async) or the first sendto (sync).
    t->real[i] = RealNs();
    t->mono[i] = MonoNs();
    if (t->sync) DistressSendSync(s, t->reason); else DistressTriggerAsync(s, t->reason);
    t->done.store(i + 1);
  }
  t->finished.store(true);
  return nullptr;
}

}  // namespace

// triggerFromThread({ reason, mode?, delayUs?, count?, intervalUs?, priority? }): a native thread (not the event
// loop; SCHED_FIFO at `priority` when granted) fires `count` triggers, the first after delayUs, then every
// intervalUs, recording when.
Napi::Value DistressSender::TriggerFromThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || state_->stopped.load()) {
    Napi::Error::New(env, "distress: the sender is stopped").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (test_ && !test_->finished.load()) {
    Napi::Error::New(env, "distress: a test trigger thread is still running").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  JoinTestThread();
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t code = 0, delayUs = 0, count = 1, intervalUs = 0, priority = 0;
  if (!GetU32(o, "reason", 1, 65535, &code)) return env.Undefined();
  if (!GetU32(o, "priority", 0, 99, &priority, true)) return env.Undefined();
  if (!GetU32(o, "delayUs", 0, 60000000, &delayUs, true)) return env.Undefined();
  if (!GetU32(o, "count", 1, 1000000, &count, true)) return env.Undefined();
  if (!GetU32(o, "intervalUs", 0, 60000000, &intervalUs, true)) return env.Undefined();
  int k = DistressReasonIndex(*state_, code);
  if (k < 0) {
    Napi::RangeError::New(env, "distress: reason code not armed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto t = std::make_shared<TestTrigger>();
  t->state = state_;
  t->reason = size_t(k);
  t->sync = o.Get("mode").IsString() && o.Get("mode").As<Napi::String>().Utf8Value() == "sync";
  t->delayNs = int64_t(delayUs) * 1000;
  t->intervalNs = int64_t(intervalUs) * 1000;
  t->count = count;
  t->priority = int(priority);
  t->mono.assign(count, 0);
  t->real.assign(count, 0);
  int rc = pthread_create(&t->thread, nullptr, TestTriggerMain, t.get());
  if (rc != 0) {
    SystemError(env, rc, "pthread_create", "distress: test trigger thread").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  test_ = t;
  return env.Undefined();
}

// { finished, monoNs: BigInt64Array, realNs: BigInt64Array } of the triggers fired so far.
Napi::Value DistressSender::ThreadTriggerTimes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  std::vector<int64_t> none;
  size_t n = test_ ? test_->done.load() : 0;
  out.Set("finished", Napi::Boolean::New(env, !test_ || test_->finished.load()));
  out.Set("monoNs", BigArray(env, test_ ? test_->mono : none, n));
  out.Set("realNs", BigArray(env, test_ ? test_->real : none, n));
  return out;
}

// crashForTest('segv' | 'bus' | 'abort' | 'ill' | 'fpe'): dies of that signal (a real fault for segv and ill).
Napi::Value DistressSender::CrashForTest(const Napi::CallbackInfo& info) {
  std::string kind = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "segv";
  if (kind == "abort") abort();
  if (kind == "ill") __builtin_trap();
  if (kind == "bus") raise(SIGBUS);
  if (kind == "fpe") raise(SIGFPE);
  void* page = mmap(nullptr, PageSize(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *static_cast<volatile int*>(page) = 1;
  return info.Env().Undefined();
}

}  // namespace vigil

#include "fatal_signals.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "alt_stack.h"
#include "wire.h"

// V8's hook for embedders' SIGSEGV/SIGBUS handlers: true when the fault was a WebAssembly bounds check it
// turned into a trap (not a crash). Node exports it; weak, so a build without it loads and simply never
// asks. Declared here because Node's headers do not ship v8-wasm-trap-handler-posix.h.
namespace v8 {
__attribute__((weak)) bool TryHandleWebAssemblyTrapPosix(int sig_code, siginfo_t* info, void* context);
}

namespace vigil {
namespace {

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
// The one distress a fatal signal sends (FatalHandler): idle, being sent by one thread, sent.
constexpr int kFatalIdle = 0, kFatalSending = 1, kFatalSent = 2;
std::atomic<int> g_fatalOnce{kFatalIdle};

// The agent's stay-out record (src/daemon/stay-out.ts), written by the handler after the send: the JS that
// would write it never runs again, and a node that sent distress must not rejoin when it is restarted.
// Path and bytes are fixed at install time; open/write/fsync/close are async-signal-safe.
char g_stayOutPath[kStayOutPathMax + 1];
char g_stayOutContent[kStayOutContentMax];
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

// An owner the handlers no longer load: freed once no handler that loaded it before the swap can still be
// sending with it (a second at most); leaked if one is stuck inside.
void ReleaseFatalOwner(std::shared_ptr<DistressState>* owner) {
  if (owner == nullptr) return;
  int64_t deadline = wire::MonoNs() + 1000000000;
  while (g_fatalActive.load() != 0 && wire::MonoNs() < deadline) sched_yield();
  if (g_fatalActive.load() == 0) delete owner;
}

}  // namespace

int InstallFatalHandlers(const std::shared_ptr<DistressState>& state, int reason, const StayOutRecord* stayOut, const char** call) {
  // The record's buffers are rewritten only while the handlers ignore them (g_stayOutSet false).
  g_stayOutSet.store(false);
  if (stayOut != nullptr) {
    memcpy(g_stayOutPath, stayOut->path.c_str(), stayOut->path.size() + 1);
    memcpy(g_stayOutContent, stayOut->content.data(), stayOut->content.size());
    g_stayOutLength = stayOut->content.size();
    g_stayOutSet.store(true);
  }
  int err = EnsureAltStack(state->lockMemory);
  if (err != 0) {
    *call = "sigaltstack";
    return err;
  }
  g_wasmTrap = &v8::TryHandleWebAssemblyTrapPosix;  // resolved now (weak: null without it), never lazily in the handler
  auto* owner = new std::shared_ptr<DistressState>(state);
  std::shared_ptr<DistressState>* previousOwner = g_fatalOwner;
  g_fatalReason.store(reason);
  g_fatalState.store(state.get());
  g_fatalOwner = owner;
  ReleaseFatalOwner(previousOwner);
  if (g_installed) return 0;
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
      *call = "sigaction";
      return e;
    }
  }
  g_installed = true;
  return 0;
}

void UninstallFatalHandlers(const DistressState* owner) {
  if (!g_installed || (owner != nullptr && g_fatalState.load() != owner)) return;
  for (size_t i = 0; i < kFatalCount; i++) sigaction(kFatalSignals[i], &g_previous[i], nullptr);
  g_fatalState.store(nullptr);
  g_fatalReason.store(-1);
  g_stayOutSet.store(false);
  ReleaseFatalOwner(g_fatalOwner);
  g_fatalOwner = nullptr;
  g_installed = false;
}

int FatalHandlersReason(const DistressState* owner) {
  return g_installed && g_fatalState.load() == owner ? g_fatalReason.load() : -1;
}

}  // namespace vigil

#include "modem_lines.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "mono_clock.h"
#include "owned_thread.h"
#include "system_error.h"

namespace vigil {
namespace {

constexpr int kInputs = TIOCM_CTS | TIOCM_CD | TIOCM_RI | TIOCM_DSR;
constexpr int64_t kKickNs = 2000000;           // re-kick period while a request waits for the thread
constexpr int64_t kPollFallbackNs = 100000000;  // polling period without TIOCMIWAIT and without rescanMs
constexpr int64_t kRedeliverNs = 10000000;      // after the queue refused an event: look again this soon
// The kernel answers an ioctl a tty driver does not implement with ENOIOCTLCMD turned into ENOTTY; some
// drivers say EINVAL. 515 is ENOIOCTLCMD itself, should it ever leak.
bool Unsupported(int err) { return err == ENOTTY || err == EINVAL || err == 515; }

void OnWakeSignal(int) {}  // only there to interrupt the ioctl (no SA_RESTART)

// The wake signal's handler is process-wide and installed once. Refuses a signal someone else handles.
int InstallWakeSignal(std::string* problem) {
  static std::once_flag once;
  static int installed = 0;
  static std::string failure;
  std::call_once(once, [] {
    int sig = SIGRTMIN + 6;
    struct sigaction old {};
    if (sig > SIGRTMAX || sigaction(sig, nullptr, &old) != 0) {
      failure = "no real-time signal available";
      return;
    }
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
      failure = "signal " + std::to_string(sig) + " (SIGRTMIN+6) already has a handler in this process";
      return;
    }
    struct sigaction sa {};
    sa.sa_handler = OnWakeSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked TIOCMIWAIT must return EINTR
    if (sigaction(sig, &sa, nullptr) != 0) {
      failure = std::string("sigaction: ") + strerror(errno);
      return;
    }
    installed = sig;
  });
  if (installed == 0) *problem = failure;
  return installed;
}

void SetTimer(ModemWatcherState& s, int64_t firstNs, int64_t periodNs) {  // mutex held
  if (!s.haveTimer) return;
  itimerspec t{};
  t.it_value = {time_t(firstNs / 1000000000), long(firstNs % 1000000000)};
  t.it_interval = {time_t(periodNs / 1000000000), long(periodNs % 1000000000)};
  timer_settime(s.timer, 0, &t, nullptr);
}

// Makes the thread look at its requests soon: a signal now, and the timer every 2 ms until it has.
void Kick(ModemWatcherState& s) {  // mutex held
  if (s.exited) return;
  SetTimer(s, kKickNs, kKickNs);
  if (s.threadKnown) pthread_kill(s.thread, s.wakeSignal);
}

// Hands an event to JavaScript without ever blocking; counts it as dropped when the queue is full (the
// caller then looks again soon and sends what it finds, counts included). `mustArrive` (the initial
// snapshot, an error, an answer to setLines) retries for up to a second rather than lose it, so that
// JavaScript always learns that the thread ended or did what it asked. True when queued.
bool Deliver(ModemWatcherState& s, ModemEvent* e, bool mustArrive) {
  for (int attempt = 0;; attempt++) {
    napi_status status;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      if (!s.envAlive) break;
      e->dropped = s.dropped;
      status = s.tsfn.NonBlockingCall(e);
      if (status == napi_ok) return true;
      if (status != napi_queue_full || !mustArrive || attempt >= 1000) {
        s.dropped++;
        break;
      }
    }
    timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
  delete e;
  return false;
}

// Levels and counts now. Returns 0, or the errno of the TIOCMGET that failed (counts are optional).
int Read(int fd, ModemEvent* e) {
  int bits = 0;
  if (ioctl(fd, TIOCMGET, &bits) < 0) return errno;
  e->tiocm = bits;
  e->haveLevels = true;
  e->haveCounts = ioctl(fd, TIOCGICOUNT, &e->counts) == 0;
  return 0;
}

bool CountsDiffer(const serial_icounter_struct& a, const serial_icounter_struct& b) {
  return a.cts != b.cts || a.dsr != b.dsr || a.rng != b.rng || a.dcd != b.dcd;
}

bool Differs(const ModemEvent& a, const ModemEvent& b) {
  if ((a.tiocm & kInputs) != (b.tiocm & kInputs) || a.haveCounts != b.haveCounts) return true;
  return a.haveCounts && CountsDiffer(a.counts, b.counts);
}

void Watch(std::shared_ptr<ModemWatcherState> sp) {
  ModemWatcherState& s = *sp;
  // Process-directed signals go to other threads; the wake signal and synchronous faults stay deliverable
  // here (blocking a fault would only turn it into a kill that skips the process's own fault handlers).
  BlockAsyncSignals({s.wakeSignal});

  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = s.wakeSignal;
  sev._sigev_un._tid = pid_t(syscall(SYS_gettid));
  timer_t timer{};
  bool haveTimer = timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.timer = timer;
    s.haveTimer = haveTimer;
    if (s.stopping || s.setPending) SetTimer(s, kKickNs, kKickNs);  // asked before the timer existed
  }

  uint64_t seq = 0, wakes = 0;
  auto error = [&](int err, const char* call) {
    auto* e = new ModemEvent();
    e->kind = ModemEvent::kError;
    e->seq = ++seq;
    e->atNs = MonoNs();
    e->err = err;
    e->syscall = call;
    e->wakes = wakes;
    Deliver(s, e, true);
  };

  int fd;
  do {
    fd = open(s.path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  ModemEvent last;  // what JavaScript was last given
  ModemEvent seen;  // what the thread last read, given or not
  bool polling = false;
  if (fd < 0) {
    error(errno, "open");
  } else {
    int bits = 0;
    if (ioctl(fd, TIOCMGET, &bits) < 0) {
      error(errno, "ioctl(TIOCMGET)");  // a pty or a file: no modem lines at all
      goto out;
    }
    // The tty layer raised DTR and RTS at the open; put the outputs as configured (the cable's power) at once.
    if (s.initialSet && ioctl(fd, TIOCMBIS, &s.initialSet) < 0) { error(errno, "ioctl(TIOCMBIS)"); goto out; }
    if (s.initialClear && ioctl(fd, TIOCMBIC, &s.initialClear) < 0) { error(errno, "ioctl(TIOCMBIC)"); goto out; }
    {
      auto* e = new ModemEvent();
      e->kind = ModemEvent::kInitial;
      e->seq = ++seq;
      e->atNs = MonoNs();
      if (int err = Read(fd, e)) {
        delete e;
        error(err, "ioctl(TIOCMGET)");
        goto out;
      }
      last = seen = *e;
      Deliver(s, e, true);
    }
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      if (!s.stopping && !s.setPending && s.rescanNs > 0) SetTimer(s, s.rescanNs, s.rescanNs);
    }
    for (;;) {
      bool stopping, set;
      double setId;
      int setMask, clearMask;
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        stopping = s.stopping;
        set = s.setPending;
        setId = s.setId;
        setMask = s.setMask;
        clearMask = s.clearMask;
        s.setPending = false;
        if (!stopping && set) {
          if (s.rescanNs > 0) SetTimer(s, s.rescanNs, s.rescanNs); else SetTimer(s, 0, 0);
        }
      }
      if (stopping) break;
      if (set) {
        auto* e = new ModemEvent();
        e->kind = ModemEvent::kSet;
        e->seq = ++seq;
        e->setId = setId;
        e->wakes = wakes;
        e->polling = polling;
        if (setMask && ioctl(fd, TIOCMBIS, &setMask) < 0) e->err = errno;
        if (!e->err && clearMask && ioctl(fd, TIOCMBIC, &clearMask) < 0) e->err = errno;
        e->atNs = MonoNs();
        int err = Read(fd, e);
        if (err && !e->err) e->err = err;
        if (!err) last = seen = *e;
        Deliver(s, e, true);
        if (err) { error(err, "ioctl(TIOCMGET)"); break; }
        continue;
      }

      int rc, err;
      serial_icounter_struct now{};
      if (!polling && seen.haveCounts && ioctl(fd, TIOCGICOUNT, &now) == 0 && CountsDiffer(now, seen.counts)) {
        // An edge since the thread last read the counters, before it could wait again: TIOCMIWAIT takes its
        // own baseline when called and would sleep through it. Report it now. (The window between this
        // check and the ioctl's baseline remains; the periodic rescan covers it.)
        rc = 0;
        err = 0;
      } else if (!polling) {
        rc = ioctl(fd, TIOCMIWAIT, kInputs);
        err = errno;
        if (rc < 0 && Unsupported(err)) {
          polling = true;  // e.g. a driver without TIOCMIWAIT: levels every rescanMs instead
          continue;
        }
      } else {
        int64_t period = s.rescanNs > 0 ? s.rescanNs : kPollFallbackNs;
        timespec ts{time_t(period / 1000000000), long(period % 1000000000)};
        rc = nanosleep(&ts, nullptr);
        err = errno;
      }
      int64_t woke = MonoNs();
      wakes++;
      if (rc < 0 && err != EINTR) {
        error(err, "ioctl(TIOCMIWAIT)");  // EIO: the port went away (a USB adapter unplugged)
        break;
      }
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        if (s.stopping) break;
      }
      auto* e = new ModemEvent();
      e->kind = (rc == 0 && !polling) ? ModemEvent::kChange : ModemEvent::kRescan;
      e->atNs = woke;
      e->wakes = wakes;
      e->polling = polling;
      if (int readErr = Read(fd, e)) {
        delete e;
        error(readErr, "ioctl(TIOCMGET)");
        break;
      }
      seen = *e;
      if (e->kind == ModemEvent::kChange || Differs(*e, last)) {
        e->seq = ++seq;
        ModemEvent sent = *e;
        if (Deliver(s, e, false)) {
          last = sent;  // what JavaScript has: the next event is compared with it
        } else {
          // JavaScript has not got this one: wake again soon; the look then differs from `last` and is sent.
          std::lock_guard<std::mutex> lock(s.mutex);
          if (!s.stopping && !s.setPending) SetTimer(s, kRedeliverNs, s.rescanNs);
        }
      } else {
        delete e;
      }
    }
  }
out:
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.haveTimer) timer_delete(s.timer);
  s.haveTimer = false;
  s.exited = true;
  if (fd >= 0) close(fd);
  s.ReleaseLocked();
}

const char* KindName(int kind) {
  switch (kind) {
    case ModemEvent::kInitial: return "initial";
    case ModemEvent::kChange: return "change";
    case ModemEvent::kRescan: return "rescan";
    case ModemEvent::kSet: return "set";
    default: return "error";
  }
}

}  // namespace

void ModemWatcherState::WakeThread() { Kick(*this); }

// Runs on the JS thread: callback({ kind, seq, atNs: bigint, levels, tiocm, counts, dropped, wakes, polling,
// setId?, errno?, code?, syscall?, message? }). levels and counts are null on an error.
void DeliverModemEvent(Napi::Env env, Napi::Function callback, ModemWatcherState*, ModemEvent* e) {
  std::unique_ptr<ModemEvent> owned(e);
  if (env == nullptr || !JsCanRun(env)) return;  // the environment is being torn down
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", Napi::String::New(env, KindName(e->kind)));
  o.Set("seq", Napi::Number::New(env, double(e->seq)));
  o.Set("atNs", Napi::BigInt::New(env, e->atNs));
  if (e->haveLevels) {
    Napi::Object levels = Napi::Object::New(env);
    levels.Set("cts", Napi::Boolean::New(env, e->tiocm & TIOCM_CTS));
    levels.Set("dcd", Napi::Boolean::New(env, e->tiocm & TIOCM_CD));
    levels.Set("ri", Napi::Boolean::New(env, e->tiocm & TIOCM_RI));
    levels.Set("dsr", Napi::Boolean::New(env, e->tiocm & TIOCM_DSR));
    levels.Set("dtr", Napi::Boolean::New(env, e->tiocm & TIOCM_DTR));
    levels.Set("rts", Napi::Boolean::New(env, e->tiocm & TIOCM_RTS));
    o.Set("levels", levels);
    o.Set("tiocm", Napi::Number::New(env, e->tiocm));
  } else {
    o.Set("levels", env.Null());
    o.Set("tiocm", env.Null());
  }
  if (e->haveCounts) {
    Napi::Object counts = Napi::Object::New(env);
    counts.Set("cts", Napi::Number::New(env, e->counts.cts));
    counts.Set("dcd", Napi::Number::New(env, e->counts.dcd));
    counts.Set("ri", Napi::Number::New(env, e->counts.rng));
    counts.Set("dsr", Napi::Number::New(env, e->counts.dsr));
    o.Set("counts", counts);
  } else {
    o.Set("counts", env.Null());
  }
  o.Set("dropped", Napi::Number::New(env, double(e->dropped)));
  o.Set("wakes", Napi::Number::New(env, double(e->wakes)));
  o.Set("polling", Napi::Boolean::New(env, e->polling));
  if (e->kind == ModemEvent::kSet) o.Set("setId", Napi::Number::New(env, e->setId));
  if (e->err != 0) {
    o.Set("errno", Napi::Number::New(env, e->err));
    o.Set("code", Napi::String::New(env, ErrnoName(e->err)));
    o.Set("message", Napi::String::New(env, strerror(e->err)));
  }
  if (e->kind == ModemEvent::kError) o.Set("syscall", Napi::String::New(env, e->syscall));
  CallFromThread(env, callback, {o});
}

Napi::Function ModemLineWatcher::Init(Napi::Env env) {
  return DefineClass(env, "ModemLineWatcher",
                     {InstanceMethod<&ModemLineWatcher::SetLines>("setLines"),
                      InstanceMethod<&ModemLineWatcher::Stop>("stop")});
}

// new ModemLineWatcher(path, { onEvent, dtr?, rts?, rescanMs = 500, queueSize = 64 })
// dtr/rts: true raises, false lowers, absent leaves the line as the open left it (raised). The thread opens
// the port itself; an open that fails arrives as an error event, like every later failure.
ModemLineWatcher::ModemLineWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModemLineWatcher>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject() ||
      !info[1].As<Napi::Object>().Get("onEvent").IsFunction()) {
    Napi::TypeError::New(env, "ModemLineWatcher(path: string, { onEvent: function, dtr?, rts?, rescanMs?, queueSize? })")
        .ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[1].As<Napi::Object>();
  std::string problem;
  int sig = InstallWakeSignal(&problem);
  if (sig == 0) {
    Napi::Error::New(env, "ModemLineWatcher: " + problem).ThrowAsJavaScriptException();
    return;
  }
  auto s = std::make_shared<ModemWatcherState>();
  s->path = info[0].As<Napi::String>().Utf8Value();
  s->wakeSignal = sig;
  double rescanMs = o.Get("rescanMs").IsNumber() ? o.Get("rescanMs").As<Napi::Number>().DoubleValue() : 500;
  double queueSize = o.Get("queueSize").IsNumber() ? o.Get("queueSize").As<Napi::Number>().DoubleValue() : 64;
  if (!(rescanMs >= 0 && rescanMs <= 3600000) || !(queueSize >= 1 && queueSize <= 65536)) {
    Napi::RangeError::New(env, "rescanMs is 0 to 3600000, queueSize 1 to 65536").ThrowAsJavaScriptException();
    return;
  }
  s->rescanNs = int64_t(rescanMs * 1e6);
  for (const char* name : {"dtr", "rts"}) {
    Napi::Value v = o.Get(name);
    if (!v.IsBoolean()) continue;
    int bit = name[0] == 'd' ? TIOCM_DTR : TIOCM_RTS;
    (v.As<Napi::Boolean>().Value() ? s->initialSet : s->initialClear) |= bit;
  }
  ModemWatcherState::Connect(s, env, o.Get("onEvent").As<Napi::Function>(), "vigil:modem-lines", size_t(queueSize));
  state_ = s;
  pthread_t thread;
  int rc;
  {
    // Under the lock: the thread reads `thread` (to kick itself) only after taking it.
    std::lock_guard<std::mutex> lock(s->mutex);
    rc = s->Start([s] { Watch(s); }, &thread);
    if (rc == 0) {
      s->thread = thread;
      s->threadKnown = true;
    }
  }
  if (rc != 0) {  // Start released the TSFN
    state_.reset();
    stopped_ = true;
    SystemError(env, rc, "pthread_create", "modem lines: watcher thread").ThrowAsJavaScriptException();
  }
}

ModemLineWatcher::~ModemLineWatcher() { StopThread(); }

void ModemLineWatcher::StopThread() {
  if (!state_ || stopped_) return;
  stopped_ = true;
  state_->RequestStop();
}

// setLines(id, { dtr?: boolean, rts?: boolean }): done by the thread (a USB adapter's TIOCMBIS is a control
// transfer that can take seconds); answered by an event { kind: 'set', setId: id, errno? } with the levels
// after it. A request not yet taken is replaced by a newer one, which then answers for both ids' lines.
Napi::Value ModemLineWatcher::SetLines(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsObject()) {
    Napi::TypeError::New(env, "setLines(id: number, { dtr?: boolean, rts?: boolean })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!state_ || stopped_) {
    Napi::Error::New(env, "the watcher is stopped").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[1].As<Napi::Object>();
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->exited) {
    Napi::Error::New(env, "the watcher's thread has ended").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!state_->setPending) state_->setMask = state_->clearMask = 0;
  for (const char* name : {"dtr", "rts"}) {
    Napi::Value v = o.Get(name);
    if (!v.IsBoolean()) continue;
    int bit = name[0] == 'd' ? TIOCM_DTR : TIOCM_RTS;
    if (v.As<Napi::Boolean>().Value()) {
      state_->setMask |= bit;
      state_->clearMask &= ~bit;
    } else {
      state_->clearMask |= bit;
      state_->setMask &= ~bit;
    }
  }
  state_->setId = info[0].As<Napi::Number>().DoubleValue();
  state_->setPending = true;
  Kick(*state_);
  return env.Undefined();
}

// Ends the thread (within a few ms: the kick repeats until it has) and closes the port; idempotent. A
// stopped watcher no longer keeps the event loop alive; events already queued are still delivered.
Napi::Value ModemLineWatcher::Stop(const Napi::CallbackInfo& info) {
  StopThread();
  if (state_ && state_->keepsLoopAlive) {
    state_->keepsLoopAlive = false;
    // Not once the thread has ended: its TSFN may be finalized already.
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->envAlive && !state_->exited) state_->tsfn.Unref(info.Env());
  }
  return info.Env().Undefined();
}

}  // namespace vigil

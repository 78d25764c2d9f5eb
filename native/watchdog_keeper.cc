#include "watchdog_keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ipmi.h>
#include <linux/watchdog.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ipmi_ioctl.h"
#include "mono_clock.h"
#include "owned_thread.h"
#include "system_error.h"

namespace vigil {
namespace {

void Fail(WatchdogState* s, int err, const char* call) {
  std::lock_guard<std::mutex> lock(s->mutex);
  s->err = err;
  s->failedCall = call;
}

// The keeping: every tickleMs a tickle (returns 0 or an errno) while the agent's lease is fresh, none while
// it has run out; until stop. `readable` (or -1) is a descriptor whose answers `drain` reads as they come.
template <typename Tickle, typename Drain>
void KeepUntilStopped(WatchdogState* s, int readable, Tickle tickle, const char* what, Drain drain) {
  int64_t next = MonoNs();
  while (!s->stopping.load()) {
    int64_t now = MonoNs();
    if (now >= next) {
      next = now + static_cast<int64_t>(s->tickleMs) * 1000000;
      bool fresh = now < s->leaseUntilNs.load();
      int err = fresh ? tickle() : 0;
      std::lock_guard<std::mutex> lock(s->mutex);
      if (!fresh) {
        s->withheld++;
      } else if (err == 0) {
        s->tickles++;
      } else {
        s->tickleErrors++;
        s->err = err;
        s->failedCall = what;
      }
    }
    pollfd fds[2] = {{s->wakeFd, POLLIN, 0}, {readable, POLLIN, 0}};
    int wait = static_cast<int>((next - MonoNs() + 999999) / 1000000);
    if (poll(fds, readable >= 0 ? 2 : 1, wait < 0 ? 0 : wait) > 0 && readable >= 0 && (fds[1].revents & POLLIN)) drain();
  }
}

// ---- the BMC's watchdog (IPMI 2.0 section 27), through /dev/ipmi0 -------------------------------------

constexpr unsigned char kTimerUseSmsOs = 0x04;
constexpr unsigned char kDontStop = 0x40;
constexpr unsigned char kSmsOsExpired = 1 << kTimerUseSmsOs;

// Reads the answers waiting on fd; returns the completion code of the one with `msgid` (-1 if not among them).
int IpmiDrain(int fd, WatchdogState* s, long msgid) {
  int code = -1;
  for (;;) {
    unsigned char dataBuf[IPMI_MAX_MSG_LENGTH];
    ipmi_recv recv;
    if (!IpmiReceive(fd, &recv, dataBuf)) break;
    if (recv.recv_type != IPMI_RESPONSE_RECV_TYPE) continue;
    std::lock_guard<std::mutex> lock(s->mutex);
    s->answers++;
    int c = recv.msg.data_len > 0 ? dataBuf[0] : 0xff;
    if (c != 0) s->refusals++;
    if (recv.msgid == msgid) code = c;
  }
  return code;
}

// Sends one command and waits up to `ms` for its answer: the completion code, or -errno / -ETIMEDOUT.
int IpmiCall(int fd, WatchdogState* s, long msgid, unsigned char cmd, unsigned char* data, unsigned short len, int ms) {
  int err = IpmiSendToBmc(fd, msgid, 0x06, cmd, data, len);
  if (err != 0) return -err;
  int64_t deadline = MonoNs() + static_cast<int64_t>(ms) * 1000000;
  for (;;) {
    int left = static_cast<int>((deadline - MonoNs()) / 1000000);
    if (left <= 0) return -ETIMEDOUT;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left) > 0) {
      int code = IpmiDrain(fd, s, msgid);
      if (code >= 0) return code;
    }
  }
}

// Set Watchdog Timer: SMS/OS, the action, no pre-timeout, the expiration flag cleared, the countdown in 100 ms.
int IpmiSet(int fd, WatchdogState* s, long msgid, bool run, int action, int timeoutMs) {
  int ticks = (timeoutMs + 99) / 100;
  if (ticks > 0xffff) ticks = 0xffff;
  unsigned char data[6] = {static_cast<unsigned char>(kTimerUseSmsOs | (run ? kDontStop : 0)),
                           static_cast<unsigned char>(action & 0x07), 0, kSmsOsExpired,
                           static_cast<unsigned char>(ticks & 0xff), static_cast<unsigned char>(ticks >> 8)};
  return IpmiCall(fd, s, msgid, 0x24, data, sizeof data, 2000);
}

void ServeIpmi(std::shared_ptr<WatchdogState> s) {
  int fd = open(s->path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Fail(s.get(), errno, "open");
  long msgid = 1;
  int code = IpmiSet(fd, s.get(), msgid++, false, s->action, s->timeoutMs);
  if (code == 0) code = IpmiCall(fd, s.get(), msgid++, 0x22, nullptr, 0, 2000);  // Reset: starts it
  if (code != 0) {
    Fail(s.get(), code < 0 ? -code : EPROTO, code < 0 ? "Set Watchdog Timer" : "Set Watchdog Timer (completion code)");
    close(fd);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    s->armed = true;
  }
  // Reset Watchdog Timer, not waited for: its answer is read with the next ones.
  KeepUntilStopped(s.get(), fd, [&] { return IpmiSendToBmc(fd, msgid++, 0x06, 0x22, nullptr, 0); }, "Reset Watchdog Timer",
                   [&] { IpmiDrain(fd, s.get(), 0); });
  if (s->disarmOnStop.load()) {
    int c = IpmiSet(fd, s.get(), msgid++, false, 0, s->timeoutMs);  // without "don't stop": the timer stops
    if (c != 0) Fail(s.get(), c < 0 ? -c : EPROTO, "Set Watchdog Timer (disarm)");
    std::lock_guard<std::mutex> lock(s->mutex);
    if (c == 0) s->armed = false;
  }
  close(fd);
}

// ---- a /dev/watchdog driver -----------------------------------------------------------------------------

void ServeDevice(std::shared_ptr<WatchdogState> s) {
  // Opening arms it (for every driver): from here on, a process that dies without the magic close resets the node.
  int fd = open(s->path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Fail(s.get(), errno, "open");
  watchdog_info info{};
  int timeout = (s->timeoutMs + 999) / 1000;
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    if (ioctl(fd, WDIOC_GETSUPPORT, &info) == 0) s->identity = reinterpret_cast<const char*>(info.identity);
    if (ioctl(fd, WDIOC_SETTIMEOUT, &timeout) < 0) { s->err = errno; s->failedCall = "WDIOC_SETTIMEOUT"; }
    if (ioctl(fd, WDIOC_GETTIMEOUT, &timeout) == 0) s->driverTimeoutS = timeout;
    s->armed = true;
  }
  KeepUntilStopped(s.get(), -1, [&] {
    if (ioctl(fd, WDIOC_KEEPALIVE, 0) == 0) return 0;
    return write(fd, "\0", 1) == 1 ? 0 : errno;  // drivers without the ioctl take a write
  }, "WDIOC_KEEPALIVE", [] {});
  if (s->disarmOnStop.load()) {
    int flags = WDIOS_DISABLECARD;
    ioctl(fd, WDIOC_SETOPTIONS, &flags);
    (void)!write(fd, "V", 1);  // the magic close: without it a driver with nowayout=0 still resets
    std::lock_guard<std::mutex> lock(s->mutex);
    s->armed = false;
  }
  close(fd);
}

void Serve(std::shared_ptr<WatchdogState> s) {
  BlockAsyncSignals();
  if (s->ipmi) ServeIpmi(s); else ServeDevice(s);
  std::lock_guard<std::mutex> lock(s->mutex);
  s->ended = true;
}

}  // namespace

Napi::Function WatchdogKeeper::Init(Napi::Env env) {
  return DefineClass(env, "WatchdogKeeper",
                     {InstanceMethod<&WatchdogKeeper::RenewLease>("renewLease"),
                      InstanceMethod<&WatchdogKeeper::Snapshot>("snapshot"),
                      InstanceMethod<&WatchdogKeeper::Stop>("stop")});
}

// new WatchdogKeeper({ kind: 'ipmi' | 'device', path, timeoutMs, tickleMs, leaseMs, action }): the thread
// opens and arms the watchdog at once; snapshot() says whether that worked.
WatchdogKeeper::WatchdogKeeper(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WatchdogKeeper>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "WatchdogKeeper({ kind, path, timeoutMs, tickleMs, leaseMs, action })").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  auto num = [&](const char* key) { Napi::Value v = o.Get(key); return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : -1; };
  Napi::Value kind = o.Get("kind");
  Napi::Value path = o.Get("path");
  int64_t timeoutMs = num("timeoutMs"), tickleMs = num("tickleMs"), leaseMs = num("leaseMs"), action = num("action");
  if (!kind.IsString() || !path.IsString() || timeoutMs < 1000 || timeoutMs > 6553500 || tickleMs < 10 ||
      tickleMs >= timeoutMs || leaseMs < 1 || action < 0 || action > 3) {
    Napi::RangeError::New(env, "WatchdogKeeper: kind 'ipmi'|'device', path, timeoutMs 1000-6553500, tickleMs 10 to below timeoutMs, leaseMs >= 1, action 0-3")
        .ThrowAsJavaScriptException();
    return;
  }
  state_ = std::make_shared<WatchdogState>();
  state_->ipmi = kind.As<Napi::String>().Utf8Value() == "ipmi";
  state_->path = path.As<Napi::String>().Utf8Value();
  state_->timeoutMs = static_cast<int>(timeoutMs);
  state_->tickleMs = static_cast<int>(tickleMs);
  state_->action = static_cast<int>(action);
  leaseNs_ = leaseMs * 1000000;
  state_->leaseUntilNs.store(MonoNs() + leaseNs_);
  state_->wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state_->wakeFd < 0) {
    stopped_ = true;
    SystemError(env, errno, "eventfd", "WatchdogKeeper").ThrowAsJavaScriptException();
    return;
  }
  std::shared_ptr<WatchdogState> s = state_;
  int rc = StartOwnedThread([s] { Serve(s); });
  if (rc != 0) {
    stopped_ = true;  // the descriptor closes with the state
    SystemError(env, rc, "pthread_create", "WatchdogKeeper: thread").ThrowAsJavaScriptException();
  }
}

// No disarm here: an object collected without stop() belongs to a process on its way out, which must not
// disarm what guards the node.
WatchdogKeeper::~WatchdogKeeper() { StopThread(false); }

void WatchdogKeeper::StopThread(bool disarm) {
  if (!state_ || stopped_) return;
  stopped_ = true;
  state_->disarmOnStop.store(disarm);
  state_->stopping.store(true);
  uint64_t one = 1;
  (void)!write(state_->wakeFd, &one, sizeof one);
}

Napi::Value WatchdogKeeper::RenewLease(const Napi::CallbackInfo& info) {
  if (state_) state_->leaseUntilNs.store(MonoNs() + leaseNs_);
  return info.Env().Undefined();
}

Napi::Value WatchdogKeeper::Snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::lock_guard<std::mutex> lock(state_->mutex);
  o.Set("armed", state_->armed);
  o.Set("ended", state_->ended);
  o.Set("errno", state_->err);
  o.Set("failedCall", state_->failedCall);
  o.Set("identity", state_->identity);
  o.Set("driverTimeoutS", state_->driverTimeoutS);
  o.Set("tickles", static_cast<double>(state_->tickles));
  o.Set("withheld", static_cast<double>(state_->withheld));
  o.Set("tickleErrors", static_cast<double>(state_->tickleErrors));
  o.Set("answers", static_cast<double>(state_->answers));
  o.Set("refusals", static_cast<double>(state_->refusals));
  return o;
}

// stop(disarm): the thread ends; with disarm true (a clean stop of the agent) it disarms the watchdog first.
Napi::Value WatchdogKeeper::Stop(const Napi::CallbackInfo& info) {
  StopThread(info.Length() > 0 && info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

}  // namespace vigil

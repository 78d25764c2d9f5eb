// The node's watchdog, kept by a thread of its own: the BMC's (IPMI Set/Reset Watchdog Timer through
// /dev/ipmi0) or a /dev/watchdog driver's. The thread tickles it every tickleMs, but only while the agent's
// lease is fresh: the agent renews it on every tick of its own (src/daemon/watchdog.ts), so a hung or
// stopped agent (SIGSTOP, a wedged event loop) stops the tickles and the watchdog resets the node. Never
// from the event loop: a tickle must not wait behind JavaScript, nor JavaScript behind a slow BMC.
//
// Disarm (a clean stop): /dev/watchdog gets WDIOS_DISABLECARD and the magic 'V' before its close; the BMC's
// timer is set again without "don't stop" and with action none, which stops it. A thread that ends any
// other way (the process killed) leaves the watchdog armed: that is the point.
#pragma once

#include <napi.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace vigil {

struct WatchdogState {
  ~WatchdogState() {
    if (wakeFd >= 0) close(wakeFd);
  }
  bool ipmi = false;          // the BMC's watchdog through /dev/ipmi0; else a /dev/watchdog driver
  std::string path;
  int timeoutMs = 0;
  int tickleMs = 0;
  int action = 1;             // IPMI timeout action: 0 none, 1 hard reset, 2 power down, 3 power cycle
  int wakeFd = -1;            // eventfd: stop; closed with the state, never by the thread (stop() may come after it ended)
  std::atomic<int64_t> leaseUntilNs{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> disarmOnStop{false};

  std::mutex mutex;           // guards what follows
  bool armed = false;
  bool ended = false;
  int err = 0;                // the last failure's errno (0: none)
  std::string failedCall;     // and what failed
  std::string identity;       // /dev/watchdog: WDIOC_GETSUPPORT's identity ("Software Watchdog" for softdog)
  int driverTimeoutS = 0;     // /dev/watchdog: the timeout the driver took (WDIOC_GETTIMEOUT)
  uint64_t tickles = 0;       // sent
  uint64_t withheld = 0;      // tickle times that passed with the lease run out
  uint64_t tickleErrors = 0;
  uint64_t answers = 0;       // IPMI: responses read back (each tickle's completion)
  uint64_t refusals = 0;      // IPMI: responses with a completion code other than 0
};

class WatchdogKeeper : public Napi::ObjectWrap<WatchdogKeeper> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit WatchdogKeeper(const Napi::CallbackInfo& info);
  ~WatchdogKeeper() override;

 private:
  Napi::Value RenewLease(const Napi::CallbackInfo& info);
  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  void StopThread(bool disarm);

  std::shared_ptr<WatchdogState> state_;
  int64_t leaseNs_ = 0;
  bool stopped_ = false;
};

}  // namespace vigil

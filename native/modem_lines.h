// The modem-line watcher of a contact-closure UPS: a thread of its own blocked in TIOCMIWAIT on a serial
// port, reporting every change of CTS, DCD (CD), RI and DSR to JavaScript.
//
// Why a thread: TIOCMIWAIT blocks until an input line changes, which on a healthy UPS is never; a libuv pool
// thread would be lost to it for good. The kernel counts every edge per line (TIOCGICOUNT, bumped in the
// driver's interrupt or USB status handler), and the thread reads those counts after each wake, so edges
// that came and went between two wakes (a pulse shorter than the thread's wake-up, two edges in one USB
// status packet) still show up, as counts that grew while the level stayed the same.
//
// Waking the thread (stop, a DTR/RTS change): closing the descriptor from another thread does not reliably
// end TIOCMIWAIT, so the thread is interrupted by a signal. A real-time signal (SIGRTMIN+6) gets a no-op
// handler installed without SA_RESTART, so the ioctl returns EINTR and the thread looks at its requests. A
// signal that lands just before the thread enters the ioctl would be lost; so the thread also owns a POSIX
// timer aimed at it alone (SIGEV_THREAD_ID) that keeps firing every 2 ms while a request is pending, and
// otherwise every rescanMs.
//
// TIOCMIWAIT takes its baseline of the counters when it is called, so an edge that falls after the thread
// read the counters and before it waits again would not wake it. Before each wait the thread reads the
// counters again and reports at once if they moved; what can still fall in the few instructions between
// that check and the ioctl, and changes the driver raises no interrupt for (the 8250 interrupts on RI's
// trailing edge only), the periodic rescan catches (measured in the lab: test/lab/modem-lines.test.ts).
//
// Events go to JavaScript through a thread-safe function with a bounded queue and a non-blocking call: a
// stalled event loop never stalls the thread; what could not be queued is counted (`dropped`), and the
// thread looks again 10 ms later and sends what it then finds if JavaScript has not seen it: the counts
// cover the edges of the dropped events, so nothing is lost but intermediate levels.
#pragma once

#include <napi.h>

#include <linux/serial.h>
#include <pthread.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <string>

#include "served_by_thread.h"

namespace vigil {

struct ModemEvent {
  enum Kind : int { kInitial = 0, kChange = 1, kRescan = 2, kSet = 3, kError = 4 };
  int kind = kInitial;
  uint64_t seq = 0;
  int64_t atNs = 0;          // CLOCK_MONOTONIC when the thread woke (or read the lines), like process.hrtime
  int tiocm = 0;             // TIOCMGET bits (levels of CTS, CD, RI, DSR in, DTR, RTS out)
  bool haveLevels = false;
  bool haveCounts = false;   // false where the driver has no TIOCGICOUNT
  serial_icounter_struct counts{};
  uint64_t dropped = 0;      // events the queue refused before this one
  uint64_t wakes = 0;        // returns from the wait so far (changes, rescans, requests)
  bool polling = false;      // the driver has no TIOCMIWAIT: the thread polls every rescanMs
  double setId = 0;          // kSet: the request this answers
  int err = 0;               // kError, or kSet that failed: errno
  const char* syscall = "";  // kError: the call that failed
};

struct ModemWatcherState;
void DeliverModemEvent(Napi::Env env, Napi::Function callback, ModemWatcherState* state, ModemEvent* event);

// Shared by the JS object and the thread (served_by_thread.h: the mutex, the stop request, the TSFN that
// carries the events).
struct ModemWatcherState : ServedByThread<ModemWatcherState, ModemEvent, DeliverModemEvent> {
  std::string path;
  int wakeSignal = 0;
  int64_t rescanNs = 0;      // 0: no periodic rescan (requests still re-kick every 2 ms)
  int initialSet = 0;        // TIOCM_DTR/TIOCM_RTS to raise right after the open ...
  int initialClear = 0;      // ... and to lower

  // Guarded by mutex, from here to `dropped`.
  bool exited = false;       // the thread is past its last use of `thread`, `timer` and the TSFN
  bool threadKnown = false;
  pthread_t thread{};
  bool haveTimer = false;
  timer_t timer{};
  bool setPending = false;
  double setId = 0;
  int setMask = 0, clearMask = 0;
  uint64_t dropped = 0;
  // JS thread only. The TSFN holds the event loop for the thread's whole life, until stop().
  bool keepsLoopAlive = true;
  void WakeThread();  // mutex held: Kick
};

class ModemLineWatcher : public Napi::ObjectWrap<ModemLineWatcher> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ModemLineWatcher(const Napi::CallbackInfo& info);
  ~ModemLineWatcher() override;

 private:
  Napi::Value SetLines(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  void StopThread();

  std::shared_ptr<ModemWatcherState> state_;
  bool stopped_ = false;
};

}  // namespace vigil

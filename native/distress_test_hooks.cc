// The distress sender's methods for tests and the bench: triggers fired from a native thread with their
// times recorded (bench/distress.ts), and a real crash of the calling thread (the fatal-signal tests).
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <string>
#include <vector>

#include "distress.h"
#include "distress_internal.h"
#include "distress_js.h"
#include "owned_thread.h"
#include "system_error.h"
#include "wire.h"

namespace vigil {

using namespace distress_js;
using namespace wire;

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

void DistressSender::JoinTestThread() {
  if (test_) {
    test_->cancel.store(true);  // (only ever reached with the thread finished, or from stop())
    pthread_join(test_->thread, nullptr);
    test_.reset();
  }
}

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

namespace {

volatile bool g_neverTrue = false;  // the way out the compiler needs to see; never taken

// Recurses until the thread's stack is gone (each frame keeps a page-sized buffer the compiler cannot drop).
__attribute__((noinline)) int Overflow(int depth) {
  if (g_neverTrue) return 0;
  volatile char frame[4096];
  frame[depth % sizeof frame] = char(depth);
  return Overflow(depth + 1) + frame[(depth + 1) % sizeof frame];
}

void* OverflowMain(void*) {
  Overflow(0);
  return nullptr;
}

}  // namespace

// crashForTest('segv' | 'bus' | 'abort' | 'ill' | 'fpe'): dies of that signal (a real fault for segv and ill).
// 'overflow': a thread started as the addon starts its own (StartOwnedThread) overflows its stack;
// 'overflow-bare': the same on a plain pthread without an alternate stack, the control: there the handler
// cannot run. The calling thread waits for the process to die.
Napi::Value DistressSender::CrashForTest(const Napi::CallbackInfo& info) {
  std::string kind = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "segv";
  if (kind == "abort") abort();
  if (kind == "ill") __builtin_trap();
  if (kind == "bus") raise(SIGBUS);
  if (kind == "fpe") raise(SIGFPE);
  if (kind == "overflow" || kind == "overflow-bare") {
    pthread_t thread;
    if (kind == "overflow") {
      StartOwnedThread([] { Overflow(0); }, &thread, true);
    } else {
      pthread_create(&thread, nullptr, OverflowMain, nullptr);
    }
    pthread_join(thread, nullptr);  // never returns: the process dies of the overflow
    return info.Env().Undefined();
  }
  void* page = mmap(nullptr, PageSize(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *static_cast<volatile int*>(page) = 1;
  return info.Env().Undefined();
}

}  // namespace vigil

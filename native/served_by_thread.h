// What a device's JavaScript object shares with the owned thread that serves it (sg_device, ipmi_device,
// modem_lines): the thread-safe function (TSFN) that carries the thread's results to JavaScript, the stop
// request, and the rules for the three ways it ends, close() (or the object collected), the thread's own
// end, and the teardown of the environment (process exit, a worker's end):
//   - The state is held by shared_ptr by the object, the thread and the TSFN (its finalizer lets go), so a
//     thread still stuck in a system call after the object and the environment are gone touches only live
//     memory.
//   - Node deletes a TSFN at the teardown even while a thread still holds it (in the lab, one CLI run in two
//     then ended in SIGABRT). A cleanup hook, added after the TSFN so that it runs before Node's own, marks
//     the environment gone and stops the thread; the thread touches the TSFN only under `mutex`, and only
//     while `envAlive`.
//   - The TSFN is released once: by the thread as it ends, or by the constructor when no thread could be
//     started; never after the teardown, which has deleted it. Its finalizer removes the cleanup hook,
//     unless the hook is what ran.
// What differs stays with each device: the thread's body, its queue, what it sends, how it is woken
// (State::WakeThread, called with `mutex` held), and how the TSFN holds the event loop (HoldLoop* below
// for a device that answers requests; the modem watcher's holds it for the thread's whole life).
#pragma once

#include <napi.h>
#include <pthread.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "owned_thread.h"

namespace vigil {

// State derives from ServedByThread<State, Item, CallJs>: Item is what the thread sends (deleted by CallJs,
// or here when it cannot be sent), CallJs runs it on the JS thread.
template <typename State, typename Item, void (*CallJs)(Napi::Env, Napi::Function, State*, Item*)>
class ServedByThread {
 public:
  using Tsfn = Napi::TypedThreadSafeFunction<State, Item, CallJs>;

  std::mutex mutex;       // guards the next two, the thread's use of the TSFN, and what each State says
  bool stopping = false;  // close(), the object collected, or the teardown: the thread ends
  bool envAlive = true;   // false from the teardown on: the TSFN is Node's to delete
  Tsfn tsfn;

  // JS thread, in the constructor, before the thread starts. queueSize 0: unbounded.
  static void Connect(const std::shared_ptr<State>& state, Napi::Env env, Napi::Function callback, const char* name,
                      size_t queueSize) {
    state->tsfn = Tsfn::New(
        env, callback, name, queueSize, 1, state.get(),
        [](Napi::Env env, std::shared_ptr<State>* holder, State* s) {
          // The thread has released the TSFN, or the environment is going: the hook is no longer needed.
          if (s->envAlive) napi_remove_env_cleanup_hook(env, OnEnvTeardown, s);
          delete holder;
        },
        new std::shared_ptr<State>(state));
    // After the TSFN: cleanup hooks run last-registered first, so this one runs before Node deletes it.
    napi_add_env_cleanup_hook(env, OnEnvTeardown, state.get());
  }

  // JS thread: runs `body` on an owned thread (owned_thread.h). When none can be started, releases the
  // TSFN (no thread ever will) and returns the errno, for the constructor to throw.
  int Start(std::function<void()> body, pthread_t* handle = nullptr) {
    int rc = StartOwnedThread(std::move(body), handle);
    if (rc != 0) tsfn.Release();
    return rc;
  }

  // JS thread: close(), or the object collected. The thread ends when it next looks at `stopping`.
  void RequestStop() {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    static_cast<State*>(this)->WakeThread();
  }

  // Device thread: hands `item` to JavaScript, or deletes it when the environment is gone.
  void Post(Item* item) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!envAlive || tsfn.NonBlockingCall(item) != napi_ok) delete item;
  }

  // Device thread, `mutex` held, as its last use of the TSFN.
  void ReleaseLocked() {
    if (envAlive) tsfn.Release();
  }

  // JS thread only, for a device that answers each request it is handed (sg, ipmi): the TSFN holds the
  // event loop open while an answer is outstanding, so an idle device never holds a process open, and a
  // closed one never does, even with a request stuck in the kernel. Safe because such a thread ends only
  // once asked to: its TSFN is never finalized before close().
  void HoldLoopFor(Napi::Env env) {  // a request handed to the thread (the TSFN starts referenced)
    if (outstanding_++ == 0 && holdsLoop_) tsfn.Ref(env);
  }
  void HoldLoopAnswered(Napi::Env env) {  // from CallJs
    if (--outstanding_ == 0 && holdsLoop_) tsfn.Unref(env);
  }
  void HoldLoopNoMore(Napi::Env env) {  // close()
    if (!holdsLoop_) return;
    holdsLoop_ = false;
    if (outstanding_ > 0) tsfn.Unref(env);
  }

 private:
  // Runs on the JS thread when the environment is torn down, before Node deletes the TSFN.
  static void OnEnvTeardown(void* arg) {
    auto* s = static_cast<State*>(arg);
    std::lock_guard<std::mutex> lock(s->mutex);
    s->envAlive = false;
    s->stopping = true;
    s->WakeThread();
  }

  uint32_t outstanding_ = 0;
  bool holdsLoop_ = true;
};

}  // namespace vigil

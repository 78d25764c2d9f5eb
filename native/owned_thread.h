// The addon's own threads (device, heartbeat, modem lines) start here, with the same three guarantees:
//   - created with pthread_create, so a failure reaches JavaScript as an errno. std::thread throws, and with
//     C++ exceptions off that is std::terminate: an abort, which runs the fatal-signal handler, sends
//     distress and writes the stay-out record for a node that merely could not start a thread;
//   - an alternate signal stack of their own (sigaltstack is per thread): a stack overflow in one of them
//     still runs the fatal handler (installed SA_ONSTACK) instead of killing the process silently;
//   - every asynchronous signal blocked (BlockAsyncSignals): a handler run on this thread would interrupt
//     its system calls, and a handler installed SA_RESTART makes the kernel re-issue an interrupted SG_IO.
#pragma once

#include <napi.h>
#include <pthread.h>
#include <signal.h>

#include <functional>
#include <initializer_list>
#include <memory>

#include "alt_stack.h"

namespace vigil {

// Blocks every signal in the calling thread except synchronous faults (blocking one of those only turns
// it into a kill that skips the process's fault handlers) and those in `keep`. Process-directed signals
// then go to a thread that accepts them: the JavaScript thread.
inline void BlockAsyncSignals(std::initializer_list<int> keep = {}) {
  sigset_t mask;
  sigfillset(&mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) sigdelset(&mask, sig);
  for (int sig : keep) sigdelset(&mask, sig);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
}

namespace owned_thread_detail {

inline void* Trampoline(void* arg) {
  std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
  EnsureAltStack(false);  // without one (ENOMEM) the thread runs as it would have before
  (*body)();
  return nullptr;
}

}  // namespace owned_thread_detail

// Runs `body` on a new thread with its own alternate signal stack. Returns 0, or the errno of
// pthread_create (EAGAIN: no more threads). `handle` receives the thread's id; a `joinable` thread is
// joined by the caller, any other is detached.
inline int StartOwnedThread(std::function<void()> body, pthread_t* handle = nullptr, bool joinable = false) {
  auto* heap = new std::function<void()>(std::move(body));
  pthread_t thread;
  int rc = pthread_create(&thread, nullptr, owned_thread_detail::Trampoline, heap);
  if (rc != 0) {
    delete heap;
    return rc;
  }
  if (handle != nullptr) *handle = thread;
  if (!joinable) pthread_detach(thread);
  return 0;
}

// Calls a thread-safe function's JavaScript callback from its call_js. A call that cannot run because the
// environment is being torn down (process.exit with a completion still queued: Node drains the queue while it
// closes its handles, before any cleanup hook) is dropped: node-addon-api's Function::Call would turn the
// failure into a fatal error, SIGABRT, for a process that was exiting anyway. An exception the callback
// threw stays pending, and Node reports it as usual.
inline void CallFromThread(Napi::Env env, Napi::Function callback, std::initializer_list<napi_value> args) {
  napi_value result;
  napi_call_function(env, env.Undefined(), callback, args.size(), args.begin(), &result);
}

// False in that same window. Node then refuses every call that could run JavaScript, creating a Buffer and
// setting a property among them, and node-addon-api turns those refusals into the same fatal error: a
// call_js asks this before it builds its arguments, and drops the call. (napi_coerce_to_bool is one such
// call that allocates nothing.)
inline bool JsCanRun(Napi::Env env) {
  napi_value result;
  return napi_coerce_to_bool(env, env.Undefined(), &result) == napi_ok;
}

}  // namespace vigil

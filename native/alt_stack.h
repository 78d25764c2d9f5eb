// An alternate signal stack for the calling thread (sigaltstack is per thread), so that the fatal-signal
// handler (installed SA_ONSTACK, native/fatal_signals.cc) still runs when this thread overflows its stack.
#pragma once

namespace vigil {

// Gives the calling thread an alternate signal stack unless it has one; `lock`: mlock it (a handler must
// not wait for the disk). 0, or the errno of mmap or sigaltstack. The stack is kept for the thread's life
// (a handler may run on it at any time) and released when the thread exits.
int EnsureAltStack(bool lock);

}  // namespace vigil

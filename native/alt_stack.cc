#include "alt_stack.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

namespace vigil {
namespace {

constexpr size_t kAltStackLength = 64 * 1024;

// The stack this module gave the thread, disabled and unmapped when the thread exits (a thread-local's
// destructor runs after the thread's function has returned: no handler can be on it any more).
struct ThreadAltStack {
  void* memory = nullptr;
  ~ThreadAltStack() {
    if (memory == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    munmap(memory, kAltStackLength);
  }
};

thread_local ThreadAltStack t_stack;

}  // namespace

int EnsureAltStack(bool lock) {
  if (t_stack.memory != nullptr) return 0;
  stack_t old{};
  if (sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return 0;  // someone else's: kept
  void* p = mmap(nullptr, kAltStackLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return errno;
  if (lock) mlock(p, kAltStackLength);  // best effort: an unlocked stack still catches the overflow
  stack_t ss{};
  ss.ss_sp = p;
  ss.ss_size = kAltStackLength;
  if (sigaltstack(&ss, nullptr) != 0) {
    int err = errno;
    munmap(p, kAltStackLength);
    return err;
  }
  t_stack.memory = p;
  return 0;
}

}  // namespace vigil

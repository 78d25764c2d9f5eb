// The monotonic clock in nanoseconds, as every owned thread measures its deadlines and ages.
#pragma once

#include <time.h>

#include <cstdint>

namespace vigil {

inline int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace vigil

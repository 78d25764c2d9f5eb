// The fatal-signal handlers of the distress sender: SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE send the
// armed reason synchronously from the dying thread, write the agent's stay-out record, then die as they
// would have. One sender per process holds them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "distress_state.h"

namespace vigil {

constexpr size_t kStayOutPathMax = 4095;
constexpr size_t kStayOutContentMax = 1024;

// What the handler writes after sending (src/daemon/stay-out.ts): fixed at install time.
struct StayOutRecord {
  std::string path;     // 1..kStayOutPathMax bytes
  std::string content;  // at most kStayOutContentMax bytes
};

// Installs the handlers for `state`, sending reason index `reason` (moves them when another sender holds
// them); with `stayOut`, the record is written after the send. 0, or an errno with *call naming the failed
// call (nothing changed then, except that a stay-out record given is already the one a handler writes).
int InstallFatalHandlers(const std::shared_ptr<DistressState>& state, int reason, const StayOutRecord* stayOut, const char** call);

// Puts back whatever handled those signals before, if `owner` holds the handlers.
void UninstallFatalHandlers(const DistressState* owner);

// The reason index the handlers send for `owner`; -1 when it does not hold them.
int FatalHandlersReason(const DistressState* owner);

}  // namespace vigil

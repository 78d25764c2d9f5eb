// One SCSI pass-through path (/dev/sgN or /dev/sdX) served by a thread of its own.
//
// Why a thread per path rather than the libuv pool: an SG_IO ioctl can block for as long as the target
// takes, and on some fabrics forever (PREEMPT AND ABORT through tcm_loop wedges the logical unit on
// Linux 6.1). Four such ioctls would exhaust the shared pool and stall every fs and dns call of the
// process. With one owned thread per path, a wedged unit wedges only its own thread; the JS side notices
// the missed deadline and refuses further work on that path until the ioctl comes back.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "served_by_thread.h"

namespace vigil {

enum class Direction : int { None = 0, FromDevice = 1, ToDevice = 2 };

// One unit of work for the device thread: opening the path (id 0), one SCSI command, or one reset
// (id > 0). Owned by the queue, then by the thread, then by the completion callback on the JS thread,
// which deletes it.
struct Command {
  double id = 0;
  // For a reset: the SG_SCSI_RESET value (a LOGICAL UNIT or TARGET reset, never escalated); 0 for a
  // SCSI command. A reset goes through the same queue as the commands so that it runs on the path's
  // own thread, after the commands submitted before it, and never on the JS thread: the ioctl waits
  // for the task management function, which a sick target can take long to answer.
  int resetValue = 0;
  std::vector<uint8_t> cdb;
  Direction direction = Direction::None;
  std::vector<uint8_t> data;  // data-out bytes, or the data-in buffer (sized on the device thread)
  uint32_t dataInLength = 0;
  uint32_t timeoutMs = 0;

  // Filled by the device thread.
  int err = 0;          // errno of the failed system call, 0 when the command reached the device
  int failedCall = 0;   // for id 0: 1 open(2), 2 the SG_GET_VERSION_NUM probe
  int sgVersion = 0;    // for id 0: the sg driver version the path answered with
  uint8_t status = 0;
  uint16_t hostStatus = 0;
  uint16_t driverStatus = 0;
  int32_t resid = 0;
  uint8_t senseLength = 0;
  uint8_t sense[252];
  // Monotonic nanosecond stamps: queued on the JS thread, started and ended on the device thread.
  int64_t queuedNs = 0;
  int64_t startNs = 0;
  int64_t endNs = 0;
};

struct DeviceState;
void DeliverCompletion(Napi::Env env, Napi::Function dispatch, DeviceState* state, Command* cmd);

// State shared between the JS object and its thread (served_by_thread.h: the mutex, the stop request, the
// TSFN that carries the completions).
struct DeviceState : ServedByThread<DeviceState, Command, DeliverCompletion> {
  std::string path;
  std::condition_variable wake;
  std::deque<Command*> queue;  // guarded by mutex
  double cancelUpTo = 0;       // guarded by mutex: commands with an id up to this are answered unsent
  void WakeThread() { wake.notify_one(); }
};

class SgDevice : public Napi::ObjectWrap<SgDevice> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SgDevice(const Napi::CallbackInfo& info);
  ~SgDevice() override;

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Reset(const Napi::CallbackInfo& info);
  void Enqueue(Napi::Env env, std::unique_ptr<Command> c);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value CancelQueued(const Napi::CallbackInfo& info);
  void Stop();

  std::shared_ptr<DeviceState> state_;
  bool closed_ = false;
  double lastId_ = 0;  // the highest id submitted
};

}  // namespace vigil

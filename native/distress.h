// The armed distress sender's JavaScript object (docs/distress.md); its state and the native triggers are in
// distress_state.h, its parts listed in distress_internal.h.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "distress_state.h"

namespace vigil {

class DistressSender : public Napi::ObjectWrap<DistressSender> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit DistressSender(const Napi::CallbackInfo& info);
  ~DistressSender() override;

  std::shared_ptr<DistressState> State() const { return state_; }

  struct TestTrigger;  // triggerFromThread's thread and what it recorded

 private:
  int ArmedReasonArgument(const Napi::CallbackInfo& info);
  Napi::Value Trigger(const Napi::CallbackInfo& info);
  Napi::Value Rearm(const Napi::CallbackInfo& info);
  Napi::Value InstallFatalHandlers(const Napi::CallbackInfo& info);
  Napi::Value UninstallFatalHandlers(const Napi::CallbackInfo& info);
  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  // Tests and the bench only.
  Napi::Value TriggerFromThread(const Napi::CallbackInfo& info);
  Napi::Value ThreadTriggerTimes(const Napi::CallbackInfo& info);
  Napi::Value CrashForTest(const Napi::CallbackInfo& info);

  void StopAll();
  void JoinTestThread();

  std::shared_ptr<DistressState> state_;
  std::shared_ptr<TestTrigger> test_;
  // What the current set was armed with, for a re-arm that changes only some of it (under armMutex).
  std::vector<uint8_t> armKey_;
  uint32_t armTag_ = 0;
  uint16_t armSelf_ = 0;
  uint64_t armIncarnation_ = 0;
  std::vector<DistressDest> armDests_;
};

}  // namespace vigil

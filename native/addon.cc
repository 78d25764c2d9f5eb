// vigil's one native boundary: only what JavaScript cannot do (ioctls, owned threads, socket options).
#include <napi.h>

#include "distress.h"
#include "heartbeat.h"
#include "ipmi_device.h"
#include "modem_lines.h"
#include "peer_cred.h"
#include "reexec.h"
#include "sd_notify.h"
#include "sg_device.h"
#include "watchdog_keeper.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SgDevice", vigil::SgDevice::Init(env));
  exports.Set("HeartbeatEngine", vigil::HeartbeatEngine::Init(env));
  exports.Set("DistressSender", vigil::DistressSender::Init(env));
  exports.Set("ModemLineWatcher", vigil::ModemLineWatcher::Init(env));
  exports.Set("IpmiDevice", vigil::IpmiDevice::Init(env));
  exports.Set("WatchdogKeeper", vigil::WatchdogKeeper::Init(env));
  exports.Set("getPeerCred", Napi::Function::New(env, vigil::GetPeerCred, "getPeerCred"));
  exports.Set("reexec", Napi::Function::New(env, vigil::Reexec, "reexec"));
  exports.Set("sdNotify", Napi::Function::New(env, vigil::SdNotify, "sdNotify"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vigil_native, Init)

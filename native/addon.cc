// vigil's one native boundary: only what JavaScript cannot do (ioctls, owned threads).
#include <napi.h>

#include "sg_device.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SgDevice", vigil::SgDevice::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vigil_native, Init)

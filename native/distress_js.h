// Reading the distress sender's JavaScript arguments, and building its results (distress.cc and
// distress_test_hooks.cc). A failed check leaves a JavaScript exception pending and returns false.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vigil {
namespace distress_js {

inline bool GetU32(Napi::Object o, const char* name, uint32_t min, uint32_t max, uint32_t* out, bool optional = false) {
  Napi::Value v = o.Get(name);
  if (optional && v.IsUndefined()) return true;
  if (!v.IsNumber()) {
    Napi::TypeError::New(o.Env(), std::string("distress: ") + name + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != double(uint64_t(d))) {
    Napi::RangeError::New(o.Env(), std::string("distress: ") + name + " must be an integer " + std::to_string(min) + ".." +
                                        std::to_string(max))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = uint32_t(d);
  return true;
}

inline Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }
inline Napi::Value U64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

inline Napi::Value BigArray(Napi::Env env, const std::vector<int64_t>& v, size_t n) {
  Napi::BigInt64Array a = Napi::BigInt64Array::New(env, n);
  for (size_t i = 0; i < n; i++) a[i] = v[i];
  return a;
}

}  // namespace distress_js
}  // namespace vigil

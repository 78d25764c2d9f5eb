// The one shape of a failed system call crossing the native boundary: an Error whose errno (positive, as
// the device paths report it), code (the errno's name, 'ENOTSOCK') and syscall let JavaScript classify it.
#pragma once

#include <napi.h>

#include <errno.h>
#include <string.h>

#include <string>

namespace vigil {

// glibc has had strerrorname_np since 2.32 (Debian 12 ships 2.36). Elsewhere "errno N".
inline std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#endif
  return "errno " + std::to_string(err);
}

inline Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

}  // namespace vigil

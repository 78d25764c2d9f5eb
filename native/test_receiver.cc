// The tests' and the bench's UDP receiver, in an addon of its own (build/Release/vigil_test_native.node)
// that vigild never loads: receiveForTest switches the calling thread to SCHED_FIFO and closeTestReceiver
// closes any descriptor it is given, neither of which belongs within reach of the agent's control socket.
// It receives with kernel timestamps (SO_TIMESTAMPNS), on the calling thread, so the distress tests and
// `npm run bench` see when a datagram reached the host, not when JavaScript got around to it.
#include <napi.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mono_clock.h"
#include "system_error.h"
#include "udp_address.h"

namespace vigil {
namespace {

Napi::Value BigArray(Napi::Env env, const std::vector<int64_t>& v) {
  auto a = Napi::BigInt64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a[i] = v[i];
  return a;
}

// openTestReceiver(host, port) → fd: a UDP socket with kernel receive timestamps (SO_TIMESTAMPNS).
Napi::Value OpenTestReceiver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  uint16_t port = info[1].IsNumber() ? uint16_t(info[1].As<Napi::Number>().Uint32Value()) : 0;
  sockaddr_storage addr{};
  socklen_t length = 0;
  if (!ResolveNumeric(host, port, &addr, &length)) {
    SystemError(env, EINVAL, "getaddrinfo", "test receiver: bad address " + host).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    SystemError(env, errno, "socket", "test receiver").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int one = 1, size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), length) < 0) {
    int e = errno;
    close(fd);
    SystemError(env, e, "bind", "test receiver: bind " + host).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// receiveForTest(fd, max, timeoutMs, priority?) → { datagrams: Buffer[], kernelRealNs, userMonoNs }: blocks this
// thread (at SCHED_FIFO `priority` meanwhile, when granted) until `max` datagrams arrived or the time is up
// (0: only what is queued now).
Napi::Value ReceiveForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t max = info[1].As<Napi::Number>().Uint32Value();
  int64_t deadline = MonoNs() + int64_t(info[2].As<Napi::Number>().DoubleValue() * 1e6);
  int priority = info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
  int oldPolicy = SCHED_OTHER;
  sched_param oldParam{};
  bool raised = false;
  if (priority > 0 && pthread_getschedparam(pthread_self(), &oldPolicy, &oldParam) == 0) {
    sched_param param{};
    param.sched_priority = priority;
    raised = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) == 0;
  }
  std::vector<std::vector<uint8_t>> datagrams;
  std::vector<int64_t> kernel, user;
  uint8_t buffer[2048];
  alignas(cmsghdr) uint8_t control[256];
  while (datagrams.size() < max) {
    int64_t left = deadline - MonoNs();
    pollfd p{fd, POLLIN, 0};
    timespec ts{time_t(left > 0 ? left / 1000000000 : 0), long(left > 0 ? left % 1000000000 : 0)};
    int rc = ppoll(&p, 1, &ts, nullptr);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    for (;;) {
      iovec iov{buffer, sizeof buffer};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
      if (n < 0) break;
      int64_t at = MonoNs();
      int64_t stamp = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec t;
          memcpy(&t, CMSG_DATA(c), sizeof t);
          stamp = int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
        }
      }
      datagrams.emplace_back(buffer, buffer + n);
      kernel.push_back(stamp);
      user.push_back(at);
      if (datagrams.size() >= max) break;
    }
  }
  if (raised) pthread_setschedparam(pthread_self(), oldPolicy, &oldParam);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array list = Napi::Array::New(env, datagrams.size());
  for (size_t i = 0; i < datagrams.size(); i++) {
    list.Set(uint32_t(i), Napi::Buffer<uint8_t>::Copy(env, datagrams[i].data(), datagrams[i].size()));
  }
  out.Set("datagrams", list);
  out.Set("kernelRealNs", BigArray(env, kernel));
  out.Set("userMonoNs", BigArray(env, user));
  return out;
}

Napi::Value CloseTestReceiver(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

}  // namespace
}  // namespace vigil

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openTestReceiver", Napi::Function::New(env, vigil::OpenTestReceiver, "openTestReceiver"));
  exports.Set("receiveForTest", Napi::Function::New(env, vigil::ReceiveForTest, "receiveForTest"));
  exports.Set("closeTestReceiver", Napi::Function::New(env, vigil::CloseTestReceiver, "closeTestReceiver"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vigil_test_native, Init)

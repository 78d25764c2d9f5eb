// The local BMC through the kernel's IPMI driver (/dev/ipmi0: ipmi_si + ipmi_devintf), served by a thread
// of its own.
//
// Why a thread: a request is sent with IPMICTL_SEND_COMMAND and its response arrives later on the same
// descriptor (poll, then IPMICTL_RECEIVE_MSG_TRUNC). A hung BMC answers only when the kernel gives up on it
// (0xC3 after about 4 s); the watchdog's tickle must not wait behind the event loop, nor the event loop
// behind a BMC. The thread keeps every request in flight at once, matches each response to its request by
// msgid (ipmitool's open interface does not: a late answer to an earlier request is taken as the answer to
// the next), drops strays, and answers a request whose deadline passed with ETIMEDOUT; the kernel's late
// response to it is then a stray.
#pragma once

#include <napi.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "served_by_thread.h"

namespace vigil {

// One request, or the open (id 0). Owned by the queue, then the thread, then the delivery on the JS thread.
struct IpmiRequest {
  double id = 0;
  uint8_t netfn = 0;
  uint8_t cmd = 0;
  std::vector<uint8_t> data;      // request data; then the response data, completion code first
  uint32_t timeoutMs = 0;
  int err = 0;                    // errno of the failed call (ETIMEDOUT: no response by the deadline)
  int failedCall = 0;             // for id 0: 1 open(2); for a request: 1 IPMICTL_SEND_COMMAND, 2 receive
  int64_t queuedNs = 0;
  int64_t sentNs = 0;
  int64_t answeredNs = 0;
  int64_t deadlineNs = 0;         // the thread's
};

struct IpmiDeviceState;
void DeliverIpmiResponse(Napi::Env env, Napi::Function dispatch, IpmiDeviceState* state, IpmiRequest* r);

// Shared by the JS object and its thread (served_by_thread.h: the mutex, the stop request, the TSFN that
// carries the responses).
struct IpmiDeviceState : ServedByThread<IpmiDeviceState, IpmiRequest, DeliverIpmiResponse> {
  std::string path;
  // eventfd: a request queued, or stop (WakeThread). Closed with the state, not by the thread as it ends:
  // the object collected at the environment's teardown still writes to it after the thread has gone.
  int wakeFd = -1;
  std::deque<IpmiRequest*> queue;   // guarded by mutex
  uint64_t strays = 0;              // guarded by mutex: responses that matched no request in flight (late, or not ours)
  void WakeThread();
  ~IpmiDeviceState();
};

class IpmiDevice : public Napi::ObjectWrap<IpmiDevice> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit IpmiDevice(const Napi::CallbackInfo& info);
  ~IpmiDevice() override;

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Strays(const Napi::CallbackInfo& info);
  void Stop();

  std::shared_ptr<IpmiDeviceState> state_;
  bool closed_ = false;
  double lastId_ = 0;
};

}  // namespace vigil

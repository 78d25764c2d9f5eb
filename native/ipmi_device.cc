#include "ipmi_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ipmi.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <map>

#include "ipmi_ioctl.h"
#include "mono_clock.h"
#include "owned_thread.h"
#include "system_error.h"

namespace vigil {
namespace {

// msgid is the request's id: unique and increasing for the life of the descriptor, so a late response can
// never match a newer request.
int Send(int fd, IpmiRequest* r) {
  return IpmiSendToBmc(fd, static_cast<long>(r->id), r->netfn, r->cmd, r->data.data(), static_cast<unsigned short>(r->data.size()));
}

void Serve(std::shared_ptr<IpmiDeviceState> s) {
  BlockAsyncSignals();
  int fd = -1;
  int broken = 0;                         // the errno that ended the device (a receive or poll error), once
  std::map<long, IpmiRequest*> inFlight;  // by msgid
  for (;;) {
    // New requests (and the open), or the end.
    std::deque<IpmiRequest*> fresh;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(s->mutex);
      fresh.swap(s->queue);
      stopping = s->stopping;
    }
    for (IpmiRequest* r : fresh) {
      if (r->id == 0) {
        fd = open(s->path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
          r->err = errno;
          r->failedCall = 1;
        }
        r->answeredNs = MonoNs();
        s->Post(r);
        continue;
      }
      r->sentNs = MonoNs();
      if (stopping) {
        r->err = ECANCELED;
      } else if (fd < 0) {
        // The open failed (JavaScript reported that), or the device broke since: this keeps the answers coming.
        r->err = broken != 0 ? broken : EBADF;
        if (broken != 0) r->failedCall = 2;
      } else if ((r->err = Send(fd, r)) != 0) {
        r->failedCall = 1;
      } else {
        r->deadlineNs = r->sentNs + static_cast<int64_t>(r->timeoutMs) * 1000000;
        inFlight[static_cast<long>(r->id)] = r;
        continue;
      }
      r->answeredNs = MonoNs();
      s->Post(r);
    }
    if (stopping) break;

    // Wait for a response, a new request, or the nearest deadline.
    int64_t now = MonoNs();
    int timeout = -1;
    for (auto& [id, r] : inFlight) {
      int64_t left = (r->deadlineNs - now + 999999) / 1000000;
      if (left < 0) left = 0;
      if (timeout < 0 || left < timeout) timeout = static_cast<int>(left);
    }
    pollfd fds[2] = {{s->wakeFd, POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(fds, fd >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) {
      timespec pause{0, 1000000};  // ENOMEM: transient
      nanosleep(&pause, nullptr);
    }
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      (void)!read(s->wakeFd, &count, sizeof count);
    }
    int lost = 0;  // why the device can no longer answer
    if (fd >= 0 && (fds[1].revents & POLLIN)) {
      // Everything the driver has queued: one receive per message.
      for (;;) {
        unsigned char dataBuf[IPMI_MAX_MSG_LENGTH];
        ipmi_recv recv;
        if (!IpmiReceive(fd, &recv, dataBuf)) {
          // EAGAIN: drained. Anything else (ENOTTY: a readable file that is no IPMI device) would be
          // readable again at once and spin this thread: the device is given up.
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) lost = errno;
          break;
        }
        if (recv.recv_type != IPMI_RESPONSE_RECV_TYPE) continue;  // events and commands: not asked for
        auto it = inFlight.find(recv.msgid);
        if (it == inFlight.end()) {
          std::lock_guard<std::mutex> lock(s->mutex);
          s->strays++;
          continue;
        }
        IpmiRequest* r = it->second;
        inFlight.erase(it);
        r->data.assign(dataBuf, dataBuf + recv.msg.data_len);
        r->answeredNs = MonoNs();
        if (r->data.empty()) r->err = EPROTO;  // no completion code: not a response
        s->Post(r);
      }
    }
    if (fd >= 0 && lost == 0 && (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL))) lost = ENODEV;
    if (lost != 0) {
      // The interface went away, or is none: nothing in flight will be answered.
      broken = lost;
      for (auto& [id, r] : inFlight) {
        r->err = lost;
        r->failedCall = 2;
        r->answeredNs = MonoNs();
        s->Post(r);
      }
      inFlight.clear();
      close(fd);
      fd = -1;
    }
    now = MonoNs();
    for (auto it = inFlight.begin(); it != inFlight.end();) {
      if (it->second->deadlineNs <= now) {
        it->second->err = ETIMEDOUT;
        it->second->answeredNs = now;
        s->Post(it->second);
        it = inFlight.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [id, r] : inFlight) {
    r->err = ECANCELED;
    r->answeredNs = MonoNs();
    s->Post(r);
  }
  if (fd >= 0) close(fd);
  std::lock_guard<std::mutex> lock(s->mutex);
  s->ReleaseLocked();
}

}  // namespace

void IpmiDeviceState::WakeThread() {
  uint64_t one = 1;
  (void)!write(wakeFd, &one, sizeof one);
}

IpmiDeviceState::~IpmiDeviceState() {
  if (wakeFd >= 0) close(wakeFd);
}

// dispatch(id, errno, failedCall, data, waitNs, answerNs): id 0 is the open; data (completion code first)
// is a Buffer when errno is 0. waitNs: queued to sent; answerNs: sent to answered (or failed).
void DeliverIpmiResponse(Napi::Env env, Napi::Function dispatch, IpmiDeviceState* state, IpmiRequest* r) {
  std::unique_ptr<IpmiRequest> owned(r);
  if (env == nullptr || !JsCanRun(env)) return;  // the environment is being torn down
  state->HoldLoopAnswered(env);
  Napi::Value data = env.Undefined();
  if (r->id != 0 && r->err == 0) data = Napi::Buffer<uint8_t>::Copy(env, r->data.data(), r->data.size());
  int64_t sent = r->sentNs != 0 ? r->sentNs : r->answeredNs;
  CallFromThread(env, dispatch, {Napi::Number::New(env, r->id), Napi::Number::New(env, r->err),
                 Napi::Number::New(env, r->failedCall), data,
                 Napi::Number::New(env, static_cast<double>(sent - r->queuedNs)),
                 Napi::Number::New(env, static_cast<double>(r->answeredNs - sent))});
}

Napi::Function IpmiDevice::Init(Napi::Env env) {
  return DefineClass(env, "IpmiDevice",
                     {InstanceMethod<&IpmiDevice::Submit>("submit"), InstanceMethod<&IpmiDevice::Close>("close"),
                      InstanceMethod<&IpmiDevice::Strays>("strays")});
}

// new IpmiDevice(path, dispatch): the thread opens the path and answers through dispatch with id 0.
IpmiDevice::IpmiDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IpmiDevice>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "IpmiDevice(path: string, dispatch: function)").ThrowAsJavaScriptException();
    return;
  }
  state_ = std::make_shared<IpmiDeviceState>();
  state_->path = info[0].As<Napi::String>().Utf8Value();
  state_->wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state_->wakeFd < 0) {
    closed_ = true;
    SystemError(env, errno, "eventfd", "IpmiDevice").ThrowAsJavaScriptException();
    return;
  }
  IpmiDeviceState::Connect(state_, env, info[1].As<Napi::Function>(), "vigil:ipmi", 0);

  auto* openReq = new IpmiRequest();
  openReq->queuedNs = MonoNs();
  state_->queue.push_back(openReq);
  state_->HoldLoopFor(env);
  std::shared_ptr<IpmiDeviceState> s = state_;
  int rc = state_->Start([s] { Serve(s); });
  if (rc != 0) {
    state_->queue.clear();
    delete openReq;
    closed_ = true;
    SystemError(env, rc, "pthread_create", "IpmiDevice: thread").ThrowAsJavaScriptException();
  }
}

IpmiDevice::~IpmiDevice() { Stop(); }

void IpmiDevice::Stop() {
  if (!state_ || closed_) return;
  closed_ = true;
  state_->RequestStop();
}

// submit(id, netfn, cmd, data: Buffer, timeoutMs)
Napi::Value IpmiDevice::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "the IPMI device is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsBuffer() ||
      !info[4].IsNumber()) {
    Napi::TypeError::New(env, "submit(id, netfn, cmd, data: Buffer, timeoutMs)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double id = info[0].As<Napi::Number>().DoubleValue();
  int netfn = info[1].As<Napi::Number>().Int32Value();
  int cmd = info[2].As<Napi::Number>().Int32Value();
  auto data = info[3].As<Napi::Buffer<uint8_t>>();
  double timeout = info[4].As<Napi::Number>().DoubleValue();
  if (!(id > lastId_) || id > 9007199254740991.0) {
    Napi::RangeError::New(env, "request ids must increase").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (netfn < 0 || netfn > 0x3f || cmd < 0 || cmd > 0xff || data.Length() > IPMI_MAX_MSG_LENGTH ||
      !(timeout >= 1 && timeout <= 600000)) {
    Napi::RangeError::New(env, "netfn 0-63, cmd 0-255, data up to 272 bytes, timeoutMs 1-600000").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  lastId_ = id;
  auto* r = new IpmiRequest();
  r->id = id;
  r->netfn = static_cast<uint8_t>(netfn);
  r->cmd = static_cast<uint8_t>(cmd);
  r->data.assign(data.Data(), data.Data() + data.Length());
  r->timeoutMs = static_cast<uint32_t>(timeout);
  r->queuedNs = MonoNs();
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue.push_back(r);
  }
  state_->WakeThread();
  state_->HoldLoopFor(env);
  return env.Undefined();
}

Napi::Value IpmiDevice::Strays(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return Napi::Number::New(info.Env(), static_cast<double>(state_->strays));
}

// Requests in flight are answered ECANCELED; a closed device no longer holds the event loop open.
Napi::Value IpmiDevice::Close(const Napi::CallbackInfo& info) {
  Stop();
  if (state_) state_->HoldLoopNoMore(info.Env());
  return info.Env().Undefined();
}

}  // namespace vigil

#include "sg_device.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "mono_clock.h"
#include "owned_thread.h"
#include "system_error.h"

// The sg driver's character major (include/linux/major.h).
constexpr unsigned kScsiGenericMajor = 21;

// glibc's <scsi/sg.h> predates these (Linux 3.19 added both to the kernel's own header).
#ifndef SG_SCSI_RESET_TARGET
#define SG_SCSI_RESET_TARGET 4
#endif
#ifndef SG_SCSI_RESET_NO_ESCALATE
#define SG_SCSI_RESET_NO_ESCALATE 0x100
#endif

namespace vigil {
namespace {

// The clock process.hrtime() reads too, so JS can compare stamps if it ever needs to.
// Opens the path; *isSg says whether it is an sg node (which is served by write/poll/read, RunCommand).
void OpenPath(const std::string& path, int* fd, bool* isSg, Command* c) {
  // O_NONBLOCK: an sd node of a unit without media still opens, and sg never waits for exclusivity.
  // The open itself happens here, not on the JS thread: opening an sd node revalidates the disk,
  // which is I/O and can hang on a wedged unit.
  *fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (*fd < 0) {
    c->err = errno;
    c->failedCall = 1;
    return;
  }
  // Both sg and sd answer SG_GET_VERSION_NUM; a file, a tty or a non-SCSI disk says ENOTTY.
  int version = 0;
  if (ioctl(*fd, SG_GET_VERSION_NUM, &version) < 0) {
    c->err = errno;
    c->failedCall = 2;
    close(*fd);
    *fd = -1;
    return;
  }
  c->sgVersion = version;
  struct stat st {};
  *isSg = fstat(*fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == kScsiGenericMajor;
}

// /dev/sg: the command is submitted by write(2) and collected by read(2) once poll(2) says it is done.
// An ioctl(SG_IO) on sg that a signal interrupts leaves the command in flight, orphaned, and returns
// ERESTARTSYS, which the kernel turns into a second SG_IO with the same header: the command runs twice (a
// PREEMPT, a RELEASE, a REGISTER). Blocking signals on this thread is not enough: a job-control stop
// (SIGSTOP, which nothing blocks) interrupts it too, and an operator's `kill -STOP` or a debugger is
// enough. An interrupted poll is merely polled again: the command is submitted once. Returns 0 or the
// errno; EINTR from write(2) is reported as it is, never retried (the outcome is unknown).
int SubmitOnce(int fd, sg_io_hdr_t* h) {
  if (write(fd, h, sizeof *h) < 0) return errno;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) {
      // ENOMEM, transient: the command is in flight and its answer will come; wait for it.
      timespec pause{0, 1000000};
      nanosleep(&pause, nullptr);
      continue;
    }
    if (read(fd, h, sizeof *h) >= 0) return 0;
    if (errno != EAGAIN && errno != EINTR) return errno;  // the device went away, say
    // Hung up with nothing to read (sg answers POLLHUP while the device detaches, and EAGAIN to a
    // non-blocking read): polling again would spin. The command's outcome is unknown.
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return ENODEV;
  }
}

void RunCommand(int fd, bool isSg, Command* c) {
  sg_io_hdr_t h{};
  h.interface_id = 'S';
  h.cmd_len = static_cast<unsigned char>(c->cdb.size());
  h.cmdp = c->cdb.data();
  h.mx_sb_len = sizeof(c->sense);
  h.sbp = c->sense;
  h.timeout = c->timeoutMs;
  switch (c->direction) {
    case Direction::None:
      h.dxfer_direction = SG_DXFER_NONE;
      break;
    case Direction::FromDevice:
      c->data.resize(c->dataInLength);
      h.dxfer_direction = SG_DXFER_FROM_DEV;
      h.dxfer_len = c->dataInLength;
      h.dxferp = c->data.data();
      break;
    case Direction::ToDevice:
      h.dxfer_direction = SG_DXFER_TO_DEV;
      h.dxfer_len = static_cast<unsigned int>(c->data.size());
      h.dxferp = c->data.data();
      break;
  }
  c->startNs = MonoNs();
  // On sd (the block layer's SG_IO) the ioctl waits for the command uninterruptibly once it is sent; an
  // EINTR is reported, never retried: whether the command reached the device is unknown.
  int err = isSg ? SubmitOnce(fd, &h) : (ioctl(fd, SG_IO, &h) < 0 ? errno : 0);
  c->endNs = MonoNs();
  if (err != 0) {
    c->err = err;
    return;
  }
  c->status = h.status;
  c->hostStatus = h.host_status;
  c->driverStatus = h.driver_status;
  c->resid = h.resid;
  c->senseLength = h.sb_len_wr;
}

// SG_SCSI_RESET on the path: the kernel sends the task management function through the driver's error
// handler (eh_device_reset_handler or eh_target_reset_handler) and returns when the driver says it
// completed (0) or failed (EIO). Works on sg and sd nodes alike. The fd is O_NONBLOCK, so a host already
// in error recovery answers EAGAIN at once instead of waiting for the recovery to end.
void RunReset(int fd, Command* c) {
  int value = c->resetValue;
  c->startNs = MonoNs();
  // Not retried on EINTR: a restarted reset is a second reset.
  if (ioctl(fd, SG_SCSI_RESET, &value) < 0) c->err = errno;
  c->endNs = MonoNs();
}

void Serve(std::shared_ptr<DeviceState> s) {
  BlockAsyncSignals();
  int fd = -1;
  bool isSg = false;
  for (;;) {
    Command* c;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(s->mutex);
      s->wake.wait(lock, [&] { return s->stopping || !s->queue.empty(); });
      if (s->queue.empty()) break;  // stopping, and nothing left to answer
      c = s->queue.front();
      s->queue.pop_front();
      stopping = s->stopping || (c->id != 0 && c->id <= s->cancelUpTo);
    }
    if (c->id == 0) {
      c->startNs = MonoNs();
      OpenPath(s->path, &fd, &isSg, c);
      c->endNs = MonoNs();
    } else if (stopping) {
      c->err = ECANCELED;  // closed or cancelled while queued: never sent to the device
      c->startNs = c->endNs = MonoNs();
    } else if (fd < 0) {
      c->err = EBADF;  // the open failed; JS reports that failure, this only keeps the queue moving
      c->startNs = c->endNs = MonoNs();
    } else if (c->resetValue != 0) {
      RunReset(fd, c);
    } else {
      RunCommand(fd, isSg, c);
    }
    s->Post(c);
  }
  if (fd >= 0) close(fd);
  std::lock_guard<std::mutex> lock(s->mutex);
  s->ReleaseLocked();
}

}  // namespace

// Runs on the JS thread. Positional arguments keep the hot path free of property-key lookups:
//   id 0 (the open):  dispatch(0, errno, failedCall, sgVersion)
//   id > 0:           dispatch(id, errno, status, hostStatus, driverStatus, resid, sense, data,
//                              waitNs, ioctlNs, deliverNs)
// sense and data are Buffers or undefined (a reset has neither, and status 0). waitNs is queue to
// start (the device thread's wake-up and any commands ahead), ioctlNs the SG_IO (or SG_SCSI_RESET)
// call, deliverNs end of the ioctl to this callback (the JS thread's wake-up).
void DeliverCompletion(Napi::Env env, Napi::Function dispatch, DeviceState* state, Command* c) {
  std::unique_ptr<Command> owned(c);
  if (env == nullptr || !JsCanRun(env)) return;  // the environment is being torn down
  const int64_t now = MonoNs();
  state->HoldLoopAnswered(env);

  if (c->id == 0) {
    CallFromThread(env, dispatch, {Napi::Number::New(env, 0), Napi::Number::New(env, c->err),
                   Napi::Number::New(env, c->failedCall), Napi::Number::New(env, c->sgVersion)});
    return;
  }
  Napi::Value sense = env.Undefined();
  if (c->err == 0 && c->senseLength > 0) {
    sense = Napi::Buffer<uint8_t>::Copy(env, c->sense, c->senseLength);
  }
  Napi::Value data = env.Undefined();
  if (c->err == 0 && c->direction == Direction::FromDevice) {
    // resid is what the device did not transfer; a negative or oversized value (seen from some
    // HBAs) is ignored rather than trusted.
    size_t n = c->data.size();
    if (c->resid > 0 && static_cast<size_t>(c->resid) <= n) n -= static_cast<size_t>(c->resid);
    data = Napi::Buffer<uint8_t>::Copy(env, c->data.data(), n);
  }
  CallFromThread(env, dispatch, {Napi::Number::New(env, c->id), Napi::Number::New(env, c->err),
                 Napi::Number::New(env, c->status), Napi::Number::New(env, c->hostStatus),
                 Napi::Number::New(env, c->driverStatus), Napi::Number::New(env, c->resid), sense,
                 data, Napi::Number::New(env, static_cast<double>(c->startNs - c->queuedNs)),
                 Napi::Number::New(env, static_cast<double>(c->endNs - c->startNs)),
                 Napi::Number::New(env, static_cast<double>(now - c->endNs))});
}

Napi::Function SgDevice::Init(Napi::Env env) {
  return DefineClass(env, "SgDevice",
                     {InstanceMethod<&SgDevice::Submit>("submit"),
                      InstanceMethod<&SgDevice::Reset>("reset"),
                      InstanceMethod<&SgDevice::Close>("close"),
                      InstanceMethod<&SgDevice::CancelQueued>("cancelQueued")});
}

// new SgDevice(path, dispatch): starts the device thread, which opens the path and reports through
// dispatch with id 0.
SgDevice::SgDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SgDevice>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "SgDevice(path: string, dispatch: function)")
        .ThrowAsJavaScriptException();
    return;
  }
  state_ = std::make_shared<DeviceState>();
  state_->path = info[0].As<Napi::String>().Utf8Value();
  DeviceState::Connect(state_, env, info[1].As<Napi::Function>(), "vigil:sg", 0);

  auto* openCmd = new Command();
  openCmd->id = 0;
  openCmd->queuedNs = MonoNs();
  state_->queue.push_back(openCmd);
  state_->HoldLoopFor(env);
  std::shared_ptr<DeviceState> s = state_;
  int rc = state_->Start([s] { Serve(s); });
  if (rc != 0) {
    // No thread: nothing will answer. Start released the TSFN (its finalizer removes the cleanup hook),
    // and the constructor throws, so the object is never used.
    state_->queue.clear();
    delete openCmd;
    closed_ = true;
    SystemError(env, rc, "pthread_create", "SgDevice: device thread").ThrowAsJavaScriptException();
  }
}

SgDevice::~SgDevice() { Stop(); }

void SgDevice::Stop() {
  if (!state_ || closed_) return;
  closed_ = true;
  state_->RequestStop();
}

// submit(id, cdb, direction, dataOutOrInLength, timeoutMs)
//   direction 0: none (4th argument ignored); 1: from device, 4th argument the allocation length;
//   2: to device, 4th argument a Buffer of the bytes to send.
Napi::Value SgDevice::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "device is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() ||
      !info[4].IsNumber()) {
    Napi::TypeError::New(env, "submit(id, cdb: Buffer, direction, data, timeoutMs)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto cdb = info[1].As<Napi::Buffer<uint8_t>>();
  if (cdb.Length() < 6 || cdb.Length() > 255) {
    Napi::RangeError::New(env, "a CDB is 6 to 255 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto c = std::make_unique<Command>();
  c->id = info[0].As<Napi::Number>().DoubleValue();
  c->cdb.assign(cdb.Data(), cdb.Data() + cdb.Length());
  int direction = info[2].As<Napi::Number>().Int32Value();
  double timeout = info[4].As<Napi::Number>().DoubleValue();
  if (!(timeout >= 1 && timeout <= 4294967295.0)) {
    Napi::RangeError::New(env, "timeoutMs must be at least 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  c->timeoutMs = static_cast<uint32_t>(timeout);
  switch (direction) {
    case 0:
      c->direction = Direction::None;
      break;
    case 1: {
      double n = info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : -1;
      if (!(n >= 1 && n <= 16 * 1024 * 1024)) {
        Napi::RangeError::New(env, "data-in length must be 1 byte to 16 MiB")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      c->direction = Direction::FromDevice;
      c->dataInLength = static_cast<uint32_t>(n);
      break;
    }
    case 2: {
      if (!info[3].IsBuffer()) {
        Napi::TypeError::New(env, "data-out must be a Buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      auto out = info[3].As<Napi::Buffer<uint8_t>>();
      if (out.Length() < 1 || out.Length() > 16 * 1024 * 1024) {
        Napi::RangeError::New(env, "data-out must be 1 byte to 16 MiB")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      c->direction = Direction::ToDevice;
      c->data.assign(out.Data(), out.Data() + out.Length());
      break;
    }
    default:
      Napi::RangeError::New(env, "direction is 0 (none), 1 (from device) or 2 (to device)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
  }
  Enqueue(env, std::move(c));
  return env.Undefined();
}

// reset(id, kind): kind "lun" (LOGICAL UNIT RESET) or "target" (TARGET RESET), answered through dispatch
// like a command without sense or data (errno 0: the driver reported the reset done). Always with
// SG_SCSI_RESET_NO_ESCALATE: without it a failed LUN reset escalates to target, bus and host resets, and
// a host reset disturbs every other unit on the adapter. Bus and host resets are not offered for the
// same reason.
Napi::Value SgDevice::Reset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "device is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "reset(id, kind: 'lun' | 'target')").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string kind = info[1].As<Napi::String>().Utf8Value();
  int value;
  if (kind == "lun") {
    value = SG_SCSI_RESET_DEVICE;
  } else if (kind == "target") {
    value = SG_SCSI_RESET_TARGET;
  } else {
    Napi::RangeError::New(env, "a reset is 'lun' or 'target'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto c = std::make_unique<Command>();
  c->id = info[0].As<Napi::Number>().DoubleValue();
  c->resetValue = value | SG_SCSI_RESET_NO_ESCALATE;
  Enqueue(env, std::move(c));
  return env.Undefined();
}

// Hands a command or reset to the device thread; throws (as a pending JS exception) on a stale id.
void SgDevice::Enqueue(Napi::Env env, std::unique_ptr<Command> c) {
  if (c->id <= lastId_) {
    Napi::RangeError::New(env, "command ids must increase").ThrowAsJavaScriptException();
    return;
  }
  lastId_ = c->id;
  c->queuedNs = MonoNs();
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue.push_back(c.release());
  }
  state_->wake.notify_one();
  state_->HoldLoopFor(env);
}

// Every command submitted so far that the thread has not yet started is answered ECANCELED without
// being sent (the JS watchdog uses this when the command ahead of them is stuck in the kernel).
Napi::Value SgDevice::CancelQueued(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->cancelUpTo = lastId_;
  return info.Env().Undefined();
}

// Queued commands are answered ECANCELED; the thread ends after the command in the kernel, if any,
// returns. A closed path no longer keeps the event loop alive, even with a command stuck in the kernel.
Napi::Value SgDevice::Close(const Napi::CallbackInfo& info) {
  Stop();
  if (state_) state_->HoldLoopNoMore(info.Env());
  return info.Env().Undefined();
}

}  // namespace vigil

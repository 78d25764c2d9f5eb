// The armed distress sender's JavaScript object (seed 002; docs/distress.md): arming from the options,
// triggers, re-arming, the fatal-signal handlers, the snapshot. The parts: distress_internal.h.
#include "distress.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>

#include "distress_internal.h"
#include "distress_js.h"
#include "fatal_signals.h"
#include "system_error.h"
#include "udp_address.h"
#include "wire.h"

namespace vigil {

using namespace distress_js;

namespace {

bool GetU64(Napi::Env env, Napi::Value v, const char* name, uint64_t* out) {
  if (!v.IsBigInt()) {
    Napi::TypeError::New(env, std::string("distress: ") + name + " must be a bigint").ThrowAsJavaScriptException();
    return false;
  }
  bool lossless = false;
  *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || *out == 0) {
    Napi::RangeError::New(env, std::string("distress: ") + name + " must be 1..2^64-1").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool GetKey(Napi::Env env, Napi::Value v, std::vector<uint8_t>* key) {
  if (!v.IsBuffer()) {
    Napi::TypeError::New(env, "distress: key must be a Buffer").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() < 32) {
    Napi::RangeError::New(env, "distress: key must be at least 32 bytes").ThrowAsJavaScriptException();
    return false;
  }
  key->assign(b.Data(), b.Data() + b.Length());
  return true;
}

// peers: [{ id, addresses: [{ network, host, port }] }] → destinations, checked against the bound sockets.
bool GetPeers(Napi::Env env, Napi::Value v, const DistressState& s, uint16_t selfId, std::vector<DistressDest>* out) {
  if (!v.IsArray()) {
    Napi::TypeError::New(env, "distress: peers must be an array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array peers = v.As<Napi::Array>();
  out->clear();
  for (uint32_t i = 0; i < peers.Length(); i++) {
    Napi::Object p = peers.Get(i).As<Napi::Object>();
    uint32_t id = 0;
    if (!GetU32(p, "id", 1, 65535, &id)) return false;
    if (id == selfId) {
      Napi::RangeError::New(env, "distress: a peer cannot be this node").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Value av = p.Get("addresses");
    if (!av.IsArray()) {
      Napi::TypeError::New(env, "distress: peer addresses must be an array").ThrowAsJavaScriptException();
      return false;
    }
    Napi::Array addresses = av.As<Napi::Array>();
    for (uint32_t j = 0; j < addresses.Length(); j++) {
      Napi::Object a = addresses.Get(j).As<Napi::Object>();
      uint32_t network = 0, port = 0;
      if (!GetU32(a, "network", 0, uint32_t(s.networkCount ? s.networkCount - 1 : 0), &network)) return false;
      if (!GetU32(a, "port", 1, 65535, &port)) return false;
      Napi::Value hv = a.Get("host");
      std::string host = hv.IsString() ? hv.As<Napi::String>().Utf8Value() : "";
      DistressDest d{};
      d.network = network;
      d.peer = uint16_t(id);
      if (s.networkCount == 0 || !ResolveNumeric(host, uint16_t(port), &d.address, &d.length)) {
        Napi::Error::New(env, "distress: bad peer address " + host).ThrowAsJavaScriptException();
        return false;
      }
      if (d.address.ss_family != s.families[network]) {
        Napi::Error::New(env, "distress: peer address " + host + " is not of network " + std::to_string(network) +
                                  "'s address family")
            .ThrowAsJavaScriptException();
        return false;
      }
      out->push_back(d);
    }
  }
  return true;
}

}  // namespace

Napi::Function DistressSender::Init(Napi::Env env) {
  return DefineClass(env, "DistressSender",
                     {InstanceMethod("trigger", &DistressSender::Trigger),
                      InstanceMethod("rearm", &DistressSender::Rearm),
                      InstanceMethod("installFatalHandlers", &DistressSender::InstallFatalHandlers),
                      InstanceMethod("uninstallFatalHandlers", &DistressSender::UninstallFatalHandlers),
                      InstanceMethod("snapshot", &DistressSender::Snapshot),
                      InstanceMethod("stop", &DistressSender::Stop),
                      InstanceMethod("triggerFromThread", &DistressSender::TriggerFromThread),
                      InstanceMethod("threadTriggerTimes", &DistressSender::ThreadTriggerTimes),
                      InstanceMethod("crashForTest", &DistressSender::CrashForTest)});
}

// new DistressSender({ key, clusterTag, selfId, incarnation: bigint, reasons: number[], slots, repeats,
//   repeatGapUs, priority, nice, lockMemory, networks: [{ bind }], peers: [{ id, addresses: [{ network, host, port }] }] })
// Throws (errno, code, syscall) when a socket cannot be bound; the thread starts only once everything is armed.
DistressSender::DistressSender(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DistressSender>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    Napi::TypeError::New(env, "distress: options object expected").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  bool lockMemory = !o.Get("lockMemory").IsBoolean() || o.Get("lockMemory").As<Napi::Boolean>().Value();

  // The state itself in locked pages: its counters and the sockets table are touched by every send.
  size_t stateLength = RoundUp(sizeof(DistressState), PageSize());
  bool stateLocked = false;
  int stateLockError = 0;
  void* mem = MapLocked(stateLength, lockMemory, &stateLocked, &stateLockError);
  if (mem == nullptr) {
    SystemError(env, errno, "mmap", "distress: state").ThrowAsJavaScriptException();
    return;
  }
  std::shared_ptr<DistressState> s(new (mem) DistressState(), [stateLength](DistressState* p) {
    p->~DistressState();
    munmap(p, stateLength);
  });
  for (size_t i = 0; i < kDistressMaxNetworks; i++) s->sockets[i] = -1;
  s->lockMemory = lockMemory;
  s->memoryLocked = stateLocked;
  s->memoryLockError = stateLockError;

  ArmParams a;
  uint32_t clusterTag = 0, selfId = 0, slots = 0, repeats = 0, gapUs = 0, priority = 0;
  if (!GetKey(env, o.Get("key"), &a.key)) return;
  if (!GetU32(o, "clusterTag", 0, UINT32_MAX, &clusterTag)) return;
  if (!GetU32(o, "selfId", 1, 65535, &selfId)) return;
  if (!GetU64(env, o.Get("incarnation"), "incarnation", &a.incarnation)) return;
  slots = 4;
  repeats = 3;
  gapUs = 1000;
  if (!GetU32(o, "slots", 1, kDistressMaxSlots, &slots, true)) return;
  if (!GetU32(o, "repeats", 1, kDistressMaxRepeats, &repeats, true)) return;
  if (!GetU32(o, "repeatGapUs", 0, 1000000, &gapUs, true)) return;
  if (!GetU32(o, "priority", 0, 99, &priority, true)) return;
  Napi::Value niceValue = o.Get("nice");
  int nice = niceValue.IsNumber() ? niceValue.As<Napi::Number>().Int32Value() : 0;
  if (nice < -20 || nice > 19) {
    Napi::RangeError::New(env, "distress: nice must be -20..19").ThrowAsJavaScriptException();
    return;
  }
  a.clusterTag = clusterTag;
  a.selfId = uint16_t(selfId);
  s->slots = slots;
  s->repeats = repeats;
  s->repeatGapNs = int64_t(gapUs) * 1000;
  s->askedPriority = int(priority);
  s->askedNice = nice;

  Napi::Value rv = o.Get("reasons");
  if (!rv.IsArray() || rv.As<Napi::Array>().Length() == 0 || rv.As<Napi::Array>().Length() > kDistressMaxReasons) {
    Napi::TypeError::New(env, "distress: reasons must be an array of 1 to 16 reason codes").ThrowAsJavaScriptException();
    return;
  }
  Napi::Array reasons = rv.As<Napi::Array>();
  for (uint32_t i = 0; i < reasons.Length(); i++) {
    Napi::Value c = reasons.Get(i);
    double d = c.IsNumber() ? c.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= 65535) || d != double(uint32_t(d)) || DistressReasonIndex(*s, uint32_t(d)) >= 0) {
      Napi::RangeError::New(env, "distress: reason codes must be distinct integers 1..65535").ThrowAsJavaScriptException();
      return;
    }
    s->reasonCodes[s->reasonCount++] = uint16_t(d);
  }

  Napi::Value nv = o.Get("networks");
  if (!nv.IsArray() || nv.As<Napi::Array>().Length() == 0 || nv.As<Napi::Array>().Length() > kDistressMaxNetworks) {
    Napi::TypeError::New(env, "distress: networks must be an array of 1 to 16 { bind }").ThrowAsJavaScriptException();
    return;
  }
  Napi::Array networks = nv.As<Napi::Array>();
  for (uint32_t i = 0; i < networks.Length(); i++) {
    Napi::Value bv = networks.Get(i).As<Napi::Object>().Get("bind");
    std::string local = bv.IsString() ? bv.As<Napi::String>().Utf8Value() : "";
    int err = 0, family = 0;
    const char* syscall = "";
    int fd = wire::OpenClusterSocket(local, 0, &err, &syscall, &family);
    if (fd < 0) {
      SystemError(env, err, syscall, "distress: " + wire::ClusterSocketProblem(syscall, local)).ThrowAsJavaScriptException();
      return;
    }
    s->sockets[i] = fd;
    s->families[i] = family;
    s->networkCount = i + 1;
  }
  if (!GetPeers(env, o.Get("peers"), *s, a.selfId, &a.dests)) return;

  std::string error;
  DistressSet* set = BuildSet(*s, a, 1, &error);
  if (set == nullptr) {
    Napi::Error::New(env, "distress: " + error).ThrowAsJavaScriptException();
    return;
  }
  s->generation = 1;
  if (!set->locked) {
    s->memoryLocked = false;
    if (!s->memoryLockError) s->memoryLockError = set->lockError;
  }
  s->current.store(set);
  s->wakeFd = eventfd(0, EFD_CLOEXEC);  // blocking: the thread sleeps in read(); writers never block (2^64 counts)
  if (s->wakeFd < 0) {
    SystemError(env, errno, "eventfd", "distress: eventfd").ThrowAsJavaScriptException();
    return;
  }
  // Kept for re-arming with only some of the parameters changed.
  armKey_ = a.key;
  armTag_ = a.clusterTag;
  armSelf_ = a.selfId;
  armIncarnation_ = a.incarnation;
  armDests_ = a.dests;

  if (lockMemory) s->codeLocked = (s->codeLockError = LockCode()) == 0;
  WarmUp();

  const char* call = "";
  int err = StartSenderThread(*s, &call);
  if (err != 0) {
    SystemError(env, err, call, "distress: thread").ThrowAsJavaScriptException();
    return;
  }
  state_ = s;
}

DistressSender::~DistressSender() { StopAll(); }

void DistressSender::StopAll() {
  if (!state_) return;
  DistressState& s = *state_;
  vigil::UninstallFatalHandlers(&s);
  JoinTestThread();
  if (s.threadStarted && !s.stopped.load()) {
    s.stopping.store(true);
    uint64_t one = 1;
    ssize_t ignored = write(s.wakeFd, &one, sizeof one);
    (void)ignored;
    pthread_join(s.thread, nullptr);
  }
  s.stopped.store(true);
}

Napi::Value DistressSender::Stop(const Napi::CallbackInfo& info) {
  StopAll();
  return info.Env().Undefined();
}

// The reason code in info[0] as an index into the armed set; -1 with a JS exception pending when the sender is
// stopped or the code was not armed.
int DistressSender::ArmedReasonArgument(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || state_->stopped.load()) {
    Napi::Error::New(env, "distress: the sender is stopped").ThrowAsJavaScriptException();
    return -1;
  }
  int k = info[0].IsNumber() ? DistressReasonIndex(*state_, info[0].As<Napi::Number>().Uint32Value()) : -1;
  if (k < 0) Napi::RangeError::New(env, "distress: reason code not armed").ThrowAsJavaScriptException();
  return k;
}

// trigger(code, 'async' | 'sync'): async → true when the thread was woken; sync → the number of datagrams the
// kernel accepted, sent on this thread before returning.
Napi::Value DistressSender::Trigger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int k = ArmedReasonArgument(info);
  if (k < 0) return env.Undefined();
  std::string mode = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (mode == "sync") return Num(env, DistressSendSync(*state_, size_t(k)));
  if (mode == "async") return Napi::Boolean::New(env, DistressTriggerAsync(*state_, size_t(k)));
  Napi::TypeError::New(env, "distress: mode must be 'sync' or 'async'").ThrowAsJavaScriptException();
  return env.Undefined();
}

// rearm({ key?, incarnation?, peers? }): a new set with what changed, built aside and published in one swap.
// The same incarnation continues its sequence numbers (peers' replay windows would refuse old ones); a
// lower one is refused. Returns the new generation.
Napi::Value DistressSender::Rearm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || state_->stopped.load()) {
    Napi::Error::New(env, "distress: the sender is stopped").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  DistressState& s = *state_;
  Napi::Object o = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  std::lock_guard<std::mutex> lock(s.armMutex);
  ArmParams a;
  a.key = armKey_;
  a.clusterTag = armTag_;
  a.selfId = armSelf_;
  a.incarnation = armIncarnation_;
  a.dests = armDests_;
  if (!o.Get("key").IsUndefined() && !GetKey(env, o.Get("key"), &a.key)) return env.Undefined();
  if (!o.Get("incarnation").IsUndefined() && !GetU64(env, o.Get("incarnation"), "incarnation", &a.incarnation)) {
    return env.Undefined();
  }
  if (!o.Get("peers").IsUndefined() && !GetPeers(env, o.Get("peers"), s, a.selfId, &a.dests)) return env.Undefined();
  if (a.incarnation < armIncarnation_) {
    Napi::RangeError::New(env, "distress: re-arming with an older incarnation").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  DistressSet* old = s.current.load();
  a.firstSequence = a.incarnation == old->incarnation ? old->firstSequence + old->span : 1;
  std::string error;
  DistressSet* set = BuildSet(s, a, s.generation + 1, &error);
  if (set == nullptr) {
    Napi::Error::New(env, "distress: " + error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!set->locked && s.lockMemory) {
    s.memoryLocked = false;
    if (!s.memoryLockError) s.memoryLockError = set->lockError;
  }
  s.generation++;
  s.current.store(set);  // the one publication: a sender loads either the old set or this one, whole
  if (WaitForReaders(s)) FreeSet(old); else s.leaked.push_back(old);
  armKey_ = a.key;
  armIncarnation_ = a.incarnation;
  armDests_ = a.dests;
  return Num(env, s.generation);
}

// installFatalHandlers(code): SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE send `code` synchronously from the
// handler, then die as they would have. One sender per process holds them; a second install moves them.
Napi::Value DistressSender::InstallFatalHandlers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int k = ArmedReasonArgument(info);
  if (k < 0) return env.Undefined();
  // Optional second argument { path, content }: the record the handler writes after sending. Checked before
  // anything changes.
  StayOutRecord record;
  bool stayOut = info.Length() > 1 && info[1].IsObject();
  if (stayOut) {
    Napi::Object o = info[1].As<Napi::Object>();
    record.path = o.Get("path").IsString() ? o.Get("path").As<Napi::String>().Utf8Value() : "";
    record.content = o.Get("content").IsString() ? o.Get("content").As<Napi::String>().Utf8Value() : "";
    if (record.path.empty() || record.path.size() > kStayOutPathMax || record.content.size() > kStayOutContentMax) {
      Napi::RangeError::New(env, "distress: stay-out path (1..4095 bytes) and content (at most 1024 bytes) expected").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  const char* call = "";
  int err = vigil::InstallFatalHandlers(state_, k, stayOut ? &record : nullptr, &call);
  if (err != 0) {
    SystemError(env, err, call, std::string(call) == "sigaltstack" ? "distress: alternate signal stack" : "distress: fatal signal handlers")
        .ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value DistressSender::UninstallFatalHandlers(const Napi::CallbackInfo& info) {
  if (state_) vigil::UninstallFatalHandlers(state_.get());
  return info.Env().Undefined();
}

Napi::Value DistressSender::Snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  if (!state_) return out;
  DistressState& s = *state_;
  int64_t nowMono = MonoNs();
  bool stopped = s.stopped.load();
  out.Set("running", Napi::Boolean::New(env, s.threadStarted && !stopped));
  out.Set("armed", Napi::Boolean::New(env, !stopped && s.current.load() != nullptr));
  {
    std::lock_guard<std::mutex> lock(s.armMutex);
    const DistressSet* set = s.current.load();
    out.Set("generation", Num(env, s.generation));
    out.Set("incarnation", U64(env, set ? set->incarnation : 0));
    out.Set("firstSequence", U64(env, set ? set->firstSequence : 0));
    out.Set("armedAtMs", Num(env, set ? double(set->armedAtMs) : 0));
    out.Set("destinations", Num(env, set ? double(set->destCount) : 0));
    out.Set("leakedSets", Num(env, double(s.leaked.size())));
  }
  out.Set("networks", Num(env, double(s.networkCount)));
  out.Set("slots", Num(env, s.slots));
  out.Set("repeats", Num(env, s.repeats));
  out.Set("repeatGapUs", Num(env, double(s.repeatGapNs / 1000)));
  out.Set("priority", Num(env, s.askedPriority));
  out.Set("realtime", Napi::Boolean::New(env, s.realtime));
  out.Set("schedError", Num(env, s.schedError));
  out.Set("nice", Num(env, s.nice));
  out.Set("niceError", Num(env, s.niceError));
  out.Set("memoryLocked", Napi::Boolean::New(env, s.memoryLocked));
  out.Set("memoryLockError", Num(env, s.memoryLockError));
  out.Set("codeLocked", Napi::Boolean::New(env, s.codeLocked));
  out.Set("codeLockError", Num(env, s.codeLockError));
  int fk = FatalHandlersReason(&s);
  out.Set("fatalHandlers", Napi::Boolean::New(env, fk >= 0));
  out.Set("fatalReason", fk >= 0 ? Num(env, s.reasonCodes[fk]) : env.Null());
  out.Set("asyncEvents", Num(env, double(s.asyncEvents.load())));
  out.Set("syncEvents", Num(env, double(s.syncEvents.load())));
  out.Set("wakeups", Num(env, double(s.wakeups.load())));
  out.Set("sendErrors", Num(env, double(s.sendErrors.load())));
  int lastErrno = s.lastErrno.load();
  out.Set("lastErrno", Num(env, lastErrno));
  out.Set("lastError", lastErrno ? Napi::String::New(env, ErrnoName(lastErrno)) : env.Null());
  Napi::Array reasons = Napi::Array::New(env, s.reasonCount);
  for (size_t k = 0; k < s.reasonCount; k++) {
    const DistressReasonStats& st = s.reasons[k];
    Napi::Object r = Napi::Object::New(env);
    r.Set("code", Num(env, s.reasonCodes[k]));
    r.Set("triggers", Num(env, double(st.triggers.load())));
    r.Set("events", Num(env, double(st.events.load())));
    r.Set("datagrams", Num(env, double(st.datagrams.load())));
    r.Set("errors", Num(env, double(st.errors.load())));
    int64_t lastMono = st.lastSentMonoNs.load();
    r.Set("lastSentAtMs", Num(env, double(st.lastSentRealMs.load())));
    r.Set("lastSentAgoMs", Num(env, lastMono ? double(nowMono - lastMono) / 1e6 : -1));
    reasons.Set(uint32_t(k), r);
  }
  out.Set("reasons", reasons);
  Napi::Array nets = Napi::Array::New(env, s.networkCount);
  for (size_t i = 0; i < s.networkCount; i++) {
    Napi::Object n = Napi::Object::New(env);
    n.Set("datagrams", Num(env, double(s.networks[i].datagrams.load())));
    n.Set("errors", Num(env, double(s.networks[i].errors.load())));
    int e = s.networks[i].lastErrno.load();
    n.Set("lastError", e ? Napi::String::New(env, ErrnoName(e)) : env.Null());
    nets.Set(uint32_t(i), n);
  }
  out.Set("perNetwork", nets);
  return out;
}

}  // namespace vigil

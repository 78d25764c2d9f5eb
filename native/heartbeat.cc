#include "heartbeat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "owned_thread.h"
#include "system_error.h"
#include "udp_address.h"
#include "wire.h"

namespace vigil {

namespace {

using namespace wire;  // the format's shared part: constants, fields, clocks, HMAC (wire.h)

// The heartbeat's part of the wire format (docs/cluster.md, "Wire format"; the rest in wire.h).
constexpr uint8_t kTypeHeartbeat = 1;
constexpr uint8_t kStreamHeartbeat = 0;
constexpr size_t kPayloadLength = 44;
constexpr size_t kDatagramLength = kHeaderLength + kPayloadLength + kMacLength;
constexpr uint8_t kFlagLeaseFresh = 0x01;
constexpr uint64_t kWindow = 128;
// Datagrams read from one socket per wake-up at most (Run).
constexpr int kReceiveBurst = 64;

// Reasons a received datagram is dropped; the names are reported by snapshot() in this order.
enum Drop { kShort, kMagic_, kType, kLength, kCluster, kHmac, kUnknownSender, kReplay, kStaleIncarnation, kMisdirected };
const char* const kDropNames[] = {"short", "magic", "type", "length", "cluster", "hmac",
                                  "unknownSender", "replay", "staleIncarnation", "misdirected"};

bool Mac(const HeartbeatState& s, const uint8_t* data, size_t length, uint8_t* out) { return wire::Mac(s.key, data, length, out); }

// Accepts (sender, incarnation, seq) at most once. A higher incarnation is a restarted sender and starts a
// fresh window; a lower one is a stale process or a replay.
Drop CheckReplay(HeartbeatPeer& p, uint64_t incarnation, uint64_t seq, bool* accepted) {
  *accepted = false;
  if (incarnation < p.incarnation) return kStaleIncarnation;
  if (incarnation > p.incarnation) {
    p.incarnation = incarnation;
    p.windowTop = 0;
    p.windowBits[0] = p.windowBits[1] = 0;
  }
  if (seq == 0) return kReplay;
  if (seq > p.windowTop) {
    uint64_t shift = seq - p.windowTop;
    if (shift >= kWindow) {
      p.windowBits[0] = p.windowBits[1] = 0;
    } else if (shift >= 64) {
      p.windowBits[1] = p.windowBits[0] << (shift - 64);
      p.windowBits[0] = 0;
    } else {
      p.windowBits[1] = (p.windowBits[1] << shift) | (p.windowBits[0] >> (64 - shift));
      p.windowBits[0] <<= shift;
    }
    p.windowBits[0] |= 1;
    p.windowTop = seq;
    *accepted = true;
    return kShort;  // unused when accepted
  }
  uint64_t back = p.windowTop - seq;
  if (back >= kWindow) return kReplay;
  uint64_t& word = p.windowBits[back / 64];
  uint64_t bit = uint64_t(1) << (back % 64);
  if (word & bit) return kReplay;
  word |= bit;
  *accepted = true;
  return kShort;
}

void Receive(HeartbeatState& s, int network, const uint8_t* d, size_t n, int64_t now) {
  std::lock_guard<std::mutex> lock(s.mutex);
  auto drop = [&](Drop why) { s.dropped[why]++; };
  if (n < kHeaderLength + kMacLength) return drop(kShort);
  if (memcmp(d, kMagic, 4) != 0) return drop(kMagic_);
  if (d[4] != kTypeHeartbeat || d[5] != kStreamHeartbeat) return drop(kType);
  if (Get16(d + 28) != kPayloadLength || n != kDatagramLength) return drop(kLength);
  if (Get32(d + 8) != s.clusterTag) return drop(kCluster);
  uint16_t sender = Get16(d + 6);
  HeartbeatPeer* peer = nullptr;
  for (auto& p : s.peers) if (p.id == sender) peer = &p;
  if (peer == nullptr) return drop(kUnknownSender);
  uint8_t mac[kMacLength];
  if (!Mac(s, d, kHeaderLength + kPayloadLength, mac) ||
      CRYPTO_memcmp(mac, d + kHeaderLength + kPayloadLength, kMacLength) != 0) {
    return drop(kHmac);
  }
  const uint8_t* p = d + kHeaderLength;
  if (Get16(p) != s.selfId || p[2] != network) return drop(kMisdirected);
  bool accepted = false;
  Drop why = CheckReplay(*peer, Get64(d + 12), Get64(d + kSequenceOffset), &accepted);
  if (!accepted) return drop(why);
  s.received++;
  peer->flags = p[3];
  peer->digest = Get32(p + 20);
  for (auto& link : peer->links) {
    if (link.network != network) continue;
    link.heardNs = now;
    link.heardCount++;
    link.lastSeq = Get64(d + kSequenceOffset);
    link.peerSentUs = Get64(p + 24);
    uint64_t ackSeq = Get64(p + 4);
    uint64_t ackIncarnation = Get64(p + 12);
    // Only an ack of a heartbeat newer than the last one acknowledged is news: a peer that stopped hearing
    // us repeats its last ack in every heartbeat it still sends, and that must not look fresh.
    if (ackSeq > link.ackedSeq && ackIncarnation == s.incarnation) {
      link.ackedSeq = ackSeq;
      link.ackedNs = now;
      uint64_t echoed = Get64(p + 32);
      uint32_t held = Get32(p + 40);
      int64_t rtt = now / 1000 - int64_t(echoed) - int64_t(held);
      if (echoed != 0 && rtt >= 0) link.rttUs = rtt;
    }
  }
}

void SendRound(HeartbeatState& s, int64_t now) {
  uint8_t d[kDatagramLength];
  PutHeader(d, kTypeHeartbeat, kStreamHeartbeat, s.selfId, s.clusterTag, s.incarnation, 0, kPayloadLength);
  uint8_t* p = d + kHeaderLength;
  uint32_t digest = s.digest.load();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (auto& peer : s.peers) {
    for (auto& link : peer.links) {
      PutSequence(d, ++s.seq);
      Put16(p, peer.id);
      p[2] = uint8_t(link.network);
      p[3] = kFlagLeaseFresh;  // only ever sent while the lease is fresh
      Put64(p + 4, link.lastSeq);
      Put64(p + 12, peer.incarnation);
      Put32(p + 20, digest);
      Put64(p + 24, uint64_t(now / 1000));
      Put64(p + 32, link.peerSentUs);
      Put32(p + 40, link.heardNs ? uint32_t((now - link.heardNs) / 1000) : 0);
      if (!Mac(s, d, kHeaderLength + kPayloadLength, d + kHeaderLength + kPayloadLength)) {
        s.sendErrors++;
        continue;
      }
      // MSG_DONTWAIT: a network whose interface is down or whose queue is full must never delay the others.
      ssize_t rc = sendto(s.sockets[link.network], d, sizeof d, MSG_DONTWAIT,
                          reinterpret_cast<const sockaddr*>(&link.address), link.addressLength);
      if (rc == ssize_t(sizeof d)) s.sent++; else s.sendErrors++;
    }
  }
}

void Run(std::shared_ptr<HeartbeatState> s) {
  BlockAsyncSignals();
  std::vector<pollfd> fds;
  for (int fd : s->sockets) fds.push_back({fd, POLLIN, 0});
  fds.push_back({s->wakeFd, POLLIN, 0});
  uint8_t buffer[2048];
  int64_t next = MonoNs();
  while (!s->stopping.load()) {
    int64_t now = MonoNs();
    if (now >= next) {
      if (now < s->leaseUntilNs.load()) {
        s->lapsed = false;
        SendRound(*s, now);
      } else {
        std::vector<ServiceAddress> drop;
        {
          std::lock_guard<std::mutex> lock(s->mutex);
          s->leaseLapsed++;
          if (!s->lapsed) drop = s->addresses;
        }
        if (!s->lapsed) {
          s->lapsed = true;
          // Silent from now on: the node stops presenting its services too (service_addresses.h).
          int rc = RemoveServiceAddresses(drop);
          std::lock_guard<std::mutex> lock(s->mutex);
          if (!drop.empty()) s->addressDrops++;
          if (rc != 0) s->addressDropError = rc;
        }
      }
      next += s->intervalNs;
      if (next <= now) next = now + s->intervalNs;  // after a long descheduling: no burst of rounds
    }
    int64_t wait = next - now;
    timespec timeout{time_t(wait / 1000000000), long(wait % 1000000000)};
    int rc = ppoll(fds.data(), fds.size(), &timeout, nullptr);
    if (rc <= 0) continue;
    // Drained until the next send is due, and at most kReceiveBurst datagrams per socket per wake-up
    // (the others get their turn): a flood of forged datagrams, each costing an HMAC, arrives faster than
    // it is dropped, and a drain without end would stop this node's heartbeats: its peers would fail it
    // over. What the flood leaves in the socket is read after the round is sent.
    for (size_t i = 0; i + 1 < fds.size(); i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (int k = 0; k < kReceiveBurst; k++) {
        ssize_t n = recv(fds[i].fd, buffer, sizeof buffer, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) break;
        int64_t arrived = MonoNs();
        Receive(*s, int(i), buffer, size_t(n) > sizeof buffer ? 0 : size_t(n), arrived);
        if (arrived >= next) break;
      }
    }
  }
}


}  // namespace

Napi::Function HeartbeatEngine::Init(Napi::Env env) {
  return DefineClass(env, "HeartbeatEngine",
                     {InstanceMethod("renewLease", &HeartbeatEngine::RenewLease),
                      InstanceMethod("setDigest", &HeartbeatEngine::SetDigest),
                      InstanceMethod("setAddresses", &HeartbeatEngine::SetAddresses),
                      InstanceMethod("snapshot", &HeartbeatEngine::Snapshot),
                      InstanceMethod("stop", &HeartbeatEngine::Stop)});
}

// new HeartbeatEngine({ key: Buffer, clusterTag, selfId, incarnation: bigint, intervalMs, leaseMs, priority,
//   networks: [{ bind, port }], peers: [{ id, addresses: [{ network, host, port }] }] })
// Throws (with errno and code) when a socket cannot be bound; the thread starts only when all are.
HeartbeatEngine::HeartbeatEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HeartbeatEngine>(info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  auto s = std::make_shared<HeartbeatState>();
  Napi::Buffer<uint8_t> key = o.Get("key").As<Napi::Buffer<uint8_t>>();
  s->key.assign(key.Data(), key.Data() + key.Length());
  s->clusterTag = o.Get("clusterTag").As<Napi::Number>().Uint32Value();
  s->selfId = uint16_t(o.Get("selfId").As<Napi::Number>().Uint32Value());
  bool lossless = false;
  s->incarnation = o.Get("incarnation").As<Napi::BigInt>().Uint64Value(&lossless);
  s->intervalNs = int64_t(o.Get("intervalMs").As<Napi::Number>().DoubleValue() * 1e6);
  leaseNs_ = int64_t(o.Get("leaseMs").As<Napi::Number>().DoubleValue() * 1e6);
  int priority = o.Get("priority").As<Napi::Number>().Int32Value();

  auto fail = [&](int err, const char* syscall, const std::string& what) {
    for (int fd : s->sockets) close(fd);
    SystemError(env, err, syscall, what).ThrowAsJavaScriptException();
  };
  Napi::Array networks = o.Get("networks").As<Napi::Array>();
  for (uint32_t i = 0; i < networks.Length(); i++) {
    Napi::Object n = networks.Get(i).As<Napi::Object>();
    std::string local = n.Get("bind").As<Napi::String>().Utf8Value();
    uint16_t port = uint16_t(n.Get("port").As<Napi::Number>().Uint32Value());
    int err = 0;
    const char* syscall = "";
    int fd = wire::OpenClusterSocket(local, port, &err, &syscall);
    if (fd < 0) { fail(err, syscall, "heartbeat: " + wire::ClusterSocketProblem(syscall, local) + " port " + std::to_string(port)); return; }
    s->sockets.push_back(fd);
  }
  Napi::Array peers = o.Get("peers").As<Napi::Array>();
  for (uint32_t i = 0; i < peers.Length(); i++) {
    Napi::Object p = peers.Get(i).As<Napi::Object>();
    HeartbeatPeer peer;
    peer.id = uint16_t(p.Get("id").As<Napi::Number>().Uint32Value());
    Napi::Array addresses = p.Get("addresses").As<Napi::Array>();
    for (uint32_t j = 0; j < addresses.Length(); j++) {
      Napi::Object a = addresses.Get(j).As<Napi::Object>();
      HeartbeatLink link;
      link.network = a.Get("network").As<Napi::Number>().Int32Value();
      std::string host = a.Get("host").As<Napi::String>().Utf8Value();
      uint16_t port = uint16_t(a.Get("port").As<Napi::Number>().Uint32Value());
      if (link.network < 0 || size_t(link.network) >= s->sockets.size()) {
        { fail(EINVAL, "getaddrinfo", "heartbeat: peer address on unknown network"); return; }
      }
      if (!ResolveNumeric(host, port, &link.address, &link.addressLength)) {
        { fail(EINVAL, "getaddrinfo", "heartbeat: bad peer address " + host); return; }
      }
      peer.links.push_back(link);
    }
    s->peers.push_back(peer);
  }
  s->wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wakeFd < 0) { fail(errno, "eventfd", "heartbeat: eventfd"); return; }
  s->leaseUntilNs.store(MonoNs() + leaseNs_);
  state_ = s;
  int rc = StartOwnedThread([s] { Run(s); }, &thread_, true);
  if (rc != 0) {
    close(s->wakeFd);
    state_.reset();
    fail(rc, "pthread_create", "heartbeat: thread");
    return;
  }
  threadRunning_ = true;
  if (priority > 0) {
    sched_param param{};
    param.sched_priority = priority;
    rc = pthread_setschedparam(thread_, SCHED_FIFO, &param);
    std::lock_guard<std::mutex> lock(s->mutex);
    s->realtime = rc == 0;
    s->schedError = rc;
  }
}

HeartbeatEngine::~HeartbeatEngine() { StopThread(); }

void HeartbeatEngine::StopThread() {
  if (!state_ || !threadRunning_) return;
  state_->stopping.store(true);
  uint64_t one = 1;
  ssize_t ignored = write(state_->wakeFd, &one, sizeof one);
  (void)ignored;
  pthread_join(thread_, nullptr);
  threadRunning_ = false;
  for (int fd : state_->sockets) close(fd);
  close(state_->wakeFd);
}

Napi::Value HeartbeatEngine::RenewLease(const Napi::CallbackInfo& info) {
  if (state_) state_->leaseUntilNs.store(MonoNs() + leaseNs_);
  return info.Env().Undefined();
}

Napi::Value HeartbeatEngine::SetDigest(const Napi::CallbackInfo& info) {
  if (state_) state_->digest.store(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// setAddresses([{ interface, address, prefixLength }]): the node's service addresses now (replaces the list).
// Throws a TypeError naming the first entry that does not parse.
Napi::Value HeartbeatEngine::SetAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) {
    Napi::TypeError::New(env, "setAddresses: expected an array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<ServiceAddress> parsed;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Object o = list.Get(i).As<Napi::Object>();
    ServiceAddress a;
    std::string why;
    std::string address = o.Get("address").ToString().Utf8Value();
    if (!ParseServiceAddress(o.Get("interface").ToString().Utf8Value(), address, o.Get("prefixLength").ToNumber().Int32Value(), &a, &why)) {
      Napi::TypeError::New(env, "setAddresses: " + address + ": " + why).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    parsed.push_back(a);
  }
  if (state_) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->addresses = std::move(parsed);
  }
  return env.Undefined();
}

// Ages are in milliseconds as seen now by this thread's clock (-1: never), so the caller needs no clock of ours.
// The state is copied as plain data under the mutex, and the JavaScript objects are built after it is
// released: the realtime thread takes the same mutex for every send and receive, and a garbage collection
// while building them must never delay a heartbeat.
Napi::Value HeartbeatEngine::Snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  if (!state_) return out;
  HeartbeatState& s = *state_;
  struct LinkCopy { int network; int64_t heardNs; uint64_t heardCount; int64_t ackedNs; int64_t rttUs; uint64_t peerSentUs; uint64_t lastSeq; };
  struct PeerCopy { uint16_t id; uint64_t incarnation; uint32_t digest; uint8_t flags; std::vector<LinkCopy> links; };
  std::vector<PeerCopy> peers;
  peers.reserve(s.peers.size());
  for (const HeartbeatPeer& p : s.peers) peers.push_back({p.id, 0, 0, 0, std::vector<LinkCopy>(p.links.size())});
  uint64_t sent, sendErrors, received, leaseLapsed, addressDrops, dropped[sizeof s.dropped / sizeof s.dropped[0]];
  int addressDropError, schedError;
  bool realtime;
  int64_t now;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    now = MonoNs();
    sent = s.sent, sendErrors = s.sendErrors, received = s.received, leaseLapsed = s.leaseLapsed;
    addressDrops = s.addressDrops, addressDropError = s.addressDropError;
    realtime = s.realtime, schedError = s.schedError;
    memcpy(dropped, s.dropped, sizeof dropped);
    for (size_t i = 0; i < s.peers.size(); i++) {
      const HeartbeatPeer& p = s.peers[i];
      PeerCopy& c = peers[i];
      c.incarnation = p.incarnation, c.digest = p.digest, c.flags = p.flags;
      for (size_t j = 0; j < p.links.size(); j++) {
        const HeartbeatLink& l = p.links[j];
        c.links[j] = {l.network, l.heardNs, l.heardCount, l.ackedNs, l.rttUs, l.peerSentUs, l.lastSeq};
      }
    }
  }
  auto age = [&](int64_t t) { return Napi::Number::New(env, t ? double(now - t) / 1e6 : -1); };
  out.Set("running", Napi::Boolean::New(env, threadRunning_));
  out.Set("sent", Napi::Number::New(env, double(sent)));
  out.Set("sendErrors", Napi::Number::New(env, double(sendErrors)));
  out.Set("received", Napi::Number::New(env, double(received)));
  out.Set("leaseLapsed", Napi::Number::New(env, double(leaseLapsed)));
  out.Set("addressDrops", Napi::Number::New(env, double(addressDrops)));
  out.Set("addressDropError", Napi::Number::New(env, addressDropError));
  out.Set("realtime", Napi::Boolean::New(env, realtime));
  out.Set("schedError", Napi::Number::New(env, schedError));
  Napi::Object droppedOut = Napi::Object::New(env);
  for (size_t i = 0; i < sizeof kDropNames / sizeof kDropNames[0]; i++) {
    droppedOut.Set(kDropNames[i], Napi::Number::New(env, double(dropped[i])));
  }
  out.Set("dropped", droppedOut);
  Napi::Array peersOut = Napi::Array::New(env, peers.size());
  for (size_t i = 0; i < peers.size(); i++) {
    const PeerCopy& p = peers[i];
    Napi::Object po = Napi::Object::New(env);
    po.Set("id", Napi::Number::New(env, p.id));
    po.Set("incarnation", Napi::BigInt::New(env, p.incarnation));
    po.Set("digest", Napi::Number::New(env, p.digest));
    po.Set("flags", Napi::Number::New(env, p.flags));
    Napi::Array links = Napi::Array::New(env, p.links.size());
    for (size_t j = 0; j < p.links.size(); j++) {
      const LinkCopy& l = p.links[j];
      Napi::Object lo = Napi::Object::New(env);
      lo.Set("network", Napi::Number::New(env, l.network));
      lo.Set("heardAgoMs", age(l.heardNs));
      lo.Set("heardCount", Napi::Number::New(env, double(l.heardCount)));
      // The peer's sequence number in the last heartbeat heard (0 never): it numbers every datagram it
      // sends, one per peer and network each round, so with heardCount it gives the loss (link-loss.ts).
      lo.Set("peerSeq", Napi::Number::New(env, double(l.lastSeq)));
      lo.Set("ackedAgoMs", age(l.ackedNs));
      lo.Set("rttUs", Napi::Number::New(env, double(l.rttUs)));
      // The peer's monotonic send stamp of the last heartbeat heard and this node's monotonic time of its
      // arrival (both µs, 0 never): with the round trip, what `vigil timeline` estimates clock offsets from.
      lo.Set("peerSentMonoUs", Napi::Number::New(env, double(l.peerSentUs)));
      lo.Set("heardMonoUs", Napi::Number::New(env, double(l.heardNs / 1000)));
      links.Set(uint32_t(j), lo);
    }
    po.Set("links", links);
    peersOut.Set(uint32_t(i), po);
  }
  out.Set("peers", peersOut);
  return out;
}

Napi::Value HeartbeatEngine::Stop(const Napi::CallbackInfo& info) {
  StopThread();
  return info.Env().Undefined();
}

}  // namespace vigil

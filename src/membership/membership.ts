// Membership: per-peer, per-channel liveness. Pure: no timers, no I/O; the caller passes time in (a
// monotonic millisecond clock, performance.now() in the daemon) and acts on the events `tick` returns.
//
// CHANNELS. Each peer is heard on several channels ('net:lan1', 'net:lan2', 'disk:shared0'). A peer is
// declared failed only when EVERY channel has been silent for `failAfterMs` (seeds 001 D4, 004). One
// silent channel while another is heard is a channel fault: `channelDown` (alert, never failover), and
// `channelUp` when it is heard again.
//
// THE LIVENESS CLOCK. Silence is measured on a clock that advances only while this node's own event loop
// is responsive, so a stall of our own (GC, a synchronous call, the machine being suspended) never counts
// against a peer: the heartbeats it sent meanwhile are sitting unread in our sockets.
//
//   tick(now) is expected every `tickMs`. With `cap = tickMs + stallSlackMs` and `gap = now - lastTick`
//   (real time since the previous tick, or since construction; never negative):
//       live += min(gap, cap)                     the liveness clock
//       if gap > cap: ownStall { stallMs: gap - cap, gapMs: gap }   the rest is our own stall
//
//   An observation stamped with real time t is placed on the liveness clock relative to the latest tick:
//       L(t) = liveAtLastTick + min(t - lastTick, cap)
//   so a heartbeat received (and stamped by the native thread) in the middle of our stall counts as heard
//   at the liveness time of the tick that ends the stall: it is fresh, not 3 s old. t earlier than the
//   latest tick maps to liveAtLastTick - (lastTick - t), which can only make it look older, never
//   fresher. A channel keeps the latest L it has seen; an older observation does not move it.
//
//   Consequences: a 3 s stall of ours with failAfterMs 400 advances the liveness clock by one `cap` only,
//   so no peer can be declared failed by the stall; a peer that really died (before or during the stall)
//   is declared failed once failAfterMs of liveness time has passed since it was last heard, i.e. at most
//   failAfterMs after the stall ends. While our loop stays stalled, detection slows down (each late tick
//   credits at most `cap`); an agent hung longer than its heartbeat lease goes silent itself and the
//   other nodes take over, so this discount cannot keep a dead cluster from failing over.
//
// STATES AND RULES (all durations on the liveness clock, evaluated by tick(); observe() only records):
//   silence(channel) = live - lastHeard(channel); for a channel never heard, live - baseline, where the
//                      baseline is the moment its peer was first heard on any channel (0 before that).
//   peer 'unknown' -> 'alive'   as soon as any channel has been heard (peerAlive, from 'unknown').
//        'unknown' never becomes 'failed' by itself: a peer not heard since we started is reported as
//        unknown for as long as that lasts (snapshot shows for how long); what to do about it (the
//        startup rules: wait, then check the disks) is the daemon's decision, not membership's.
//   peer 'alive' -> 'failed'    when silence(every channel) >= failAfterMs (peerFailed, exactly once).
//   peer 'failed' -> 'alive'    when some channel has been heard continuously for recoverAfterMs: its
//        current run (consecutive observations with gaps < failAfterMs) spans >= recoverAfterMs from the
//        first observation to the latest, and silence(channel) < failAfterMs now. A peer heard in short
//        bursts with longer gaps between them never comes back (flap damping).
//   channel (while its peer is alive): 'up'/'unknown' -> 'down' when silence >= failAfterMs
//        (channelDown; neverHeard when it never was); 'down' -> 'up' when silence < failAfterMs
//        (channelUp, with how long it had been silent); 'unknown' -> 'up' silently. When the peer fails
//        every channel becomes 'down' without events (peerFailed says it); when it recovers, a channel
//        still silent gets a channelDown of its own.
//   EXPECTED channels. A channel can be marked not expected for a peer (expect()): the disk channel of a
//        peer that does not hold the disk, since only a disk's holder pulses on it (src/daemon/disk-pulse.ts).
//        Heard, it counts for liveness like any other; silent, it is 'idle', never 'down', and raises no
//        channelDown. Expected again, its silence counts from that moment (a new holder is given
//        failAfterMs to pulse before its channel is called down).

export type PeerState = 'unknown' | 'alive' | 'failed';
export type ChannelState = 'unknown' | 'up' | 'down' | 'idle';

export interface MembershipOptions {
  peers: ReadonlyArray<{ name: string; channels: readonly string[] }>;
  /** Every channel silent this long (liveness time): the peer has failed. One channel: channelDown. */
  failAfterMs: number;
  /** A failed peer must be heard continuously this long on one channel before it is alive again. */
  recoverAfterMs: number;
  /** The interval at which the caller calls tick(). */
  tickMs: number;
  /** How late a tick may be before the excess counts as our own stall. */
  stallSlackMs: number;
}

export type MembershipEvent =
  | { kind: 'ownStall'; stallMs: number; gapMs: number }
  | {
    kind: 'peerAlive'; peer: string; from: 'unknown' | 'failed';
    /** Channels heard within failAfterMs at this tick. */
    channels: string[];
    /** For a recovery: the length of the continuous run that brought the peer back. */
    heardForMs: number;
  }
  | {
    kind: 'peerFailed'; peer: string;
    /** Since the peer was last heard on any channel. */
    silentMs: number;
    /** Per channel, silence (null: never heard). */
    channels: Record<string, number | null>;
    /** Set when the peer was declared failed by declareFailed (its distress), not by silence. */
    declared?: string;
  }
  | { kind: 'channelDown'; peer: string; channel: string; silentMs: number; neverHeard: boolean }
  | { kind: 'channelUp'; peer: string; channel: string; silentMs: number };

export interface ChannelSnapshot {
  channel: string;
  state: ChannelState;
  /** Real milliseconds since the last observation (null: never heard). */
  lastHeardAgeMs: number | null;
  /** Silence on the liveness clock as of the latest tick (what the rules compare). */
  silentMs: number;
}

export interface PeerSnapshot {
  peer: string;
  state: PeerState;
  /** Liveness milliseconds in the current state. */
  forMs: number;
  channels: ChannelSnapshot[];
}

export interface MembershipSnapshot {
  /** The liveness clock: milliseconds of our own responsive time since construction. */
  livenessMs: number;
  /** Total own stall discounted so far. */
  ownStallMs: number;
  peers: PeerSnapshot[];
}

interface Channel {
  name: string;
  state: ChannelState;
  lastHeard: number | undefined;      // liveness time
  lastHeardReal: number | undefined;  // caller's real time
  runStart: number;                   // liveness time of the first observation of the current run
  gapBeforeRun: number;               // the silence that ended when the current run started
  expected: boolean;                  // its silence is a fault (see EXPECTED channels)
  expectedSince: number;              // liveness time it became expected
}

interface Peer {
  name: string;
  state: PeerState;
  since: number;     // liveness time of the last state change
  baseline: number;  // liveness time from which a never-heard channel's silence counts
  channels: Map<string, Channel>;
}

function checkTime(name: string, v: number): void {
  if (!Number.isFinite(v)) throw new RangeError(`${name} must be a finite number of milliseconds (got ${v})`);
}

export class Membership {
  private readonly failAfterMs: number;
  private readonly recoverAfterMs: number;
  private readonly cap: number;
  private readonly peers = new Map<string, Peer>();
  private live = 0;
  private lastTick: number;
  private ownStallTotal = 0;

  /** startMs: the caller's clock now; the liveness clock starts at 0 there. */
  constructor(options: MembershipOptions, startMs: number) {
    checkTime('startMs', startMs);
    const { failAfterMs, recoverAfterMs, tickMs, stallSlackMs } = options;
    for (const [k, v] of Object.entries({ failAfterMs, recoverAfterMs, tickMs, stallSlackMs })) {
      checkTime(k, v);
      if (v < 0) throw new RangeError(`${k} must not be negative`);
    }
    if (tickMs <= 0 || failAfterMs <= 0) throw new RangeError('tickMs and failAfterMs must be positive');
    if (failAfterMs < tickMs) throw new RangeError(`failAfterMs (${failAfterMs}) must be at least tickMs (${tickMs})`);
    this.failAfterMs = failAfterMs;
    this.recoverAfterMs = recoverAfterMs;
    this.cap = tickMs + stallSlackMs;
    this.lastTick = startMs;
    for (const p of options.peers) {
      if (this.peers.has(p.name)) throw new RangeError(`peer ${p.name} is listed twice`);
      if (p.channels.length === 0) throw new RangeError(`peer ${p.name} has no channel`);
      const channels = new Map<string, Channel>();
      for (const c of p.channels) {
        if (channels.has(c)) throw new RangeError(`peer ${p.name}: channel ${c} is listed twice`);
        channels.set(c, { name: c, state: 'unknown', lastHeard: undefined, lastHeardReal: undefined, runStart: 0, gapBeforeRun: 0, expected: true, expectedSince: 0 });
      }
      this.peers.set(p.name, { name: p.name, state: 'unknown', since: 0, baseline: 0, channels });
    }
  }

  /** The liveness clock as of the latest tick. */
  get livenessMs(): number {
    return this.live;
  }

  /**
   * A sign of life from `peer` on `channel`, received at real time `atMs`. Returns false (and records
   * nothing) for a peer or channel not configured; the caller counts or logs those.
   */
  observe(peer: string, channel: string, atMs: number): boolean {
    checkTime('atMs', atMs);
    const c = this.peers.get(peer)?.channels.get(channel);
    if (!c) return false;
    const at = this.live + Math.min(atMs - this.lastTick, this.cap);
    if (c.lastHeardReal === undefined || atMs > c.lastHeardReal) c.lastHeardReal = atMs;
    if (c.lastHeard === undefined) {
      c.runStart = at;
      c.gapBeforeRun = at - this.peers.get(peer)!.baseline;
      c.lastHeard = at;
    } else if (at > c.lastHeard) {
      const gap = at - c.lastHeard;
      if (gap >= this.failAfterMs) {
        c.runStart = at;
        c.gapBeforeRun = gap;
      }
      c.lastHeard = at;
    }
    return true;
  }

  /**
   * Whether silence on this channel of this peer is a fault (default: yes). Returns false for a peer or
   * channel not configured.
   */
  expect(peer: string, channel: string, expected: boolean): boolean {
    const c = this.peers.get(peer)?.channels.get(channel);
    if (!c) return false;
    if (c.expected === expected) return true;
    c.expected = expected;
    c.expectedSince = this.live;
    if (!expected && c.state === 'down') c.state = 'idle';
    if (expected && c.state === 'idle') c.state = 'unknown';
    return true;
  }

  /** Advances the liveness clock to real time `nowMs` and applies the rules. */
  tick(nowMs: number): MembershipEvent[] {
    checkTime('nowMs', nowMs);
    const events: MembershipEvent[] = [];
    const gap = Math.max(0, nowMs - this.lastTick);
    const credit = Math.min(gap, this.cap);
    if (gap > credit) {
      this.ownStallTotal += gap - credit;
      events.push({ kind: 'ownStall', stallMs: gap - credit, gapMs: gap });
    }
    this.live += credit;
    this.lastTick = Math.max(this.lastTick, nowMs);
    for (const p of this.peers.values()) this.evaluate(p, events);
    return events;
  }

  /**
   * The peer said it is going away (seed 002's distress): failed now, without waiting for silence. Every
   * channel forgets what it heard, so the peer comes back only by being heard anew for recoverAfterMs
   * (the caller stops observing the incarnation that sent distress). Returns the peerFailed event, or
   * nothing for an unknown peer or one already failed.
   */
  declareFailed(peer: string, why: string): MembershipEvent | undefined {
    const p = this.peers.get(peer);
    if (!p || p.state === 'failed') return undefined;
    const perChannel: Record<string, number | null> = {};
    for (const c of p.channels.values()) {
      perChannel[c.name] = c.lastHeard === undefined ? null : this.silence(p, c);
      c.state = 'down';
      c.lastHeard = undefined;
    }
    p.state = 'failed';
    p.since = this.live;
    p.baseline = this.live;
    const heard = Object.values(perChannel).filter((v): v is number => v !== null);
    return { kind: 'peerFailed', peer, silentMs: heard.length ? Math.min(...heard) : 0, channels: perChannel, declared: why };
  }

  /**
   * The peer restarted (the caller heard a new incarnation of it): a failed peer heard now is alive at
   * once, without the recovery hysteresis, which is there for a peer heard in bursts, not for one that
   * came back as a new process. Returns the peerAlive event, or nothing (not failed, or not heard now).
   */
  restarted(peer: string): MembershipEvent | undefined {
    const p = this.peers.get(peer);
    if (!p || p.state !== 'failed') return undefined;
    if (![...p.channels.values()].some((c) => this.heardNow(p, c))) return undefined;
    const events: MembershipEvent[] = [];
    this.becomeAlive(p, 'failed', 0, events);
    return events[0];
  }

  private silence(p: Peer, c: Channel): number {
    return Math.max(0, this.live - (c.lastHeard ?? p.baseline));
  }

  private heardNow(p: Peer, c: Channel): boolean {
    return c.lastHeard !== undefined && this.silence(p, c) < this.failAfterMs;
  }

  private evaluate(p: Peer, events: MembershipEvent[]): void {
    const channels = [...p.channels.values()];
    if (p.state === 'unknown') {
      if (!channels.some((c) => this.heardNow(p, c))) return;
      p.baseline = Math.min(...channels.map((c) => c.lastHeard ?? Infinity));
      this.becomeAlive(p, 'unknown', 0, events);
    } else if (p.state === 'failed') {
      let run = -1;
      for (const c of channels) {
        if (!this.heardNow(p, c)) continue;
        const length = c.lastHeard! - c.runStart;
        if (length >= this.recoverAfterMs && length > run) run = length;
      }
      if (run < 0) return;
      this.becomeAlive(p, 'failed', run, events);
    }
    // alive (possibly just now)
    if (channels.every((c) => this.silence(p, c) >= this.failAfterMs)) {
      p.state = 'failed';
      p.since = this.live;
      const perChannel: Record<string, number | null> = {};
      for (const c of channels) {
        perChannel[c.name] = c.lastHeard === undefined ? null : this.silence(p, c);
        c.state = 'down';
      }
      const silentMs = Math.min(...channels.map((c) => this.silence(p, c)));
      events.push({ kind: 'peerFailed', peer: p.name, silentMs, channels: perChannel });
      return;
    }
    for (const c of channels) {
      const silentMs = this.silence(p, c);
      if (!c.expected) {
        c.state = silentMs >= this.failAfterMs ? 'idle' : c.lastHeard !== undefined ? 'up' : 'idle';
        continue;
      }
      if (silentMs >= this.failAfterMs && this.live - c.expectedSince >= this.failAfterMs) {
        if (c.state !== 'down') {
          c.state = 'down';
          events.push({ kind: 'channelDown', peer: p.name, channel: c.name, silentMs, neverHeard: c.lastHeard === undefined });
        }
      } else if (silentMs < this.failAfterMs && c.lastHeard !== undefined && c.state !== 'up') {
        if (c.state === 'down') events.push({ kind: 'channelUp', peer: p.name, channel: c.name, silentMs: c.gapBeforeRun });
        c.state = 'up';
      }
    }
  }

  private becomeAlive(p: Peer, from: 'unknown' | 'failed', heardForMs: number, events: MembershipEvent[]): void {
    p.state = 'alive';
    p.since = this.live;
    const up: string[] = [];
    for (const c of p.channels.values()) {
      // Channels heard now are up with the peer (no channelUp of their own); the loop in evaluate()
      // then reports the ones still silent as down.
      if (this.heardNow(p, c)) {
        c.state = 'up';
        up.push(c.name);
      } else if (from === 'failed') {
        c.state = 'unknown';
      }
    }
    events.push({ kind: 'peerAlive', peer: p.name, from, channels: up, heardForMs });
  }

  /** Status for people and the control socket. nowMs: the caller's real clock, for the ages. */
  snapshot(nowMs: number): MembershipSnapshot {
    checkTime('nowMs', nowMs);
    return {
      livenessMs: this.live,
      ownStallMs: this.ownStallTotal,
      peers: [...this.peers.values()].map((p) => ({
        peer: p.name,
        state: p.state,
        forMs: this.live - p.since,
        channels: [...p.channels.values()].map((c) => ({
          channel: c.name,
          state: c.state,
          lastHeardAgeMs: c.lastHeardReal === undefined ? null : Math.max(0, nowMs - c.lastHeardReal),
          silentMs: this.silence(p, c),
        })),
      })),
    };
  }
}

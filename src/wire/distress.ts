// The DISTRESS message (seed 002, issue 5): "this node is about to die, take over now". Pure: the payload
// layout, its codec, and what a receiver does with a datagram before the agent acts on it (authenticate,
// refuse unknown nodes, stale incarnations and replays, collapse repeats). The sender is native
// (native/distress_set.cc): it builds and signs every datagram at arming time, so these bytes are fixed long
// before any fault; the unit tests check that both sides agree byte for byte. docs/distress.md has the
// layout and the design.
//
// A distress datagram is an ordinary VGL datagram (src/wire/datagram.ts): type DISTRESS, stream DISTRESS,
// the cluster tag in the header, HMAC-SHA256 over header and payload. The payload, 32 bytes, big-endian:
//
//   off len field
//   0   1   version      1
//   1   1   repeat       which copy of the event this is, 0 .. repeats-1
//   2   1   repeats      how many copies of the event the sender sends, 1..16
//   3   1   flags        sent 0, ignored on receipt (room for additions old receivers may skip)
//   4   2   reason       reason code (REASON_CODES), 1..65535
//   6   2   node         the sender's node id: must equal the header's sender
//   8   8   incarnation  must equal the header's incarnation
//   16  8   event        the header sequence of copy 0 of this event; copy r has sequence event + r
//   24  8   armedAtMs    wall-clock ms when the sender signed it (for people: nothing is written at send time)
//
// Receivers deduplicate on (sender, incarnation, reason, event): the copies of one event, and the same
// event on every network, collapse into one; a second trigger of the same reason is another event.
import { decodeDatagram, MAX_U64, MessageType, Stream, type DatagramHeader, type RejectReason } from './datagram.js';
import { ReplayWindow } from './replay.js';

export const DISTRESS_PAYLOAD_VERSION = 1;
export const DISTRESS_PAYLOAD_LENGTH = 32;
/** Header 30 + payload 32 + HMAC 32. */
export const DISTRESS_DATAGRAM_LENGTH = 94;
export const MAX_DISTRESS_REPEATS = 16;

/**
 * Why a node sends distress. The power reasons are the ones src/power/policy.ts decides; the codes are
 * the wire's and never change meaning (a new reason gets a new code).
 */
export const REASON_CODES = {
  unknown: 1,
  'power-low-battery': 2,
  'power-forced-shutdown': 3,
  'power-on-battery-grace': 4,
  'power-comms-lost-on-battery': 5,
  'hardware-fault': 6,
  /** SIGSEGV, SIGBUS, SIGABRT, SIGILL or SIGFPE in the agent: sent from the addon's signal handler. */
  'fatal-signal': 7,
  /** `vigil distress test`: peers log it and do nothing else. */
  'operator-test': 8,
  /** A cluster interface went down or lost its address: sent on the others. */
  'link-down': 9,
} as const;
export type DistressReason = keyof typeof REASON_CODES;
export const DISTRESS_REASONS = Object.keys(REASON_CODES) as DistressReason[];

const REASON_BY_CODE: ReadonlyMap<number, DistressReason> = new Map(
  DISTRESS_REASONS.map((r) => [REASON_CODES[r], r] as const),
);

export function reasonCode(reason: DistressReason): number {
  const code = REASON_CODES[reason];
  if (code === undefined) throw new RangeError(`unknown distress reason ${String(reason)}`);
  return code;
}

/** A code this build does not know reads as 'unknown' (still a distress: the sender is leaving either way). */
export function reasonOfCode(code: number): DistressReason {
  return REASON_BY_CODE.get(code) ?? 'unknown';
}

export type SendMode = 'sync' | 'async';

/**
 * Seed 002 [0040][0041][0049]: time left → async (the dedicated thread sends; the caller goes on with an
 * orderly shutdown); failure imminent or of a kind not recognised → sync (sent on the calling thread
 * before it returns). The power entries match src/power/policy.ts's DEFAULT_MODES.
 */
export const DEFAULT_SEND_MODES: Readonly<Record<DistressReason, SendMode>> = {
  unknown: 'sync',
  'power-low-battery': 'sync',
  'power-forced-shutdown': 'sync',
  'power-on-battery-grace': 'async',
  'power-comms-lost-on-battery': 'async',
  'hardware-fault': 'sync',
  'fatal-signal': 'sync',
  'operator-test': 'async',
  'link-down': 'sync',
};

/** The send mode for an event; anything not recognised is sync (seed 002 [0049]). */
export function defaultSendMode(reason: string): SendMode {
  return Object.hasOwn(DEFAULT_SEND_MODES, reason) ? DEFAULT_SEND_MODES[reason as DistressReason] : 'sync';
}

/** A distress the receiver acts on: every reason but the operator's test. */
export function isActionable(reason: DistressReason): boolean {
  return reason !== 'operator-test';
}

export interface DistressPayload {
  /** The wire code; reasonOfCode maps it to a name. */
  reasonCode: number;
  node: number;
  incarnation: bigint;
  event: bigint;
  repeat: number;
  repeats: number;
  armedAtMs: bigint;
}

export type DistressPayloadReject =
  | 'payload-length' // not 32 bytes
  | 'payload-version' // another payload version
  | 'payload-reason' // reason code 0
  | 'payload-repeat' // repeats 0 or over 16, or repeat >= repeats
  | 'payload-node' // node id 0
  | 'payload-incarnation' // incarnation 0
  | 'payload-event'; // event 0, or event + repeat past 2^64-1

export type DistressPayloadResult = { ok: true; payload: DistressPayload } | { ok: false; reason: DistressPayloadReject };

function checkInt(n: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${what} must be ${min}..${max}, got ${n}`);
}

function checkBig(n: bigint, min: bigint, what: string): void {
  if (typeof n !== 'bigint' || n < min || n > MAX_U64) throw new RangeError(`${what} must be ${min}..2^64-1, got ${String(n)}`);
}

export function encodeDistressPayload(p: DistressPayload): Buffer {
  checkInt(p.reasonCode, 1, 0xffff, 'reason code');
  checkInt(p.node, 1, 0xffff, 'node');
  checkInt(p.repeats, 1, MAX_DISTRESS_REPEATS, 'repeats');
  checkInt(p.repeat, 0, p.repeats - 1, 'repeat');
  checkBig(p.incarnation, 1n, 'incarnation');
  checkBig(p.event, 1n, 'event');
  checkBig(p.armedAtMs, 0n, 'armedAtMs');
  if (p.event + BigInt(p.repeat) > MAX_U64) throw new RangeError('event + repeat exceeds 2^64-1');
  const b = Buffer.alloc(DISTRESS_PAYLOAD_LENGTH);
  b[0] = DISTRESS_PAYLOAD_VERSION;
  b[1] = p.repeat;
  b[2] = p.repeats;
  b[3] = 0;
  b.writeUInt16BE(p.reasonCode, 4);
  b.writeUInt16BE(p.node, 6);
  b.writeBigUInt64BE(p.incarnation, 8);
  b.writeBigUInt64BE(p.event, 16);
  b.writeBigUInt64BE(p.armedAtMs, 24);
  return b;
}

/** Reads a payload; never throws. Consistency with the header is checkDistressHeader's job. */
export function decodeDistressPayload(b: Uint8Array): DistressPayloadResult {
  if (!(b instanceof Uint8Array) || b.length !== DISTRESS_PAYLOAD_LENGTH) return { ok: false, reason: 'payload-length' };
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (v[0] !== DISTRESS_PAYLOAD_VERSION) return { ok: false, reason: 'payload-version' };
  const repeat = v[1]!;
  const repeats = v[2]!;
  if (repeats < 1 || repeats > MAX_DISTRESS_REPEATS || repeat >= repeats) return { ok: false, reason: 'payload-repeat' };
  const reasonCodeValue = v.readUInt16BE(4);
  if (reasonCodeValue === 0) return { ok: false, reason: 'payload-reason' };
  const node = v.readUInt16BE(6);
  if (node === 0) return { ok: false, reason: 'payload-node' };
  const incarnation = v.readBigUInt64BE(8);
  if (incarnation === 0n) return { ok: false, reason: 'payload-incarnation' };
  const event = v.readBigUInt64BE(16);
  if (event === 0n || event + BigInt(repeat) > MAX_U64) return { ok: false, reason: 'payload-event' };
  return {
    ok: true,
    payload: { reasonCode: reasonCodeValue, node, incarnation, event, repeat, repeats, armedAtMs: v.readBigUInt64BE(24) },
  };
}

/** The header fields a payload repeats must agree with it: a signed mismatch is a sender bug, not a message. */
export function checkDistressHeader(h: DatagramHeader, p: DistressPayload): 'payload-mismatch' | undefined {
  if (h.sender !== p.node || h.incarnation !== p.incarnation || h.sequence !== p.event + BigInt(p.repeat)) return 'payload-mismatch';
  return undefined;
}

/** The header of copy `repeat` of an event: what the native sender writes, for tests and tools. */
export function distressHeader(clusterTagValue: number, p: DistressPayload): DatagramHeader {
  return {
    type: MessageType.DISTRESS, stream: Stream.DISTRESS, sender: p.node, clusterTag: clusterTagValue,
    incarnation: p.incarnation, sequence: p.event + BigInt(p.repeat),
  };
}

// ---- receiving ----

export interface DistressKey {
  sender: number;
  incarnation: bigint;
  reasonCode: number;
  event: bigint;
}

/**
 * Remembers which distress events it has seen: `first` is true once per (sender, incarnation, reason,
 * event). Memory is bounded: per sender only its newest incarnation is kept (an older one is refused:
 * false), and at most `perSender` events of it (the oldest forgotten first; a forgotten event replayed
 * within the replay window is still refused there).
 */
export class DistressDeduplicator {
  private readonly senders = new Map<number, { incarnation: bigint; seen: Set<string> }>();

  constructor(private readonly perSender = 64) {
    checkInt(perSender, 1, 1 << 20, 'perSender');
  }

  first(k: DistressKey): boolean {
    let s = this.senders.get(k.sender);
    if (s === undefined || k.incarnation > s.incarnation) {
      s = { incarnation: k.incarnation, seen: new Set() };
      this.senders.set(k.sender, s);
    } else if (k.incarnation < s.incarnation) {
      return false;
    }
    const id = `${k.reasonCode}:${k.event}`;
    if (s.seen.has(id)) return false;
    s.seen.add(id);
    if (s.seen.size > this.perSender) s.seen.delete(s.seen.values().next().value!);
    return true;
  }
}

export interface Distress {
  sender: number;
  incarnation: bigint;
  reason: DistressReason;
  reasonCode: number;
  event: bigint;
  repeat: number;
  repeats: number;
  armedAtMs: bigint;
  /** The datagram's header sequence: event + repeat. */
  sequence: bigint;
}

/** Why a receiver dropped a datagram, in the order the checks run. */
export type DistressDrop =
  | RejectReason // decodeDatagram: not ours, another cluster, bad HMAC, ...
  | 'not-distress' // authentic, but not type DISTRESS on stream DISTRESS
  | 'self' // claims to come from this node: a reflection
  | 'unknown-node' // not a configured peer
  | 'stale-incarnation' // older than the sender's incarnation we know of
  | 'replay' // this exact datagram (sender, incarnation, sequence) was accepted before
  | 'too-old' // below the replay window
  | DistressPayloadReject
  | 'payload-mismatch'
  | 'duplicate'; // another copy of an event already accepted (other repeat, other network)

export type DistressReceiveResult =
  | {
    ok: true;
    distress: Distress;
    /** Every reason but 'operator-test'. */
    actionable: boolean;
    /**
     * The first actionable distress from this (sender, incarnation): the one to fail the sender over on.
     * Later ones (another reason, another event) are for the log.
     */
    first: boolean;
  }
  | { ok: false; reason: DistressDrop };

export interface DistressReceiverOptions {
  key: Buffer;
  clusterTag: number;
  selfId: number;
  /** The configured peers' node ids (not this node). */
  peers: Iterable<number>;
  /**
   * The sender's current incarnation as the rest of the agent knows it (heartbeats, messages): a distress
   * from an older one is a stale process or a replay. undefined: none known yet.
   */
  currentIncarnation?: (sender: number) => bigint | undefined;
  /** Events remembered per sender (DistressDeduplicator). */
  dedupPerSender?: number;
}

/**
 * The receiving half, without sockets: the agent hands it each datagram that arrived on stream DISTRESS
 * and acts on `first`. Never throws; every drop is counted in `dropped` by reason.
 */
export class DistressReceiver {
  private readonly replay: ReplayWindow;
  private readonly dedup: DistressDeduplicator;
  private readonly peers: ReadonlySet<number>;
  private readonly acted = new Map<number, bigint>();
  readonly dropped: Partial<Record<DistressDrop, number>> = {};
  accepted = 0;

  constructor(private readonly o: DistressReceiverOptions) {
    this.peers = new Set(o.peers);
    this.replay = new ReplayWindow(this.peers);
    this.dedup = new DistressDeduplicator(o.dedupPerSender);
  }

  receive(buf: Uint8Array): DistressReceiveResult {
    const r = this.check(buf);
    if (!r.ok) this.dropped[r.reason] = (this.dropped[r.reason] ?? 0) + 1;
    else this.accepted++;
    return r;
  }

  private check(buf: Uint8Array): DistressReceiveResult {
    const d = decodeDatagram(this.o.key, buf, this.o.clusterTag);
    if (!d.ok) return d;
    const h = d.header;
    if (h.type !== MessageType.DISTRESS || h.stream !== Stream.DISTRESS) return { ok: false, reason: 'not-distress' };
    if (h.sender === this.o.selfId) return { ok: false, reason: 'self' };
    if (!this.peers.has(h.sender)) return { ok: false, reason: 'unknown-node' };
    const known = this.o.currentIncarnation?.(h.sender);
    if (known !== undefined && h.incarnation < known) return { ok: false, reason: 'stale-incarnation' };
    // Payload before the replay window: a malformed datagram must not advance it.
    const p = decodeDistressPayload(d.payload);
    if (!p.ok) return p;
    const mismatch = checkDistressHeader(h, p.payload);
    if (mismatch) return { ok: false, reason: mismatch };
    const verdict = this.replay.commit(h.sender, Stream.DISTRESS, h.incarnation, h.sequence);
    if (verdict === 'stale-incarnation' || verdict === 'replay' || verdict === 'too-old') return { ok: false, reason: verdict };
    if (verdict !== 'accept') return { ok: false, reason: 'unknown-node' };
    const pl = p.payload;
    if (!this.dedup.first({ sender: h.sender, incarnation: h.incarnation, reasonCode: pl.reasonCode, event: pl.event })) {
      return { ok: false, reason: 'duplicate' };
    }
    const reason = reasonOfCode(pl.reasonCode);
    const actionable = isActionable(reason);
    let first = false;
    if (actionable) {
      const last = this.acted.get(h.sender);
      if (last === undefined || h.incarnation > last) {
        this.acted.set(h.sender, h.incarnation);
        first = true;
      }
    }
    return {
      ok: true,
      actionable,
      first,
      distress: {
        sender: h.sender, incarnation: h.incarnation, reason, reasonCode: pl.reasonCode, event: pl.event,
        repeat: pl.repeat, repeats: pl.repeats, armedAtMs: pl.armedAtMs, sequence: h.sequence,
      },
    };
  }
}

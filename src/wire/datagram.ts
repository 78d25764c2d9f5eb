// The authenticated datagram that carries all cluster traffic: a fixed 30-byte big-endian header, an
// opaque payload and an HMAC-SHA256 over both. The native heartbeat thread builds and parses the same
// bytes in C++, so every field sits at a fixed offset (docs/cluster.md, "Wire format").
//
// decodeDatagram never throws: a datagram is whatever the network hands us. The checks that need no
// key run first, so traffic from another cluster or another program costs a few comparisons, not an
// HMAC; the HMAC is compared in constant time.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const WIRE_VERSION = 0x01;
/** "VGL": the first three bytes of every datagram; the fourth is WIRE_VERSION. */
export const MAGIC = Buffer.from('VGL', 'latin1');

export const HEADER_LENGTH = 30;
export const MAC_LENGTH = 32;
/** Fits a 1500-byte Ethernet MTU with room for IPv6 and UDP headers and a tunnel or two. */
export const MAX_DATAGRAM = 1400;
export const MAX_PAYLOAD = MAX_DATAGRAM - HEADER_LENGTH - MAC_LENGTH;

export const MessageType = {
  HEARTBEAT: 1,
  DB_UPDATE: 2,
  DB_DIGEST: 3,
  DB_REQUEST: 4,
  DISTRESS: 5,
  /** The last-active pair reports (src/daemon/last-active.ts). */
  PAIR_STATE: 7,
  /** A node's view for watchdog self-fencing (src/daemon/self-fence.ts). */
  NODE_VIEW: 8,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];
/** Allocated to control traffic, not yet defined: neither sent nor accepted until it is. */
export const RESERVED_TYPE_CONTROL = 6;

/** Each (sender, stream) has its own sequence space: the native thread and the agent never share a counter. */
export const Stream = {
  HEARTBEAT_ENGINE: 0,
  AGENT: 1,
  DISTRESS: 2,
} as const;
export type Stream = (typeof Stream)[keyof typeof Stream];

export const MAX_U64 = 2n ** 64n - 1n;

export interface DatagramHeader {
  type: MessageType;
  stream: Stream;
  /** Node id from the config, 1..65535. */
  sender: number;
  /** clusterTag(cluster name), u32. */
  clusterTag: number;
  /** 1..2^64-1, from nextIncarnation. */
  incarnation: bigint;
  /** 1..2^64-1, per (incarnation, stream). */
  sequence: bigint;
}

/** Why a datagram was dropped, in the order the checks run. */
export type RejectReason =
  | 'short' // fewer bytes than a header and a MAC (or not bytes at all)
  | 'length' // over MAX_DATAGRAM, or the payload length field disagrees with the datagram's size
  | 'magic' // not "VGL": not ours
  | 'version' // ours, another wire version
  | 'type' // unknown or reserved message type
  | 'stream' // unknown stream
  | 'sender' // sender id 0
  | 'incarnation' // incarnation 0
  | 'sequence' // sequence 0
  | 'cluster' // another cluster's tag: dropped before the HMAC
  | 'hmac'; // wrong key or altered bytes

export type DecodeResult =
  | { ok: true; header: DatagramHeader; payload: Buffer }
  | { ok: false; reason: RejectReason };

const VALID_TYPES: ReadonlySet<number> = new Set(Object.values(MessageType));
const VALID_STREAMS: ReadonlySet<number> = new Set(Object.values(Stream));

/** The first four bytes of SHA-256 of the cluster name (UTF-8), as a big-endian u32. */
export function clusterTag(clusterName: string): number {
  return createHash('sha256').update(clusterName, 'utf8').digest().readUInt32BE(0);
}

function mac(key: Buffer, signed: Buffer): Buffer {
  return createHmac('sha256', key).update(signed).digest();
}

function checkU64(n: bigint, what: string): void {
  if (typeof n !== 'bigint' || n < 1n || n > MAX_U64) throw new RangeError(`${what} must be 1..2^64-1, got ${String(n)}`);
}

/** Builds a signed datagram. Throws RangeError on a header or payload this side must never send. */
export function encodeDatagram(key: Buffer, header: DatagramHeader, payload: Buffer): Buffer {
  if (key.length < 32) throw new RangeError(`cluster key must be at least 32 bytes, got ${key.length}`);
  if (!VALID_TYPES.has(header.type)) throw new RangeError(`unknown message type ${header.type}`);
  if (!VALID_STREAMS.has(header.stream)) throw new RangeError(`unknown stream ${header.stream}`);
  if (!Number.isInteger(header.sender) || header.sender < 1 || header.sender > 0xffff) {
    throw new RangeError(`sender must be 1..65535, got ${header.sender}`);
  }
  if (!Number.isInteger(header.clusterTag) || header.clusterTag < 0 || header.clusterTag > 0xffffffff) {
    throw new RangeError(`cluster tag must be a u32, got ${header.clusterTag}`);
  }
  checkU64(header.incarnation, 'incarnation');
  checkU64(header.sequence, 'sequence');
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);

  const signedLength = HEADER_LENGTH + payload.length;
  const buf = Buffer.alloc(signedLength + MAC_LENGTH);
  MAGIC.copy(buf, 0);
  buf[3] = WIRE_VERSION;
  buf[4] = header.type;
  buf[5] = header.stream;
  buf.writeUInt16BE(header.sender, 6);
  buf.writeUInt32BE(header.clusterTag, 8);
  buf.writeBigUInt64BE(header.incarnation, 12);
  buf.writeBigUInt64BE(header.sequence, 20);
  buf.writeUInt16BE(payload.length, 28);
  payload.copy(buf, HEADER_LENGTH);
  mac(key, buf.subarray(0, signedLength)).copy(buf, signedLength);
  return buf;
}

/**
 * Parses and authenticates a datagram. `ok: true` means the bytes were signed with `key` for this
 * cluster; it says nothing about freshness, which is ReplayWindow's job. The payload is a copy, so the
 * caller may reuse its receive buffer.
 */
export function decodeDatagram(key: Buffer, buf: Uint8Array, expectClusterTag: number): DecodeResult {
  if (!(buf instanceof Uint8Array) || buf.length < HEADER_LENGTH + MAC_LENGTH) return { ok: false, reason: 'short' };
  if (buf.length > MAX_DATAGRAM) return { ok: false, reason: 'length' };
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  if (b[0] !== MAGIC[0] || b[1] !== MAGIC[1] || b[2] !== MAGIC[2]) return { ok: false, reason: 'magic' };
  if (b[3] !== WIRE_VERSION) return { ok: false, reason: 'version' };
  const type = b.readUInt8(4);
  if (!VALID_TYPES.has(type)) return { ok: false, reason: 'type' };
  const stream = b.readUInt8(5);
  if (!VALID_STREAMS.has(stream)) return { ok: false, reason: 'stream' };
  const sender = b.readUInt16BE(6);
  if (sender === 0) return { ok: false, reason: 'sender' };
  const incarnation = b.readBigUInt64BE(12);
  if (incarnation === 0n) return { ok: false, reason: 'incarnation' };
  const sequence = b.readBigUInt64BE(20);
  if (sequence === 0n) return { ok: false, reason: 'sequence' };
  const payloadLength = b.readUInt16BE(28);
  if (HEADER_LENGTH + payloadLength + MAC_LENGTH !== b.length) return { ok: false, reason: 'length' };
  const tag = b.readUInt32BE(8);
  if (tag !== expectClusterTag) return { ok: false, reason: 'cluster' };

  const signedLength = HEADER_LENGTH + payloadLength;
  const expected = mac(key, b.subarray(0, signedLength));
  if (!timingSafeEqual(expected, b.subarray(signedLength))) return { ok: false, reason: 'hmac' };

  return {
    ok: true,
    header: { type: type as MessageType, stream: stream as Stream, sender, clusterTag: tag, incarnation, sequence },
    payload: Buffer.from(b.subarray(HEADER_LENGTH, signedLength)),
  };
}

// ---- HEARTBEAT payload: fixed 44 bytes, big-endian ----

export const HEARTBEAT_PAYLOAD_LENGTH = 44;
const FLAG_LEASE_FRESH = 0x01;
const MAX_U32 = 0xffffffff;

/**
 * One heartbeat, sent by node `sender` to node `destination` over network `network`. The ack fields
 * describe what the sender last received from `destination` on this same network (zeros until it has
 * received anything), so each side learns per network whether its own heartbeats arrive and how long
 * the round trip takes.
 */
export interface Heartbeat {
  destination: number;
  /** Index of the network (channel) in the cluster config, 0..255. */
  network: number;
  /** The sending agent renewed its lease recently: its event loop is alive, not only its native thread. */
  leaseFresh: boolean;
  /** Stream-0 sequence and incarnation of the newest heartbeat received from `destination` on this network. */
  ackSeq: bigint;
  ackIncarnation: bigint;
  /** Hash of the sender's database versions; a change tells peers to sync. */
  dbDigest: number;
  /** The sender's monotonic clock at sending, in microseconds. */
  sentAtMonoUs: bigint;
  /** `sentAtMonoUs` of the acknowledged heartbeat, in the destination's clock. */
  echoSentAtUs: bigint;
  /**
   * Microseconds the acknowledged heartbeat waited here before this one carried its ack (saturates at
   * 2^32-1). The destination's round trip is `now - echoSentAtUs - ackDelayUs`; without it every RTT
   * would include up to one heartbeat interval of waiting.
   */
  ackDelayUs: number;
}

export type HeartbeatDecodeResult = { ok: true; heartbeat: Heartbeat } | { ok: false; reason: 'length' | 'destination' };

function checkRange(n: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${what} must be ${min}..${max}, got ${n}`);
}

function checkU64OrZero(n: bigint, what: string): void {
  if (typeof n !== 'bigint' || n < 0n || n > MAX_U64) throw new RangeError(`${what} must be 0..2^64-1, got ${String(n)}`);
}

export function encodeHeartbeat(hb: Heartbeat): Buffer {
  checkRange(hb.destination, 1, 0xffff, 'destination');
  checkRange(hb.network, 0, 0xff, 'network');
  checkRange(hb.dbDigest, 0, MAX_U32, 'dbDigest');
  checkRange(hb.ackDelayUs, 0, MAX_U32, 'ackDelayUs');
  checkU64OrZero(hb.ackIncarnation, 'ackIncarnation');
  checkU64OrZero(hb.ackSeq, 'ackSeq');
  checkU64OrZero(hb.sentAtMonoUs, 'sentAtMonoUs');
  checkU64OrZero(hb.echoSentAtUs, 'echoSentAtUs');
  const p = Buffer.alloc(HEARTBEAT_PAYLOAD_LENGTH);
  p.writeUInt16BE(hb.destination, 0);
  p[2] = hb.network;
  p[3] = hb.leaseFresh ? FLAG_LEASE_FRESH : 0;
  p.writeBigUInt64BE(hb.ackSeq, 4);
  p.writeBigUInt64BE(hb.ackIncarnation, 12);
  p.writeUInt32BE(hb.dbDigest, 20);
  p.writeBigUInt64BE(hb.sentAtMonoUs, 24);
  p.writeBigUInt64BE(hb.echoSentAtUs, 32);
  p.writeUInt32BE(hb.ackDelayUs, 40);
  return p;
}

/**
 * Reads a HEARTBEAT payload (from a datagram that already passed decodeDatagram). Flag bits other
 * than bit 0 are ignored: they are sent as zero and reserved for additions that old receivers may skip.
 */
export function decodeHeartbeat(payload: Buffer): HeartbeatDecodeResult {
  if (payload.length !== HEARTBEAT_PAYLOAD_LENGTH) return { ok: false, reason: 'length' };
  const destination = payload.readUInt16BE(0);
  if (destination === 0) return { ok: false, reason: 'destination' };
  return {
    ok: true,
    heartbeat: {
      destination,
      network: payload.readUInt8(2),
      leaseFresh: (payload.readUInt8(3) & FLAG_LEASE_FRESH) !== 0,
      ackSeq: payload.readBigUInt64BE(4),
      ackIncarnation: payload.readBigUInt64BE(12),
      dbDigest: payload.readUInt32BE(20),
      sentAtMonoUs: payload.readBigUInt64BE(24),
      echoSentAtUs: payload.readBigUInt64BE(32),
      ackDelayUs: payload.readUInt32BE(40),
    },
  };
}

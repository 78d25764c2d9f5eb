// Replay protection for authenticated datagrams: a recorded datagram is still correctly signed, so
// without this a captured heartbeat could be replayed to keep a dead node looking alive.
//
// State per configured sender: its newest incarnation, and per stream a sliding window of the last 128
// sequence numbers (the bitmap scheme of RFC 4303 appendix A). Within the window, datagrams may arrive
// out of order (two networks with different delays) and each is accepted once; below it they are
// refused, since we can no longer tell whether they were seen.
//
// The incarnation is per sender, not per (sender, stream): it is the sending process's start, shared by
// its native heartbeat thread and its agent. Once any stream shows a newer incarnation, delayed traffic
// from the old process on the other streams is refused too.
//
// Usage: `commit` only after decodeDatagram returned ok (the HMAC verified) — otherwise forged
// datagrams could advance the window or the incarnation and lock the real sender out. `check` reads
// without changing anything (to drop a duplicate before parsing its payload, or for diagnostics).
import { Stream } from './datagram.js';

export const REPLAY_WINDOW = 128;
const WINDOW_MASK = (1n << BigInt(REPLAY_WINDOW)) - 1n;

export type ReplayVerdict =
  | 'accept'
  | 'replay' // seen already
  | 'too-old' // below the window: may or may not have been seen
  | 'stale-incarnation' // from an older incarnation of the sender than one already accepted
  | 'unknown-sender' // not in the allow-list
  | 'unknown-stream';

interface StreamWindow {
  /** Highest sequence accepted; 0 before any. */
  top: bigint;
  /** Bit i set: sequence top - i was accepted. */
  seen: bigint;
}

interface SenderState {
  incarnation: bigint | undefined;
  streams: Map<number, StreamWindow>;
}

const STREAMS: readonly number[] = Object.values(Stream);

export class ReplayWindow {
  private readonly senders = new Map<number, SenderState>();

  /**
   * `allowed`: the node ids of the configured peers. Only they are tracked, so memory is bounded by the
   * config, not by what arrives. Leave this node out: a datagram claiming to come from us is a reflection.
   */
  constructor(allowed: Iterable<number>) {
    for (const id of allowed) {
      if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw new RangeError(`node id must be 1..65535, got ${id}`);
      this.senders.set(id, { incarnation: undefined, streams: freshStreams() });
    }
  }

  check(sender: number, stream: number, incarnation: bigint, sequence: bigint): ReplayVerdict {
    const s = this.senders.get(sender);
    if (s === undefined) return 'unknown-sender';
    const w = s.streams.get(stream);
    if (w === undefined) return 'unknown-stream';
    if (sequence < 1n) return 'too-old';
    if (s.incarnation === undefined || incarnation > s.incarnation) return 'accept';
    if (incarnation < s.incarnation) return 'stale-incarnation';
    if (sequence > w.top) return 'accept';
    const back = w.top - sequence;
    if (back >= BigInt(REPLAY_WINDOW)) return 'too-old';
    return (w.seen >> back) & 1n ? 'replay' : 'accept';
  }

  /** Checks and, on 'accept', records. Call only for datagrams whose HMAC verified. */
  commit(sender: number, stream: number, incarnation: bigint, sequence: bigint): ReplayVerdict {
    const verdict = this.check(sender, stream, incarnation, sequence);
    if (verdict !== 'accept') return verdict;
    const s = this.senders.get(sender)!;
    if (s.incarnation === undefined || incarnation > s.incarnation) {
      // The sender restarted: its sequence numbers start again at 1 on every stream.
      s.incarnation = incarnation;
      s.streams = freshStreams();
    }
    const w = s.streams.get(stream)!;
    if (sequence > w.top) {
      const shift = sequence - w.top;
      w.seen = shift >= BigInt(REPLAY_WINDOW) ? 1n : ((w.seen << shift) | 1n) & WINDOW_MASK;
      w.top = sequence;
    } else {
      w.seen |= 1n << (w.top - sequence);
    }
    return 'accept';
  }

  /** The newest incarnation accepted from `sender`, if any: a change means the peer restarted. */
  incarnationOf(sender: number): bigint | undefined {
    return this.senders.get(sender)?.incarnation;
  }
}

function freshStreams(): Map<number, StreamWindow> {
  return new Map(STREAMS.map((st) => [st, { top: 0n, seen: 0n }]));
}

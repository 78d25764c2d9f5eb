// Agent-to-agent messages (database replication) over UDP on every network, at each network's port + 1
// (the port itself belongs to the native heartbeat thread).
//
// - Every message is JSON, signed as a stream-1 datagram (src/wire). A message larger than one datagram is
//   cut into fragments, each signed on its own, reassembled by the receiver (incomplete ones are dropped
//   after `fragmentTimeoutMs` on the monotonic clock). A message needs at most MAX_FRAGMENTS of them, which
//   the receiver enforces too: send() refuses a larger one with MessageTooLargeError rather than sending
//   what would be dropped (replication.ts cuts its updates to fit, messageFits()). Reassembly is kept per
//   sender and incarnation (a restarted sender numbers its messages from 1 again), at most
//   MAX_PARTIALS_PER_PEER messages of a sender at a time: the oldest goes first, so no peer, however
//   faulty, can make this node hold more than that many messages' fragments.
// - The SAME bytes go out on every network. The receiver's replay window accepts whichever copy arrives
//   first and drops the other as a replay: redundancy without double processing.
// - Anything that fails to decode, verify or parse is counted by reason and dropped; never thrown.
import { createSocket, type Socket } from 'node:dgram';

import type { Config, NodeConfig } from '../config/schema.js';
import {
  clusterTag, decodeDatagram, encodeDatagram, MAX_PAYLOAD, MessageType, Stream,
} from '../wire/datagram.js';
import { ReplayWindow } from '../wire/replay.js';

export type AgentMessage =
  | { kind: 'update'; entries: unknown[]; markers: unknown[]; nodes?: unknown[] }
  | { kind: 'digest'; versions: unknown; reply: boolean }
  /** This node's last-active reports for the apps it shares with the receiver (checked by the agent). */
  | { kind: 'pair'; reports: unknown[] }
  /**
   * This node's watchdog bound and whether the minority rule binds it (src/daemon/self-fence.ts), and its
   * wall clock as it sent this (peer-clocks.ts; absent from agents before it).
   */
  | { kind: 'view'; watchdogBoundMs: number | null; bound: boolean; sentAtMs?: number };

export interface Received { from: NodeConfig; message: AgentMessage; incarnation: bigint }

interface Partial { sender: number; parts: (string | undefined)[]; count: number; since: number }

/** Envelope of one datagram: the whole message, or fragment i of n of message id. */
type Envelope = { m: AgentMessage } | { f: number; i: number; n: number; d: string };

const OVERHEAD = 64; // the fragment envelope around its slice of text
/** The most fragments one message may have, on either side. */
export const MAX_FRAGMENTS = 64;
/** Messages of one sender reassembled at once (replication sends a few at a time). */
export const MAX_PARTIALS_PER_PEER = 8;
/** Text of the message per fragment: JSON-escaping can at most double a slice. */
const FRAGMENT_TEXT = Math.floor((MAX_PAYLOAD - OVERHEAD) / 2);

/** A message that would need more than MAX_FRAGMENTS datagrams. */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError';
}

/** Does a message of this many characters of JSON text (as send() measures it) fit the fragment limit? */
export function messageFits(length: number): boolean {
  return length <= MAX_FRAGMENTS * FRAGMENT_TEXT;
}

export class Messenger {
  private readonly sockets: Socket[] = [];
  private readonly tag: number;
  private readonly replay: ReplayWindow;
  private sequence = 0n;
  private nextFragmentId = 1;
  private readonly partials = new Map<string, Partial>();
  readonly dropped: Record<string, number> = {};
  sent = 0;
  received = 0;

  constructor(
    private readonly config: Config,
    private readonly self: NodeConfig,
    private readonly key: Buffer,
    private readonly incarnation: bigint,
    private readonly onMessage: (r: Received) => void,
    private readonly fragmentTimeoutMs = 2000,
    /**
     * Distress datagrams (stream 2) arrive on this socket too (src/wire/distress-arming.ts): handed over
     * as they came, for the agent's DistressReceiver to authenticate. Without it they are counted and dropped.
     */
    private readonly onDistress?: (buf: Buffer) => void,
  ) {
    this.tag = clusterTag(config.cluster);
    this.replay = new ReplayWindow(config.nodes.filter((n) => n !== self).map((n) => n.id));
  }

  static port(networkPort: number): number {
    return networkPort + 1;
  }

  async start(): Promise<void> {
    for (const network of this.config.networks) {
      const address = this.self.addresses[network.name]!;
      const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' });
      socket.on('message', (buf) => this.receive(buf));
      socket.on('error', () => { this.count('socket'); });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(Messenger.port(network.port), address, () => { socket.off('error', reject); resolve(); });
      });
      this.sockets.push(socket);
    }
  }

  close(): void {
    for (const s of this.sockets) s.close();
    this.sockets.length = 0;
  }

  /**
   * Sends to one peer on every network; fire and forget (callers retry through the sync protocol). Throws
   * MessageTooLargeError for a message over MAX_FRAGMENTS datagrams, before sending anything.
   */
  send(to: NodeConfig, message: AgentMessage): void {
    for (const datagram of this.encode(message)) {
      this.config.networks.forEach((network, i) => {
        const socket = this.sockets[i];
        if (!socket) return;
        socket.send(datagram, Messenger.port(network.port), to.addresses[network.name]!, (err) => {
          if (err) this.count('send');
        });
      });
      this.sent++;
    }
  }

  private encode(message: AgentMessage): Buffer[] {
    const text = JSON.stringify({ m: message } satisfies Envelope);
    const type = { update: MessageType.DB_UPDATE, digest: MessageType.DB_DIGEST, pair: MessageType.PAIR_STATE, view: MessageType.NODE_VIEW }[message.kind];
    if (Buffer.byteLength(text) <= MAX_PAYLOAD) return [this.sign(type, Buffer.from(text))];
    const inner = JSON.stringify(message);
    const size = FRAGMENT_TEXT;
    const n = Math.ceil(inner.length / size);
    if (n > MAX_FRAGMENTS) {
      throw new MessageTooLargeError(`a ${message.kind} message of ${inner.length} characters needs ${n} datagrams; at most ${MAX_FRAGMENTS} are sent`);
    }
    const f = this.nextFragmentId++;
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const env: Envelope = { f, i, n, d: inner.slice(i * size, (i + 1) * size) };
      out.push(this.sign(type, Buffer.from(JSON.stringify(env))));
    }
    return out;
  }

  private sign(type: MessageType, payload: Buffer): Buffer {
    this.sequence += 1n;
    return encodeDatagram(this.key, {
      type, stream: Stream.AGENT, sender: this.self.id, clusterTag: this.tag,
      incarnation: this.incarnation, sequence: this.sequence,
    }, payload);
  }

  private count(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  /** Exposed for tests: one datagram as it came off a socket. */
  receive(buf: Buffer, now = performance.now()): void {
    // Routed on the unauthenticated stream byte: the distress receiver verifies everything itself, and a
    // forged byte only moves a datagram to the checks that drop it.
    if (this.onDistress && buf.length > 5 && buf[5] === Stream.DISTRESS) return this.onDistress(buf);
    const d = decodeDatagram(this.key, buf, this.tag);
    if (!d.ok) return this.count(d.reason);
    if (d.header.stream !== Stream.AGENT) return this.count('stream');
    const verdict = this.replay.commit(d.header.sender, d.header.stream, d.header.incarnation, d.header.sequence);
    if (verdict !== 'accept') return this.count(verdict);
    const from = this.config.nodes.find((n) => n.id === d.header.sender);
    if (!from) return this.count('unknown-sender');
    let env: unknown;
    try {
      env = JSON.parse(d.payload.toString('utf8'));
    } catch {
      return this.count('json');
    }
    const message = this.unwrap(env, d.header.sender, d.header.incarnation, now);
    if (message === undefined) return;
    if (!isAgentMessage(message)) return this.count('message');
    this.received++;
    this.onMessage({ from, message, incarnation: d.header.incarnation });
  }

  private unwrap(env: unknown, sender: number, incarnation: bigint, now: number): unknown {
    if (typeof env !== 'object' || env === null) return this.count('envelope');
    const e = env as Record<string, unknown>;
    if ('m' in e) return e.m;
    const { f, i, n, d } = e;
    if (typeof f !== 'number' || typeof i !== 'number' || typeof n !== 'number' || typeof d !== 'string'
      || !Number.isInteger(i) || !Number.isInteger(n) || n < 2 || n > MAX_FRAGMENTS || i < 0 || i >= n) {
      return this.count('envelope');
    }
    for (const [k, p] of this.partials) {
      if (now - p.since > this.fragmentTimeoutMs) {
        this.partials.delete(k);
        this.count('fragment-timeout');
      }
    }
    const key = `${sender}:${incarnation}:${f}`;
    let p = this.partials.get(key);
    if (!p) {
      // Map order is insertion order: the first of this sender's is its oldest.
      const mine = [...this.partials].filter(([, x]) => x.sender === sender);
      if (mine.length >= MAX_PARTIALS_PER_PEER) {
        this.partials.delete(mine[0]![0]);
        this.count('fragment-evicted');
      }
      p = { sender, parts: new Array<string | undefined>(n), count: 0, since: now };
    }
    if (p.parts.length !== n) return this.count('envelope');
    if (p.parts[i] === undefined) { p.parts[i] = d; p.count++; }
    this.partials.set(key, p);
    if (p.count < n) return undefined;
    this.partials.delete(key);
    try {
      return JSON.parse(p.parts.join(''));
    } catch {
      return this.count('json');
    }
  }
}

function isAgentMessage(m: unknown): m is AgentMessage {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Record<string, unknown>;
  if (x.kind === 'update') return Array.isArray(x.entries) && Array.isArray(x.markers) && (x.nodes === undefined || Array.isArray(x.nodes));
  if (x.kind === 'digest') return typeof x.reply === 'boolean' && typeof x.versions === 'object' && x.versions !== null;
  if (x.kind === 'pair') return Array.isArray(x.reports);
  if (x.kind === 'view') {
    return typeof x.bound === 'boolean' && (x.watchdogBoundMs === null || typeof x.watchdogBoundMs === 'number')
      && (x.sentAtMs === undefined || (typeof x.sentAtMs === 'number' && Number.isFinite(x.sentAtMs)));
  }
  return false;
}

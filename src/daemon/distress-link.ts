// The distress signal (seed 002) in the agent: this node's armed native sender, and the receiving side
// (authenticated, deduplicated distress from the peers, and the incarnations whose heartbeats and messages
// are ignored after they sent it). What a distress makes the agent do is the agent's: leave (sender), or
// fail the sender over and fence it (receiver).
import type { Config, NodeConfig } from '../config/schema.js';
import { ControlError } from '../control/protocol.js';
import { nativeAddon, type NativeDistressSender } from '../native.js';
import { clusterTag } from '../wire/datagram.js';
import { DistressReceiver, reasonCode, reasonOfCode, type Distress, type DistressReason, type SendMode } from '../wire/distress.js';
import { distressArming, distressOptions, distressWarnings } from '../wire/distress-arming.js';
import type { AgentLog } from './log.js';
import type { Notices } from './notices.js';
import { stayOutFile, type StayOut } from './stay-out.js';

export interface DistressLinkDeps {
  config: Config;
  self: NodeConfig;
  peers: readonly NodeConfig[];
  key: Buffer;
  incarnation: bigint;
  log: AgentLog;
  notices: Notices;
  /** The peer's incarnation the heartbeat thread knows now, if any (the receiver's freshness check). */
  currentIncarnation(id: number): bigint | undefined;
  /** A peer's first actionable distress of an incarnation. */
  onPeerDistress(node: NodeConfig, d: Distress): void;
}

export class DistressLink {
  private sender: NativeDistressSender | undefined;
  private readonly receiver: DistressReceiver;
  /** Peers that sent distress, with the incarnation that sent it: its heartbeats and messages are ignored. */
  private readonly distressed = new Map<string, bigint>();
  private readonly received: { at: string; from: string; reason: string; incarnation: string; acted: boolean }[] = [];

  constructor(private readonly d: DistressLinkDeps) {
    this.receiver = new DistressReceiver({
      key: d.key, clusterTag: clusterTag(d.config.cluster), selfId: d.self.id, peers: d.peers.map((p) => p.id),
      currentIncarnation: (id) => d.currentIncarnation(id) || undefined,
    });
  }

  /** The sender is armed before any fault can happen: everything a send needs is built now. */
  arm(): void {
    const { config, self, key, incarnation, log } = this.d;
    const d = config.distress;
    this.sender = new (nativeAddon().DistressSender)(distressOptions(config, self, key, incarnation, distressArming(d)));
    const snap = this.sender.snapshot();
    for (const w of distressWarnings(snap)) log.warn({}, w);
    if (d.fatalSignals) {
      // The handler writes the stay-out record itself: no JavaScript runs after a fatal signal.
      const record: StayOut = {
        since: '', reason: 'fatal-signal', source: 'fatal-signal', incarnation: String(incarnation),
        text: 'the agent died of a fatal signal (SIGSEGV, SIGBUS, SIGABRT, SIGILL or SIGFPE) after sending distress',
      };
      this.sender.installFatalHandlers(reasonCode('fatal-signal'), { path: stayOutFile(config.stateDir), content: `${JSON.stringify(record)}\n` });
    }
    log.info({ priority: snap.priority, realtime: snap.realtime, destinations: snap.destinations, fatalSignals: d.fatalSignals }, 'distress sender armed');
  }

  stop(): void {
    this.sender?.stop();
  }

  /** The armed sender, or the control error that says there is none. */
  armed(): NativeDistressSender {
    if (!this.sender) throw new ControlError('not_armed', 'the distress sender is not armed on this node');
    return this.sender;
  }

  senderSnapshot(): { armed: boolean; realtime: boolean } | null {
    return this.sender?.snapshot() ?? null;
  }

  /** Sends this node's distress; what the trigger answered (false: no sender, or it failed and was logged). */
  trigger(reason: DistressReason, mode: SendMode): number | boolean {
    const sender = this.sender;
    if (!sender) return false;
    try {
      const code = reasonCode(reason);
      return mode === 'sync' ? sender.trigger(code, 'sync') : sender.trigger(code, 'async');
    } catch (e) {
      this.d.log.error({ err: String(e) }, 'distress trigger failed');
      return false;
    }
  }

  /** `vigil distress test`: a fresh set first, so that receivers never drop a test as a copy of an earlier one. */
  sendTest(): object {
    const sender = this.armed();
    sender.rearm({});
    const woken = sender.trigger(reasonCode('operator-test'), 'async');
    this.d.notices.add('distress', 'distress-test-sent', 'distress test sent (operator-test): peers log it and do nothing else');
    return { node: this.d.self.name, sent: woken, destinations: sender.snapshot().destinations };
  }

  /** A datagram on stream 2: authenticated, deduplicated, acted on once per sender incarnation. */
  receive(buf: Buffer): void {
    const r = this.receiver.receive(buf);
    if (!r.ok) return;
    const node = this.d.config.nodes.find((n) => n.id === r.distress.sender);
    if (!node) return;
    this.record(node.name, r.distress, r.first);
    if (!r.actionable) {
      this.d.notices.add('distress', 'distress-test', `${node.name} sent a distress test (operator-test): logged, nothing done`);
      return;
    }
    if (!r.first) return;
    this.distressed.set(node.name, r.distress.incarnation);
    this.d.onPeerDistress(node, r.distress);
  }

  isDistressed(node: string): boolean {
    return this.distressed.has(node);
  }

  /** Drops what a peer says from the incarnation that sent distress; a newer one (it rejoined) is heard again. */
  ignores(node: string, incarnation: bigint): boolean {
    const gone = this.distressed.get(node);
    if (gone === undefined) return false;
    if (incarnation > gone) {
      this.distressed.delete(node);
      this.d.log.info({ peer: node, incarnation: String(incarnation) }, 'a peer that sent distress is back with a new incarnation');
      return false;
    }
    return true;
  }

  status(out: StayOut | undefined): object {
    const snap = this.sender?.snapshot();
    return {
      node: this.d.self.name,
      out: out ?? null,
      sender: snap ? {
        armed: snap.armed, priority: snap.priority, realtime: snap.realtime, memoryLocked: snap.memoryLocked,
        fatalHandlers: snap.fatalHandlers, destinations: snap.destinations, networks: snap.networks, repeats: snap.repeats,
        sendErrors: snap.sendErrors, lastError: snap.lastError,
        reasons: snap.reasons.filter((r) => r.triggers > 0).map((r) => ({ ...r, reason: reasonOfCode(r.code) })),
        perNetwork: snap.perNetwork,
      } : null,
      received: this.received,
      dropped: this.receiver.dropped,
      distressedPeers: [...this.distressed].map(([peer, inc]) => ({ peer, incarnation: String(inc) })),
    };
  }

  private record(from: string, d: Distress, acted: boolean): void {
    this.received.unshift({ at: new Date().toISOString(), from, reason: d.reason, incarnation: String(d.incarnation), acted });
    if (this.received.length > 20) this.received.pop();
  }
}

// The distress signal (seed 002) in the agent: this node's armed native sender, and the receiving side
// (authenticated, deduplicated distress from the peers, and the incarnations whose heartbeats and messages
// are ignored after they sent it). What a distress makes the agent do is the agent's: leave (sender), or
// fail the sender over and fence it (receiver).
//
// A distress is signed once, when the sender arms, and stays valid for that sender's whole life, so a
// captured copy can be replayed. A receiver refuses one older than the sender's newest life it knows (the
// heartbeats, and the floor kept across its own restarts: peer-incarnations.ts). A receiver that has not
// heard the sender since it started cannot tell a replay from the real thing: it holds the distress until
// the sender's heartbeats say which life is current (a newer one: dropped) or the sender stays silent for
// the failure timeout (acted on, as its silence would be). Once the sender is heard, distress acts at once.
import { performance } from 'node:perf_hooks';

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
  /** The peer's incarnation the heartbeat thread knows now, if any (heard since this agent started). */
  currentIncarnation(id: number): bigint | undefined;
  /** The newest incarnation of the peer heard before, this life or an earlier one (PeerIncarnations). */
  floor(node: string): bigint | undefined;
  /** How long a held distress waits for its unheard sender: the heartbeat failure timeout. */
  failAfterMs: number;
  /** A peer's first actionable distress of an incarnation. */
  onPeerDistress(node: NodeConfig, d: Distress): void;
}

export class DistressLink {
  private sender: NativeDistressSender | undefined;
  private readonly receiver: DistressReceiver;
  /** Peers that sent distress, with the incarnation that sent it: its heartbeats and messages are ignored. */
  /** Each peer acted on: the incarnation that sent distress, and why. */
  private readonly distressed = new Map<string, { incarnation: bigint; reason: DistressReason }>();
  private readonly received: { at: string; from: string; reason: string; incarnation: string; acted: boolean }[] = [];
  /** Distress from a peer not heard since this agent started, per peer, with when it came (performance.now()). */
  private readonly held = new Map<string, { node: NodeConfig; distress: Distress; since: number }>();
  /** Held distress dropped because the sender's heartbeats came from a newer life (a replay). */
  superseded = 0;

  constructor(private readonly d: DistressLinkDeps) {
    this.receiver = new DistressReceiver({
      key: d.key, clusterTag: clusterTag(d.config.cluster), selfId: d.self.id, peers: d.peers.map((p) => p.id),
      currentIncarnation: (id) => {
        const heard = this.heard(id);
        const name = d.peers.find((p) => p.id === id)?.name;
        const floor = name === undefined ? undefined : d.floor(name);
        if (heard === undefined || (floor !== undefined && floor > heard)) return floor;
        return heard;
      },
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
    if (this.heard(node.id) === undefined) {
      const held = this.held.get(node.name);
      if (!held || r.distress.incarnation > held.distress.incarnation) this.held.set(node.name, { node, distress: r.distress, since: performance.now() });
      this.d.log.warn({ peer: node.name, incarnation: String(r.distress.incarnation), reason: r.distress.reason }, 'distress from a peer not heard since this agent started: held until its heartbeats say which life is current, or it stays silent');
      return;
    }
    this.act(node, r.distress);
  }

  /** Decides on held distress: called on every agent tick. */
  tick(now: number): void {
    for (const [name, h] of this.held) {
      const heard = this.heard(h.node.id);
      if (heard !== undefined && heard > h.distress.incarnation) {
        this.held.delete(name);
        this.superseded++;
        this.d.notices.add('distress', 'distress-superseded', `a distress from an earlier life of ${name} (incarnation ${h.distress.incarnation}) was dropped: ${name} is alive with a newer one (a replayed datagram?)`);
      } else if (heard !== undefined || now - h.since >= this.d.failAfterMs) {
        this.held.delete(name);
        this.act(h.node, h.distress);
      }
    }
  }

  private act(node: NodeConfig, distress: Distress): void {
    this.distressed.set(node.name, { incarnation: distress.incarnation, reason: distress.reason });
    this.d.onPeerDistress(node, distress);
  }

  /** The peer's incarnation as heard since this agent started; undefined before (0 means none on the wire). */
  private heard(id: number): bigint | undefined {
    return this.d.currentIncarnation(id) || undefined;
  }

  isDistressed(node: string): boolean {
    return this.distressed.has(node);
  }

  /**
   * Did this peer's distress leave its apps running? A fatal signal killed its agent and nothing else (the
   * apps it started run on until an agent stops them); every other distress comes from an agent that
   * leaves, stopping them, or from a machine losing its power.
   */
  leftAppsRunning(node: string): boolean {
    return this.distressed.get(node)?.reason === 'fatal-signal';
  }

  /** Drops what a peer says from the incarnation that sent distress; a newer one (it rejoined) is heard again. */
  ignores(node: string, incarnation: bigint): boolean {
    const gone = this.distressed.get(node)?.incarnation;
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
      dropped: this.superseded > 0 ? { ...this.receiver.dropped, superseded: this.superseded } : this.receiver.dropped,
      held: [...this.held.values()].map((h) => ({ peer: h.node.name, incarnation: String(h.distress.incarnation), reason: h.distress.reason })),
      distressedPeers: [...this.distressed].map(([peer, d]) => ({ peer, incarnation: String(d.incarnation) })),
    };
  }

  private record(from: string, d: Distress, acted: boolean): void {
    this.received.unshift({ at: new Date().toISOString(), from, reason: d.reason, incarnation: String(d.incarnation), acted });
    if (this.received.length > 20) this.received.pop();
  }
}

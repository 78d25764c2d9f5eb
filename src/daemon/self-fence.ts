// Watchdog self-fencing, the cluster's half (src/membership/view.ts has the rule): every tick the agent
// judges its view and renews the watchdog's lease only while the view is valid; it publishes to its peers,
// once a second, how long after a cut its watchdog resets it (null: none armed, or an action that does not
// reset) and whether it is bound by the minority rule; and it answers, for a takeover here, how much longer
// a silent peer must stay silent before it counts as self-fenced.
import type { NodeConfig } from '../config/schema.js';
import { ClusterView, selfFencedInMs, type DiskTieBreaker, type PublishedView, type ViewJudgement } from '../membership/view.js';
import type { AgentMessage } from './messenger.js';
import type { Notices } from './notices.js';
import type { NodeWatchdog } from './watchdog.js';

const PUBLISH_EVERY_MS = 1000;

export interface SelfFenceDeps {
  nodes: readonly NodeConfig[];
  peers: readonly NodeConfig[];
  watchdog: () => NodeWatchdog | undefined;
  /** timing.failAfterMs + timing.agentLeaseMs: from a cut to the last lease renewal, at most. */
  cutToLapseMs: number;
  marginMs: number;
  /** Peers heard both ways now (heard from, and acknowledging this node's heartbeats). */
  heardBothWays(): number;
  /**
   * The same, counting only peers heard within half of failAfterMs: what a decision to fence or take over
   * counts on (lostQuorum). A peer about to be failed must not lend its vote to it.
   */
  heardFreshly(): number;
  /** Peers powered off by this node's fences and still off by their BMC's word (src/daemon/power-fence.ts). */
  keptOff(): number;
  hosting(): boolean;
  disks(): DiskTieBreaker;
  /** A peer's silence on the liveness clock (ms), or undefined while it is heard. */
  silentMs(peer: string): number | undefined;
  send(peer: NodeConfig, message: Extract<AgentMessage, { kind: 'view' }>): void;
  log: { warn(o: object, m: string): void; info(o: object, m: string): void };
  notices: Pick<Notices, 'add'>;
}

export class SelfFence {
  private readonly view = new ClusterView();
  /** The last judgement, with what it counted: nodes heard, and nodes in the quorum (fenced-off ones left out). */
  private last: ViewJudgement & { heard: number; nodes: number };
  private publishedAt = -Infinity;
  private readonly published = new Map<string, PublishedView>();

  constructor(private readonly d: SelfFenceDeps) {
    this.last = { valid: true, bound: false, why: 'not judged yet', heard: 1, nodes: d.nodes.length };
  }

  /** Every tick: the judgement, the watchdog's lease renewed while it holds, the view published. */
  tick(now: number): void {
    const heard = 1 + this.d.heardBothWays();
    const keptOff = this.d.keptOff();
    const j = { ...this.view.judge({ nodes: this.d.nodes.length, keptOff, heard, hosting: this.d.hosting(), disks: this.d.disks() }), heard, nodes: this.d.nodes.length - keptOff };
    if (j.valid !== this.last.valid) {
      if (j.valid) this.d.log.info({ why: j.why }, 'cluster view valid again: the watchdog is tickled');
      else {
        const wd = this.d.watchdog()?.snapshot();
        const what = wd?.armed ? `the watchdog (${wd.path}) is no longer tickled and resets this node unless the view returns` : 'no watchdog is armed';
        this.d.log.warn({ why: j.why }, `cluster view lost: ${what}`);
        this.d.notices.add('view', 'view-lost', `cluster view lost (${j.why}): ${what}`);
      }
    }
    this.last = j;
    if (j.valid) this.d.watchdog()?.renew();
    if (now - this.publishedAt >= PUBLISH_EVERY_MS) {
      this.publishedAt = now;
      const message = { kind: 'view' as const, watchdogBoundMs: this.watchdogBoundMs(), bound: j.bound, sentAtMs: Date.now() };
      for (const p of this.d.peers) this.d.send(p, message);
    }
  }

  /** How long after a cut this node's watchdog resets it at the latest; null when it would not. */
  watchdogBoundMs(): number | null {
    const s = this.d.watchdog()?.snapshot();
    if (!s?.armed || !s.resets) return null;
    return this.d.cutToLapseMs + s.timeoutMs;
  }

  onView(from: string, v: PublishedView): void {
    this.published.set(from, v);
  }

  /**
   * This node had quorum (three nodes or more) and is now in a minority: it must not power-fence the
   * majority. Nodes it powered off, and that stay off, are not counted: a lone survivor of three whose peers
   * an operator fenced (vigil fence) is no minority.
   */
  lostQuorum(): boolean {
    // Counted afresh, and only peers heard lately: cut off from two peers at once, this node fails them a
    // few milliseconds apart, and at the first failure the other, silent for all but those milliseconds,
    // still counted as heard: a lone node saw itself in a majority and powered off a node of the real one.
    return this.last.bound && (1 + this.d.heardFreshly()) * 2 < this.last.nodes;
  }

  /**
   * A takeover here must wait: this node is in a minority it knows to be one, with a watchdog that resets
   * it once it hosts anything. Without a watchdog only its power fences wait (lostQuorum).
   */
  inMinority(): boolean {
    return this.watchdogBoundMs() !== null && this.lostQuorum();
  }

  /** `peer` said its watchdog resets it once it is cut off in a minority: a takeover from it waits for that. */
  fencesItself(peer: string): boolean {
    const p = this.published.get(peer);
    return p !== undefined && p.bound && p.watchdogBoundMs !== null;
  }

  /** How much longer `peer` must stay silent to count as self-fenced; undefined: it may not (now). */
  selfFencedInMs(peer: string): number | undefined {
    const silent = this.d.silentMs(peer);
    if (silent === undefined) return undefined;
    return selfFencedInMs(this.published.get(peer), silent, this.last.heard, this.last.nodes, this.d.marginMs);
  }

  status(): { valid: boolean; bound: boolean; why: string; watchdogBoundMs: number | null; peers: Record<string, PublishedView> } {
    return { valid: this.last.valid, bound: this.last.bound, why: this.last.why, watchdogBoundMs: this.watchdogBoundMs(), peers: Object.fromEntries(this.published) };
  }
}

/** A 'view' message's fields, checked; undefined when malformed. */
export function parsePublishedView(m: { watchdogBoundMs?: unknown; bound?: unknown }): PublishedView | undefined {
  const ms = m.watchdogBoundMs;
  const okMs = ms === null || (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && ms <= 86_400_000);
  if (!okMs || typeof m.bound !== 'boolean') return undefined;
  return { watchdogBoundMs: ms, bound: m.bound };
}

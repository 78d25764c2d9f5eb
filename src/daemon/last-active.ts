// The last-active server rule (seed 003) in the agent: one priority store and one chart position per
// application object (its primary and backup are the pair), kept in step with where the app runs. This
// is the code vigild runs, and the code test/unit/lastactive-model.test.ts drives, two instances against
// an oracle, with failures and crashes injected mid-transition. The chart is in docs/last-active.md.
//
// In vigil the pair's processor is the app's host. The priorities follow from that (write-ahead: a record
// is durable before the state it names takes effect or is reported):
//   - a node about to run the app holds 1 (SM) or 2 (M) first, and claims the app's shared disks before
//     it writes that 1: a decision to start (comparison, lone or forced) through `claimDisks`, then its 1,
//     then the flows start it; a takeover or a handed-over start through the flows' startResources, which
//     claims the disks, then calls beforeProcessing (the 1), then starts the rest and the app. No 1 is
//     durable without the reservation that lets a stale 1 see it was overtaken (decision.ts);
//   - the processor writes 2 (M) once the peer is alive, reports SL with its 3 durable, and its database
//     replica equals this node's (the slave is in sync, B.10 #8), and 1 again when the peer fails (4-1/4-2);
//   - a node that stops running the app for its live peer to run it (failback, a stand-down, a fault the
//     peer takes over) keeps a 2 (an SM writes one) and is the peer's slave; it writes its 3 only once the
//     peer reports processing, so a crash in between leaves [2 3] or [2 1], never [3 3];
//   - a node that leaves by distress writes nothing: for the pair it fails;
//   - the slave keeps 3; when its processor fails it takes over only if the processor had reached M
//     (4-3/4-4); a processor that was still SM (the slave not yet in sync) leaves it in X (5-2/5-6). What a
//     failed peer reported last is forgotten with its failure.
// After the agent starts, every app's gate is closed (flows.ts 'gate') until the recovery decision
// (decision.ts): the peer answers and hears this node → compare or join; the peer is silent for
// `peerProbeMs` → start alone only with priority 1 (then the peer is treated as failed, and the flows
// take over), else wait for the peer or `vigil force-start`. The shared disks' holders are cross-checked
// before a start.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { z } from 'zod';

import type { AppObject } from '../db/object.js';
import { PeerProcessesError, StaleStartError } from '../resources/stale-start.js';
import { isProcessing, LABELS, STATES, type Label, type Priority, type State } from '../lastactive/chart.js';
import {
  checkForcedStart, decide, type Decision, type DecisionInput, type DiskEvidence, type PeerProbe, type PriorityView, viewOf,
} from '../lastactive/decision.js';
import {
  initPriorityStore, readPriorityStore, type PriorityRecord, type RecordContent, type StoreIdentity, type StoreReading,
  writePriorityRecord,
} from '../lastactive/priority-store.js';

/** What a node tells its peer about one app's pair: sent on every change, and every round (500 ms). */
export interface PairReport {
  tag: string;
  state: State;
  record: PriorityView;
  /**
   * The sender has a fresh report of the receiver: it compares priorities too, rather than deciding
   * alone (a lone or forced start that this report may not show yet). Absent from an older agent: true.
   */
  hears?: boolean;
}

/** A peer's report answers for this long after it arrived. */
const FRESH_MS = 3000;
/** How long a start waits for a processing peer's report to say it stopped (two report rounds). */
const REPORT_WAIT_MS = 1000;
const REPORT_POLL_MS = 20;

const pairReportSchema = z.object({
  tag: z.string().min(1).max(64),
  state: z.enum(STATES),
  record: z.union([
    z.object({
      known: z.literal(true), priority: z.union([z.literal(1), z.literal(2), z.literal(3)]), state: z.enum(STATES),
      transition: z.enum(['init', ...LABELS]), forced: z.boolean(),
    }),
    z.object({ known: z.literal(false), why: z.string().max(1000) }),
  ]),
  hears: z.boolean().optional(),
});

/** A report from the network, checked; undefined when it is not one (counted by the caller's log). */
export function parsePairReport(value: unknown): PairReport | undefined {
  const r = pairReportSchema.safeParse(value);
  return r.success ? r.data : undefined;
}

/**
 * Whether the app, stopped here, goes to the peer (stoppedProcessing's `peerTakesOver`): HOST moved to it,
 * a failback about to write HOST = primary, or a fault here beyond the app's local restarts that the live
 * peer, carrying no fault mark, takes over (behaviour 20). `faultedHere`: the flow's fault, not yet marked
 * in the object. HOST names the peer only because the peer wrote it as it took the app over (after its 1
 * was durable), so this node is its slave whether or not it counts the peer alive yet: a split brain's
 * loser stands down during the peer's recovery hysteresis, and must not keep a 1 beside the winner's.
 * An operator's switchover whose target said it is ready hands over as a failback does.
 * `takingOver`: this node's failover of the app is under way (the flow's failover): never a handover.
 */
export function handsOver(
  o: Pick<AppObject, 'host' | 'primary' | 'backup' | 'phase' | 'faults' | 'switchover'> | undefined, self: string, faultedHere: boolean,
  isAlive: (node: string) => boolean, takingOver = false,
): boolean {
  // Stopped between attempts of this node's own takeover: HOST still names the node it takes over from,
  // which runs nothing; this node keeps its 1 and tries again.
  if (!o || takingOver) return false;
  const peerHosts = o.host !== null && o.host !== self;
  const failingBack = o.phase === 'failing-back' && o.backup === self && o.host === self && isAlive(o.primary);
  const other = o.primary === self ? o.backup : o.primary;
  const peerTakesFault = o.host === self && (faultedHere || o.faults.includes(self)) && !o.faults.includes(other) && isAlive(other);
  // An operator's switchover, the target ready: this node writes HOST = target once its resources are down.
  const switching = o.phase === 'switching-over' && o.host === self && o.switchover?.from === self && o.switchover.ready === true
    && o.switchover.to === other && isAlive(other);
  return peerHosts || failingBack || peerTakesFault || switching;
}

export interface LastActiveLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface LastActiveOptions {
  dir: string;
  cluster: string;
  self: { name: string; id: number };
  nodeId(name: string): number;
  peerProbeMs: number;
  /** This node has never run (no database yet): a missing store is created with the initial value. */
  firstStart: boolean;
  log: LastActiveLog;
  /** A pair's state changed (its record is durable): tell the peer now rather than at the next round. */
  onChange?(peer: string): void;
  /**
   * A pair's gate opened (it left X: decided) or closed (back to X: deciding again), told at the moment
   * its state changes, so the flows see the changes in the order they happened. Posted by the caller
   * after its own awaits instead, a close could overtake the decision that followed it: the flow stayed
   * gated while the pair had decided, and the app ran nowhere (namespace seed 604437565).
   */
  onGate?(tag: string, open: boolean): void;
  /**
   * Claims the app's shared disks (the agent: its disk resources, as the flows' startResources does
   * first), before a decision to start writes its 1. A refusal leaves the pair deciding.
   */
  claimDisks?(tag: string): Promise<void>;
  /**
   * The app's HOST in this node's replica while it equals the peer's (their digests match); undefined
   * otherwise. Breaks a [1 1] tie left by a split brain (decision.ts, `hostAgreed`).
   */
  hostAgreed?(tag: string, peer: string): string | null | undefined;
  /** How long mayProcess waits for a processing peer to report otherwise (default 1000 ms); tests shorten it. */
  reportWaitMs?: number;
  /**
   * Test seam, not configuration: makes one record durable (default `writePriorityRecord`). The model
   * test (test/unit/lastactive-model.test.ts) passes a writer that crashes the node before, in the middle
   * of, or just after the durable write. vigild passes nothing, and nothing on the control socket does.
   */
  writeRecord?(path: string, identity: StoreIdentity, content: RecordContent): Promise<PriorityRecord>;
}

interface Pair {
  tag: string;
  peer: string;
  primary: boolean;
  file: string;
  identity: StoreIdentity;
  reading: StoreReading;
  state: State;
  /** How the current 1 was entered (for the label written with the next records). */
  entered: Label | 'init';
  startedAt: number;
  peerReport: { report: PairReport; at: number } | undefined;
  decision: Decision | undefined;
  /**
   * Handed over (stoppedProcessing): this node stopped the app for the peer to run it, is its slave,
   * and still holds its 2 until the peer reports processing (its 1 is durable); then it writes its 3.
   */
  handingOver: boolean;
  /**
   * As a slave, the peer has reported processing (SM or M) since this node became its slave. Until then
   * a report of X from it is its side of a comparison not decided yet (this node decided first), not a
   * stop (onReport).
   */
  peerProcessed: boolean;
  /** The peer failed (peerFailed) and has not reported since: its silence is no reason to wait for it. */
  peerGone: boolean;
  /** A write in progress: transitions queue behind it. */
  busy: Promise<void>;
}


export interface PairStatus {
  tag: string;
  peer: string;
  state: State;
  priority: Priority | null;
  sequence: string | null;
  record: string;
  decision: string | null;
  peerState: State | null;
}

const isSideA = (self: number, peer: number) => self < peer;

/** For a pair that runs: what this node would decide if it restarted alone now (its record decides it). */
function wouldDecide(p: Pair): string {
  const priority = p.reading.kind === 'record' ? p.reading.record.priority : undefined;
  const role = p.state === 'SL' ? `slave of ${p.peer}` : p.state === 'M' ? `master, ${p.peer} its slave in sync` : `single master (${p.peer} not a slave in sync)`;
  const alone = priority === 1 ? 'it would start by itself' : `it would wait for ${p.peer} or a forced start`;
  return `${role}; restarted alone after an outage now, ${alone} (priority ${priority ?? 'undeterminable'})`;
}

export class LastActive {
  private readonly pairs = new Map<string, Pair>();

  constructor(private readonly o: LastActiveOptions) {}

  /**
   * Opens the store of an app this node is primary or backup of; the gate starts closed. A missing store
   * gets its initial value (B.4) on this node's first start, or when the app is new to this node (it was
   * not in the database this agent started with): otherwise it was lost, and the record is undeterminable.
   */
  async open(tag: string, primary: string, backup: string, now: number, o: { isNew: boolean } = { isNew: false }): Promise<void> {
    if (this.pairs.has(tag)) return;
    const self = this.o.self.name;
    if (self !== primary && self !== backup) return;
    const peer = self === primary ? backup : primary;
    const identity = { cluster: this.o.cluster, node: this.o.self.id, peer: this.o.nodeId(peer) };
    await mkdir(this.o.dir, { recursive: true, mode: 0o750 });
    const file = join(this.o.dir, `${tag}.priority`);
    let reading = await readPriorityStore(file, identity);
    if (reading.kind === 'undeterminable' && reading.slots.length === 0 && (this.o.firstStart || o.isNew)) {
      // B.4: the initial values, before automatic operation starts: the primary 2, the backup 3.
      await initPriorityStore(file, identity, { priority: self === primary ? 2 : 3, state: 'X', transition: 'init', forced: false });
      reading = await readPriorityStore(file, identity);
      this.o.log.info({ tag, file }, `priority store created with its initial value (${this.o.firstStart ? 'first start of this node' : 'an app new to this node'})`);
    }
    const entered = reading.kind === 'record' ? reading.record.transition : 'init';
    this.pairs.set(tag, {
      tag, peer, primary: self === primary, file, identity, reading, state: 'X', entered, startedAt: now,
      peerReport: undefined, decision: undefined, handingOver: false, peerProcessed: false, peerGone: false, busy: Promise.resolve(),
    });
  }

  has(tag: string): boolean {
    return this.pairs.has(tag);
  }

  /**
   * Decided: the gate is open (this node processes or is the slave). Closed for a pair not opened yet:
   * an app of this node's never runs before its decision.
   */
  isOpen(tag: string, primary: string, backup: string): boolean {
    const p = this.pairs.get(tag);
    if (p === undefined) return this.o.self.name !== primary && this.o.self.name !== backup;
    return p.state !== 'X';
  }

  reports(peer?: string, now = performance.now()): PairReport[] {
    return [...this.pairs.values()].filter((p) => peer === undefined || p.peer === peer)
      .map((p) => ({ tag: p.tag, state: p.state, record: viewOf(p.reading), hears: this.fresh(p, now) !== undefined }));
  }

  /** The peer's last report, if it still answers for the peer now. */
  private fresh(p: Pair, now: number): PairReport | undefined {
    return p.peerReport && now - p.peerReport.at < FRESH_MS ? p.peerReport.report : undefined;
  }

  /**
   * A peer's report. A slave whose processor, having processed since, reports X has no processor any more,
   * whether the peer restarted or, a slave itself after handing the app over, lost this node for a while (X
   * by peerFailed): it decides again with it (true; its gate closes through onGate). Left in SL, it would
   * wait for nothing, and the peer would wait for it to stop being a slave (decision.ts): the app would run
   * nowhere. A peer that has not processed since is still deciding the comparison this node decided first.
   */
  onReport(report: PairReport, now: number): boolean {
    const p = this.pairs.get(report.tag);
    if (!p) return false;
    p.peerReport = { report, at: now };
    p.peerGone = false;
    if (p.state === 'SL' && isProcessing(report.state)) p.peerProcessed = true;
    if (p.state !== 'SL' || report.state !== 'X' || !p.peerProcessed) return false;
    this.decideAgain(p, now);
    this.o.log.warn({ tag: p.tag, peer: p.peer }, 'the processor reports X (not processing, deciding): this slave decides again');
    return true;
  }

  /**
   * The recovery decision for every app still in X. `peerAlive`: membership hears the peer; `peerTalks`:
   * a report from it is fresh. Returns the pairs decided (their gates opened through onGate), and whether
   * this node starts alone (the agent then treats the peer as failed).
   */
  async decideAll(now: number, peerAlive: (peer: string) => boolean, disks: () => Promise<DiskEvidence[] | undefined>,
    force = new Set<string>()): Promise<{ tag: string; open: boolean; alone: boolean }[]> {
    const out: { tag: string; open: boolean; alone: boolean }[] = [];
    for (const p of this.pairs.values()) {
      if (p.handingOver) {
        await this.joinAfterHandover(p);
        continue;
      }
      if (p.state !== 'X') continue;
      const d = decide({ ...this.input(p, now, peerAlive(p.peer)), forceStart: force.has(p.tag), disks: await disks() });
      p.decision = d;
      if (d.action === 'wait') continue;
      const a = isSideA(this.o.self.id, p.identity.peer);
      if (d.action === 'become-sm') {
        if (!(await this.claim(p, d))) continue;
        const label: Label = d.basis === 'comparison' ? (a ? '1-2-1' : '1-1-1') : (a ? '2-2' : '2-1');
        await this.write(p, { priority: 1, state: 'SM', transition: label, forced: d.basis === 'forced' });
        out.push({ tag: p.tag, open: true, alone: d.basis !== 'comparison' });
      } else {
        const label: Label = d.basis === 'comparison' ? (a ? '1-1-1' : '1-2-1') : (a ? '3-1-1' : '3-2-1');
        await this.write(p, { priority: 3, state: 'SL', transition: label, forced: false });
        out.push({ tag: p.tag, open: true, alone: false });
      }
      this.o.log.info({ tag: p.tag, state: p.state, reason: d.reason }, 'last-active decision');
    }
    return out;
  }

  /**
   * The shared disks first: no 1 is durable without the reservation, which is what lets a node that
   * recovers alone with a stale 1 see that this node processed after it (decision.ts, crossCheckDisks).
   * A claim refused (the disk is held by a live node, say) leaves the pair deciding: false.
   */
  private async claim(p: Pair, d: Decision): Promise<boolean> {
    try {
      await this.o.claimDisks?.(p.tag);
      return true;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      p.decision = { action: 'wait', forceAccepted: false, reason: `not starting: the shared disks cannot be claimed (${why}); it would have been ${d.reason}` };
      this.o.log.warn({ tag: p.tag, err: why }, 'last-active decision to start: the shared disks cannot be claimed; deciding again');
      return false;
    }
  }

  /** Whether a forced start would be accepted for `tag` now, and why not. */
  checkForce(tag: string, now: number, peerAlive: boolean): { ok: boolean; reason: string } {
    const p = this.pairs.get(tag);
    if (!p) return { ok: false, reason: `${tag} has no pair on this node` };
    const r = checkForcedStart(this.input(p, now, peerAlive), p.state);
    return r.ok ? { ok: true, reason: r.decision.reason } : { ok: false, reason: r.reason };
  }

  /** The decision's view of a pair now: the peer answers when its last report is fresh (3 s). */
  private input(p: Pair, now: number, peerAlive: boolean): DecisionInput {
    const fresh = this.fresh(p, now);
    const probe: PeerProbe = fresh
      ? { reachable: true, state: fresh.state, record: fresh.record, hearsUs: fresh.hears ?? true }
      : { reachable: false, silentForMs: now - p.startedAt, ...(peerAlive ? { signsOfLife: ['heard over another channel (its heartbeats)'] } : {}) };
    const hostAgreed = this.o.hostAgreed?.(p.tag, p.peer);
    return {
      self: this.o.self.name, peer: p.peer, own: viewOf(p.reading), probe, probedForMs: now - p.startedAt, probeWindowMs: this.o.peerProbeMs,
      ...(hostAgreed !== undefined ? { hostAgreed } : {}),
    };
  }

  /**
   * Throws StaleStartError when this node may not start processing the app now: its pair is deciding
   * again (X: the peer restarted while a takeover here was under way), or it is the slave of a peer that
   * has not failed and is not handing the app over (SL with its 2): it reports processing (SM or M),
   * deciding (X), a slave's SL, or nothing for 3 s. The flows decide a start on the replica, which a
   * restarted primary can read stale, and a takeover may have begun before the peer came back (nemesis
   * seed 1212572508: both ran the app). A peer handing the app over reports SL as it stops; its report
   * may trail the HOST write that lets this node start (a failback), so a slave waits up to
   * `reportWaitMs` for a report that lets it.
   */
  async mayProcess(tag: string, now = performance.now()): Promise<void> {
    const p = this.pairs.get(tag);
    if (!p) return;
    await p.busy; // a write under way (a handover, say) changes the state this depends on
    if (p.state === 'SM' || p.state === 'M') return;
    const started = performance.now();
    const at = () => now + performance.now() - started;
    const waitMs = this.o.reportWaitMs ?? REPORT_WAIT_MS;
    while (this.refusal(p, at()) !== undefined && p.state === 'SL' && performance.now() - started < waitMs) await sleep(REPORT_POLL_MS);
    this.refuseIf(tag, p, at());
  }

  /** Throws the refusal, if any: PeerProcessesError when the peer processes it, else StaleStartError. */
  private refuseIf(tag: string, p: Pair, now: number): void {
    const why = this.refusal(p, now);
    if (why === undefined) return;
    const text = `${tag}: not processing on ${this.o.self.name}: ${why}`;
    const peer = p.state === 'SL' && !p.peerGone ? this.fresh(p, now) : undefined;
    throw peer && isProcessing(peer.state) ? new PeerProcessesError(text) : new StaleStartError(text);
  }

  /** Why this node may not process now (undefined: it may). */
  private refusal(p: Pair, now: number): string | undefined {
    if (p.state === 'X') return `it is deciding again with ${p.peer} which of them processed last (seed 003)`;
    // A slave starts only as a takeover (its processor failed) or after a handover: the peer stopped and
    // reports SL while it keeps its 2 (stoppedProcessing). An SL with a 3 is a slave (a report sent
    // before the handover, still in flight); a peer in X may be deciding to process.
    if (p.state !== 'SL' || p.peerGone) return undefined;
    const peer = this.fresh(p, now);
    if (peer === undefined) return `${p.peer}, not known to have failed, has not reported for ${FRESH_MS} ms: it may be processing`;
    if (isProcessing(peer.state)) return `${p.peer} processes it (${peer.state}) and this node is its slave`;
    if (peer.state === 'X') return `${p.peer} is deciding whether it processes it, and this node is its slave`;
    if (!peer.record.known || peer.record.priority !== 2) return `${p.peer} reports SL without handing the app over (it holds no 2)`;
    return undefined;
  }

  /** Before this node runs the app (after its disks are claimed): it holds 1 or 2, durable. */
  async beforeProcessing(tag: string, now = performance.now()): Promise<void> {
    const p = this.pairs.get(tag);
    if (!p || p.state === 'SM' || p.state === 'M') return;
    // Checked again after the disks: the pair may have changed while they were claimed.
    this.refuseIf(tag, p, now);
    const a = isSideA(this.o.self.id, p.identity.peer);
    // From SL: a takeover (4-3/4-4), or the start after the peer handed the app over.
    const label: Label = a ? '4-3' : '4-4';
    await this.write(p, { priority: 1, state: 'SM', transition: label, forced: false });
    p.handingOver = false;
  }

  /**
   * The app and its resources are down here while the peer, alive, is to run it (failback, a stand-down):
   * a handover, outside the chart. This node processed last until the peer's 1 is durable, so it keeps
   * a 2 until then: an M has one; an SM writes one (the handover's HOST write, which the peer waits for
   * before it starts, carries this node's data to it: the peer is in sync) without announcing M. It is
   * the peer's slave from here on, and writes its 3 once the peer reports processing (decideAll). A crash
   * of either node in between leaves [2 3] (this node starts it again) or [2 1] (the peer does); writing
   * the 3 first left [3 3], which nothing but a forced start resolves.
   */
  async stoppedProcessing(tag: string, peerTakesOver: boolean, o: { leaving?: boolean } = {}): Promise<void> {
    const p = this.pairs.get(tag);
    if (!p || !peerTakesOver || (p.state !== 'SM' && p.state !== 'M')) return;
    const a = isSideA(this.o.self.id, p.identity.peer);
    const wasM = p.state === 'M';
    if (p.state === 'SM') await this.write(p, { priority: 2, state: 'M', transition: a ? '1-2-2' : '1-1-2', forced: false }, 'SL');
    p.peerProcessed = false; // it processed until now: the peer has not, since
    this.enter(p, 'SL');
    p.handingOver = true;
    // What the peer said before the handover (processing, say) says nothing about its start now.
    p.peerReport = undefined;
    // Told now (the write told it for an SM), not at the next round: the peer's start waits for this
    // node to stop reporting processing (mayProcess). Not when leaving by distress: the peer takes over
    // as from a failed master, which needs M to be the last it heard (peerFailed).
    if (wasM && o.leaving !== true) this.o.onChange?.(p.peer);
  }

  /**
   * A handover nobody takes: since `since`, the peer is no longer meant to run the app (an operator's
   * unload cleared HOST, or a load here cleared the fault that made the peer take it), and it has not
   * processed. This node, which keeps its 2, is the pair's master again (its record says M), so that a
   * start here goes on, and a later handover happens again (FlowRunner.settlePairs). Left handing over,
   * it would be refused for good: its peer, a slave with its 3, never hands it back. Only on a report
   * of the peer as that slave that arrived `reportWaitMs` after `since`: one sent before, still in
   * flight, says nothing of a start the peer began meanwhile (its report of processing would follow).
   */
  handoverVoid(tag: string, since: number): boolean {
    const p = this.pairs.get(tag);
    if (!p || p.state !== 'SL' || !p.handingOver || p.peerProcessed) return false;
    if (p.reading.kind !== 'record' || p.reading.record.priority !== 2) return false;
    const heard = p.peerReport;
    if (!heard || heard.at - since < (this.o.reportWaitMs ?? REPORT_WAIT_MS)) return false;
    if (heard.report.state !== 'SL' || !heard.report.record.known || heard.report.record.priority !== 3) return false;
    p.handingOver = false;
    this.enter(p, 'M');
    this.o.onChange?.(p.peer);
    this.o.log.warn({ tag: p.tag, peer: p.peer }, 'the peer was to run the app and never did, and no longer is to: this node is the pair\'s master again');
    return true;
  }

  /** After a handover: the peer processes (its 1 is durable, it said so), so this node holds 3. */
  private async joinAfterHandover(p: Pair): Promise<void> {
    const peerState = p.peerReport?.report.state;
    if (p.state !== 'SL' || (peerState !== 'SM' && peerState !== 'M')) return;
    const a = isSideA(this.o.self.id, p.identity.peer);
    await this.write(p, { priority: 3, state: 'SL', transition: a ? '3-1-1' : '3-2-1', forced: false });
    p.handingOver = false;
  }

  /** The processor's peer is alive, a slave with its 3 durable, and in sync: SM → M. */
  async slaveInSync(tag: string): Promise<void> {
    const p = this.pairs.get(tag);
    const peer = p?.peerReport?.report;
    // A slave that handed the app over reports SL while it still holds its 2: two 2s would tell nothing.
    if (!p || p.state !== 'SM' || peer?.state !== 'SL' || !peer.record.known || peer.record.priority !== 3) return;
    const a = isSideA(this.o.self.id, p.identity.peer);
    await this.write(p, { priority: 2, state: 'M', transition: a ? '1-2-2' : '1-1-2', forced: false });
  }

  /**
   * The peer failed. The processor goes (back) to SM with a 1 (4-1/4-2). The slave may take over only if
   * the processor was M (its slave in sync); otherwise it goes to X and decides again (5-2/5-6): false.
   */
  async peerFailed(peer: string, now = performance.now()): Promise<{ tag: string; mayTakeOver: boolean }[]> {
    const out: { tag: string; mayTakeOver: boolean }[] = [];
    for (const p of this.pairs.values()) {
      if (p.peer !== peer) continue;
      const a = isSideA(this.o.self.id, p.identity.peer);
      const peerState = p.peerReport?.report.state;
      // What the peer said before it failed is no answer now: a decision waits for its next report.
      p.peerReport = undefined;
      p.peerGone = true;
      if (p.state === 'M') await this.write(p, { priority: 1, state: 'SM', transition: a ? '4-2' : '4-1', forced: false });
      if (p.state === 'SL') {
        if (peerState !== 'M') {
          this.decideAgain(p, now);
          this.o.log.warn({ tag: p.tag, peer, peerState }, 'the processor failed before this slave was in sync: not taking over (5-2/5-6); deciding again');
          out.push({ tag: p.tag, mayTakeOver: false });
          continue;
        }
      }
      out.push({ tag: p.tag, mayTakeOver: true });
    }
    return out;
  }

  /**
   * The peer restarted (a new incarnation), whether or not this node saw it fail (it may have been frozen
   * meanwhile, or the restart was quicker than failure detection). A slave of its earlier life that did
   * not take over (nothing to take: the app was unloaded) decides again with the new one: left in SL, it
   * would report SL to a peer that waits, in X, to see it stop being the slave of its earlier life, and
   * neither would ever move. A processor keeps processing: the peer joins it.
   */
  peerRestarted(peer: string, now = performance.now()): string[] {
    const again: string[] = [];
    for (const p of this.pairs.values()) {
      if (p.peer !== peer || p.state !== 'SL') continue;
      this.decideAgain(p, now);
      p.peerReport = undefined;
      again.push(p.tag);
      this.o.log.warn({ tag: p.tag, peer }, 'the peer restarted: this slave of its earlier life decides again');
    }
    return again;
  }

  /** Back to X: the pair decides again (decideAll), its gate closed meanwhile; the probe window starts now. */
  private decideAgain(p: Pair, now: number): void {
    this.enter(p, 'X');
    p.handingOver = false;
    p.startedAt = now;
  }

  /** Every state change goes through here: the gate follows whether the pair has decided (isOpen). */
  private enter(p: Pair, state: State): void {
    const wasOpen = p.state !== 'X';
    p.state = state;
    if (wasOpen !== (state !== 'X')) this.o.onGate?.(p.tag, state !== 'X');
  }

  status(): PairStatus[] {
    return [...this.pairs.values()].map((p) => ({
      tag: p.tag, peer: p.peer, state: p.state,
      priority: p.reading.kind === 'record' ? p.reading.record.priority : null,
      sequence: p.reading.kind === 'record' ? String(p.reading.record.sequence) : null,
      record: p.reading.kind === 'record' ? `priority ${p.reading.record.priority}, written by ${p.reading.record.transition}${p.reading.record.forced ? ' (forced)' : ''}` : `undeterminable: ${p.reading.why}`,
      decision: p.state === 'X' ? p.decision?.reason ?? 'deciding' : wouldDecide(p),
      peerState: p.peerReport?.report.state ?? null,
    }));
  }

  /**
   * Write-ahead: the record is durable before the state changes (to `enter`, the record's state unless
   * said otherwise); writes of one pair are serialised.
   */
  private async write(p: Pair, content: RecordContent, enter: State = content.state): Promise<void> {
    const run = p.busy.then(async () => {
      const rec = await (this.o.writeRecord ?? writePriorityRecord)(p.file, p.identity, content);
      p.reading = { kind: 'record', record: rec, slot: -1, slots: [] };
      if (enter === 'SL' && p.state !== 'SL') p.peerProcessed = false;
      this.enter(p, enter);
      p.entered = content.transition;
      this.o.onChange?.(p.peer);
      this.o.log.info({ tag: p.tag, priority: content.priority, state: content.state, transition: content.transition }, 'priority written');
    });
    p.busy = run.catch(() => {});
    await run;
  }
}

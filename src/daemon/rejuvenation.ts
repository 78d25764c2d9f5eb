// Seed 000's loop on this node (docs/rejuvenation.md, "Rejuvenation"): publish this node's record in the
// available-server list (its role, measured headroom and aging verdict); when the aging monitor judges it
// unstable (with rejuvenation.auto) or an operator runs it, plan (src/rejuvenation/plan.ts), take the
// cluster's one rejuvenation slot, duplex (drain: every app switched over, make before break), climb the
// ladder (src/rejuvenation/ladder.ts) rung by rung until the node is healthy, then probation, then back in
// the list as a spare. Every state is in the node's record, so a rung that restarts the agent or the OS
// is carried on by the agent that starts next. Operators' requests (run, postpone, cancel) arrive in the
// record too, from any node.
import { performance } from 'node:perf_hooks';

import type { Config, NodeConfig } from '../config/schema.js';
import type { ClusterDb } from '../db/database.js';
import { pendingRequest, type LadderStep, type NodeRecord, type NodeRequest, type StepRecord } from '../db/node-record.js';
import { healthy, nextStep, unfinished } from '../rejuvenation/ladder.js';
import { planRejuvenation, roleOf, type Plan } from '../rejuvenation/plan.js';
import type { AgingStatus, LatestReadings } from './aging.js';
import type { AgentLog } from './log.js';
import type { Notices } from './notices.js';
import { clearCaches, powerCycle, reboot, reexecAgent } from './rejuvenation-steps.js';
import type { DrainResult } from './switchover-requests.js';

export interface RejuvenationDeps {
  config: Config;
  self: NodeConfig;
  log: AgentLog;
  notices: Notices;
  db(): ClusterDb;
  /** Persist and replicate this node's record (resolves once saved). */
  changed(nodes: string[]): Promise<void>;
  isAlive(node: string): boolean;
  /** The aging monitor's latest readings and judgements; undefined while it is off. */
  aging(): { latest: LatestReadings; status: AgingStatus } | undefined;
  /**
   * Resolves once this node's replica has caught up with its live peers (FIG. 6 step 614). The first
   * round waits for it: an agent restarted mid-rejuvenation (its record says duplexing) would otherwise
   * drain by its own stale copy, in which its app may still be switching over when the target has long
   * since failed it over.
   */
  synced(): Promise<void>;
  /** Drains this node (undo: lifts the marks only, the apps stay where they run). */
  drain(undo: boolean, waitMs: number): Promise<DrainResult[]>;
  /** Writes out what the log holds, before the re-exec replaces the process (vigild's pino stream). */
  drainLog?: () => Promise<void>;
  /** The hard rungs; replaced in unit tests only. */
  steps?: Partial<Steps>;
}

export interface Steps {
  caches(command: readonly string[] | undefined): Promise<string>;
  reboot(command: readonly string[]): Promise<void>;
  powerCycle(self: NodeConfig): Promise<boolean>;
  reexec(): never;
}

/** The aging verdict a node publishes: unstable (and why), and the soonest estimated exhaustion. */
export interface AgingVerdict { unstable: boolean; why: string; etaMs: number | null }

export function agingVerdict(s: AgingStatus | undefined): AgingVerdict {
  if (!s) return { unstable: false, why: 'the aging monitor is off', etaMs: null };
  const all = [...s.node.map((j) => ({ subject: 'node', j })), ...s.apps.flatMap((a) => a.signals.map((j) => ({ subject: `app ${a.tag}`, j })))];
  const bad = all.filter((x) => x.j.state === 'unstable');
  const etas = all.map((x) => x.j.etaMs).filter((e): e is number => e !== null && e !== undefined);
  return {
    unstable: bad.length > 0,
    why: bad.length ? bad.map((x) => `${x.subject} ${x.j.signal} unstable (${x.j.condition ?? 'clearing'})`).join('; ') : 'nothing unstable',
    etaMs: etas.length ? Math.min(...etas) : null,
  };
}

const TICK_MS = 1000;

export class Rejuvenator {
  private timer: NodeJS.Timeout | undefined;
  private starting = false;
  private stopped = false;
  private busy = false;
  private lastPublished = -Infinity;
  private lastRefusal = '';
  private readonly steps: Steps;
  private readonly overdue = new Set<string>();
  /**
   * After a rejuvenation ends (back as the spare, or cancelled) the aging monitor's judgement must clear
   * before another starts on its own: an operator who cancelled does not want it back at the next tick,
   * and a judgement still standing after a completed one (a trend's window still holds the old samples)
   * is not new aging. In memory: an agent restart re-arms it.
   */
  private rearmOnStable = false;

  constructor(private readonly d: RejuvenationDeps) {
    this.steps = { caches: clearCaches, reboot, powerCycle, reexec: reexecAgent, ...d.steps };
  }

  private get name(): string {
    return this.d.self.name;
  }

  private get c(): Config['rejuvenation'] {
    return this.d.config.rejuvenation;
  }

  start(): void {
    if (this.starting) return;
    this.starting = true;
    void this.d.synced().then(() => {
      if (this.stopped) return;
      this.timer = setInterval(() => { void this.tick(); }, TICK_MS);
      this.timer.unref();
      void this.tick();
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  record(): NodeRecord | undefined {
    return this.d.db().node(this.name);
  }

  /** The plan for `node` as this node's replica sees it (vigil rejuvenation plan). */
  plan(node: string, forced: boolean): Plan {
    const db = this.d.db();
    const r = db.node(node);
    const h = r?.headroom;
    const alive = (n: string) => n === this.name || this.d.isAlive(n);
    const heard = this.d.config.nodes.filter((n) => alive(n.name)).length;
    return planRejuvenation({
      node, now: Date.now(), mode: this.c.mode, apps: db.list(), records: db.nodeRecords(), isAlive: alive,
      quorum: heard * 2 > this.d.config.nodes.length, headroom: this.c.headroom, forced,
      loadPerCpu: h ? h.load / h.cpus : 0, etaMs: r?.aging?.etaMs ?? null, lowLoadPerCpu: this.c.lowLoadPerCpu, deadlineMs: this.c.deadlineMs,
    });
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.step();
      this.watchPeers();
    } catch (e) {
      this.d.log.error({ err: e instanceof Error ? e.message : String(e) }, 'rejuvenation: a round failed');
    } finally {
      this.busy = false;
    }
  }

  private async write(r: Omit<NodeRecord, 'seq' | 'writtenBy'>): Promise<NodeRecord> {
    const w = this.d.db().writeNode(r, this.name);
    await this.d.changed([this.name]);
    return w;
  }

  /** This node's record as it should read now (role, headroom, aging), keeping the rest. */
  private fresh(base: NodeRecord | undefined): Omit<NodeRecord, 'seq' | 'writtenBy'> {
    const a = this.d.aging();
    const node = a?.latest.node;
    const v = agingVerdict(a?.status);
    const r: Omit<NodeRecord, 'seq' | 'writtenBy'> = {
      ...(base ?? {}), node: this.name, role: roleOf(this.name, this.d.db().list()), state: base?.state ?? 'available', since: base?.since ?? Date.now(),
      aging: { unstable: v.unstable, why: v.why, etaMs: v.etaMs },
    };
    if (node) {
      r.headroom = { at: Date.now(), cpus: node.cpus, load: node.load.load1, memTotal: node.mem.total, memAvailable: node.mem.available, apps: a.latest.apps };
    }
    return r;
  }

  private async step(): Promise<void> {
    let r = this.record();
    const now = performance.now();
    // Published at start, then every aging round (headroom and verdict change with each).
    if (r === undefined || now - this.lastPublished >= this.d.config.aging.intervalMs) {
      this.lastPublished = now;
      r = await this.write(this.fresh(r));
    }
    const request = pendingRequest(r);
    if (request) r = await this.handle(r, request);
    const back = this.takenBack(r);
    if (back) return void (await this.end(r, 'cancelled', `${back} runs here again (its other node failed): this node holds its only running copy, and no rung may take it down`));
    switch (r.state) {
      case 'available': return this.maybeStart(r, false);
      case 'duplexing': return this.duplex(r);
      case 'rejuvenating': return this.climb(r);
      case 'probation': return this.probation(r);
    }
  }

  private async handle(r: NodeRecord, q: NodeRequest): Promise<NodeRecord> {
    const handled = { ...r, handledRequestAt: q.at };
    this.d.log.info({ request: q }, `rejuvenation: ${q.action} requested by ${q.by}`);
    if (q.action === 'postpone') return this.write({ ...handled, notBefore: q.until ?? Date.now() });
    if (q.action === 'cancel') {
      if (r.state === 'available') return this.write(handled);
      return this.end({ ...handled }, 'cancelled', `cancelled by an operator on ${q.by}${q.reason ? `: ${q.reason}` : ''}`);
    }
    const w = await this.write(handled);
    if (w.state === 'available') await this.maybeStart(w, true, q);
    return this.record()!;
  }

  private async maybeStart(r: NodeRecord, forced: boolean, q?: NodeRequest): Promise<void> {
    if (!r.aging?.unstable) this.rearmOnStable = false;
    if (!forced && (!this.c.auto || !r.aging?.unstable || this.rearmOnStable)) return;
    const last = r.rejuvenation?.endedAt;
    const plan: Plan = !forced && last !== undefined && Date.now() - last < this.c.minIntervalMs
      ? { ok: true, when: 'later', why: `the last rejuvenation ended ${Math.round((Date.now() - last) / 1000)} s ago (rejuvenation.minIntervalMs ${Math.round(this.c.minIntervalMs / 1000)} s)`, moves: [] }
      : this.plan(this.name, forced);
    const why = plan.why;
    if (!plan.ok || plan.when === 'later') {
      // Once per reason: the same reason with other figures (a target's load and memory, the estimated
      // exhaustion, change every round) is not news, and would raise a notice every second.
      const key = `${plan.ok ? 'later' : 'refused'}: ${why.replace(/\d+(\.\d+)?/g, '#')}`;
      if (key !== this.lastRefusal) {
        this.lastRefusal = key;
        this.d.notices.add('node', plan.ok ? 'rejuvenation-later' : 'rejuvenation-no-target', `${this.name}: rejuvenation ${plan.ok ? 'later' : 'not possible'}: ${why}`);
      }
      return;
    }
    this.lastRefusal = '';
    const startedAt = Date.now();
    const reason = q ? `an operator on ${q.by}${q.reason ? `: ${q.reason}` : ''}` : r.aging?.why ?? 'aging';
    const w = await this.write({ ...r, state: 'duplexing', since: startedAt, rejuvenation: { startedAt, by: q ? q.by : 'aging', reason, moved: plan.moves, steps: [] } });
    this.d.notices.add('node', 'rejuvenation-started', `${this.name}: rejuvenation started (${reason}): ${plan.why}`);
    // Two nodes may have taken the slot at once, each before hearing of the other: wait for the records
    // to cross, then the earlier start (then the lower name) keeps it, on both.
    await sleep(4 * this.d.config.timing.heartbeatIntervalMs + 500);
    const rival = this.d.db().nodeRecords().find((x) => x.node !== this.name && x.state !== 'available'
      && (x.since < w.since || (x.since === w.since && x.node < this.name)));
    if (rival) await this.end(this.record()!, 'cancelled', `${rival.node} started a rejuvenation first (${rival.state})`);
  }

  private async duplex(r: NodeRecord): Promise<void> {
    const results = await this.d.drain(false, this.c.duplexTimeoutMs);
    const stuck = results.filter((x) => x.outcome !== 'complete' && x.outcome !== 'marked');
    const still = this.d.db().list().filter((a) => a.host === this.name);
    const rec = this.record()!.rejuvenation ?? r.rejuvenation!;
    // What did move, by the database rather than the drain's answers: an app the target failed over while
    // this node was down (it restarted mid-duplexing) moved too, and a cancelled duplexing moved only some.
    const moved = rec.moved.filter((m) => this.d.db().get(m.tag)?.host === m.to);
    if (stuck.length || still.length) {
      const why = stuck.map((x) => `${x.tag}: ${x.outcome}${'reason' in x && x.reason ? ` (${x.reason})` : ''}`).join('; ') || `${still.map((a) => a.tag).join(', ')} still here`;
      await this.end({ ...this.record()!, rejuvenation: { ...rec, moved } }, 'cancelled', `the duplexing did not complete: ${why}`);
      return;
    }
    await this.write({ ...this.record()!, state: 'rejuvenating', since: Date.now(), role: 'spare', rejuvenation: { ...rec, moved } });
    this.d.notices.add('node', 'rejuvenation-duplexed', `${this.name}: its apps run elsewhere (${moved.map((m) => `${m.tag} on ${m.to}`).join(', ') || 'none hosted'}); climbing the ladder`);
  }

  /** One rung per round: verify the one the agent came back from, or try the next. */
  private async climb(r: NodeRecord): Promise<void> {
    const rec = r.rejuvenation!;
    if (rec.outcome === 'failed') return; // out until an operator cancels (never two nodes out)
    const open = unfinished(rec.steps);
    if (open) return this.verify(r, this.cameBack(open));
    const step = nextStep(this.c.ladder, rec.steps);
    if (step === undefined) {
      await this.write({ ...r, rejuvenation: { ...rec, outcome: 'failed', endedAt: Date.now(), why: 'every rung tried; the node is still unhealthy' } });
      this.d.notices.add('node', 'rejuvenation-failed', `${this.name}: rejuvenation failed: every rung of the ladder tried, still unhealthy; it stays out of the available list (vigil rejuvenation cancel ${this.name} returns it)`);
      return;
    }
    const started: StepRecord = { step, startedAt: Date.now() };
    const absence = absenceFor(step, this.c.absenceMs);
    const w = await this.write({ ...r, rejuvenation: { ...rec, steps: [...rec.steps, started], ...(absence ? { absentUntil: Date.now() + absence } : {}) } });
    this.d.log.warn({ step, absentUntilMs: absence ?? null }, `rejuvenation: rung ${step}`);
    try {
      const done = await this.run(step);
      if (done === 'skipped') return void (await this.finishStep(w, 'skipped', 'no BMC: neither /dev/ipmi0 nor a bmc: for this node'));
    } catch (e) {
      return void (await this.finishStep(w, 'failed', (e as Error).message));
    }
    if (absence !== undefined) return; // the node goes away; the agent that starts next verifies
    await sleep(this.c.settleMs);
    await this.verify(this.record()!, {});
  }

  private async run(step: LadderStep): Promise<'done' | 'skipped'> {
    switch (step) {
      case 'apps': return 'done'; // the duplexing stopped them here; they run afresh on their targets
      case 'caches': await this.steps.caches(this.c.commands.caches); return 'done';
      case 'agent':
        // The log's buffer goes with the old image: out first, or the rung's own line is lost.
        await this.d.drainLog?.();
        this.steps.reexec();
        return 'done'; // reexec returns only in unit tests
      case 'reboot': await this.steps.reboot(this.c.commands.reboot); return 'done';
      case 'power-cycle': return (await this.steps.powerCycle(this.d.self)) ? 'done' : 'skipped';
    }
  }

  /**
   * For a rung that takes the node away: did it happen? `restarted` says how we know (kept in the rung's
   * detail), `notYet` why not; neither for the agent's re-exec (its return is its proof).
   */
  private cameBack(open: StepRecord): { restarted?: string; notYet?: string } {
    if (open.step !== 'reboot' && open.step !== 'power-cycle') return {};
    const uptimeMs = (this.d.aging()?.latest.node?.uptime ?? Infinity) * 1000;
    const say = `up ${Math.round(uptimeMs / 1000)} s, the rung began ${Math.round((Date.now() - open.startedAt) / 1000)} s ago`;
    return uptimeMs < Date.now() - open.startedAt ? { restarted: `restarted (${say})` } : { notYet: `the node did not restart (${say})` };
  }

  /**
   * The apps a node out of the list after its duplexing hosts again: a failover to a drained node still
   * happens (running beats running nowhere), so a node on the ladder or on probation takes its app back
   * when the app's other node fails. Undefined: none.
   */
  private takenBack(r: NodeRecord): string | undefined {
    if (r.state !== 'rejuvenating' && r.state !== 'probation') return undefined;
    const here = this.d.db().list().filter((a) => a.host === this.name).map((a) => a.tag);
    return here.length ? here.join(', ') : undefined;
  }

  private async verify(r: NodeRecord, back: { restarted?: string; notYet?: string }): Promise<void> {
    if (this.takenBack(r)) return; // the next round ends it
    const notHappened = back.notYet;
    if (notHappened) {
      // Still waiting for the rung to take effect, until its absence deadline; then it failed.
      if (r.rejuvenation?.absentUntil !== undefined && Date.now() < r.rejuvenation.absentUntil) return;
      return void (await this.finishStep(r, 'failed', notHappened));
    }
    const node = this.d.aging()?.latest.node;
    if (!node) return; // no reading yet after a restart: the next round
    const h = healthy(node, this.d.config.aging);
    await this.finishStep(r, h.healthy ? 'healthy' : 'unhealthy', back.restarted ? `${back.restarted}; ${h.why}` : h.why);
  }

  private async finishStep(r: NodeRecord, outcome: NonNullable<StepRecord['outcome']>, detail: string): Promise<void> {
    const rec = r.rejuvenation!;
    const steps = rec.steps.map((s, i) => (i === rec.steps.length - 1 ? { ...s, endedAt: Date.now(), outcome, detail } : s));
    const step = steps[steps.length - 1]!.step;
    this.d.notices.add('node', 'rejuvenation-step', `${this.name}: rung ${step}: ${outcome} (${detail})`);
    const { absentUntil: _gone, ...kept } = rec;
    if (outcome === 'healthy') {
      await this.write({ ...r, state: 'probation', since: Date.now(), rejuvenation: { ...kept, steps, probationAt: Date.now() } });
      this.d.notices.add('node', 'rejuvenation-probation', `${this.name}: healthy after ${step}; on probation for ${Math.round(this.c.probationMs / 1000)} s`);
    } else {
      await this.write({ ...r, rejuvenation: { ...kept, steps } });
    }
  }

  private async probation(r: NodeRecord): Promise<void> {
    const node = this.d.aging()?.latest.node;
    if (!node) return;
    const h = healthy(node, this.d.config.aging);
    const pending = agingVerdict(this.d.aging()?.status);
    if (!h.healthy || pending.unstable) {
      // Probation starts again: the node must hold healthy readings for the whole period.
      this.d.log.warn({ why: h.healthy ? pending.why : h.why }, 'rejuvenation: unhealthy on probation; its period starts again');
      await this.write({ ...r, since: Date.now() });
      return;
    }
    if (Date.now() - r.since < this.c.probationMs) return;
    await this.end(r, 'spare', `healthy for ${Math.round(this.c.probationMs / 1000)} s after ${r.rejuvenation?.steps.at(-1)?.step ?? 'no rung'}`);
  }

  /** Back in the available list: as the spare after a rejuvenation, or as it was after a cancel. */
  private async end(r: NodeRecord, outcome: 'spare' | 'cancelled', why: string): Promise<NodeRecord> {
    const rec = r.rejuvenation;
    const { absentUntil: _gone, ...kept } = rec ?? { startedAt: Date.now(), by: this.name, reason: '', moved: [], steps: [] };
    const w = await this.write({ ...r, state: 'available', since: Date.now(), role: roleOf(this.name, this.d.db().list()), rejuvenation: { ...kept, outcome, endedAt: Date.now(), why } });
    this.rearmOnStable = true;
    // The drain's marks lifted, the apps left where they run: the node is the spare now.
    await this.d.drain(true, 0).catch((e: unknown) => this.d.log.error({ err: (e as Error).message }, 'rejuvenation: lifting the drain failed'));
    this.d.notices.add('node', outcome === 'spare' ? 'rejuvenation-complete' : 'rejuvenation-cancelled', `${this.name}: ${outcome === 'spare' ? 'rejuvenated; available again, as a spare' : 'rejuvenation cancelled'}: ${why}`);
    return w;
  }

  /** A peer out for a planned absence that ran past its deadline: said once (it is failed as usual). */
  private watchPeers(): void {
    for (const x of this.d.db().nodeRecords()) {
      if (x.node === this.name) continue;
      const until = x.state === 'rejuvenating' ? x.rejuvenation?.absentUntil : undefined;
      const late = until !== undefined && Date.now() > until && !this.d.isAlive(x.node);
      const key = `${x.node}@${until}`;
      if (late && !this.overdue.has(key)) {
        this.overdue.add(key);
        this.d.notices.add('node', 'rejuvenation-overdue', `${x.node} was to be back from its rejuvenation by ${new Date(until).toISOString()}; it is not: treat it as failed`);
      }
    }
  }
}

function absenceFor(step: LadderStep, a: Config['rejuvenation']['absenceMs']): number | undefined {
  return step === 'agent' ? a.agent : step === 'reboot' ? a.reboot : step === 'power-cycle' ? a.powerCycle : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

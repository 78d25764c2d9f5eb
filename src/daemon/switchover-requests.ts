// The operator's (and the rejuvenation's) planned switchovers and drains as requests: the check-and-set
// write that starts one (src/db/switchover.ts decides it), and the wait for how it ended, as this node's
// replica tells it (flows.ts rule 6 carries it out on the source and the target).
import { performance } from 'node:perf_hooks';

import { ControlError } from '../control/protocol.js';
import { DbWriteError } from '../db/database.js';
import type { HostWrite } from '../db/flows.js';
import type { AppObject } from '../db/object.js';
import { planDrain, planSwitchover, planUndrain, type SwitchoverContext } from '../db/switchover.js';
import type { Replication } from './replication.js';

/** What a drain did to one app: a switchover's answer, or the mark written or lifted, or why it stays. */
export type DrainResult = SwitchoverAnswer | { tag: string; outcome: 'stays' | 'refused' | 'marked' | 'unmarked'; reason?: string };

export interface SwitchoverRequestDeps {
  self: string;
  replication: Pick<Replication, 'db' | 'changed'>;
  isAlive(node: string): boolean;
}

export class SwitchoverRequests {
  constructor(private readonly d: SwitchoverRequestDeps) {}

  private context(): SwitchoverContext {
    return { by: this.d.self, now: Date.now(), isAlive: (n) => n === this.d.self || this.d.isAlive(n) };
  }

  private write(tag: string, w: HostWrite): void {
    try {
      this.d.replication.db.update(tag, w.patch, this.d.self, Date.now(), { ifHost: w.ifHost });
    } catch (e) {
      if (e instanceof DbWriteError) throw new ControlError('rejected', e.message);
      throw e;
    }
    void this.d.replication.changed([tag]); // the answer waits for the switchover itself, far longer than the save
  }

  private async wait(tag: string, requestedAt: number, waitMs: number): Promise<SwitchoverAnswer> {
    const until = performance.now() + waitMs;
    for (;;) {
      const ended = performance.now() >= until;
      const r = switchoverOutcome(this.d.replication.db.get(tag), requestedAt, tag, ended);
      if (r) return r;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Switches `o` over to `to` (undefined: its other node); throws a ControlError 'refused' with the reason. */
  async switchover(o: AppObject, to: string | undefined, waitMs: number): Promise<SwitchoverAnswer> {
    const plan = planSwitchover(o, to, this.context());
    if (!plan.ok) throw new ControlError('refused', plan.reason);
    this.write(o.tag, plan.write);
    const r = await this.wait(o.tag, plan.record.requestedAt, waitMs);
    if (r.outcome === 'refused' || r.outcome === 'aborted') throw new ControlError('refused', `${o.tag}: ${r.reason ?? r.outcome}`);
    return r;
  }

  /**
   * Drains `node` (or undoes its drain). `moveBack` false on an undo lifts the marks only: the apps stay
   * where they run (a rejuvenated node comes back as the spare).
   */
  async drain(node: string, undo: boolean, waitMs: number, moveBack = true): Promise<DrainResult[]> {
    const steps = undo ? planUndrain(this.d.replication.db.list(), node, this.context(), moveBack) : planDrain(this.d.replication.db.list(), node, this.context());
    return Promise.all(steps.map(async (st): Promise<DrainResult> => {
      if (st.action === 'stay') return { tag: st.tag, outcome: 'stays', reason: st.reason };
      try {
        this.write(st.tag, st.write);
      } catch (e) {
        return { tag: st.tag, outcome: 'refused', reason: (e as Error).message };
      }
      if (st.action === 'mark') return { tag: st.tag, outcome: undo ? 'unmarked' : 'marked', ...(st.reason ? { reason: st.reason } : {}) };
      return this.wait(st.tag, st.record.requestedAt, waitMs);
    }));
  }
}

/** How a switchover ended, as the requesting node's replica says (the record written by source and target). */
export interface SwitchoverAnswer {
  tag: string;
  /** complete; refused (by the target: nothing stopped); aborted (the target failed before the handover);
   * taken-over (the source failed and the target failed it over); failed (the target's start failed and
   * the source took it back); under-way (the wait ended first: follow it with vigil status). */
  outcome: 'complete' | 'refused' | 'aborted' | 'taken-over' | 'failed' | 'under-way';
  reason?: string;
  from: string;
  to: string;
  host: string | null;
  phase: string;
  gapMs?: number;
  tookMs: number;
}

/** The outcome of the switchover requested at `requestedAt`, once it ended (or the wait did). */
export function switchoverOutcome(o: AppObject | undefined, requestedAt: number, tag: string, ended: boolean): SwitchoverAnswer | undefined {
  const rec = o?.switchover;
  if (!o || !rec || rec.requestedAt !== requestedAt) {
    return ended ? { tag, outcome: 'aborted', reason: 'the request was replaced (another switchover, or the app removed)', from: '', to: '', host: o?.host ?? null, phase: o?.phase ?? 'none', tookMs: Date.now() - requestedAt } : undefined;
  }
  if (o.phase === 'switching-over' && !ended) return undefined;
  if (o.phase === 'failing-over' && !ended) return undefined;
  const base = { tag, from: rec.from, to: rec.to, host: o.host, phase: o.phase, tookMs: Date.now() - requestedAt };
  if (rec.refused !== undefined) return { ...base, outcome: rec.ready ? 'aborted' : 'refused', reason: rec.refused };
  if (o.phase === 'switching-over' || o.phase === 'failing-over') return { ...base, outcome: 'under-way' };
  if (o.host === rec.to) return rec.appStartedAt !== undefined ? { ...base, outcome: 'complete', ...(rec.gapMs !== undefined ? { gapMs: rec.gapMs } : {}) } : { ...base, outcome: 'taken-over', reason: `${rec.from} failed during the switchover` };
  return { ...base, outcome: 'failed', reason: o.faults.includes(rec.to) ? `the start on ${rec.to} failed: ${rec.from} took it back` : `HOST is ${o.host ?? 'none'}` };
}


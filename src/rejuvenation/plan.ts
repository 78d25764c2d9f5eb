// Whether a node may be rejuvenated now, and where its apps go (seed 000 claims 1, 3-7, 11; docs/
// rejuvenation.md "The available-server list" and "Rejuvenation"). Pure: the daemon (src/daemon/
// rejuvenation.ts) gathers the inputs and carries the plan out through the planned switchover.
import type { AppObject } from '../db/object.js';
import type { Headroom, NodeRecord, NodeRole } from '../db/node-record.js';
import { AT_REST } from '../db/switchover.js';

export type RejuvenationMode = 'active-standby' | 'active-active';

export interface HeadroomRule {
  /** A target's 1-minute load per CPU, with the moved apps' CPU added, must stay at or below this. */
  maxLoadPerCpu: number;
  /** A target's MemAvailable, less the moved apps' RSS, must stay at least this fraction of MemTotal. */
  minMemAvailable: number;
}

export interface PlanInput {
  /** The node to rejuvenate. */
  node: string;
  now: number;
  mode: RejuvenationMode;
  apps: readonly AppObject[];
  records: readonly NodeRecord[];
  isAlive(node: string): boolean;
  /** The deciding node hears a majority of the cluster (itself included). */
  quorum: boolean;
  headroom: HeadroomRule;
  /** An operator's run: no waiting for a low-load window, and no postponement. */
  forced: boolean;
  /** The node's load per CPU now, and the soonest estimated exhaustion among its signals (null: none). */
  loadPerCpu: number;
  etaMs: number | null;
  /** At or below this load per CPU the node is in a low-load window. */
  lowLoadPerCpu: number;
  /** Rejuvenate now, whatever the load, once the estimated exhaustion is this close. */
  deadlineMs: number;
}

export interface Move {
  tag: string;
  to: string;
}

export type Plan =
  | { ok: true; when: 'now' | 'later'; why: string; moves: Move[] }
  | { ok: false; why: string };

/** Out of the available list: at most one node in the cluster is, at a time (claim 6's interlock). */
const OUT_STATES = ['duplexing', 'rejuvenating', 'probation'];

/** A node's role from what it hosts: the list's role is derived, never configured, so it cannot be stale. */
export function roleOf(node: string, apps: readonly AppObject[]): NodeRole {
  return apps.some((a) => a.host === node) ? 'primary' : 'spare';
}

/** Whether `target` still has headroom once `moving` (the apps' RSS and CPU from the source's readings) is added. */
export function fits(target: Headroom, moving: readonly { rss: number; cpu: number }[], rule: HeadroomRule): { ok: boolean; why: string } {
  const cpu = moving.reduce((s, m) => s + m.cpu, 0);
  const rss = moving.reduce((s, m) => s + m.rss, 0);
  const load = (target.load + cpu) / target.cpus;
  const mem = (target.memAvailable - rss) / target.memTotal;
  const say = `load ${load.toFixed(2)}/cpu (at most ${rule.maxLoadPerCpu}), memory available ${(100 * mem).toFixed(1)}% (at least ${(100 * rule.minMemAvailable).toFixed(1)}%)`;
  return { ok: load <= rule.maxLoadPerCpu && mem >= rule.minMemAvailable, why: say };
}

export function planRejuvenation(p: PlanInput): Plan {
  const refuse = (why: string): Plan => ({ ok: false, why });
  const records = new Map(p.records.map((r) => [r.node, r]));
  const own = records.get(p.node);
  if (own && own.state !== 'available') return refuse(`${p.node} is ${own.state} already`);
  if (!p.quorum) return refuse('this node hears fewer than a majority of the cluster: no rejuvenation without quorum');
  // Every rung is verified on the node's own readings; without them a rung would never end.
  if (!own?.headroom) return refuse(`${p.node} publishes no readings (its aging monitor is off, aging.enabled false, or has not sampled yet): its ladder could not be verified`);
  const out = p.records.find((r) => r.node !== p.node && OUT_STATES.includes(r.state));
  if (out) return refuse(`${out.node} is ${out.state}: one rejuvenation at a time`);
  const source = own?.headroom?.apps ?? {};
  const hosted = p.apps.filter((a) => a.host === p.node);
  const moves: Move[] = [];
  const byTarget = new Map<string, { rss: number; cpu: number }[]>();
  for (const a of hosted) {
    const to = a.host === a.primary ? a.backup : a.primary;
    const r = records.get(to);
    const why = !p.isAlive(to) ? `${to} is not alive`
      : a.faults.includes(to) ? `${to} carries a fault mark for it`
      : !AT_REST.includes(a.phase) ? `it is ${a.phase}`
      : r === undefined ? `${to} has published no record (an older agent?)`
      : r.state !== 'available' ? `${to} is ${r.state}`
      : p.mode === 'active-standby' && roleOf(to, p.apps) !== 'spare' ? `${to} is not a spare (it hosts ${p.apps.filter((x) => x.host === to).map((x) => x.tag).join(', ')})`
      : undefined;
    if (why) return refuse(`no target for ${a.tag}: ${why}`);
    moves.push({ tag: a.tag, to });
    byTarget.set(to, [...(byTarget.get(to) ?? []), source[a.tag] ?? { rss: 0, cpu: 0 }]);
  }
  if (p.mode === 'active-active') {
    for (const [to, moving] of byTarget) {
      const h = records.get(to)?.headroom;
      if (!h) return refuse(`no target: ${to} has not measured its headroom yet`);
      const f = fits(h, moving, p.headroom);
      if (!f.ok) return refuse(`no target: ${to} lacks headroom for ${moves.filter((m) => m.to === to).map((m) => m.tag).join(', ')}: ${f.why}`);
    }
  }
  const where = moves.length ? moves.map((m) => `${m.tag} to ${m.to}`).join(', ') : 'no app to move';
  if (p.forced) return { ok: true, when: 'now', why: `an operator's run (${where})`, moves };
  if (own?.notBefore !== undefined && own.notBefore > p.now) return { ok: true, when: 'later', why: `postponed until ${new Date(own.notBefore).toISOString()}`, moves };
  if (p.etaMs !== null && p.etaMs <= p.deadlineMs) return { ok: true, when: 'now', why: `exhaustion estimated in ${Math.round(p.etaMs / 1000)} s, within the deadline (${where})`, moves };
  if (p.loadPerCpu <= p.lowLoadPerCpu) return { ok: true, when: 'now', why: `a low-load window: ${p.loadPerCpu.toFixed(2)}/cpu (${where})`, moves };
  return { ok: true, when: 'later', why: `load ${p.loadPerCpu.toFixed(2)}/cpu is above the low-load mark ${p.lowLoadPerCpu}; waiting for a window${p.etaMs !== null ? ` or the deadline (exhaustion in ${Math.round(p.etaMs / 1000)} s)` : ''}`, moves };
}

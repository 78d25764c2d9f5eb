// The rejuvenation's decisions (src/rejuvenation/plan.ts, ladder.ts): the interlock, the targets by mode,
// now or later, the ladder's order and what "healthy" is after a rung.
import t from 'tap';

import { DEFAULT_AGING, type AgingConfig } from '../../src/config/schema.js';
import type { NodeRecord } from '../../src/db/node-record.js';
import type { AppObject } from '../../src/db/object.js';
import { healthy, nextStep, unfinished } from '../../src/rejuvenation/ladder.js';
import { fits, planRejuvenation, roleOf, type PlanInput } from '../../src/rejuvenation/plan.js';

const app = (tag: string, primary: string, backup: string, host = primary, more: Partial<AppObject> = {}): AppObject => ({
  tag, type: 'cluster-capable', command: { argv: ['x'] }, primary, backup, resources: [], autoRecover: false, attributes: {},
  epoch: 0, version: 1, updatedBy: primary, updatedAt: 0, attributeStamps: {}, host, phase: 'normal', faults: [], faultStamps: {}, ...more,
});
const GiB = 2 ** 30;
const rec = (node: string, more: Partial<NodeRecord> = {}): NodeRecord => ({
  node, seq: 1, writtenBy: node, role: 'spare', state: 'available', since: 0,
  headroom: { at: 0, cpus: 4, load: 0.4, memTotal: 16 * GiB, memAvailable: 12 * GiB, apps: {} }, ...more,
});

const input = (more: Partial<PlanInput> = {}): PlanInput => ({
  node: 'a', now: 1_000_000, mode: 'active-active',
  apps: [app('web', 'a', 'b'), app('db', 'a', 'c')],
  records: [rec('a', { headroom: { at: 0, cpus: 4, load: 2, memTotal: 16 * GiB, memAvailable: 2 * GiB, apps: { web: { rss: 4 * GiB, cpu: 1 }, db: { rss: 2 * GiB, cpu: 0.5 } } } }), rec('b'), rec('c')],
  isAlive: () => true, quorum: true, headroom: { maxLoadPerCpu: 0.8, minMemAvailable: 0.2 }, forced: false,
  loadPerCpu: 0.3, etaMs: null, lowLoadPerCpu: 0.5, deadlineMs: 3_600_000, ...more,
});

t.test('each app goes to its other node; a low-load window means now', async (t) => {
  const p = planRejuvenation(input());
  t.match(p, { ok: true, when: 'now', moves: [{ tag: 'web', to: 'b' }, { tag: 'db', to: 'c' }] });
  t.match(p.ok && p.why, /a low-load window: 0.30\/cpu/);
});

t.test('one rejuvenation at a time: another node out of the list refuses it, whichever state it is in', async (t) => {
  for (const state of ['duplexing', 'rejuvenating', 'probation'] as const) {
    const p = planRejuvenation(input({ records: [rec('a'), rec('b', { state }), rec('c')] }));
    t.same(p, { ok: false, why: `b is ${state}: one rejuvenation at a time` });
  }
  t.same(planRejuvenation(input({ records: [rec('a', { state: 'probation' }), rec('b'), rec('c')] })), { ok: false, why: 'a is probation already' });
  t.match(planRejuvenation(input({ quorum: false })), { ok: false, why: /no rejuvenation without quorum/ });
  t.match(planRejuvenation(input({ records: [rec('a', { headroom: undefined }), rec('b'), rec('c')] })), { ok: false, why: /a publishes no readings \(its aging monitor is off/ }, 'no readings, no verifiable ladder');
});

t.test('active/standby: the target must be a spare (hosting nothing); no target means no rejuvenation', async (t) => {
  const apps = [app('web', 'a', 'b'), app('mail', 'b', 'c')];
  t.match(planRejuvenation(input({ mode: 'active-standby', apps })), { ok: false, why: 'no target for web: b is not a spare (it hosts mail)' });
  t.match(planRejuvenation(input({ mode: 'active-standby', apps: [app('web', 'a', 'c')] })), { ok: true, moves: [{ tag: 'web', to: 'c' }] });
  t.equal(roleOf('b', apps), 'primary');
  t.equal(roleOf('c', apps), 'spare');
});

t.test('active/active: the target needs headroom for what moves to it, measured on the source', async (t) => {
  const tight = rec('b', { headroom: { at: 0, cpus: 4, load: 2.5, memTotal: 16 * GiB, memAvailable: 12 * GiB, apps: {} } });
  const p = planRejuvenation(input({ records: [input().records[0]!, tight, rec('c')] }));
  t.match(p, { ok: false, why: /^no target: b lacks headroom for web: load 0.88\/cpu \(at most 0.8\)/ });
  t.same(fits(rec('c').headroom!, [{ rss: 10 * GiB, cpu: 0 }], { maxLoadPerCpu: 1, minMemAvailable: 0.2 }).ok, false, '12 GiB less 10 leaves 12.5% of 16: too little');
  t.match(planRejuvenation(input({ records: [input().records[0]!, rec('b', { headroom: undefined }), rec('c')] })), { ok: false, why: 'no target: b has not measured its headroom yet' });
});

t.test('a target that is down, faulted, out of the list or silent about itself is no target', async (t) => {
  t.match(planRejuvenation(input({ isAlive: (n) => n !== 'c' })), { ok: false, why: 'no target for db: c is not alive' });
  t.match(planRejuvenation(input({ apps: [app('web', 'a', 'b', 'a', { faults: ['b'] })] })), { ok: false, why: 'no target for web: b carries a fault mark for it' });
  t.match(planRejuvenation(input({ records: [rec('a'), rec('c')] })), { ok: false, why: 'no target for web: b has published no record (an older agent?)' });
  t.match(planRejuvenation(input({ apps: [app('web', 'a', 'b', 'a', { phase: 'failing-back' })] })), { ok: false, why: 'no target for web: it is failing-back' });
});

t.test('now or later: the deadline before exhaustion overrides a busy node; a postponement delays only the automatic one', async (t) => {
  t.match(planRejuvenation(input({ loadPerCpu: 1.2 })), { ok: true, when: 'later', why: /above the low-load mark/ });
  t.match(planRejuvenation(input({ loadPerCpu: 1.2, etaMs: 1_800_000 })), { ok: true, when: 'now', why: /exhaustion estimated in 1800 s, within the deadline/ });
  const postponed = [rec('a', { notBefore: 2_000_000 }), rec('b'), rec('c')];
  t.match(planRejuvenation(input({ records: postponed })), { ok: true, when: 'later', why: /postponed until/ });
  t.match(planRejuvenation(input({ records: postponed, forced: true, loadPerCpu: 5 })), { ok: true, when: 'now', why: /an operator's run/ });
});

t.test('the ladder: each rung once, in order; a rung the agent came back from is verified, not tried again', async (t) => {
  const ladder = ['apps', 'agent', 'caches', 'reboot'] as const;
  t.equal(nextStep(ladder, []), 'apps');
  t.equal(nextStep(ladder, [{ step: 'apps', startedAt: 1, outcome: 'unhealthy' }]), 'agent');
  t.equal(nextStep(ladder, [{ step: 'reboot', startedAt: 1, outcome: 'failed' }]), undefined, 'climbed');
  t.same(unfinished([{ step: 'agent', startedAt: 1 }]), { step: 'agent', startedAt: 1 });
  t.equal(unfinished([{ step: 'agent', startedAt: 1, outcome: 'healthy' }]), undefined);
});

t.test('healthy after a rung: every judged node signal on the healthy side of its band\'s leave level', async (t) => {
  const aging: AgingConfig = { ...DEFAULT_AGING, threads: undefined };
  const readings = (load1: number, avail: number, swapFree = 0, swapTotal = 0) => ({
    load: { load1, load5: 0, load15: 0 }, cpus: 2, uptime: 100,
    mem: { total: 100, available: avail, buffers: 0, cached: 0, swapTotal, swapFree },
  });
  t.match(healthy(readings(1, 50), aging), { healthy: true, why: 'load 0.50/cpu, memory available 50.0%' });
  t.match(healthy(readings(4, 12), aging), { healthy: false, why: 'load 2.00/cpu above 1.5; memory available 12.0% below 15.0%' }, 'under the alarm but above leave is not healthy');
  t.match(healthy(readings(1, 50, 10, 100), aging), { healthy: false, why: /swap free 10.0% below 35.0%/ });
});

// The application flows of seed 001: FIG. 6 registration, failover, failback, split brain, operator
// unload/load. Each test that covers a §6 behaviour says which in its title. Single-node tests drive the
// reducer directly; cluster tests use test/support/flow-sim.ts (replicas, replication, membership).
import t from 'tap';

import { ClusterDb, epochFor } from '../../src/db/database.js';
import {
  type FlowAction, type FlowEvent, type FlowState, failoverCandidates, initialFlow, operatorLoad, operatorUnload, registrationCheck,
  runEpoch, step,
} from '../../src/db/flows.js';
import type { AppFields, AppObject } from '../../src/db/object.js';
import { FlowSim, app } from '../support/flow-sim.js';

const T0 = 1_000_000;
const CFG = { maxAttempts: 3, retryMs: 5000, promptRepeatMs: 60_000, failbackDwellMs: 10_000 };

function object(more: Partial<AppFields> = {}, version = 1): AppObject {
  const db = new ClusterDb();
  let o = db.upsert(app('CA-1', 'p', 'b', more), 'p', T0);
  while (o.version < version) o = db.update('CA-1', { attributes: { v: o.version } }, 'p', T0);
  return o;
}

/** Short text for actions, to compare sequences. */
function show(a: FlowAction): string {
  switch (a.kind) {
    case 'write': return `write ${Object.entries(a.patch).map(([k, v]) => `${k}=${v}`).join(',')} if ${a.ifHost}`;
    case 'notify': return `notify ${a.notice}`;
    case 'startApp': return a.paused ? 'startApp paused' : 'startApp';
    case 'startResources': return `startResources ${a.resources.map((r) => String(r.kind)).join(',')}`;
    case 'stopResources': return `stopResources ${a.resources.map((r) => String(r.kind)).join(',')}`;
    default: return a.kind;
  }
}

/** Feeds events to a reducer; returns the final state and every action, shown. */
function drive(s: FlowState, events: (FlowEvent | [FlowEvent, number])[]): { s: FlowState; acts: string[]; wakeAt: number | null } {
  const acts: string[] = [];
  let wakeAt: number | null = null;
  for (const e of events) {
    const [ev, now] = Array.isArray(e) ? e : [e, T0];
    const r = step(s, ev, now);
    s = r.state;
    wakeAt = r.wakeAt;
    acts.push(...r.actions.map(show));
  }
  return { s, acts, wakeAt };
}

const done = (op: 'checkResources' | 'startResources' | 'startApp' | 'stopApp' | 'stopResources' | 'syncAll'): FlowEvent => ({ type: 'done', op });

/** Node `self` with the object and both peers alive (long enough ago to count for failback). */
function flow(self: string, o: AppObject | null, init: { synced?: boolean; app?: 'down' | 'up' | 'paused'; resources?: 'down' | 'up' } = {}): FlowState {
  const peers = Object.fromEntries(['p', 'b', 'c'].filter((n) => n !== self).map((n) => [n, T0 - 3_600_000]));
  return initialFlow('CA-1', self, { config: CFG, obj: o, synced: init.synced ?? true, app: init.app ?? 'down', resources: init.resources ?? 'down', peers });
}

// ---------------------------------------------------------------------------------------------------
// FIG. 6

t.test('registration check (FIG. 6)', async (t) => {
  const spec = { tag: 'CA-1', type: 'cluster-aware', command: { argv: ['/opt/ca1'] }, primary: 'p', backup: 'b' };

  t.test('behaviour 8: an unregistered cluster-capable app prompts the operator; a cluster-aware one registers itself', async (t) => {
    const db = new ClusterDb();
    t.match(registrationCheck(db, 'CA-1', 'p'), { kind: 'prompt-operator', reason: /not registered/ });
    t.match(registrationCheck(db, 'CA-1', 'p', { type: 'cluster-capable' }), { kind: 'prompt-operator' });
    t.match(registrationCheck(db, 'CA-1', 'p', { type: 'cluster-aware' }), { kind: 'reject', reason: /registers itself/ });
    // The operator's answers (cluster-capable) or the app's own call (cluster-aware): stored, no prompt.
    for (const type of ['cluster-capable', 'cluster-aware']) {
      const d = registrationCheck(db, 'CA-1', 'p', { spec: { ...spec, type } });
      t.match(d, { kind: 'create', run: true, object: { tag: 'CA-1', type, host: 'p', primary: 'p', backup: 'b', phase: 'normal', resources: [], autoRecover: false } });
    }
    // An operator registering from another node: created with HOST = primary, not run there.
    t.match(registrationCheck(db, 'CA-1', 'c', { spec }), { kind: 'create', run: false, object: { host: 'p' } });
  });

  t.test('behaviour 2: refused when PRIMARY == BACKUP, TYPE is not capable/aware, or TAG exists with another PRIMARY', async (t) => {
    const db = new ClusterDb();
    t.match(registrationCheck(db, 'CA-1', 'p', { spec: { ...spec, backup: 'p' } }), { kind: 'reject', reason: /backup must be another node than the primary/ });
    t.match(registrationCheck(db, 'CA-1', 'p', { spec: { ...spec, type: 'unclusterable' } }), { kind: 'reject', reason: /cluster-capable or cluster-aware/ });
    t.match(registrationCheck(db, 'CA-2', 'p', { spec }), { kind: 'reject', reason: /for "CA-1", not "CA-2"/ });
    db.upsert(app('CA-1', 'p', 'b'), 'p', T0);
    t.match(registrationCheck(db, 'CA-1', 'c', { spec: { ...spec, primary: 'c', backup: 'b' } }), { kind: 'reject', reason: /already registered with primary p, not c/ });
    t.match(registrationCheck(db, 'CA-1', 'c'), { kind: 'reject', reason: /has primary p .* load it on p/ });
  });

  t.test('behaviour 12: registering again never creates a second object', async (t) => {
    const db = new ClusterDb();
    const d = registrationCheck(db, 'CA-1', 'p', { spec });
    if (d.kind !== 'create') throw new Error(d.kind);
    db.upsert(d.object, 'p', T0);
    for (let i = 0; i < 3; i++) t.equal(registrationCheck(db, 'CA-1', 'p', { spec }).kind, 'sync-all-then-run');
    t.equal(db.list().length, 1);
  });

  t.test('behaviour 9 / 10 / 11: HOST null, HOST == backup, HOST == primary', async (t) => {
    const db = new ClusterDb();
    db.upsert(app('CAP', 'p', 'b', { host: null }), 'p', T0);
    db.upsert(app('CAP-B', 'p', 'b', { host: 'b', phase: 'failed-over' }), 'p', T0);
    db.upsert(app('AW-B', 'p', 'b', { host: 'b', phase: 'failed-over', type: 'cluster-aware' }), 'p', T0);
    db.upsert(app('HP', 'p', 'b'), 'p', T0);
    db.upsert(app('HP-FB', 'p', 'b', { phase: 'failing-back' }), 'p', T0);
    db.upsert(app('HP-FO', 'p', 'b', { phase: 'failing-over' }), 'p', T0);
    t.same(registrationCheck(db, 'CAP', 'p'), { kind: 'set-host-then-run' });
    t.same(registrationCheck(db, 'CAP-B', 'p'), { kind: 'blocked', host: 'b' });
    t.same(registrationCheck(db, 'AW-B', 'p'), { kind: 'paused', host: 'b' });
    t.same(registrationCheck(db, 'HP', 'p'), { kind: 'sync-all-then-run' });
    t.same(registrationCheck(db, 'HP-FB', 'p'), { kind: 'run' }, 'coming back from failback: no sync');
    t.match(registrationCheck(db, 'HP-FO', 'p'), { kind: 'wait', reason: /backup b is failing/ });
    t.same(registrationCheck(db, 'CAP-B', 'b'), { kind: 'run' }, 'the backup reloading what it hosts');
    t.match(registrationCheck(db, 'HP', 'b'), { kind: 'reject' });
  });
});

t.test('behaviour 9: loading after an operator unload writes HOST = P, and the app executes', async (t) => {
  const o = object({ host: null });
  const { s, acts } = drive(flow('p', o), [{ type: 'load' }, done('startResources'), done('startApp')]);
  t.same(acts, ['write host=p,phase=normal if null', 'startResources disk,ip', 'startApp']);
  t.equal(s.app, 'up');
  t.equal(s.obj?.host, 'p');
});

t.test('behaviour 10: HOST == B: a capable load is blocked; an aware app is loaded paused, without its resources', async (t) => {
  const cap = drive(flow('p', object({ host: 'b', phase: 'failed-over' })), [{ type: 'load' }]);
  t.same(cap.acts, ['notify load-blocked']);
  t.equal(cap.s.app, 'down');
  const aw = drive(flow('p', object({ host: 'b', phase: 'failed-over', type: 'cluster-aware' })), [{ type: 'load' }, done('startApp')]);
  t.same(aw.acts, ['notify load-blocked', 'startApp paused']);
  t.equal(aw.s.app, 'paused');
  t.equal(aw.s.resources, 'down');
});

t.test('behaviour 11: HOST == P with no failover going on: all replicas are synced, with an event, before it executes', async (t) => {
  const { acts } = drive(flow('p', object()), [{ type: 'load' }, done('syncAll'), done('startResources'), done('startApp')]);
  t.same(acts, ['notify db-sync', 'syncAll', 'startResources disk,ip', 'startApp']);
  // At startup the same gate holds even without a load: a replica may be stale (FIG. 4E).
  const boot = drive(flow('p', object(), { synced: false }), [{ type: 'tick' }]);
  t.same(boot.acts, ['notify db-sync', 'syncAll']);
});

// ---------------------------------------------------------------------------------------------------
// Failover

t.test('behaviour 21 / 27: after P fails, B runs A from its own COMMAND and HOST = B everywhere, with no operator action', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b', 'c'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  t.same(sim.executing('CA-1'), ['p']);
  sim.crash('p');
  t.same(sim.executing('CA-1'), ['b']);
  for (const n of ['b', 'c']) t.match(sim.node(n).db.get('CA-1'), { host: 'b', primary: 'p', backup: 'b', phase: 'failed-over' });
  const started = sim.actions.find((a) => a.node === 'b' && a.action.kind === 'startApp');
  t.same(started?.action, { kind: 'startApp', command: { argv: ['/usr/bin/app', 'CA-1'] }, type: 'cluster-capable', paused: false });
  t.notOk(sim.actions.some((a) => a.action.kind === 'prompt'), 'no prompt');
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('behaviour 22: failover candidates are HOST == failed and BACKUP == this node only', async (t) => {
  const db = new ClusterDb();
  db.upsert(app('mine', 'p', 'b'), 'p', T0);
  db.upsert(app('other-backup', 'p', 'c'), 'p', T0);
  db.upsert(app('unloaded', 'p', 'b', { host: null }), 'p', T0);
  db.upsert(app('already-here', 'p', 'b', { host: 'b' }), 'p', T0);
  db.upsert(app('other-primary', 'c', 'b'), 'p', T0);
  t.same(failoverCandidates(db, 'p', 'b').map((o) => o.tag), ['mine']);
  t.same(failoverCandidates(db, 'c', 'b').map((o) => o.tag), ['other-primary']);
  t.same(failoverCandidates(db, 'p', 'c').map((o) => o.tag), ['other-backup']);
  // The reducer on B leaves the HOST-null object alone when P fails.
  const { acts } = drive(flow('b', object({ host: null })), [{ type: 'peerFailed', node: 'p' }]);
  t.same(acts, []);
});

t.test('behaviour 23: a node that is not the named backup does not load A', async (t) => {
  const { acts, s } = drive(flow('c', object()), [{ type: 'peerFailed', node: 'p' }, { type: 'tick' }]);
  t.same(acts, []);
  t.equal(s.app, 'down');
});

t.test('behaviour 24 / 25: resources missing on B: not loaded, the operator is told, HOST stays P', async (t) => {
  const { acts, s } = drive(flow('b', object()), [
    { type: 'peerFailed', node: 'p' },
    { type: 'resourceCheck', ok: false, missing: ['disk shared0'] },
    { type: 'tick' },
  ]);
  t.same(acts, [
    'notify primary-failed', 'write phase=failing-over if p', 'checkResources',
    'notify resource-error', 'write phase=normal if p',
  ]);
  t.equal(s.obj?.host, 'p');
  t.equal(s.app, 'down');
  t.equal(s.resources, 'down');
  t.equal(s.failoverGaveUp, true);
  // The operator fixes it and asks again (load on B), or P comes and goes: a new attempt.
  const again = drive(s, [{ type: 'load' }]);
  t.same(again.acts, ['notify primary-failed', 'write phase=failing-over if p', 'checkResources']);
});

t.test('behaviour 26: resources are started on B, in order, before A; never while P is host', async (t) => {
  const o = object({ resources: [{ kind: 'disk', disk: 'shared0' }, { kind: 'mount', disk: 'shared0', path: '/srv/db', fstype: 'ext4', options: [] }, { kind: 'ip', address: '10.0.0.10', prefixLength: 24, interface: { p: 'eth0', b: 'eth0' } }] });
  const { acts } = drive(flow('b', o), [
    { type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }, done('startResources'), done('startApp'),
  ]);
  t.same(acts, [
    'notify primary-failed', 'write phase=failing-over if p', 'checkResources', 'startResources disk,mount,ip', 'startApp',
    'write host=b,phase=failed-over if p', 'notify failover-complete',
  ]);
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  t.notOk(sim.actions.some((a) => a.node === 'b' && a.action.kind === 'startResources'), 'B starts nothing while P is host');
});

t.test('behaviour 28: A fails to start on B: HOST unchanged, an error, retried up to maxAttempts, resources released between', async (t) => {
  const ev: (FlowEvent | [FlowEvent, number])[] = [{ type: 'peerFailed', node: 'p' }];
  let now = T0;
  for (let i = 0; i < CFG.maxAttempts; i++) {
    ev.push([{ type: 'resourceCheck', ok: true, missing: [] }, now], [done('startResources'), now], [{ type: 'failed', op: 'startApp', error: 'exit 1' }, now]);
    if (i < CFG.maxAttempts - 1) {
      ev.push([done('stopResources'), now], [{ type: 'tick' }, now + CFG.retryMs - 1]);
      now += CFG.retryMs;
      ev.push([{ type: 'tick' }, now]);
    }
  }
  const { acts, s } = drive(flow('b', object()), ev);
  const attempt = ['checkResources', 'startResources disk,ip', 'startApp', 'notify start-failed'];
  t.same(acts, [
    'notify primary-failed', 'write phase=failing-over if p',
    ...attempt, 'stopResources ip,disk',
    ...attempt, 'stopResources ip,disk',
    ...attempt, 'notify failover-failed', 'write phase=normal if p', 'stopResources ip,disk',
  ]);
  t.equal(s.obj?.host, 'p');
  t.notOk(acts.some((a) => a.startsWith('write host')), 'HOST never written');
});

t.test('a failed resource start leaves them partial: stopped before the next attempt', async (t) => {
  const { acts, s } = drive(flow('b', object()), [
    { type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] },
    { type: 'failed', op: 'startResources', error: 'mount: busy' }, done('stopResources'),
    [{ type: 'tick' }, T0 + CFG.retryMs], [{ type: 'resourceCheck', ok: true, missing: [] }, T0 + CFG.retryMs],
  ]);
  t.same(acts.slice(3), ['startResources disk,ip', 'notify start-failed', 'stopResources ip,disk', 'checkResources', 'startResources disk,ip']);
  t.equal(s.resources, 'down');
});

t.test('failover aborted: P alive again before HOST = B is written', async (t) => {
  const { acts, s } = drive(flow('b', object()), [
    { type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }, done('startResources'),
    { type: 'peerAlive', node: 'p' }, // while startApp is outstanding
    done('startApp'), done('stopApp'), done('stopResources'),
  ]);
  t.same(acts.slice(4), [
    'startApp', 'notify failover-aborted', 'write phase=normal if p', 'stopApp', 'stopResources ip,disk',
  ]);
  t.equal(s.obj?.host, 'p');
  t.equal(s.app, 'down');
  t.notOk(acts.includes('notify split-brain'));
});

t.test('the old host restarts during a takeover that already runs here: the takeover completes; one not yet processing is aborted', async (t) => {
  const processing = drive(flow('b', object()), [
    { type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }, done('startResources'),
    { type: 'peerRestarted', node: 'p' }, { type: 'peerAlive', node: 'p' }, // p's new life, while startApp is outstanding
    done('startApp'),
  ]);
  t.same(processing.acts.slice(4), ['startApp', 'notify failover-continues', 'write host=b,phase=failed-over if p', 'notify failover-complete']);
  t.notOk(processing.acts.includes('notify failover-aborted'));
  const checking = drive(flow('b', object()), [
    { type: 'peerFailed', node: 'p' }, { type: 'peerRestarted', node: 'p' }, { type: 'peerAlive', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] },
  ]);
  t.ok(checking.acts.includes('notify failover-aborted'), 'nothing started here yet: p\'s new life decides with its peer');
  t.notOk(checking.acts.includes('notify failover-continues'));
});

t.test('stale and unexpected outcomes are ignored', async (t) => {
  const s = flow('b', object());
  for (const e of [done('startApp'), { type: 'failed', op: 'stopApp', error: 'x' }, { type: 'resourceCheck', ok: true, missing: [] }] as FlowEvent[]) {
    const r = step(s, e, T0);
    t.same(r.actions, []);
    t.same(r.state, s);
  }
});

// ---------------------------------------------------------------------------------------------------
// Failback

/** B hosting after a failover, P failed; returns the reducer on B. */
function failedOver(more: Partial<AppFields> = {}): FlowState {
  let s = flow('b', object({ host: 'b', phase: 'failed-over', autoRecover: false, ...more }), { app: 'up', resources: 'up' });
  s = step(s, { type: 'peerFailed', node: 'p' }, T0).state;
  return s;
}

t.test('behaviour 30 / 31: P alive again is a recovery; with auto-recover, failback starts by itself after the dwell', async (t) => {
  const s = failedOver({ autoRecover: true });
  const up = step(s, { type: 'peerAlive', node: 'p' }, T0 + 100);
  t.same(up.actions.map(show), ['notify recovery-detected']);
  t.equal(up.wakeAt, T0 + 100 + CFG.failbackDwellMs);
  const early = step(up.state, { type: 'tick' }, T0 + 100 + CFG.failbackDwellMs - 1);
  t.same(early.actions, []);
  const { acts, s: end } = drive(early.state, [[{ type: 'tick' }, T0 + 100 + CFG.failbackDwellMs], done('stopApp'), done('stopResources')]);
  t.same(acts, ['write phase=failing-back if b', 'notify failback-started', 'stopApp', 'stopResources ip,disk', 'write host=p if b', 'notify failback-handed-over']);
  t.equal(end.obj?.host, 'p');
  t.equal(end.obj?.phase, 'failing-back', 'P ends the phase when it runs (F7)');
});

t.test('behaviour 32: without auto-recover, the operator is prompted, again every repeatMs while declining; A stays on B', async (t) => {
  let s = step(failedOver(), { type: 'peerAlive', node: 'p' }, T0).state;
  const dwellEnd = T0 + CFG.failbackDwellMs;
  let r = step(s, { type: 'tick' }, dwellEnd);
  t.same(r.actions.map(show), ['prompt']);
  t.equal(r.wakeAt, dwellEnd + CFG.promptRepeatMs);
  s = r.state;
  r = step(s, { type: 'tick' }, dwellEnd + 1000);
  t.same(r.actions, [], 'not before repeatMs');
  r = step(r.state, { type: 'deny' }, dwellEnd + 2000);
  t.same(r.actions, []);
  t.equal(r.wakeAt, dwellEnd + 2000 + CFG.promptRepeatMs);
  r = step(r.state, { type: 'tick' }, dwellEnd + 2000 + CFG.promptRepeatMs);
  t.same(r.actions.map(show), ['prompt'], 'prompted again after a deny');
  t.equal(r.state.obj?.host, 'b');
  t.equal(r.state.app, 'up');
  r = step(r.state, { type: 'approve' }, dwellEnd + 3000 + CFG.promptRepeatMs);
  t.same(r.actions.map(show), ['write phase=failing-back if b', 'notify failback-started', 'stopApp']);
});

t.test('behaviour 33 / 34 / 35 / 40: the failback order, and A never executes on P and B at once', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.crash('p');
  sim.now += 60_000;
  sim.trace.length = 0;
  sim.restart('p');
  // P came back with its stale replica (HOST = P): the sync gate brings HOST = B before anything starts.
  t.same(sim.executing('CA-1'), ['b']);
  t.equal(sim.node('p').db.get('CA-1')?.host, 'b');
  t.notOk(sim.trace.some((l) => l.startsWith('p start')), 'behaviour 34/35: P does not execute while HOST is B');
  sim.advance(CFG.failbackDwellMs);
  t.same(sim.trace, [
    'p restarted', 'p syncAll',
    'b wrote phase=failing-back', 'b stopApp', 'b stopResources', 'b wrote host=p', // F1-F4
    'p startResources', 'p startApp', 'p wrote phase=normal', // F5-F7: load proceeds once HOST == P
  ]);
  t.same(sim.executing('CA-1'), ['p']);
  for (const n of ['p', 'b']) t.match(sim.node(n).db.get('CA-1'), { host: 'p', primary: 'p', backup: 'b', phase: 'normal' }, `behaviour 40 on ${n}`);
  t.notOk(sim.actions.some((a) => a.action.kind === 'write' && ('primary' in a.action.patch || 'backup' in a.action.patch)));
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
  t.ok(sim.notices('p').includes('failback-complete'));
});

t.test('behaviour 10 / 36: a cluster-aware app waits paused on P and executes once HOST is P, after its resources', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b', { type: 'cluster-aware' }));
  sim.crash('p');
  sim.restart('p');
  t.equal(sim.state('p', 'CA-1').app, 'paused');
  t.equal(sim.state('p', 'CA-1').resources, 'down');
  sim.trace.length = 0;
  sim.advance(CFG.failbackDwellMs);
  t.same(sim.trace, ['b wrote phase=failing-back', 'b stopApp', 'b stopResources', 'b wrote host=p', 'p startResources', 'p resumeApp', 'p wrote phase=normal']);
  t.same(sim.executing('CA-1'), ['p'], 'the process loaded paused on p is the one that runs');
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('behaviour 47: P fails again after B wrote HOST = P, before P runs: B fails over again', async (t) => {
  // The reducer on B right after F4.
  const b = drive(failedOver({ autoRecover: true }), [[{ type: 'peerAlive', node: 'p' }, T0], [{ type: 'tick' }, T0 + CFG.failbackDwellMs], done('stopApp'), done('stopResources')]);
  t.equal(b.s.obj?.host, 'p');
  const again = drive(b.s, [{ type: 'peerFailed', node: 'p' }]);
  t.same(again.acts, ['notify primary-failed', 'write phase=failing-over if p', 'checkResources']);
  // And in a cluster, with P's start held so that P dies before it runs.
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.crash('p');
  sim.restart('p');
  sim.hold.add('p:startResources');
  sim.advance(CFG.failbackDwellMs);
  t.equal(sim.node('b').db.get('CA-1')?.host, 'p');
  t.same(sim.executing('CA-1'), []);
  sim.crash('p');
  t.same(sim.executing('CA-1'), ['b']);
  t.match(sim.node('b').db.get('CA-1'), { host: 'b', phase: 'failed-over' });
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('P fails during the failback stop (before HOST = P): B keeps the app and runs it again', async (t) => {
  const s = failedOver({ autoRecover: true });
  const { acts, s: end } = drive(s, [
    [{ type: 'peerAlive', node: 'p' }, T0], [{ type: 'tick' }, T0 + CFG.failbackDwellMs],
    { type: 'peerFailed', node: 'p' }, done('stopApp'), done('startApp'),
  ]);
  t.same(acts.slice(3), ['stopApp', 'write phase=failed-over if b', 'notify failback-aborted', 'startApp']);
  t.equal(end.obj?.host, 'b');
  t.equal(end.app, 'up');
});

t.test('behaviour 51: a flapping P does not cause repeated failback and failover', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.crash('p');
  for (let i = 0; i < 5; i++) {
    sim.restart('p');
    sim.advance(CFG.failbackDwellMs / 2);
    sim.crash('p');
    sim.advance(1000);
  }
  t.equal(sim.notices('b').filter((n) => n === 'failback-started').length, 0, 'no failback while P flaps');
  t.equal(sim.notices('b').filter((n) => n === 'failover-complete').length, 1);
  t.same(sim.executing('CA-1'), ['b']);
  sim.restart('p');
  sim.advance(CFG.failbackDwellMs);
  t.equal(sim.notices('b').filter((n) => n === 'failback-started').length, 1, 'one failback once P stays up');
  t.same(sim.executing('CA-1'), ['p']);
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

// ---------------------------------------------------------------------------------------------------
// Operator, split brain, double failure

t.test('behaviour 41: unload stops A and sets HOST = null; a later failure of that server fails nothing over', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.event('b', 'CA-1', { type: 'unload' }); // issued on any node
  t.same(sim.executing('CA-1'), []);
  t.equal(sim.state('p', 'CA-1').resources, 'down');
  for (const n of ['p', 'b']) t.equal(sim.node(n).db.get('CA-1')?.host, null);
  t.notOk(sim.notices().includes('split-brain'), 'an unload is not a split brain');
  sim.crash('p');
  t.same(sim.executing('CA-1'), []);
  t.notOk(sim.actions.some((a) => a.node === 'b' && a.action.kind === 'startApp'));
  t.same(operatorUnload(sim.node('b').db.get('CA-1')!), undefined, 'already unloaded');
});

t.test('behaviour 42: load on P after an unload sets HOST = P and runs A', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.event('p', 'CA-1', { type: 'unload' });
  sim.event('p', 'CA-1', { type: 'load' });
  t.same(sim.executing('CA-1'), ['p']);
  t.equal(sim.node('b').db.get('CA-1')?.host, 'p');
  // The write an operator tool on any node makes.
  const o = object({ host: null });
  t.same(operatorLoad(o), { patch: { host: 'p', phase: 'normal' }, ifHost: null });
  t.same(operatorLoad(object()), undefined);
  t.same(operatorUnload(object()), { patch: { host: null, phase: 'normal' }, ifHost: 'p' });
  // Loading on B is refused while P is up.
  const r = drive(flow('b', o), [{ type: 'load' }]);
  t.same(r.acts, ['notify load-rejected']);
});

t.test('behaviour 46: P and B both crash and restart with HOST == P: a sync, then A runs on P only', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.crash('b');
  sim.crash('p');
  sim.trace.length = 0;
  sim.restart('b');
  sim.restart('p');
  t.same(sim.executing('CA-1'), ['p']);
  t.same(sim.trace.filter((l) => l.startsWith('p')), ['p restarted', 'p syncAll', 'p startResources', 'p startApp']);
  t.ok(sim.notices('p').includes('db-sync'));
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('behaviour 48: B down when P fails: A starts nowhere and the object is reported unprotected', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b', 'c'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.crash('b');
  sim.crash('p');
  t.same(sim.executing('CA-1'), []);
  t.same(sim.notices('c'), ['unprotected']);
  sim.advance(60_000);
  t.same(sim.notices('c'), ['unprotected'], 'once, not on every tick');
});

t.test('behaviour 49: a node that is primary for X and backup for Y fails over only Y and keeps running X', async (t) => {
  const sim = new FlowSim({ nodes: ['n1', 'n2'], config: CFG });
  sim.register('n1', app('X', 'n1', 'n2'));
  sim.register('n2', app('Y', 'n2', 'n1'));
  const startsOfX = () => sim.actions.filter((a) => a.tag === 'X' && a.action.kind === 'startApp').length;
  const before = startsOfX();
  sim.crash('n2');
  t.same(sim.executing('X'), ['n1']);
  t.same(sim.executing('Y'), ['n1']);
  t.equal(startsOfX(), before, 'X was not restarted');
  t.notOk(sim.actions.some((a) => a.tag === 'X' && a.action.kind === 'stopApp'));
});

t.test('behaviour 50: P back from a partition, running A while HOST is B, stops A at once', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b', { autoRecover: false }));
  sim.partition('p', 'b', true);
  t.same(sim.executing('CA-1').sort(), ['b', 'p'], 'both run during the partition (no fencing in this model)');
  sim.overlaps.length = 0;
  sim.partition('p', 'b', false);
  t.same(sim.executing('CA-1'), ['b']);
  t.ok(sim.notices('p').includes('split-brain'));
  t.equal(sim.state('p', 'CA-1').resources, 'down', 'its resources are released too');
  t.equal(sim.node('p').db.get('CA-1')?.host, 'b');
  // Reducer level: the stop is the first action after the change.
  const r = step(flow('p', object(), { app: 'up', resources: 'up' }), { type: 'dbChanged', object: object({ host: 'b', phase: 'failed-over' }, 2) }, T0);
  t.same(r.actions.map(show), ['notify split-brain', 'stopApp']);
});

// ---------------------------------------------------------------------------------------------------
// Other cases the daemon relies on

// ---------------------------------------------------------------------------------------------------
// Behaviour 20: an application fault fails over that one object

t.test('behaviour 20: an app that exits by itself on its host is stopped there, marked, and taken over by the backup; the host\'s other apps are untouched', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.register('p', app('CA-2', 'p', 'b'));
  t.same([sim.executing('CA-1'), sim.executing('CA-2')], [['p'], ['p']]);
  sim.event('p', 'CA-1', { type: 'exited', detail: 'exit 3' });
  t.same(sim.executing('CA-1'), ['b'], 'CA-1 runs on the backup');
  for (const n of ['p', 'b']) t.match(sim.node(n).db.get('CA-1'), { host: 'b', phase: 'failed-over', faults: ['p'] }, `${n}'s replica: HOST b, p marked`);
  t.same(sim.executing('CA-2'), ['p'], 'CA-2 still runs on p');
  t.match(sim.node('p').db.get('CA-2'), { host: 'p', faults: [] });
  t.equal(sim.state('p', 'CA-1').resources, 'down', 'p released CA-1\'s resources');
  t.ok(sim.notices('p').includes('app-fault'), 'p says the app faulted');
  t.same(sim.notices('b').filter((n) => n === 'host-faulted' || n === 'failover-complete'), ['host-faulted', 'failover-complete']);
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('a failed health probe: the app is stopped, then its resources, and only then is the fault marked', async (t) => {
  const r = drive(flow('p', object(), { app: 'up', resources: 'up' }), [{ type: 'fault', detail: 'no TCP connection' }, done('stopApp'), done('stopResources')]);
  t.same(r.acts, ['notify app-fault', 'stopApp', 'stopResources ip,disk', 'write faults=p if p']);
  t.same(r.s.obj?.faults, ['p']);
  t.equal(r.s.obj?.host, 'p', 'HOST stays p: the backup moves it');
  const stale = drive(flow('p', object(), { resources: 'up' }), [{ type: 'fault', detail: 'late probe' }]);
  t.same(stale.acts, ['startApp'], 'a probe result for an app that is not running is ignored (the host just starts it)');
  t.equal(stale.s.faulted, null);
});

t.test('an app that keeps faulting does not ping-pong: no failback to a marked primary, even with auto-recover, until a load there clears the mark', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b', { autoRecover: true }));
  sim.event('p', 'CA-1', { type: 'exited', detail: 'exit 3' });
  t.same(sim.executing('CA-1'), ['b']);
  sim.advance(CFG.failbackDwellMs * 3);
  t.same(sim.executing('CA-1'), ['b'], 'still on b after three dwell times');
  t.notOk(sim.notices('b').includes('failback-started'));
  t.notOk(sim.actions.some((a) => a.action.kind === 'prompt'), 'no failback prompt either');
  sim.event('p', 'CA-1', { type: 'load' });
  t.same(sim.node('b').db.get('CA-1')?.faults, [], 'the load on p cleared its mark everywhere');
  t.ok(sim.notices('p').includes('fault-cleared'));
  sim.advance(CFG.failbackDwellMs + 1000);
  t.same(sim.executing('CA-1'), ['p'], 'auto-recover fails it back to p');
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('an app that faults on the backup after a failover goes back to the primary at once, without a failback approval', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b', { autoRecover: false }));
  sim.crash('p');
  sim.restart('p');
  t.same(sim.executing('CA-1'), ['b']);
  sim.event('b', 'CA-1', { type: 'fault', detail: 'health probe failed 3 times' });
  t.same(sim.executing('CA-1'), ['p']);
  t.match(sim.node('p').db.get('CA-1'), { host: 'p', phase: 'normal', faults: ['b'] });
  t.notOk(sim.actions.some((a) => a.action.kind === 'prompt'));
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('an app that faults on both nodes comes to rest: it runs nowhere, the operator is told, and a load runs it again', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.event('p', 'CA-1', { type: 'exited', detail: 'exit 3' });
  sim.event('b', 'CA-1', { type: 'exited', detail: 'exit 3' });
  t.same(sim.executing('CA-1'), [], 'runs nowhere');
  t.match(sim.node('p').db.get('CA-1'), { host: 'b', faults: ['p', 'b'] });
  t.ok(sim.notices('b').includes('unprotected'), 'the host says it runs nowhere');
  t.equal(sim.state('b', 'CA-1').resources, 'down');
  sim.advance(CFG.failbackDwellMs * 2);
  t.same(sim.executing('CA-1'), [], 'and stays so');
  sim.event('b', 'CA-1', { type: 'load' });
  t.same(sim.executing('CA-1'), ['b'], 'a load on the host clears its mark and runs it there');
  t.same(sim.node('p').db.get('CA-1')?.faults, ['p']);
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('localRestarts: faults within the window restart the app in place; the next one fails it over; the window forgets old ones', async (t) => {
  const config = { ...CFG, localRestarts: 1, restartWindowMs: 60_000 };
  const sim = new FlowSim({ nodes: ['p', 'b'], config });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.event('p', 'CA-1', { type: 'exited', detail: 'exit 3' });
  t.same(sim.executing('CA-1'), ['p'], 'restarted on p');
  t.ok(sim.notices('p').includes('app-restarted'));
  sim.advance(61_000);
  sim.event('p', 'CA-1', { type: 'exited', detail: 'exit 3' });
  t.same(sim.executing('CA-1'), ['p'], 'the first fault is out of the window: restarted again');
  sim.advance(1000);
  sim.event('p', 'CA-1', { type: 'exited', detail: 'exit 3' });
  t.same(sim.executing('CA-1'), ['b'], 'a second fault within the window fails it over');
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
  // A health fault with a restart left: the running app is stopped and started again; resources stay up.
  const s = initialFlow('CA-1', 'p', { config, obj: object(), synced: true, app: 'up', resources: 'up', peers: { b: T0 - 3_600_000 } });
  const r = drive(s, [{ type: 'fault', detail: 'probe' }, done('stopApp')]);
  t.same(r.acts, ['notify app-restarted', 'stopApp', 'startApp']);
});

t.test('a paused cluster-aware copy on the primary that exits is not restarted until loaded again', async (t) => {
  const o = object({ type: 'cluster-aware', host: 'b', phase: 'failed-over' });
  const r = drive(flow('p', o, { app: 'paused' }), [{ type: 'exited', detail: 'exit 1' }, { type: 'tick' }]);
  t.same(r.acts, ['notify app-exited']);
  t.match(r.s.halted, /exited by itself/);
});

t.test('a node fenced off a disk of the app it hosts stops the app and its resources at once, then marks the fault so that the backup takes it over', async (t) => {
  const s = flow('p', object(), { app: 'up', resources: 'up' });
  const r = drive(s, [{ type: 'fenced', detail: 'disk shared0: preempted' }]);
  t.same(r.acts, ['notify fenced', 'stopApp'], 'the app first');
  const stopped = drive(r.s, [done('stopApp'), done('stopResources'), { type: 'tick' }]);
  t.same(stopped.acts, ['stopResources ip,disk', 'write faults=p if p'], 'then its resources, in reverse; then the mark; nothing restarts');
  t.equal(stopped.s.app, 'down');
  const idle = drive(flow('b', object()), [{ type: 'fenced', detail: 'x' }]);
  t.same(idle.acts, [], 'a node running nothing has nothing to stop and says nothing');
  t.equal(idle.s.halted, null);
});

t.test('fenced while HOST is still this node and nobody took over: the app does not stop everywhere, the backup takes it over', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.event('p', 'CA-1', { type: 'fenced', detail: 'disk shared0: preempted' });
  t.same(sim.executing('CA-1'), ['b'], 'it runs on b');
  t.match(sim.node('b').db.get('CA-1'), { host: 'b', faults: ['p'] });
  t.ok(sim.notices('b').includes('host-faulted'));
});

t.test('a primary fenced while its backup took the app over (a frozen primary thawing) gets it back by failback: the fence leaves nothing that keeps it from running there', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b', { autoRecover: true }));
  sim.partition('p', 'b', true); // p frozen: b declares it failed and takes over, preempting p's key
  t.match(sim.node('b').db.get('CA-1'), { host: 'b' });
  // p wakes: the disk says it was preempted before p's replica hears that HOST moved.
  sim.event('p', 'CA-1', { type: 'fenced', detail: 'disk shared0: preempted' });
  t.same(sim.executing('CA-1'), ['b'], 'p stopped its copy');
  sim.partition('p', 'b', false);
  sim.advance(CFG.failbackDwellMs + 2000);
  t.same(sim.executing('CA-1'), ['p'], 'after the dwell, failback (auto-recover) runs it on p again');
  for (const n of ['p', 'b']) t.match(sim.node(n).db.get('CA-1'), { host: 'p', phase: 'normal', faults: [] }, `${n}'s replica`);
  t.same(sim.ghosts, [], 'no flow says up where no process runs');
});

t.test('once the failover took the disks (the old host preempted, so fenced), the old host heard again does not abort it', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.hold.add('b:startResources');
  sim.partition('p', 'b', true); // p frozen for a moment: b starts the failover
  sim.event('b', 'CA-1', { type: 'disksTaken' } as FlowEvent); // b preempted p's key: p can no longer write
  sim.event('p', 'CA-1', { type: 'fenced', detail: 'disk shared0: preempted' });
  sim.partition('p', 'b', false); // p heard again before b wrote HOST = b (a slow mount)
  sim.hold.clear();
  sim.release();
  t.same(sim.executing('CA-1'), ['b'], 'b completed the takeover instead of leaving the app nowhere');
  for (const n of ['p', 'b']) t.match(sim.node(n).db.get('CA-1'), { host: 'b' }, `${n}'s replica: HOST b`);
  t.notOk(sim.notices('b').includes('failover-aborted'));
});

t.test('§5.2 item 7: the backup hosting the app fails while the primary is up: the primary takes it back at once', async (t) => {
  const o = object({ host: 'b', phase: 'failed-over', autoRecover: false });
  const r = drive(flow('p', o), [{ type: 'peerFailed', node: 'b' }, { type: 'resourceCheck', ok: true, missing: [] }, done('startResources'), done('startApp')]);
  t.same(r.acts, [
    'notify primary-failed', 'write phase=failing-over if b', 'checkResources', 'startResources disk,ip', 'startApp',
    'write host=p,phase=normal if b', 'notify failover-complete',
  ], 'no failback approval is waited for: the node that hosted it is gone');
  const aborted = drive(flow('p', o), [{ type: 'peerFailed', node: 'b' }, { type: 'peerAlive', node: 'b' }, { type: 'resourceCheck', ok: true, missing: [] }]);
  t.ok(aborted.acts.includes('notify failover-aborted'), 'the backup back before HOST moved: the take-back is called off');
  t.same(drive(flow('c', o), [{ type: 'peerFailed', node: 'b' }]).acts, [], 'a third node does nothing, and does not call it unprotected: p takes it');
  // A partition healing: p thinks b failed, then learns from b itself that b took the app over.
  const healing = drive(flow('p', object({ host: 'p' }), { app: 'up', resources: 'up' }), [
    { type: 'peerFailed', node: 'b' }, { type: 'dbChanged', object: object({ host: 'b', phase: 'failed-over' }, 3) },
    done('stopApp'), done('stopResources'), { type: 'tick' },
  ]);
  t.notOk(healing.acts.some((a) => a.startsWith('write host=p')), 'HOST = b learnt while b counts as failed: p stands down, takes nothing back');
  t.ok(healing.acts.includes('notify split-brain'));
});

t.test('starts on the host give up after maxAttempts', async (t) => {
  const ev: (FlowEvent | [FlowEvent, number])[] = [{ type: 'tick' }];
  for (let i = 0; i < CFG.maxAttempts; i++) {
    const at = T0 + i * CFG.retryMs;
    ev.push([done('startResources'), at], [{ type: 'failed', op: 'startApp', error: 'no such file' }, at], [done('stopResources'), at], [{ type: 'tick' }, at + CFG.retryMs]);
  }
  const { acts, s } = drive(flow('p', object()), ev);
  t.equal(acts.filter((a) => a === 'startApp').length, CFG.maxAttempts);
  t.ok(acts.includes('notify start-gave-up'));
  t.match(s.halted, /gave up/);
});

t.test('a start refused as stale (the agent stalled since it decided) is decided again and never counts as an attempt', async (t) => {
  const ev: (FlowEvent | [FlowEvent, number])[] = [{ type: 'tick' }];
  // More stale refusals than maxAttempts: none of them gives up.
  for (let i = 0; i <= CFG.maxAttempts; i++) {
    const at = T0 + i * CFG.retryMs;
    ev.push([done('startResources'), at], [{ type: 'failed', op: 'startApp', error: 'stalled 2500 ms', stale: true }, at], [done('stopResources'), at], [{ type: 'tick' }, at + CFG.retryMs]);
  }
  const { acts, s } = drive(flow('p', object()), ev);
  t.equal(acts.filter((a) => a === 'startApp').length, CFG.maxAttempts + 1, 'decided again after each, retryMs later');
  t.equal(acts.filter((a) => a === 'notify start-stale').length, CFG.maxAttempts + 1);
  t.notOk(acts.some((a) => a === 'notify start-failed' || a === 'notify start-gave-up'), 'no failed attempt, no giving up');
  t.equal(s.halted, null);
  t.equal(s.attempts, 0);
  t.ok(acts.indexOf('stopResources ip,disk') > acts.indexOf('notify start-stale'), 'what was started is stopped while it waits');
});

t.test('a stop that fails is retried, and HOST is not handed over while anything still runs (§5.2 item 9)', async (t) => {
  const s = step(failedOver({ autoRecover: true }), { type: 'peerAlive', node: 'p' }, T0).state;
  const dwell = T0 + CFG.failbackDwellMs;
  const { acts, s: end } = drive(s, [
    [{ type: 'tick' }, dwell],
    [{ type: 'failed', op: 'stopApp', error: 'still running after SIGKILL' }, dwell],
    [{ type: 'tick' }, dwell + 100],
    [{ type: 'tick' }, dwell + CFG.retryMs],
    [{ type: 'failed', op: 'stopApp', error: 'again' }, dwell + CFG.retryMs],
    [{ type: 'tick' }, dwell + 2 * CFG.retryMs],
    [done('stopApp'), dwell + 2 * CFG.retryMs], [done('stopResources'), dwell + 2 * CFG.retryMs],
  ]);
  t.same(acts, [
    'write phase=failing-back if b', 'notify failback-started', 'stopApp', 'notify stop-failed',
    'stopApp', 'stopApp', 'stopResources ip,disk', 'write host=p if b', 'notify failback-handed-over',
  ]);
  t.equal(end.obj?.host, 'p');
});

t.test('a removed app is stopped wherever it runs', async (t) => {
  const { acts } = drive(flow('p', object(), { app: 'up', resources: 'up' }), [{ type: 'dbChanged', object: null }, done('stopApp'), done('stopResources')]);
  t.same(acts, ['stopApp', 'stopResources ip,disk']);
});

t.test('the primary waits while the backup is mid-failover, and runs if the backup dies', async (t) => {
  const o = object({ phase: 'failing-over' });
  const w = drive(flow('p', o), [{ type: 'load' }, { type: 'tick' }]);
  t.same(w.acts, []);
  const r = drive(w.s, [{ type: 'peerFailed', node: 'b' }, done('startResources'), done('startApp')]);
  t.same(r.acts, ['startResources disk,ip', 'startApp']);
});

t.test('outcomes that go wrong in other ways', async (t) => {
  t.test('a sync that fails is reported, and the app still runs on the local replica', async (t) => {
    const { acts } = drive(flow('p', object(), { synced: false }), [{ type: 'tick' }, { type: 'failed', op: 'syncAll', error: 'no peer answered' }]);
    t.same(acts, ['notify db-sync', 'syncAll', 'notify sync-failed', 'startResources disk,ip']);
  });

  t.test('a resource check that cannot run counts as resources missing', async (t) => {
    const { acts, s } = drive(flow('b', object()), [{ type: 'peerFailed', node: 'p' }, { type: 'failed', op: 'checkResources', error: 'EACCES' }]);
    t.same(acts.slice(3), ['notify resource-error', 'write phase=normal if p']);
    t.equal(s.failoverGaveUp, true);
  });

  t.test('the program exiting while it is being started or stopped completes that op', async (t) => {
    const a = drive(flow('b', object()), [{ type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }, done('startResources'), { type: 'exited', detail: 'code 1' }]);
    t.same(a.acts.slice(-2), ['notify start-failed', 'stopResources ip,disk']);
    const b = drive(flow('p', object(), { app: 'up', resources: 'up' }), [{ type: 'unload' }, { type: 'exited', detail: 'signal TERM' }]);
    t.same(b.acts, ['write host=null,phase=normal if p', 'notify unloaded', 'stopApp', 'stopResources ip,disk']);
    t.equal(b.s.app, 'down');
  });

  t.test('a pause-mode start that fails halts the app on the primary until loaded again', async (t) => {
    const o = object({ host: 'b', phase: 'failed-over', type: 'cluster-aware' });
    const { acts, s } = drive(flow('p', o), [{ type: 'tick' }, { type: 'failed', op: 'startApp', error: 'ENOENT' }, { type: 'tick' }]);
    t.same(acts, ['startApp paused', 'notify start-failed']);
    t.match(s.halted, /pause mode failed/);
    t.same(drive(s, [{ type: 'load' }]).acts, ['notify load-blocked', 'startApp paused']);
  });
});

t.test('the last-active gate: while closed, the host does not start the app and the backup does not take it over; opening it lets both happen', async (t) => {
  const host = initialFlow('CA-1', 'p', { config: CFG, obj: object(), synced: true, peers: { b: T0 - 3_600_000 }, gated: true });
  const closed = drive(host, [{ type: 'tick' }]);
  t.same(closed.acts, [], 'nothing starts on the host');
  const opened = drive(closed.s, [{ type: 'gate', open: true }]);
  t.same(opened.acts, ['startResources disk,ip']);
  const backup = initialFlow('CA-1', 'b', { config: CFG, obj: object(), synced: true, peers: { p: T0 - 3_600_000 }, gated: true });
  const failed = drive(backup, [{ type: 'peerFailed', node: 'p' }]);
  t.same(failed.acts, [], 'no takeover while closed');
  const open = drive(failed.s, [{ type: 'gate', open: true }]);
  t.same(open.acts.slice(0, 3), ['notify primary-failed', 'write phase=failing-over if p', 'checkResources']);
  const running = drive(flow('p', object(), { app: 'up', resources: 'up' }), [{ type: 'gate', open: false }, { type: 'tick' }]);
  t.same(running.acts, [], 'closing it stops nothing that runs');
});

t.test('a takeover under way waits while its pair decides again (the old host restarted): nothing starts, and its resources are checked again once decided', async (t) => {
  const backup = initialFlow('CA-1', 'b', { config: CFG, obj: object(), synced: true, peers: { p: T0 - 3_600_000 } });
  const began = drive(backup, [{ type: 'peerFailed', node: 'p' }]);
  t.same(began.acts.slice(0, 3), ['notify primary-failed', 'write phase=failing-over if p', 'checkResources']);
  const deciding = drive(began.s, [{ type: 'gate', open: false }, { type: 'resourceCheck', ok: true, missing: [] }, { type: 'tick' }]);
  t.same(deciding.acts, [], 'no start while the pair decides');
  t.not(deciding.s.failover, null, 'the takeover is kept: p still counts as failed');
  t.same(drive(deciding.s, [{ type: 'gate', open: true }]).acts, ['checkResources'], 'decided: checked again, then on');
  const refused = drive(began.s, [{ type: 'resourceCheck', ok: true, missing: [] }, { type: 'gate', open: false },
    { type: 'failed', op: 'startResources', error: 'deciding again', stale: true }, { type: 'tick' }]);
  t.same(refused.acts, ['startResources disk,ip', 'notify start-stale', 'stopResources ip,disk'], 'a start refused mid-way stops what it held, and waits');
});

t.test('epochs: the failover\'s HOST write carries the disk token it took; the host\'s own start raises the era too; the app runs under the era it opens', async (t) => {
  const o = object({ autoRecover: false });
  let s = flow('b', o);
  const actions: FlowAction[] = [];
  for (const e of [{ type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }, { type: 'disksTaken', token: 40 }] as FlowEvent[]) {
    const r = step(s, e, T0);
    s = r.state;
    actions.push(...r.actions);
  }
  t.equal(runEpoch(s), epochFor(o.epoch, true, 40), 'started during the failover: the era its HOST write opens');
  for (const e of [done('startResources'), done('startApp')]) {
    const r = step(s, e, T0);
    s = r.state;
    actions.push(...r.actions);
  }
  t.match(actions.find((a) => a.kind === 'write' && a.patch.host === 'b'), { patch: { host: 'b' }, ifHost: 'p', token: 40 });
  const home = drive(flow('p', object()), [{ type: 'load' }, done('syncAll'), { type: 'disksTaken', token: 7 }]);
  t.ok(home.acts.includes('write  if p'), `the host's own start writes its token (${home.acts.join(', ')})`);
  t.equal(runEpoch(flow('p', object())), object().epoch, 'at rest: the object\'s era');
});

t.test('a failover left unfinished by a restarted backup (phase failing-over, the primary alive) is abandoned, so the primary does not wait for it for good', async (t) => {
  const o = object({ phase: 'failing-over' });
  const b = drive(flow('b', o), [{ type: 'tick' }]);
  t.same(b.acts, ['write phase=normal if p', 'notify failover-aborted'], 'the restarted backup puts the phase back');
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('CA-1', 'p', 'b'));
  sim.crash('p');
  t.match(sim.node('b').db.get('CA-1'), { host: 'b' });
  // A second case in the simulator: b dies half-way through a failover from p, which was only cut off.
  const sim2 = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim2.register('p', app('CA-1', 'p', 'b'));
  sim2.hold.add('b:startResources');
  sim2.partition('p', 'b', true);
  t.match(sim2.node('b').db.get('CA-1'), { host: 'p', phase: 'failing-over' }, 'b began its failover');
  sim2.crash('b');
  sim2.hold.clear();
  sim2.partition('p', 'b', false);
  sim2.restart('b');
  sim2.advance(1000);
  for (const n of ['p', 'b']) t.match(sim2.node(n).db.get('CA-1'), { host: 'p', phase: 'normal' }, `${n}'s replica: back to normal`);
  t.same(sim2.executing('CA-1'), ['p'], 'p runs it');
});

t.test('a takeover whose address is still answered by its old host (busy) waits and checks again every retryMs, as long as that host counts as failed', async (t) => {
  const o = object({ autoRecover: false });
  const busy: FlowEvent = { type: 'resourceCheck', ok: false, missing: ['ip 10.0.0.10/24: still answered by another host (aa:bb)'], busy: true };
  const first = drive(flow('b', o), [{ type: 'peerFailed', node: 'p' }, busy]);
  t.same(first.acts, ['notify primary-failed', 'write phase=failing-over if p', 'checkResources', 'notify resource-error'], 'said once');
  t.equal(first.wakeAt, T0 + CFG.retryMs, 'checked again after retryMs');
  t.ok(first.s.failover, 'the failover goes on');
  const again = drive(first.s, [[{ type: 'tick' }, T0 + CFG.retryMs], [busy, T0 + CFG.retryMs]]);
  t.same(again.acts, ['checkResources'], 'no second notice');
  const free = drive(again.s, [[{ type: 'tick' }, T0 + 2 * CFG.retryMs], [{ type: 'resourceCheck', ok: true, missing: [] }, T0 + 2 * CFG.retryMs]]);
  t.same(free.acts, ['checkResources', 'startResources disk,ip'], 'the address free at last: the takeover proceeds');
});

t.test('a power fence that fails holds the takeover without counting an attempt, alerts each time, and tries again after retryMs for as long as it takes', async (t) => {
  const backup = initialFlow('CA-1', 'b', { config: CFG, obj: object(), synced: true, peers: { p: T0 - 3_600_000 } });
  const began = drive(backup, [{ type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }]);
  t.same(began.acts.slice(-1), ['startResources disk,ip']);
  let s = began.s;
  let now = T0;
  for (let i = 0; i < CFG.maxAttempts + 2; i++) {
    const r = drive(s, [[{ type: 'failed', op: 'startResources', error: 'power fence of p: no answer', fence: true }, now]]);
    t.same(r.acts.slice(0, 1), ['notify fence-failed'], `refusal ${i + 1} alerts`);
    t.equal(r.s.attempts, 0, 'not counted as an attempt');
    t.not(r.s.failover, null, 'the takeover is kept, never given up');
    t.equal(r.s.retryAt, now + CFG.retryMs);
    now += CFG.retryMs;
    const again = drive(r.s, [[done('stopResources'), now - CFG.retryMs], [{ type: 'tick' }, now], [{ type: 'resourceCheck', ok: true, missing: [] }, now]]);
    t.same(again.acts.slice(-2), ['checkResources', 'startResources disk,ip'], 'decided again after retryMs');
    s = again.s;
  }
});

t.test('a takeover past its disks, refused because the old host (alive again) processes it, gives way: the failover ends and the phase is restored, so the old host starts it (nemesis seed 1874018165)', async (t) => {
  // Built anew for each case: a failover's record is shared between successive states.
  const takingOver = () => {
    const backup = initialFlow('CA-1', 'b', { config: CFG, obj: object(), synced: true, peers: { p: T0 - 3_600_000 } });
    return drive(backup, [{ type: 'peerFailed', node: 'p' }, { type: 'resourceCheck', ok: true, missing: [] }, { type: 'disksTaken', token: 3 }, { type: 'peerAlive', node: 'p' }]).s;
  };
  const alive = takingOver();
  t.equal(alive.failover?.committed, true, 'committed: the disks are taken, and p alive again does not end it');
  const refused = drive(alive, [{ type: 'failed', op: 'startResources', error: 'p processes it (M) and this node is its slave', stale: true, yielded: true }]);
  t.ok(refused.acts.includes('notify failover-aborted'), `the failover ends (${refused.acts.join(', ')})`);
  t.ok(refused.acts.includes('write phase=normal if p'), 'and p no longer waits on its phase');
  t.equal(refused.s.failover, null);
  const plain = drive(takingOver(), [{ type: 'failed', op: 'startResources', error: 'stalled', stale: true }]);
  t.not(plain.s.failover, null, `a start refused for a stall keeps its committed takeover (${plain.acts.join(', ')})`);
});

// The planned switchover and drain (flows.ts rule 6, src/db/switchover.ts) in the flow simulation: make
// before break, the stay-put after a move to the backup, every refusal, and what each fault half-way does.
// After every step the simulation checks that no two nodes execute the app at once (sim.overlaps).
import t from 'tap';

import { ClusterDb } from '../../src/db/database.js';
import type { AppFields, AppObject } from '../../src/db/object.js';
import { planDrain, planSwitchover, planUndrain } from '../../src/db/switchover.js';
import { handsOver } from '../../src/daemon/last-active.js';
import { FlowSim, app } from '../support/flow-sim.js';

const CFG = { maxAttempts: 3, retryMs: 5000, promptRepeatMs: 60_000, failbackDwellMs: 10_000 };

function cluster(more: Partial<AppFields> = {}, nodes = ['p', 'b']): FlowSim {
  const sim = new FlowSim({ nodes, config: CFG });
  sim.register('p', app('A', 'p', 'b', more));
  return sim;
}

/** The operator on `at` asks for a switchover (vigil switchover A [--to NODE]); the reason if refused. */
function switchover(sim: FlowSim, at: string, to?: string, tag = 'A'): string | undefined {
  const o = sim.node(at).db.get(tag)!;
  const plan = planSwitchover(o, to, { by: at, now: sim.now, isAlive: (n) => sim.alive(at, n) });
  if (!plan.ok) return plan.reason;
  sim.operatorWrite(at, tag, plan.write);
  return undefined;
}

function obj(sim: FlowSim, node = 'p', tag = 'A'): AppObject {
  return sim.node(node).db.get(tag)!;
}

t.test('primary to backup: the target checks and says ready before the source stops anything; the source releases, then HOST moves', async (t) => {
  const sim = cluster();
  sim.trace.length = 0;
  t.equal(switchover(sim, 'p'), undefined);
  t.same(sim.trace, [
    'p wrote phase=switching-over,switchover=requested',
    'b wrote switchover=ready', // the target's resource check passed
    'p stopApp', 'p stopResources', 'p wrote host=b,switchover=handed',
    'b startResources', 'b startApp', 'b wrote phase=switched-over,switchover=done',
  ]);
  t.same(sim.executing('A'), ['b']);
  for (const n of ['p', 'b']) t.match(obj(sim, n), { host: 'b', phase: 'switched-over', switchover: { from: 'p', to: 'b', ready: true, gapMs: 0 } });
  t.ok(sim.notices('b').includes('switchover-started') && sim.notices('b').includes('switchover-complete'));
  t.ok(sim.notices('p').includes('switchover-handed-over'));
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, []);
  // The source removed its addresses before it wrote HOST = b: b's start skips the duplicate address probe.
  const starts = sim.actions.filter((x) => x.action.kind === 'startResources' && x.node === 'b').map((x) => x.action);
  t.match(starts, [{ kind: 'startResources', handedOver: true }], 'the target starts the resources as handed over');
});

t.test('the service gap is the target\'s app start less the source\'s app stop', async (t) => {
  const sim = cluster();
  sim.hold.add('b:startApp');
  switchover(sim, 'p');
  sim.advance(750);
  sim.hold.clear();
  sim.release();
  t.equal(obj(sim, 'b').switchover?.gapMs, 750);
  t.equal(obj(sim, 'b').switchover?.appStoppedAt, obj(sim, 'b').switchover!.appStartedAt! - 750);
});

t.test('a cluster-aware primary holding the app paused: the gap ends when the pause is released, after the resources', async (t) => {
  const sim = cluster({ type: 'cluster-aware' });
  switchover(sim, 'p');
  t.equal(sim.state('p', 'A').app, 'paused', 'p holds a paused copy while b hosts (F0)');
  sim.hold.add('p:startResources');
  switchover(sim, 'b');
  sim.advance(300);
  sim.hold.clear();
  sim.release();
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'b'), { host: 'p', phase: 'normal', switchover: { from: 'b', to: 'p', gapMs: 300 } });
  t.same(sim.overlaps, []);
});

t.test('make before break for a cluster-aware app: the target holds a paused copy once ready, before the source stops; the handover releases it', async (t) => {
  const sim = cluster({ type: 'cluster-aware' });
  sim.hold.add('p:stopApp');
  sim.trace.length = 0;
  switchover(sim, 'p');
  t.equal(sim.state('b', 'A').app, 'paused', 'b started the app paused while p still runs it');
  t.same(sim.executing('A'), ['p'], 'one running copy: the paused one waits in ready()');
  sim.hold.clear();
  sim.release();
  t.same(sim.executing('A'), ['b']);
  const bTrace = sim.trace.filter((x) => x.startsWith('b '));
  t.ok(bTrace.indexOf('b startApp') < bTrace.indexOf('b startResources') && bTrace.includes('b resumeApp'), `b: paused start, then its resources, then the release (${bTrace.join(', ')})`);
  t.match(obj(sim, 'b'), { host: 'b', phase: 'switched-over' });
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, []);
});

t.test('a switchover aborted after the target said ready: its paused copy is stopped, the source keeps the app', async (t) => {
  const sim = cluster({ type: 'cluster-aware' });
  sim.hold.add('p:stopApp');
  switchover(sim, 'p');
  t.equal(sim.state('b', 'A').app, 'paused');
  sim.operatorWrite('p', 'A', { patch: { keepOff: 'b' }, ifHost: 'p' }); // b drained before the handover
  sim.hold.clear();
  sim.release();
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'b'), { host: 'p', switchover: { refused: /b is drained|drain/ } });
  t.equal(sim.state('b', 'A').app, 'down', 'b stopped its paused copy once the switchover was over');
  t.same(sim.overlaps, []);
});

t.test('after a switchover to the backup the app stays there: no failback prompt, no auto-recover, however long the primary is up', async (t) => {
  const sim = cluster({ autoRecover: true });
  switchover(sim, 'p', 'b');
  sim.crash('p');
  sim.restart('p');
  sim.advance(CFG.failbackDwellMs * 5);
  t.same(sim.executing('A'), ['b']);
  t.match(obj(sim, 'p'), { host: 'b', phase: 'switched-over' });
  t.notOk(sim.actions.some((a) => a.action.kind === 'prompt'), 'no failback prompt');
  t.notOk(sim.notices().includes('failback-started'));
  t.equal(sim.state('b', 'A').promptAt, null);
  // The operator switches it back: normal on its primary.
  t.equal(switchover(sim, 'b'), undefined);
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'b'), { host: 'p', phase: 'normal', switchover: { from: 'b', to: 'p' } });
  t.same(sim.overlaps, []);
});

t.test('a take-back from the backup begun in a partition and aborted when it heals leaves the app switched over, not failed over', async (t) => {
  const sim = cluster({ autoRecover: true });
  switchover(sim, 'p');
  sim.hold.add('p:startResources');
  sim.partition('p', 'b', true); // p takes the app back from the "failed" b, its start held
  t.equal(obj(sim, 'p').phase, 'failing-over');
  sim.partition('p', 'b', false); // b alive again before p's HOST write: the take-back is aborted
  sim.hold.clear();
  sim.release();
  sim.advance(CFG.failbackDwellMs * 3);
  for (const n of ['p', 'b']) t.match(obj(sim, n), { host: 'b', phase: 'switched-over' }, `on ${n}: the phase written back is the switchover's`);
  t.same(sim.executing('A'), ['b'], 'no auto-recover to p');
  t.same(sim.overlaps, []);
});

t.test('once a failover moved the app after a switchover, an aborted failover writes back failed-over (failback applies again)', async (t) => {
  const sim = cluster({ autoRecover: false });
  switchover(sim, 'p');
  sim.crash('b'); // p takes it back: the switchover is over
  t.match(obj(sim, 'p'), { host: 'p', phase: 'normal', switchover: { failedOver: true } });
  sim.restart('b');
  sim.crash('p'); // b takes it over: an ordinary failover
  t.match(obj(sim, 'b'), { host: 'b', phase: 'failed-over' });
  sim.restart('p');
  sim.advance(CFG.failbackDwellMs * 2);
  t.ok(sim.actions.some((a) => a.node === 'b' && a.action.kind === 'prompt'), 'the failback prompt is back');
});

t.test('backup to primary after a failover: now, without the failback dwell, and no prompt is left', async (t) => {
  const sim = cluster({ autoRecover: false });
  sim.crash('p');
  t.same(sim.executing('A'), ['b']);
  sim.restart('p'); // alive for no time at all: a failback would wait failbackDwellMs
  sim.trace.length = 0;
  t.equal(switchover(sim, 'p', 'p'), undefined, 'asked on the primary, the target');
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'b'), { host: 'p', phase: 'normal' });
  t.notOk(sim.trace.some((l) => l.includes('failing-back')));
  t.same(sim.overlaps, []);
});

t.test('refusals, each with one reason, and nothing written', async (t) => {
  const db = new ClusterDb();
  const base = db.upsert(app('A', 'p', 'b'), 'p', 0);
  const alive = (...nodes: string[]) => (n: string) => nodes.includes(n);
  const ask = (o: AppObject, to: string | undefined, isAlive = alive('p', 'b')) => planSwitchover(o, to, { by: 'p', now: 1, isAlive });
  t.match(ask(base, 'c'), { ok: false, reason: /^A: c is not one of its nodes \(primary p, backup b\)$/ });
  t.match(ask(base, 'p'), { ok: false, reason: /already runs on p/ });
  t.match(ask(base, undefined, alive('p')), { ok: false, reason: /b is not alive/ });
  t.match(ask(base, undefined, alive('b')), { ok: false, reason: /its host p is not alive: that is a failover/ });
  t.match(ask({ ...base, faults: ['b'] }, 'b'), { ok: false, reason: /b carries a fault mark \(vigil app load A on b clears it\)/ });
  t.match(ask({ ...base, keepOff: 'b' }, 'b'), { ok: false, reason: /b is drained \(vigil drain b --undo\)/ });
  for (const phase of ['failing-over', 'failing-back', 'switching-over'] as const) {
    t.match(ask({ ...base, phase }, 'b'), { ok: false, reason: new RegExp(`it is ${phase} now`) }, phase);
  }
  t.match(ask({ ...base, host: null }, 'b'), { ok: false, reason: /unloaded/ });
  t.match(ask(base, undefined), { ok: true, write: { ifHost: 'p', patch: { phase: 'switching-over', switchover: { from: 'p', to: 'b', fromPhase: 'normal' } } } });
});

t.test('the target\'s resource check fails: refused with its reason, the phase restored, nothing stopped on the source', async (t) => {
  const sim = cluster();
  sim.missing.set('b:A', ['mount /srv/a: no such directory']);
  sim.trace.length = 0;
  switchover(sim, 'p');
  t.same(sim.trace, ['p wrote phase=switching-over,switchover=requested', 'b wrote phase=normal,switchover=refused']);
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'p'), { host: 'p', phase: 'normal', switchover: { refused: /missing on b: mount \/srv\/a/ } });
  t.ok(sim.notices('b').includes('switchover-refused'));
});

t.test('a target marked faulted or drained refuses when its flow sees the request (a request written from a stale view)', async (t) => {
  const sim = cluster({ faults: ['b'] });
  // Written past planSwitchover, as a replica that had not heard of the mark would.
  const o = obj(sim);
  sim.operatorWrite('p', 'A', { patch: { phase: 'switching-over', switchover: { from: 'p', to: 'b', by: 'p', requestedAt: 1, fromPhase: 'normal' } }, ifHost: 'p' });
  t.equal(o.host, 'p');
  t.match(obj(sim), { host: 'p', phase: 'normal', switchover: { refused: /b carries a fault mark/ } });
  t.same(sim.executing('A'), ['p']);
  const drained = cluster({ keepOff: 'b' });
  drained.operatorWrite('p', 'A', { patch: { phase: 'switching-over', switchover: { from: 'p', to: 'b', by: 'p', requestedAt: 1, fromPhase: 'normal' } }, ifHost: 'p' });
  t.match(obj(drained), { host: 'p', phase: 'normal', switchover: { refused: /b is drained/ } });
  t.same(drained.executing('A'), ['p']);
});

t.test('the target\'s start fails after the handover: a fault there, and the source takes the app back', async (t) => {
  const sim = cluster();
  sim.failStarts.add('b:A');
  switchover(sim, 'p');
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'p'), { host: 'p', phase: 'normal', faults: ['b'] });
  t.ok(sim.notices('b').includes('switchover-failed'));
  t.ok(sim.notices('p').includes('host-faulted'));
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, []);
});

t.test('the source dies mid-switch (stopping, before the handover): an ordinary failover to the target', async (t) => {
  const sim = cluster();
  sim.hold.add('p:stopResources');
  switchover(sim, 'p');
  t.same(sim.executing('A'), [], 'stopped on p, its resources not yet released');
  sim.crash('p');
  t.same(sim.executing('A'), ['b']);
  t.match(obj(sim, 'b'), { host: 'b', phase: 'failed-over' });
  t.ok(sim.notices('b').includes('primary-failed'));
  t.same(sim.overlaps, []);
  const starts = sim.actions.filter((x) => x.action.kind === 'startResources' && x.node === 'b').map((x) => x.action);
  t.ok(starts.length > 0 && starts.every((a) => !('handedOver' in a)), 'a failover probes the addresses: nothing was handed over');
});

t.test('the target dies before the handover: the source aborts and runs the app again', async (t) => {
  const sim = cluster();
  sim.hold.add('p:stopApp');
  switchover(sim, 'p');
  t.same(sim.executing('A'), ['p'], 'the stop is under way');
  sim.crash('b');
  sim.hold.clear();
  sim.release();
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'p'), { host: 'p', phase: 'normal', switchover: { refused: /b failed before the handover/ } });
  t.ok(sim.notices('p').includes('switchover-aborted'));
  t.same(sim.overlaps, []);
});

t.test('the target dies after the handover, before it runs the app: the source takes it back', async (t) => {
  const sim = cluster();
  sim.hold.add('b:startApp');
  switchover(sim, 'p');
  t.equal(obj(sim, 'p').host, 'b');
  sim.crash('b');
  t.same(sim.executing('A'), ['p']);
  t.match(obj(sim, 'p'), { host: 'p', phase: 'normal' });
  t.same(sim.overlaps, []);
});

t.test('the source hands its last-active record over once the target is ready (seed 003), as a failback does', async (t) => {
  const db = new ClusterDb();
  const o = db.upsert(app('A', 'p', 'b', { phase: 'switching-over', switchover: { from: 'p', to: 'b', by: 'p', requestedAt: 1, fromPhase: 'normal', ready: true } }), 'p', 0);
  t.equal(handsOver(o, 'p', false, () => true), true);
  t.equal(handsOver({ ...o, switchover: { ...o.switchover!, ready: false } }, 'p', false, () => true), false, 'not before the target is ready');
  t.equal(handsOver(o, 'p', false, () => false), false, 'not to a dead target');
});

t.test('drain: every app hosted on the node moves off, all its apps are kept off it (no failback), and an undo brings its own back', async (t) => {
  const sim = new FlowSim({ nodes: ['p', 'b'], config: CFG });
  sim.register('p', app('X', 'p', 'b', { autoRecover: true })); // on p, its primary
  sim.register('p', app('Y', 'b', 'p', { autoRecover: false, host: 'p', phase: 'failed-over' })); // on p, its backup
  sim.register('p', app('Z', 'p', 'b', { autoRecover: false, host: 'b', phase: 'failed-over' })); // failed over to b already
  sim.actions.length = 0;
  const ctx = { by: 'b', now: sim.now, isAlive: (n: string) => sim.alive('b', n) };
  const steps = planDrain(sim.node('b').db.list(), 'p', ctx);
  t.same(steps.map((s) => `${s.tag} ${s.action}`), ['X switch', 'Y switch', 'Z mark']);
  for (const s of steps) if (s.action !== 'stay') sim.operatorWrite('b', s.tag, s.write);
  sim.advance(CFG.promptRepeatMs * 2);
  for (const tag of ['X', 'Y', 'Z']) t.same(sim.executing(tag), ['b'], `${tag} runs on b`);
  t.match(obj(sim, 'b', 'X'), { phase: 'switched-over', keepOff: 'p', switchover: { drain: true } });
  t.match(obj(sim, 'b', 'Y'), { phase: 'normal', keepOff: 'p' });
  t.match(obj(sim, 'b', 'Z'), { phase: 'failed-over', keepOff: 'p' });
  t.notOk(sim.actions.some((a) => a.tag === 'Z' && a.action.kind === 'prompt'), 'no failback prompt for a drained node');
  t.match(planSwitchover(obj(sim, 'b', 'Y'), 'p', ctx), { ok: false, reason: /p is drained/ });
  t.same(planDrain(sim.node('b').db.list(), 'p', ctx), [], 'draining again has nothing to do');

  const undo = planUndrain(sim.node('b').db.list(), 'p', ctx);
  t.same(undo.map((s) => `${s.tag} ${s.action}`), ['X switch', 'Y mark', 'Z mark']);
  for (const s of undo) if (s.action !== 'stay') sim.operatorWrite('b', s.tag, s.write);
  sim.advance(CFG.promptRepeatMs);
  t.same(sim.executing('X'), ['p'], 'moved back by the undo');
  t.same(sim.executing('Y'), ['b'], 'at home on its primary: stays');
  t.same(sim.executing('Z'), ['b'], 'still failed over');
  t.ok(sim.actions.some((a) => a.tag === 'Z' && a.action.kind === 'prompt'), 'its failback prompt comes back once the mark is lifted');
  for (const tag of ['X', 'Y', 'Z']) t.equal(obj(sim, 'b', tag).keepOff, undefined);
  t.same(sim.overlaps, []);
  t.same(sim.ghosts, []);
});

t.test('a drain that cannot move an app (no live other node) leaves it running and says why', async (t) => {
  const sim = cluster();
  sim.crash('b');
  const steps = planDrain(sim.node('p').db.list(), 'p', { by: 'p', now: sim.now, isAlive: (n) => sim.alive('p', n) });
  t.match(steps, [{ tag: 'A', action: 'stay', reason: /b is not alive/ }]);
  t.same(sim.executing('A'), ['p']);
});

// The agent's last-active controller (src/daemon/last-active.ts) over real store files: what it writes on
// which event, and what it refuses from the network.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { handsOver, LastActive, parsePairReport } from '../../src/daemon/last-active.js';
import { readPriorityStore, writePriorityRecord } from '../../src/lastactive/priority-store.js';

const log = { info() {}, warn() {}, error() {} };
const ids: Record<string, number> = { a: 1, b: 2 };

async function controller(self: 'a' | 'b', firstStart: boolean, dir?: string, reportWaitMs?: number) {
  const d = dir ?? await mkdtemp(join(tmpdir(), 'vigil-la-'));
  const la = new LastActive({
    dir: d, cluster: 'lab', self: { name: self, id: ids[self]! }, nodeId: (n) => ids[n]!, peerProbeMs: 1000, firstStart, log,
    ...(reportWaitMs !== undefined ? { reportWaitMs } : {}),
  });
  await la.open('web', 'a', 'b', 0);
  return { la, dir: d, identity: { cluster: 'lab', node: ids[self]!, peer: self === 'a' ? 2 : 1 } };
}

t.test('a first start creates the store with the initial values: the primary 2, the backup 3; a later start finds none undeterminable', async (t) => {
  const a = await controller('a', true);
  const b = await controller('b', true);
  t.match(a.la.status()[0], { state: 'X', priority: 2 });
  t.match(b.la.status()[0], { state: 'X', priority: 3 });
  const later = await controller('a', false);
  t.match(later.la.status()[0], { priority: null, record: /undeterminable/ });
});

t.test('an app new to a node that ran before gets the initial values too; a store missing for a known app stays undeterminable', async (t) => {
  const { la, dir } = await controller('b', false);
  t.match(la.status()[0], { tag: 'web', priority: null, record: /undeterminable/ }, 'known app, store lost: undeterminable');
  await la.open('api', 'b', 'a', 0, { isNew: true });
  t.match(la.status().find((p) => p.tag === 'api'), { state: 'X', priority: 2 }, 'new app, primary here: 2');
  const again = new LastActive({ dir, cluster: 'lab', self: { name: 'b', id: 2 }, nodeId: (n) => ids[n]!, peerProbeMs: 1000, firstStart: false, log });
  await again.open('api', 'b', 'a', 0, { isNew: true });
  t.match(again.status()[0], { priority: 2 }, 'an existing store is read, never initialised again');
});

t.test('the gate of an app of this node is closed until its pair is opened and decided; an app of other nodes has none', async (t) => {
  const la = new LastActive({ dir: await mkdtemp(join(tmpdir(), 'vigil-la-')), cluster: 'lab', self: { name: 'a', id: 1 }, nodeId: (n) => ids[n]!, peerProbeMs: 1000, firstStart: true, log });
  t.equal(la.isOpen('web', 'a', 'b'), false, 'not opened yet: closed');
  t.equal(la.isOpen('other', 'b', 'c'), true, 'not this node\'s pair: nothing to wait for');
  await la.open('web', 'a', 'b', 0);
  t.equal(la.isOpen('web', 'a', 'b'), false, 'opened, not decided: closed');
});

t.test('decisions: alone after the probe window only with 1; the comparison with the peer\'s report otherwise', async (t) => {
  const a = await controller('a', true);
  const notAlive = () => false;
  t.same(await a.la.decideAll(500, notAlive, async () => undefined), [], 'still probing');
  t.same(await a.la.decideAll(1500, notAlive, async () => undefined), [], 'priority 2 alone waits');
  t.match(a.la.status()[0]?.decision, /^waiting: own priority 2/);
  a.la.onReport({ tag: 'web', state: 'X', record: { known: true, priority: 3, state: 'X', transition: 'init', forced: false } }, 1600);
  t.same(await a.la.decideAll(1700, () => true, async () => undefined), [{ tag: 'web', open: true, alone: false }], 'the peer answers with 3: a becomes SM');
  const rec = await readPriorityStore(join(a.dir, 'web.priority'), a.identity);
  t.match(rec.kind === 'record' && rec.record, { priority: 1, state: 'SM', transition: '1-2-1' }, 'durable on disk');
  t.equal(a.la.status()[0]?.decision, 'single master (b not a slave in sync); restarted alone after an outage now, it would start by itself (priority 1)',
    'priority show says what a running node would decide');
});

t.test('a peer that already joined as slave by comparing with this node lets this node take SM (no wait on each other)', async (t) => {
  const a = await controller('a', true);
  a.la.onReport({ tag: 'web', state: 'SL', record: { known: true, priority: 3, state: 'SL', transition: '1-2-1', forced: false } }, 0);
  t.same(await a.la.decideAll(10, () => true, async () => undefined), [{ tag: 'web', open: true, alone: false }]);
  t.match(a.la.status()[0], { state: 'SM', priority: 1 });
  const again = await controller('a', true);
  again.la.onReport({ tag: 'web', state: 'SL', record: { known: true, priority: 3, state: 'SL', transition: '3-1-1', forced: false } }, 0);
  t.same(await again.la.decideAll(10, () => true, async () => undefined), [], 'a slave of an earlier run of this node: wait until it sees this node gone');
});

t.test('the slave takes over only from a master (M); from a single master it goes back to deciding (5-2/5-6)', async (t) => {
  const b = await controller('b', true);
  b.la.onReport({ tag: 'web', state: 'SM', record: { known: true, priority: 1, state: 'SM', transition: '1-2-1', forced: false } }, 0);
  await b.la.decideAll(10, () => true, async () => undefined);
  t.equal(b.la.status()[0]?.state, 'SL');
  t.same(await b.la.peerFailed('a'), [{ tag: 'web', mayTakeOver: false }]);
  t.equal(b.la.isOpen('web', 'a', 'b'), false);

  const b2 = await controller('b', true);
  b2.la.onReport({ tag: 'web', state: 'M', record: { known: true, priority: 2, state: 'M', transition: '1-2-2', forced: false } }, 0);
  await b2.la.decideAll(10, () => true, async () => undefined);
  t.same(await b2.la.peerFailed('a'), [{ tag: 'web', mayTakeOver: true }]);
  await b2.la.beforeProcessing('web');
  const rec = await readPriorityStore(join(b2.dir, 'web.priority'), b2.identity);
  t.match(rec.kind === 'record' && rec.record, { priority: 1, state: 'SM', transition: '4-4' }, 'the takeover\'s 1 is durable before it processes');
});

t.test('a report says whether its sender hears the peer: a fresh report of it arrived less than 3 s ago', async (t) => {
  const a = await controller('a', true);
  t.match(a.la.reports('b', 0), [{ tag: 'web', state: 'X', hears: false }], 'nothing heard yet');
  a.la.onReport({ tag: 'web', state: 'X', record: { known: true, priority: 3, state: 'X', transition: 'init', forced: false }, hears: false }, 1000);
  t.match(a.la.reports('b', 3999), [{ hears: true }]);
  t.match(a.la.reports('b', 4000), [{ hears: false }], 'stale');
  t.same(await a.la.decideAll(2000, () => true, async () => undefined), [], 'b does not hear a: a waits rather than compare');
  t.match(a.la.status()[0]?.decision, /does not hear this node yet/);
});

t.test('a pair report from the network is checked: junk is refused, not trusted', async (t) => {
  t.ok(parsePairReport({ tag: 'web', state: 'SL', record: { known: true, priority: 3, state: 'SL', transition: '1-1-1', forced: false } }));
  t.ok(parsePairReport({ tag: 'web', state: 'X', record: { known: false, why: 'no file' } }));
  for (const bad of [null, 'x', { tag: 'web', state: 'Q', record: { known: false, why: '' } },
    { tag: 'web', state: 'SL', record: { known: true, priority: 4, state: 'SL', transition: '1-1-1', forced: false } },
    { tag: 'web', state: 'SL', record: { known: true, priority: 3, state: 'SL', transition: '9-9', forced: false } }]) {
    t.equal(parsePairReport(bad), undefined, JSON.stringify(bad));
  }
});

t.test('a slave whose processor restarted (a new incarnation) decides again instead of waiting for ever for the other to move', async (t) => {
  const b = await controller('b', true);
  b.la.onReport({ tag: 'web', state: 'SM', record: { known: true, priority: 1, state: 'SM', transition: '1-2-1', forced: false }, hears: true }, 0);
  await b.la.decideAll(10, () => true, async () => undefined);
  t.equal(b.la.status()[0]?.state, 'SL', 'b joined a as its slave');
  t.same(b.la.peerRestarted('a', 20), ['web']);
  t.equal(b.la.status()[0]?.state, 'X', 'deciding again');
  t.equal(b.la.isOpen('web', 'a', 'b'), false, 'its gate closed meanwhile');
  // The restarted a is deciding too, with the 2 it held as master: the comparison settles it.
  b.la.onReport({ tag: 'web', state: 'X', record: { known: true, priority: 2, state: 'M', transition: '1-2-2', forced: false }, hears: true }, 30);
  await b.la.decideAll(40, () => true, async () => undefined);
  t.equal(b.la.status()[0]?.state, 'SL', 'b the slave again, by comparison: a (2) processed after b (3)');
  t.same(b.la.peerRestarted('a', 50).length, 1);
  const processor = await controller('a', true);
  processor.la.onReport({ tag: 'web', state: 'SL', record: { known: true, priority: 3, state: 'SL', transition: '1-2-1', forced: false }, hears: true }, 0);
  await processor.la.decideAll(10, () => true, async () => undefined);
  t.same(processor.la.peerRestarted('b', 20), [], 'a processor keeps processing: the restarted peer joins it');
});

t.test('a slave whose processor reports X without restarting (it handed the app over, then lost this node for a while) decides again, and the pair converges', async (t) => {
  // Nemesis seed 1739547702: the processor (M) faults its app and hands it over (SL with its 2); its
  // slave is frozen meanwhile, so the processor counts it failed and goes to X (a slave whose processor
  // was not M). The slave never took over and the processor never restarted: left in SL, the slave
  // waited for nothing, and the processor, seeing an SL it took for a slave of its earlier life, waited
  // for it for ever. The app ran nowhere.
  const a = await controller('a', true);
  const b = await controller('b', true);
  const report = (c: Awaited<ReturnType<typeof controller>>, now = 0) => c.la.reports(undefined, now)[0]!;
  b.la.onReport(report(a), 0);
  a.la.onReport(report(b), 0);
  await a.la.decideAll(10, () => true, async () => undefined);
  b.la.onReport(report(a, 10), 10);
  await b.la.decideAll(20, () => true, async () => undefined);
  a.la.onReport(report(b, 20), 20);
  await a.la.slaveInSync('web');
  t.match([a.la.status()[0], b.la.status()[0]], [{ state: 'M', priority: 2 }, { state: 'SL', priority: 3 }], 'a processes (M), b its slave');
  t.same(b.la.onReport(report(a, 30), 30), false, 'b hears a processing');
  await a.la.stoppedProcessing('web', true);
  t.same((await a.la.peerFailed('b', 40)).map((x) => x.mayTakeOver), [false], 'a, handing over, counts b failed: X');
  t.equal(a.la.status()[0]?.state, 'X');
  t.same(b.la.onReport(report(a, 50), 50), true, 'b hears a in X: its slave position is void');
  t.equal(b.la.status()[0]?.state, 'X', 'b decides again');
  t.equal(b.la.isOpen('web', 'a', 'b'), false, 'its gate closed meanwhile');
  a.la.onReport(report(b, 60), 60);
  b.la.onReport(report(a, 60), 60);
  await a.la.decideAll(70, () => true, async () => undefined);
  await b.la.decideAll(70, () => true, async () => undefined);
  t.match([a.la.status()[0], b.la.status()[0]], [{ state: 'SM', priority: 1 }, { state: 'SL', priority: 3 }],
    'by comparison: a (2) processed after b (3), so a runs it and b is its slave');
  t.same(b.la.onReport(report(a, 80), 80), false, 'a report of a processor changes nothing');
});

t.test('a slave that joined by comparison before its peer decided is not moved by the peer\'s X: that is the same comparison, pending', async (t) => {
  const a = await controller('a', true);
  const b = await controller('b', true);
  const report = (c: Awaited<ReturnType<typeof controller>>, now = 0) => c.la.reports(undefined, now)[0]!;
  b.la.onReport(report(a), 0);
  a.la.onReport(report(b), 0);
  b.la.onReport(report(a, 5), 5);
  await b.la.decideAll(10, () => true, async () => undefined);
  t.equal(b.la.status()[0]?.state, 'SL', 'b decided first: a (2) processed last, b joins as its slave');
  t.same(b.la.onReport(report(a, 20), 20), false, 'a, still X (deciding), does not send b back to X');
  t.equal(b.la.status()[0]?.state, 'SL');
  a.la.onReport(report(b, 20), 20);
  await a.la.decideAll(30, () => true, async () => undefined);
  t.equal(a.la.status()[0]?.state, 'SM', 'a decides its side of the same comparison');
});

t.test('a taker that stops between attempts of its takeover keeps its 1: the restarted old master then joins it, instead of both waiting on a 2', async (t) => {
  // Nemesis seed 1604970798: b, slave of a master a (2), took over when a lost power (its 1), stopped
  // after a failed start attempt and, HOST still naming a, took that for a handover: it wrote 2 and became
  // a's slave. a restarted with its 2, b decided again with its 2, and neither would ever start the app.
  const b = await controller('b', true);
  b.la.onReport({ tag: 'web', state: 'M', record: { known: true, priority: 2, state: 'M', transition: '1-2-2', forced: false }, hears: true }, 0);
  await b.la.decideAll(10, () => true, async () => undefined);
  t.same(await b.la.peerFailed('a', 20), [{ tag: 'web', mayTakeOver: true }]);
  await b.la.beforeProcessing('web');
  const object = { host: 'a', primary: 'a', backup: 'b', phase: 'failing-over' as const, faults: [] };
  t.equal(handsOver(object, 'b', false, () => false, true), false, 'stopped by its own takeover: no handover');
  await b.la.stoppedProcessing('web', handsOver(object, 'b', false, () => false, true));
  t.match(b.la.status()[0], { state: 'SM', priority: 1 }, 'b keeps its 1');
  t.same(b.la.peerRestarted('a', 30), [], 'a processor keeps processing: the restarted a joins it');
  // a's new life reports its old 2 and asks: b's 1 outranks it.
  b.la.onReport({ tag: 'web', state: 'X', record: { known: true, priority: 2, state: 'M', transition: '1-2-2', forced: false }, hears: true }, 40);
  const a = await controller('a', true);
  a.la.onReport({ tag: 'web', state: 'SM', record: { known: true, priority: 1, state: 'SM', transition: '4-4', forced: false }, hears: true }, 40);
  await a.la.decideAll(50, () => true, async () => undefined);
  t.equal(a.la.status()[0]?.state, 'SL', 'a joins b as its slave');
});

t.test('the gate follows the pair in the order it changes: a slave that decides again, and decides, while a peer failure still writes another pair keeps its gate open', async (t) => {
  // Nemesis seed 604437565 (CI, stop 18): the agent closed a pair's gate after awaiting the peer failure's
  // records of every pair; a decision made meanwhile had opened it again, and the late close left x gated
  // with its slave decided: x was handed back to a, and a never started it.
  const dir = await mkdtemp(join(tmpdir(), 'vigil-la-'));
  const gates = new Map<string, boolean>();
  let releaseApi: (() => void) | undefined;
  const writeRecord: typeof writePriorityRecord = async (path, identity, content) => {
    // The peer failure's 1 for api (b processes it) is slow to become durable: a loaded disk.
    if (path.endsWith('api.priority') && content.priority === 1 && content.transition === '4-1') await new Promise<void>((r) => { releaseApi = r; });
    return writePriorityRecord(path, identity, content);
  };
  const b = new LastActive({
    dir, cluster: 'lab', self: { name: 'b', id: 2 }, nodeId: (n) => ids[n]!, peerProbeMs: 1000, firstStart: true, log, writeRecord,
    onGate: (tag, open) => gates.set(tag, open),
  });
  await b.open('web', 'a', 'b', 0);
  await b.open('api', 'b', 'a', 0);
  const rec = (priority: 1 | 2 | 3, state: 'SM' | 'M' | 'SL' | 'X', transition: '1-2-1' | '1-1-1' | 'init') =>
    ({ known: true as const, priority, state, transition, forced: false });
  b.onReport({ tag: 'web', state: 'SM', record: rec(1, 'SM', '1-2-1'), hears: true }, 0);
  b.onReport({ tag: 'api', state: 'X', record: rec(3, 'X', 'init'), hears: true }, 0);
  await b.decideAll(10, () => true, async () => undefined);
  b.onReport({ tag: 'api', state: 'SL', record: rec(3, 'SL', '1-1-1'), hears: true }, 20);
  await b.slaveInSync('api');
  t.match(b.status(), [{ tag: 'web', state: 'SL' }, { tag: 'api', state: 'M' }], 'b: slave of a for web, master of api');
  t.same([...gates], [['web', true], ['api', true]], 'both gates opened as their pairs decided');

  const failed = b.peerFailed('a', 30);
  await new Promise((r) => setImmediate(r));
  t.equal(b.isOpen('web', 'a', 'b'), false, 'web: its processor was a single master: deciding again');
  t.equal(gates.get('web'), false, 'its gate closed at once');
  // a was only slow: its next report arrives while api's record is still being written, and web decides.
  b.onReport({ tag: 'web', state: 'SM', record: rec(1, 'SM', '1-2-1'), hears: true }, 40);
  await b.decideAll(50, () => true, async () => undefined);
  t.equal(b.isOpen('web', 'a', 'b'), true, 'web decided: slave of a again');
  releaseApi!();
  await failed;
  for (const tag of ['web', 'api']) t.equal(gates.get(tag), b.isOpen(tag, tag === 'web' ? 'a' : 'b', tag === 'web' ? 'b' : 'a'), `${tag}: the last gate told is the pair's`);
});

t.test('a slave never writes its 1 while its peer reports processing: its start is refused until the peer reports it stopped, or fails', async (t) => {
  // Nemesis seed 1212572508: the restarted primary a joined b, which was taking x over, as its slave
  // (b reported SM), then started x all the same: its replica, stale, named it the host. Both ran x.
  const b = await controller('b', true, undefined, 100);
  const web = join(b.dir, 'web.priority');
  const processing = { tag: 'web', state: 'SM' as const, record: { known: true as const, priority: 1 as const, state: 'SM' as const, transition: '1-2-1' as const, forced: false }, hears: true };
  b.la.onReport(processing, performance.now());
  await b.la.decideAll(performance.now(), () => true, async () => undefined);
  t.equal(b.la.status()[0]?.state, 'SL', 'b joined a as its slave');
  // PeerProcessesError (a StaleStartError): a takeover here gives way to a (flows.ts, nemesis seed 1874018165).
  await t.rejects(b.la.mayProcess('web'), { name: 'PeerProcessesError', message: /a processes it \(SM\) and this node is its slave/ }, 'refused after waiting for a report that says otherwise');
  await t.rejects(b.la.beforeProcessing('web'), { name: 'PeerProcessesError' }, 'the write of its 1 is refused too');
  t.match(await readPriorityStore(web, b.identity), { kind: 'record', record: { priority: 3, state: 'SL' } }, 'b still holds its 3');
  for (const [why, report] of [
    [/a is deciding whether it processes it/, { ...processing, state: 'X' as const }],
    [/a reports SL without handing the app over/, { ...processing, state: 'SL' as const, record: { ...processing.record, priority: 3 as const, state: 'SL' as const } }],
  ] as const) {
    b.la.onReport(report, performance.now());
    await t.rejects(b.la.mayProcess('web'), { name: 'StaleStartError', message: why }, `refused: ${String(why)}`);
  }
  await t.rejects(b.la.mayProcess('web', performance.now() + 3000), { message: /a, not known to have failed, has not reported for 3000 ms/ });

  // A handover: a stops and reports SL; its report may trail the HOST write that lets b start.
  const waiting = b.la.mayProcess('web');
  setTimeout(() => b.la.onReport({ ...processing, state: 'SL', record: { ...processing.record, priority: 2, state: 'M', transition: '1-2-2' } }, performance.now()), 30);
  await t.resolves(waiting, 'allowed once a reports it stopped processing');
  await b.la.beforeProcessing('web');
  t.match(await readPriorityStore(web, b.identity), { kind: 'record', record: { priority: 1, state: 'SM', transition: '4-4' } });

  // A takeover: the processor failed (a master, so the slave may take over).
  const b2 = await controller('b', true, undefined, 100);
  b2.la.onReport({ ...processing, state: 'M', record: { ...processing.record, priority: 2, state: 'M', transition: '1-2-2' } }, performance.now());
  await b2.la.decideAll(performance.now(), () => true, async () => undefined);
  await t.rejects(b2.la.mayProcess('web'), { name: 'PeerProcessesError' }, 'not while a, its master, is heard');
  t.same(await b2.la.peerFailed('a'), [{ tag: 'web', mayTakeOver: true }]);
  await t.resolves(b2.la.mayProcess('web'), 'a failed: b takes over');
});

t.test('a pair deciding again never writes its 1 from a takeover begun before: the old master restarted before it processed', async (t) => {
  const b = await controller('b', true, undefined, 100);
  b.la.onReport({ tag: 'web', state: 'M', record: { known: true, priority: 2, state: 'M', transition: '1-2-2', forced: false }, hears: true }, performance.now());
  await b.la.decideAll(performance.now(), () => true, async () => undefined);
  t.same(await b.la.peerFailed('a'), [{ tag: 'web', mayTakeOver: true }], 'b begins its takeover');
  t.same(b.la.peerRestarted('a'), ['web'], 'a restarts before b has processed: b decides again');
  await t.rejects(b.la.mayProcess('web'), { name: 'StaleStartError', message: /deciding again with a/ });
  await t.rejects(b.la.beforeProcessing('web'), { name: 'StaleStartError', message: /deciding again with a/ });
  t.match(await readPriorityStore(join(b.dir, 'web.priority'), b.identity), { kind: 'record', record: { priority: 3, state: 'SL' } }, 'b still holds its 3: the comparison with a decides');
});

t.test('a handover nobody takes (the peer no longer meant to run the app, and it never did) is void: the node is the master again; not once the peer has processed', async (t) => {
  const a = await controller('a', true, undefined, 50);
  const slave = { tag: 'web', state: 'SL' as const, record: { known: true as const, priority: 3 as const, state: 'SL' as const, transition: '1-2-1' as const, forced: false }, hears: true };
  a.la.onReport(slave, performance.now());
  await a.la.decideAll(performance.now(), () => true, async () => undefined);
  a.la.onReport(slave, performance.now());
  await a.la.slaveInSync('web');
  await a.la.stoppedProcessing('web', true);
  t.match(a.la.status()[0], { state: 'SL', priority: 2 }, 'handing over: SL, its 2 kept');
  a.la.onReport(slave, performance.now());
  await t.rejects(a.la.mayProcess('web'), { message: /b reports SL without handing the app over/ }, 'a report of b as a slave may be older than the handover: no take-back on it');
  const since = performance.now();
  t.equal(a.la.handoverVoid('web', since), false, 'not on a report that may have been sent before the peer was no longer meant to run it');
  a.la.onReport(slave, since + 50);
  t.equal(a.la.handoverVoid('web', since), true, 'on a report of the peer as a slave that arrived later');
  t.match(a.la.status()[0], { state: 'M', priority: 2 }, 'master again');
  await t.resolves(a.la.mayProcess('web'));
  await a.la.stoppedProcessing('web', true);
  a.la.onReport({ ...slave, state: 'SM', record: { ...slave.record, priority: 1, state: 'SM', transition: '4-4' } }, performance.now());
  a.la.onReport({ ...slave, state: 'SL' }, performance.now() + 50);
  t.equal(a.la.handoverVoid('web', performance.now() - 1000), false, 'b processed since the handover: a stays its slave');
});

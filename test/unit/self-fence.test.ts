// The valid-view rule of watchdog self-fencing (src/membership/view.ts) and the agent's half of it
// (src/daemon/self-fence.ts): when the watchdog's lease is renewed, what a node publishes, and when a
// silent peer counts as self-fenced.
import t from 'tap';

import { ClusterView, selfFencedInMs, type ViewInput } from '../../src/membership/view.js';
import { parsePublishedView, SelfFence, type SelfFenceDeps } from '../../src/daemon/self-fence.js';

const judge = (v: ClusterView, x: Partial<ViewInput>) => v.judge({ nodes: 3, heard: 3, hosting: true, disks: 'none', ...x });

t.test('a node of three that had quorum and hears only itself while it hosts an app loses its view; hosting nothing, it keeps it', async (t) => {
  const v = new ClusterView();
  t.match(judge(v, { heard: 3 }), { valid: true, bound: true });
  t.match(judge(v, { heard: 1 }), { valid: false, bound: true, why: /minority/ });
  t.match(judge(v, { heard: 1, disks: 'reachable' }), { valid: false }, 'the disks break no tie in a minority');
  t.match(judge(v, { heard: 1, hosting: false }), { valid: true });
  t.match(judge(v, { heard: 2 }), { valid: true }, 'two of three is a majority');
});

t.test('a node that never had quorum since its start (a lone start) is not bound: the disks decide for it', async (t) => {
  const v = new ClusterView();
  t.match(judge(v, { heard: 1, disks: 'reachable' }), { valid: true, bound: false });
  t.match(judge(v, { heard: 1, disks: 'lost' }), { valid: false, bound: false, why: /cut off/ });
  t.match(judge(v, { heard: 1, disks: 'none' }), { valid: true, bound: false });
});

t.test('two nodes: never bound; alone, the disk heartbeat decides, and without disks nothing can tell', async (t) => {
  const v = new ClusterView();
  t.match(v.judge({ nodes: 2, heard: 2, hosting: true, disks: 'reachable' }), { valid: true, bound: false });
  t.match(v.judge({ nodes: 2, heard: 1, hosting: true, disks: 'reachable' }), { valid: true });
  t.match(v.judge({ nodes: 2, heard: 1, hosting: true, disks: 'lost' }), { valid: false, why: /disk heartbeat fails/ });
  t.match(v.judge({ nodes: 2, heard: 1, hosting: true, disks: 'none' }), { valid: true });
});

t.test('nodes powered off by a fence and kept off are not counted: a lone survivor of three whose peers were fenced off holds quorum', async (t) => {
  const v = new ClusterView();
  t.match(judge(v, { heard: 3 }), { valid: true, bound: true });
  t.match(judge(v, { heard: 1, keptOff: 0 }), { valid: false, why: 'lost quorum: hears 1 of 3 nodes (a minority) and hosts apps' });
  t.match(judge(v, { heard: 1, keptOff: 1 }), { valid: true, why: 'hears 1 of 2 nodes (1 more powered off by a fence); no disk heartbeat to break the tie' }, 'one fenced off: half, the disks decide');
  t.match(judge(v, { heard: 1, keptOff: 2 }), { valid: true, why: 'quorum: hears 1 of 1 nodes (2 more powered off by a fence)' });

  let keptOff = 0;
  const { f } = fence({ heard: () => 0, keptOff: () => keptOff });
  f.tick(0);
  t.equal(f.lostQuorum(), false, 'never had quorum: not bound');
  // The same node over time: quorum, then alone.
  let heard = 2;
  const one = fence({ heard: () => heard, keptOff: () => keptOff });
  one.f.tick(0);
  heard = 0;
  one.f.tick(100);
  t.equal(one.f.lostQuorum(), true, 'alone after quorum: a minority, it fences nobody');
  keptOff = 1;
  one.f.tick(200);
  t.equal(one.f.lostQuorum(), false, 'one of the two silent nodes confirmed off: half, no minority');
  keptOff = 0;
  one.f.tick(300);
  t.equal(one.f.lostQuorum(), true, 'its BMC no longer says off: a minority again');
});

t.test('cut off from both peers at once, the first one failed finds no vote in the other, silent all but a few ms', async (t) => {
  // a, b and c; a is cut off from both. a fails b first; c, silent as long less a few milliseconds, is still
  // heard within failAfterMs (heardBothWays counts it) but not within half of it (heardFreshly).
  let heard = 2;
  let fresh = 2;
  const a = fence({ heard: () => heard, fresh: () => fresh });
  a.f.tick(0);
  heard = 1;
  fresh = 0;
  a.f.tick(100);
  t.equal(a.f.lostQuorum(), true, 'a minority: it fences nobody and takes nothing over');
  fresh = 1;
  t.equal(a.f.lostQuorum(), false, 'b alone failed, c heard lately: a majority, the fence goes ahead');
});

t.test('an even split of four: each half keeps its view while it reaches the disks', async (t) => {
  const v = new ClusterView();
  v.judge({ nodes: 4, heard: 4, hosting: true, disks: 'reachable' });
  t.match(v.judge({ nodes: 4, heard: 2, hosting: true, disks: 'reachable' }), { valid: true, bound: true });
  t.match(v.judge({ nodes: 4, heard: 2, hosting: true, disks: 'lost' }), { valid: false });
});

t.test('a silent peer counts as self-fenced only when bound, with a watchdog, and this side holds a majority without it', async (t) => {
  const pub = { watchdogBoundMs: 5000, bound: true };
  t.equal(selfFencedInMs(pub, 1000, 2, 3, 2000), 6000);
  t.equal(selfFencedInMs(pub, 9000, 2, 3, 2000), 0);
  t.equal(selfFencedInMs(pub, 1000, 1, 3, 2000), undefined, 'this node alone is no majority');
  t.equal(selfFencedInMs(pub, 1000, 1, 2, 2000), undefined, 'nor half of two');
  t.equal(selfFencedInMs({ watchdogBoundMs: null, bound: true }, 1000, 2, 3, 2000), undefined, 'no watchdog');
  t.equal(selfFencedInMs({ watchdogBoundMs: 5000, bound: false }, 1000, 2, 3, 2000), undefined, 'not bound');
  t.equal(selfFencedInMs(undefined, 1000, 2, 3, 2000), undefined, 'never published');
});

function fence(over: Partial<SelfFenceDeps> & { heard?: () => number; fresh?: () => number; hosting?: () => boolean }) {
  const nodes = [{ name: 'a' }, { name: 'b' }, { name: 'c' }] as never[];
  const sent: { sentAtMs?: number }[] = [];
  let renewals = 0;
  const watchdog = { renew: () => { renewals++; }, snapshot: () => ({ armed: true, resets: true, timeoutMs: 3000, path: '/dev/watchdog' }) } as never;
  const f = new SelfFence({
    nodes, peers: nodes.slice(1), watchdog: () => watchdog, cutToLapseMs: 5400, marginMs: 1000,
    heardBothWays: over.heard ?? (() => 2), heardFreshly: over.fresh ?? over.heard ?? (() => 2), keptOff: over.keptOff ?? (() => 0), hosting: over.hosting ?? (() => true), disks: () => 'none',
    silentMs: over.silentMs ?? (() => undefined), send: (_p, m) => sent.push(m),
    log: { warn() {}, info() {} }, notices: { add() {} },
  });
  return { f, sent, renewals: () => renewals };
}

t.test("the agent renews the watchdog's lease only while its view is valid", async (t) => {
  let heard = 2;
  const { f, renewals } = fence({ heard: () => heard });
  f.tick(0);
  f.tick(100);
  t.equal(renewals(), 2, 'with quorum');
  heard = 0;
  f.tick(200);
  f.tick(300);
  t.equal(renewals(), 2, 'not once it is cut off while hosting an app');
  t.ok(f.inMinority(), 'and it takes nothing over');
  t.ok(f.lostQuorum(), 'nor powers anybody off');
  heard = 1;
  f.tick(400);
  t.equal(renewals(), 3, 'again once it hears a majority');
});

t.test('it publishes its bound (failure timeout, lease and watchdog timeout) and whether it is bound, once a second', async (t) => {
  const { f, sent } = fence({});
  const before = Date.now();
  f.tick(0);
  f.tick(500);
  f.tick(1000);
  const after = Date.now();
  t.same(sent.map(({ sentAtMs: _, ...rest }) => rest), [
    { kind: 'view', watchdogBoundMs: 8400, bound: true }, { kind: 'view', watchdogBoundMs: 8400, bound: true },
    { kind: 'view', watchdogBoundMs: 8400, bound: true }, { kind: 'view', watchdogBoundMs: 8400, bound: true },
  ], 'to each peer, at 0 and at 1000');
  t.ok(sent.every((m) => m.sentAtMs !== undefined && m.sentAtMs >= before && m.sentAtMs <= after), 'each with the wall clock it was sent at (peer-clocks.ts)');
});

t.test("a peer's published view is checked; a silent one counts as self-fenced after its bound and the margin", async (t) => {
  let silent: number | undefined;
  const { f } = fence({ silentMs: () => silent });
  f.tick(0);
  t.equal(parsePublishedView({ watchdogBoundMs: -1, bound: true }), undefined);
  t.equal(parsePublishedView({ watchdogBoundMs: 100, bound: 'yes' }), undefined);
  f.onView('b', parsePublishedView({ watchdogBoundMs: 8000, bound: true })!);
  t.equal(f.selfFencedInMs('b'), undefined, 'heard: not silent');
  silent = 500;
  t.equal(f.selfFencedInMs('b'), 8500);
  silent = 9000;
  t.equal(f.selfFencedInMs('b'), 0);
  t.equal(f.selfFencedInMs('c'), undefined, 'c published nothing');
  t.ok(f.fencesItself('b'));
  t.notOk(f.fencesItself('c'));
  f.onView('c', { watchdogBoundMs: null, bound: true });
  t.notOk(f.fencesItself('c'), 'no watchdog: c does not fence itself');
});

// Last-active server (seed 003) in the lab: two agents on two tcm_loop nexuses to the shared unit, an app
// that owns the disk, mounts it and serves a virtual IP.
// - a master, b slave; b stops, then a: b restarted alone waits; a restarted alone starts as single master;
// - then the stale 1: a stops; b is forced to start (it takes the disk over); b stops; a restarted alone
//   holds a 1 that is no longer the truth, and the shared disk says so: a refuses to start and says why;
// - the reverse history: a stops first, b takes over, then b stops: a restarted alone waits, b starts.
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { createCluster, logAndServe, until, type Status, type TestCluster, settled } from '../support/cluster.js';
import { lab, prepareSharedUnit } from '../support/lab.js';

const TIMING = { heartbeatIntervalMs: 200, failAfterMs: 2000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 60_000, peerProbeMs: 4000 };

interface Pair { tag: string; state: string; priority: number | null; decision: string | null }
interface DiskStatus { disk: string; holder: string | null }
const disks = (s: Status) => (s as unknown as { disks: DiskStatus[] }).disks;

async function pair(c: TestCluster, node: string): Promise<Pair> {
  return ((await c.request(node, 'priority.show')) as { pairs: Pair[] }).pairs.find((p) => p.tag === 'web')!;
}

async function serving(c: TestCluster, node: string): Promise<void> {
  await until(`${node} serving the VIP`, async () => ((await c.probe(c.vip())) === node ? true : undefined), 180_000, 500);
}

/** Starts a node's agent alone (its peer powered off) and waits until it has decided or waited twice the probe window. */
async function startAlone(c: TestCluster, node: string): Promise<void> {
  await c.powerOn(node);
  c.start(node);
  try {
    await until(`${node}'s agent answering`, async () => ((await c.status(node).catch(() => undefined)) ? true : undefined), 120_000, 500);
  } catch (e) {
    console.error(`# ${node}'s log:\n${c.log(node).split('\n').slice(-40).join('\n')}`);
    throw e;
  }
}

/** The cluster on a freshly made file system, a serving as master with b its slave in sync. */
async function masterAndSlave(t: { teardown(fn: () => unknown): void }): Promise<TestCluster> {
  await prepareSharedUnit();
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, disk: true, mount: true, command: logAndServe }],
    { timing: TIMING, disk: { identity: lab.sharedId, paths: { a: lab.a, b: lab.b }, preemptAndAbort: false } });
  c.start('a');
  c.start('b');
  await serving(c, 'a');
  await settled(c, ['a', 'b'], 120_000);
  return c;
}

t.test('shared disk: b restarted alone waits, a restarted alone starts; a forced start on b makes a\'s 1 stale, and the disk stops a', async (t) => {
  const c = await masterAndSlave(t);
  await c.powerOff('b');
  await until('a single master with a durable 1', async () => ((await pair(c, 'a')).priority === 1 ? true : undefined), 60_000, 500);
  await c.powerOff('a');

  await startAlone(c, 'b');
  await sleep(2 * TIMING.peerProbeMs + 2000);
  const pb = await pair(c, 'b');
  t.equal(pb.state, 'X', 'b waits');
  t.match(pb.decision, /^waiting: own priority 3 \(was slave when the cluster stopped\); peer a unreachable/);
  t.equal(await c.probe(c.vip()), null, 'nobody serves');
  t.match((await c.status('b')).apps[0]?.here, { app: 'down', resources: 'down' }, 'b did not even take the disk');
  await c.powerOff('b');

  await startAlone(c, 'a');
  await serving(c, 'a');
  t.match(await pair(c, 'a'), { state: 'SM', priority: 1 }, 'a, the last processor, starts alone');
  t.equal(disks(await c.status('a'))[0]?.holder, 'a', 'and holds the reservation');
  await c.powerOff('a');

  // The operator forces b, knowing a is down (and accepting that a's last updates may be lost).
  await startAlone(c, 'b');
  const forced = (await c.request('b', 'priority.force-start', { tag: 'web' })) as { results: { ok: boolean; reason: string }[] };
  t.equal(forced.results[0]?.ok, true, `forced start accepted: ${forced.results[0]?.reason}`);
  await serving(c, 'b');
  t.equal(disks(await c.status('b'))[0]?.holder, 'b', 'b took the disk over');
  await c.powerOff('b');

  // a's record still says 1 (nothing on a's disk changed while it was down); the shared unit says b.
  await startAlone(c, 'a');
  await sleep(2 * TIMING.peerProbeMs + 2000);
  const pa = await pair(c, 'a');
  t.equal(pa.priority, 1, 'a holds a stale 1');
  t.equal(pa.state, 'X', 'and does not start');
  t.match(pa.decision, /not starting: shared disk shared0 is reserved by b, so b may have processed after this node/);
  t.equal(await c.probe(c.vip()), null, 'nobody serves');
  const status = await c.status('a');
  t.match(status.apps[0], { here: { app: 'down', resources: 'down' } });
});

t.test('shared disk, the reverse history: a stops, b takes over, b stops: a restarted alone waits, b restarted alone starts', async (t) => {
  const c = await masterAndSlave(t);
  await c.powerOff('a');
  await serving(c, 'b');
  t.match(await pair(c, 'b'), { state: 'SM', priority: 1 }, 'b took over with a durable 1');
  await c.powerOff('b');

  await startAlone(c, 'a');
  await sleep(2 * TIMING.peerProbeMs + 2000);
  const pa = await pair(c, 'a');
  t.equal(pa.state, 'X', 'a waits');
  t.match(pa.decision, /^waiting: own priority 2 \(was master with an in-sync slave when the cluster stopped\)/);
  t.equal(await c.probe(c.vip()), null, 'nobody serves');
  await c.powerOff('a');

  await startAlone(c, 'b');
  await serving(c, 'b');
  t.match(await pair(c, 'b'), { state: 'SM', priority: 1 }, 'b, the last processor, starts alone');
  t.equal(disks(await c.status('b'))[0]?.holder, 'b');
});

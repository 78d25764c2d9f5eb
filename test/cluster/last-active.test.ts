// Last-active server (seed 003) with real agents: after both nodes went down, a node restarted alone
// starts its app only if it processed last (priority 1); otherwise it waits for its peer or for a forced
// start. The reverse history gives the reverse outcome.
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { createCluster, until, type TestCluster } from '../support/cluster.js';

interface Pair { tag: string; state: string; priority: number | null; decision: string | null }

async function pair(c: TestCluster, node: string): Promise<Pair> {
  const r = (await c.request(node, 'priority.show')) as { pairs: Pair[] };
  return r.pairs.find((p) => p.tag === 'web')!;
}

async function serving(c: TestCluster, node: string, ms = 15_000): Promise<void> {
  await until(`${node} serving the VIP`, async () => ((await c.probe(c.vip())) === node ? true : undefined), ms);
}

async function started(c: TestCluster, node: string): Promise<void> {
  await until(`${node}'s agent answering`, async () => ((await c.status(node).catch(() => undefined)) ? true : undefined), 20_000);
}

/** Waits until `master` processes (SM or M) and `slave` is its slave (SL). */
async function masterAndSlave(c: TestCluster, master: string, slave: string, ms?: number): Promise<void> {
  await until(`${master} master, ${slave} its slave`, async () => {
    const [pm, ps] = [await pair(c, master), await pair(c, slave)];
    return (pm.state === 'SM' || pm.state === 'M') && ps.state === 'SL' ? true : undefined;
  }, ms);
}

async function bothUpAsMasterAndSlave(c: TestCluster): Promise<void> {
  c.start('a');
  c.start('b');
  await serving(c, 'a');
  await until('a is master (M) with b its slave in sync', async () => {
    const [pa, pb] = [await pair(c, 'a'), await pair(c, 'b')];
    return pa.state === 'M' && pa.priority === 2 && pb.state === 'SL' && pb.priority === 3 ? true : undefined;
  });
}

t.test('a master, b slave; b stops, then a: b restarted alone waits; a restarted alone starts as single master', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  await bothUpAsMasterAndSlave(c);
  await c.powerOff('b');
  await until('a single master with a durable 1', async () => ((await pair(c, 'a')).priority === 1 ? true : undefined));
  await c.powerOff('a');

  await c.powerOn('b');
  c.start('b');
  await started(c, 'b');
  await sleep(4000); // twice the probe window
  const pb = await pair(c, 'b');
  t.equal(pb.state, 'X', 'b waits');
  t.match(pb.decision, /^waiting: own priority 3 \(was slave when the cluster stopped\); peer a unreachable for .*; run vigil force-start on this node if a is known to be down$/);
  t.equal(await c.probe(c.vip()), null, 'nobody serves: b does not start with data a may have updated after');
  t.equal((await c.status('b')).apps[0]?.here?.app, 'down');
  await c.powerOff('b');

  await c.powerOn('a');
  c.start('a');
  await serving(c, 'a');
  const pa = await pair(c, 'a');
  t.match(pa, { state: 'SM', priority: 1 }, 'a, the last processor, started alone after its probe window');
});

t.test('the reverse history: a fails, b takes over, then b stops: a restarted alone waits, b restarted alone starts; a forced start ends a wait', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  await bothUpAsMasterAndSlave(c);
  await c.powerOff('a');
  await serving(c, 'b');
  t.match(await pair(c, 'b'), { state: 'SM', priority: 1 }, 'b took over with a durable 1 (4-4)');
  await c.powerOff('b');

  await c.powerOn('a');
  c.start('a');
  await started(c, 'a');
  await sleep(4000);
  const pa = await pair(c, 'a');
  t.equal(pa.state, 'X', 'a waits: it held 2 when b took over');
  t.match(pa.decision, /^waiting: own priority 2 \(was master with an in-sync slave when the cluster stopped\)/);
  t.equal(await c.probe(c.vip()), null, 'nobody serves');
  await c.powerOff('a');

  await c.powerOn('b');
  c.start('b');
  await serving(c, 'b');
  t.match(await pair(c, 'b'), { state: 'SM', priority: 1 }, 'b, the last processor, starts alone');
  await c.powerOff('b');

  // The operator knows b is gone for good: a forced start on a.
  await c.powerOn('a');
  c.start('a');
  await started(c, 'a');
  const refused = (await c.request('a', 'priority.force-start', { tag: 'web' })) as { results: { ok: boolean; reason: string }[] };
  t.equal(refused.results[0]?.ok, true, `accepted while a waits: ${refused.results[0]?.reason}`);
  await serving(c, 'a');
  t.match(await pair(c, 'a'), { state: 'SM', priority: 1 }, 'a runs as single master by forced start');
});

t.test('failback hands the roles back: the backup writes 3 before the primary runs again, then the primary becomes master', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, autoRecover: true }]);
  await bothUpAsMasterAndSlave(c);
  await c.powerOff('a');
  await serving(c, 'b');
  await c.powerOn('a');
  c.start('a');
  await until('web back on a, a master, b slave', async () => {
    if ((await c.probe(c.vip())) !== 'a') return undefined;
    const [pa, pb] = [await pair(c, 'a'), await pair(c, 'b')];
    return pa.state === 'M' && pa.priority === 2 && pb.state === 'SL' && pb.priority === 3 ? true : undefined;
  }, 30_000);
  t.pass('a M with 2, b SL with 3: after a double failure now, a would win the comparison and b alone would wait');
});

t.test('an app unloaded where its backup ran it, then loaded on its primary, runs there: the backup, still the pair\'s master, hands it over', async (t) => {
  // Nemesis seed 723946990 (with the pair's start refusals): the unload stopped the app with nobody to
  // take it, so its last host stayed the pair's master; loaded on the other node, the app was refused
  // there for good (that node, a slave, waited for its master to hand it over).
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  await bothUpAsMasterAndSlave(c);
  await c.powerOff('a');
  await serving(c, 'b');
  await c.powerOn('a');
  c.start('a');
  await masterAndSlave(c, 'b', 'a', 30_000);
  await c.request('b', 'app.unload', { tag: 'web' });
  await until('nobody serves', async () => ((await c.probe(c.vip())) === null ? true : undefined));
  await c.request('a', 'app.load', { tag: 'web' });
  await serving(c, 'a', 20_000);
  await masterAndSlave(c, 'a', 'b');
  t.pass('a runs web, the pair follows');
});

t.test('a split brain, then both nodes down before its loser stood down: both hold 1, and the node HOST names starts; the other joins it', async (t) => {
  // Nemesis seed 1344696897: b took web over across a cut while a, counting b failed, kept its own 1;
  // both agents restarted before the cut's loser stood down, and each waited for the other for good.
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  await bothUpAsMasterAndSlave(c);
  // a and b no longer hear each other, and b no longer hears a answer for the address.
  for (const net of ['lan1', 'lan2']) await c.rig.cut('b', net, 'cable');
  await c.rig.cut('a', 'svc', 'cable');
  await until('both process web, each with a durable 1', async () => {
    const [pa, pb] = [await pair(c, 'a'), await pair(c, 'b')];
    const hostOnB = (await c.status('b')).apps.find((x) => x.tag === 'web')?.host === 'b';
    return pa.priority === 1 && pb.priority === 1 && hostOnB ? true : undefined;
  }, 30_000);
  await c.powerOff('a');
  await c.powerOff('b');
  await c.rig.restoreAll('a');
  await c.rig.restoreAll('b');
  await c.powerOn('a');
  await c.powerOn('b');
  c.start('a');
  c.start('b');
  await serving(c, 'b', 30_000);
  await masterAndSlave(c, 'b', 'a');
  t.pass('HOST, on which both replicas agree after the partition, is b (its takeover raised the epoch): b runs web');
});

t.test('a node whose database was set aside still goes through the last-active decision: restarted alone with priority 2 after b took over, it waits', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  await bothUpAsMasterAndSlave(c);
  await c.powerOff('a');
  await serving(c, 'b');
  await c.powerOff('b');

  await c.powerOn('a');
  await writeFile(join(c.dir, 'a', 'db.json'), 'not a database\n');
  const first = c.start('a');
  const code = await new Promise<number | null>((resolve) => first.once('exit', resolve));
  t.equal(code, 1, 'the first start refuses the corrupt database and sets it aside');
  c.start('a');
  await started(c, 'a');
  await sleep(4000); // twice the probe window
  const pa = await pair(c, 'a');
  t.equal(pa.state, 'X', 'a waits: the app is registered anew from the configuration, but its priority record says 2');
  t.equal(await c.probe(c.vip()), null, 'nobody serves: a does not start with data b may have updated after');
  t.equal((await c.status('a')).apps[0]?.here?.app, 'down');
});

t.test('an app added to the configuration of nodes that ran before: both restarted, each gets its initial priority store and the pair decides (its primary master, the other its slave)', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  const agents = { a: c.start('a'), b: c.start('b') };
  await serving(c, 'a');
  for (const node of ['a', 'b'] as const) {
    const exited = new Promise((resolve) => agents[node].once('exit', resolve));
    agents[node].kill('SIGTERM');
    await exited;
    // The apps list ends the file: one more app, primary b.
    await appendFile(join(c.dir, `${node}.yaml`), [
      '  - tag: api', '    type: cluster-capable', '    command: ["/bin/sleep", "600"]', '    primary: b', '    backup: a',
      '    stopTimeoutMs: 2000', '    resources: []', '',
    ].join('\n'));
  }
  c.start('a');
  c.start('b');
  const pairOf = async (node: string) => ((await c.request(node, 'priority.show')) as { pairs: Pair[] }).pairs.find((p) => p.tag === 'api');
  await until('api: b master with 2, a its slave with 3', async () => {
    const [pb, pa] = [await pairOf('b'), await pairOf('a')];
    return pb?.state === 'M' && pb.priority === 2 && pa?.state === 'SL' && pa.priority === 3 ? true : undefined;
  }, 20_000);
  t.equal((await c.status('b')).apps.find((x) => x.tag === 'api')?.here?.app, 'up', 'api runs on b');
});

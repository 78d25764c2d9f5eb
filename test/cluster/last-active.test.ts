// Last-active server (seed 003) with real agents: after both nodes went down, a node restarted alone
// starts its app only if it processed last (priority 1); otherwise it waits for its peer or for a forced
// start. The reverse history gives the reverse outcome.
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

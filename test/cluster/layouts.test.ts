// Layouts beyond the asymmetric pair (seed 004), with agents in network namespaces and a client probing
// one virtual IP per app (each app's server listens on its own VIP only, so two apps share a node):
// - symmetric: a and b back each other up (web a→b, db b→a). a loses power: b runs both, and db, already
//   on b, is never touched (same pid, the client never misses it); a comes back: web (auto-recover) fails
//   back to a, db stays on b.
// - N+1: c is the one spare for a and b (web a→c, db b→c). a loses power: c takes web, db stays on b;
//   then b loses power: c runs both; c's notices tell the operator each time.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { createCluster, nameServer, until, type Status, type TestCluster, settled } from '../support/cluster.js';

const app = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag);
const host = (s: Status, tag: string) => app(s, tag)?.host;
const peer = (s: Status, name: string) => s.peers.find((p) => p.peer === name);
/** The pid of the app's process on this node while it runs there, else null. */
const pidHere = (s: Status, tag: string) => (app(s, tag)?.here?.app === 'up' ? app(s, tag)?.here?.pid ?? null : null);
/** The app's notices on this node, those since wall-clock time `since` (ms) only when given. */
const noticesOf = (s: Status, tag: string, since = 0) => s.notices.filter((n) => n.tag === tag && Date.parse(n.at) >= since).map((n) => n.notice);

const command = (_mnt: string, vip: string | undefined) => nameServer(vip);

async function serving(c: TestCluster, index: number, node: string, ms = 15_000): Promise<void> {
  await until(`${node} serving VIP ${c.vip(index)}`, async () => ((await c.probe(c.vip(index))) === node ? true : undefined), ms);
}

async function allAlive(c: TestCluster, nodes: string[]): Promise<void> {
  await until(`${nodes.join(', ')} alive to each other`, async () => {
    for (const n of nodes) {
      const s = await c.status(n);
      if (!nodes.every((p) => p === n || peer(s, p)?.state === 'alive')) return undefined;
    }
    return true;
  }, 15_000);
}

/**
 * Probes a VIP over and over until stopped: every answer that is not `expected` (a refusal, a timeout,
 * another node) is a miss.
 */
function watch(c: TestCluster, index: number, expected: string): { stop(): Promise<{ probes: number; misses: string[] }> } {
  let running = true;
  let probes = 0;
  const misses: string[] = [];
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const got = await c.probe(c.vip(index));
      probes++;
      if (got !== expected) misses.push(`${got ?? 'no answer'} after ${(performance.now() - started).toFixed(0)} ms`);
      await sleep(100);
    }
  })();
  return { async stop() { running = false; await loop; return { probes, misses }; } };
}

t.test('symmetric: a and b back each other up; a lost: b runs both, db undisturbed; a back: web fails back, db stays', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [
    { tag: 'web', primary: 'a', backup: 'b', vip: true, autoRecover: true, command },
    { tag: 'db', primary: 'b', backup: 'a', vip: true, autoRecover: true, command },
  ]);
  c.start('a');
  c.start('b');
  await allAlive(c, ['a', 'b']);
  await serving(c, 0, 'a');
  await serving(c, 1, 'b');
  const db = await until('db running on b', async () => pidHere(await c.status('b'), 'db') ?? undefined);
  const sa0 = await c.status('a');
  t.equal(host(sa0, 'web'), 'a', 'web: HOST a');
  t.equal(host(sa0, 'db'), 'b', 'db: HOST b');
  t.equal(pidHere(sa0, 'db'), null, 'a does not run db');

  await settled(c, ['a', 'b']);
  const dbWatch = watch(c, 1, 'b');
  const cut = performance.now();
  const cutAt = Date.now();
  await c.powerOff('a');
  await serving(c, 0, 'b');
  t.comment(`web served by b ${(performance.now() - cut).toFixed(0)} ms after a lost power`);
  const sb = await c.status('b');
  t.equal(peer(sb, 'a')?.state, 'failed', 'b: a failed');
  t.equal(host(sb, 'web'), 'b', 'web: HOST b');
  t.equal(host(sb, 'db'), 'b', 'db: HOST b');
  t.ok(pidHere(sb, 'web'), 'b runs web');
  t.equal(pidHere(sb, 'db'), db, `b runs db, the same process (pid ${db})`);
  t.ok(noticesOf(sb, 'web').includes('primary-failed') && noticesOf(sb, 'web').includes('failover-complete'), `b's notices: web failed over (${noticesOf(sb, 'web').join(', ')})`);
  t.same(noticesOf(sb, 'db', cutAt), [], 'and nothing about db since a lost power');

  await c.powerOn('a');
  c.start('a');
  await serving(c, 0, 'a', 20_000);
  t.comment(`web back on a ${(performance.now() - cut).toFixed(0)} ms after the power loss`);
  await serving(c, 1, 'b');
  const watched = await dbWatch.stop();
  const [sa, sb2] = [await c.status('a'), await c.status('b')];
  t.equal(host(sa, 'web'), 'a', 'web: HOST a again (a\'s replica)');
  t.equal(host(sb2, 'web'), 'a', 'web: HOST a again (b\'s replica)');
  t.equal(pidHere(sb2, 'web'), null, 'b stopped its copy of web');
  t.ok(noticesOf(sb2, 'web').includes('failback-handed-over'), 'b handed web back');
  t.equal(host(sa, 'db'), 'b', 'db: HOST b (a\'s replica)');
  t.equal(host(sb2, 'db'), 'b', 'db: HOST b (b\'s replica)');
  t.equal(pidHere(sa, 'db'), null, 'a does not run db');
  t.equal(pidHere(sb2, 'db'), db, `db is still the same process on b (pid ${db})`);
  t.doesNotThrow(() => process.kill(db, 0), 'and that process is alive');
  t.same(noticesOf(sb2, 'db', cutAt), [], 'no notice about db on b since a lost power');
  t.same(watched.misses, [], `the client reached db on b in each of ${watched.probes} probes, from the power loss to the failback`);
});

t.test('N+1: c is the spare for a and b; a lost: c takes web, db stays on b; b lost: c runs both', async (t) => {
  const c = await createCluster(t, ['a', 'b', 'c'], [
    { tag: 'web', primary: 'a', backup: 'c', vip: true, command },
    { tag: 'db', primary: 'b', backup: 'c', vip: true, command },
  ]);
  for (const n of ['a', 'b', 'c']) c.start(n);
  await allAlive(c, ['a', 'b', 'c']);
  await serving(c, 0, 'a');
  await serving(c, 1, 'b');
  const db = await until('db running on b', async () => pidHere(await c.status('b'), 'db') ?? undefined);
  const sc0 = await c.status('c');
  t.same([host(sc0, 'web'), host(sc0, 'db')], ['a', 'b'], 'c\'s replica: web on a, db on b');
  t.same([pidHere(sc0, 'web'), pidHere(sc0, 'db')], [null, null], 'c, the spare, runs nothing');

  // a loses power: its app goes to the spare, b's stays.
  await settled(c, ['a', 'b', 'c']);
  const dbWatch = watch(c, 1, 'b');
  let cut = performance.now();
  await c.powerOff('a');
  await serving(c, 0, 'c');
  t.comment(`web served by c ${(performance.now() - cut).toFixed(0)} ms after a lost power`);
  const watched = await dbWatch.stop();
  const [sb, sc] = [await c.status('b'), await c.status('c')];
  t.equal(peer(sc, 'a')?.state, 'failed', 'c: a failed');
  t.equal(peer(sc, 'b')?.state, 'alive', 'c: b alive');
  t.equal(host(sc, 'web'), 'c', 'web: HOST c');
  t.equal(host(sb, 'web'), 'c', 'b\'s replica agrees');
  t.equal(host(sc, 'db'), 'b', 'db: HOST b');
  t.ok(pidHere(sc, 'web'), 'c runs web');
  t.equal(pidHere(sc, 'db'), null, 'c does not run db');
  t.equal(pidHere(sb, 'db'), db, `b runs db, the same process (pid ${db})`);
  t.same(watched.misses, [], `the client reached db on b in each of ${watched.probes} probes while web moved`);
  const webNotice = sc.notices.find((n) => n.tag === 'web' && n.notice === 'primary-failed');
  t.match(webNotice?.message, /^a failed; c takes over web$/, 'c\'s notice: a failed, c takes over web');
  t.match(sc.notices.find((n) => n.tag === 'web' && n.notice === 'failover-complete')?.message, /web runs on c \(primary a failed\)/, 'c\'s notice: web runs on c');
  t.same(noticesOf(sc, 'db'), [], 'c: nothing about db yet');

  // b loses power too: the spare now runs both.
  cut = performance.now();
  await c.powerOff('b');
  await serving(c, 1, 'c');
  t.comment(`db served by c ${(performance.now() - cut).toFixed(0)} ms after b lost power`);
  await serving(c, 0, 'c');
  const sc2 = await c.status('c');
  t.same([peer(sc2, 'a')?.state, peer(sc2, 'b')?.state], ['failed', 'failed'], 'c: a and b failed');
  t.same([host(sc2, 'web'), host(sc2, 'db')], ['c', 'c'], 'web and db: HOST c');
  t.ok(pidHere(sc2, 'web') && pidHere(sc2, 'db'), 'c runs both');
  t.equal(pidHere(sc2, 'web'), pidHere(sc, 'web'), 'web was not restarted on c when b failed');
  t.match(sc2.notices.find((n) => n.tag === 'db' && n.notice === 'primary-failed')?.message, /^b failed; c takes over db$/, 'c\'s notice: b failed, c takes over db');
  t.match(sc2.notices.find((n) => n.tag === 'db' && n.notice === 'failover-complete')?.message, /db runs on c \(primary b failed\)/, 'c\'s notice: db runs on c');
  t.notOk(sc2.notices.some((n) => n.notice === 'unprotected'), 'no app is unprotected: each still has its host');
});

// The valid view's tie-breaker against a real disk (docs/ipmi.md, "The valid view"): two agents on the
// iSCSI unit, a hosting an app that holds the disk, each with a watchdog. Cut from both networks, a hears
// half of the cluster; its disk heartbeat (READ RESERVATION through its own iSCSI session) still answers,
// so its view stays valid and nothing is reset. Its iSCSI path cut as well (every segment of its session
// dropped, test/nemesis/lab/pathloss.ts), the heartbeat stops answering: its view is lost, its tickles
// stop, and its watchdog resets it within its bound, while b preempts it and serves. The watchdogs are
// FIFOs read by the test (test/support/fifo-watchdog.ts): the guest's one BMC cannot be two nodes'.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { PathLoss } from '../nemesis/lab/pathloss.js';
import { createCluster, loggedAt, settled, until, type Status, type TestCluster } from '../support/cluster.js';
import { FifoWatchdog } from '../support/fifo-watchdog.js';
import { lab, resetUnit } from '../support/lab.js';
import { powerLossScript, sh } from '../support/netns.js';

// Under TCG: the lab's cluster timing, and a watchdog a stalled test process cannot trip by mistake.
const TIMING = { heartbeatIntervalMs: 200, failAfterMs: 2000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 60_000, agentLeaseMs: 3000 };
const TIMEOUT_MS = 5000;
const BOUND_MS = TIMING.failAfterMs + TIMING.agentLeaseMs + TIMEOUT_MS;

const host = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag)?.host;

async function start(t: { teardown(fn: () => unknown): void }): Promise<{ c: TestCluster; dogs: Record<string, FifoWatchdog> }> {
  await resetUnit(lab.iscsiA, lab.iscsiB);
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, disk: true }], {
    timing: TIMING,
    disk: { identity: lab.iscsiId, paths: { a: lab.iscsiA, b: lab.iscsiB } },
    extra: (_node, nodeDir) => [`watchdog: { device: ${join(nodeDir, 'watchdog')}, timeoutMs: ${TIMEOUT_MS}, vouchTimeout: true }`],
  });
  const dogs: Record<string, FifoWatchdog> = {};
  for (const node of ['a', 'b']) {
    const dog = new FifoWatchdog(join(c.dir, node, 'watchdog'), TIMEOUT_MS, () => sh(['sh', '-c', powerLossScript(c.rig.ns(node))]));
    t.teardown(() => dog.close());
    dogs[node] = dog;
  }
  c.start('a');
  c.start('b');
  await until('a serves the VIP', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 120_000, 500);
  await until('b hears a on the disk', async () => {
    const x = (await c.status('b')).peers.find((p) => p.peer === 'a')?.channels.find((ch) => ch.channel === 'disk:shared0');
    return x?.state === 'up' ? true : undefined;
  }, 60_000, 500);
  await settled(c, ['a', 'b'], 120_000);
  return { c, dogs };
}

t.test('two nodes on a disk: cut from both networks, the host keeps a valid view through its disk heartbeat; its path cut too, its watchdog resets it and b serves', async (t) => {
  const { c, dogs } = await start(t);
  const paths = new PathLoss({ a: lab.iscsiA, b: lab.iscsiB });
  t.teardown(() => paths.clear());
  t.ok(dogs.a!.armedAt !== undefined && dogs.b!.armedAt !== undefined, 'both watchdogs are tickled');

  await c.rig.cut('a', 'lan1');
  await c.rig.cut('a', 'lan2');
  await until('a hears b on no network', async () => {
    const p = (await c.status('a')).peers.find((x) => x.peer === 'b');
    return p?.channels.filter((x) => x.channel.startsWith('net:')).every((x) => x.state === 'down') ? true : undefined;
  }, 60_000, 500);
  // Twice a's bound with both networks cut: the disk decides, and it says a lives.
  await sleep(2 * BOUND_MS);
  const sa = await c.status('a');
  t.match(sa.view, { valid: true, why: /hears 1 of 2 nodes; its disk heartbeat still works/ }, `a's view stays valid: ${sa.view?.why}`);
  t.equal(dogs.a!.firedAt, undefined, 'a was not reset');
  t.equal(dogs.b!.firedAt, undefined, 'b was not reset');
  t.equal(host(await c.status('b'), 'web'), 'a', 'no failover: b hears a on the disk');

  const cutAt = Date.now();
  await paths.cut('a');
  await until("a's watchdog resets it", async () => (dogs.a!.firedAt !== undefined ? true : undefined), 4 * BOUND_MS, 200);
  const resetMs = dogs.a!.firedAt! - cutAt;
  t.comment(`a's path cut: its watchdog reset it ${resetMs} ms later (its bound ${BOUND_MS} ms)`);
  t.ok(resetMs >= TIMING.failAfterMs, 'not before its disk heartbeat could have failed');
  // The expiry is when this test's event loop saw the FIFO silent: under TCG it reads the keep-alives late
  // (measured 11.3 s against the 10 s bound). Peers wait the bound plus a 5 s margin.
  t.ok(resetMs <= BOUND_MS + 3000, `within its bound and the FIFO's sampling (${resetMs} <= ${BOUND_MS + 3000})`);
  t.match(c.log('a'), /cluster view lost/);
  t.match(c.log('a'), /cut off: hears 1 of 2 nodes and its disk heartbeat fails/);
  await until('b serves the VIP', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 120_000, 500);
  const started = loggedAt(c, 'b', /"application started"/, cutAt);
  t.ok(started !== undefined, 'b started web');
  t.equal(dogs.b!.firedAt, undefined, 'b was not reset: it hosts web now, heard by nobody, but its disk heartbeat works');
  t.match((await c.status('b')).view, { valid: true });
});

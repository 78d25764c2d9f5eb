// Watchdog self-fencing with real agents in network namespaces (docs/ipmi.md, "The valid view"): a node
// that had quorum and is cut off from both networks while it hosts an app stops tickling its watchdog,
// which resets it; the majority counts it as self-fenced once it has been silent for its published bound
// and a margin, then takes the disk-less app over. The watchdogs are FIFOs read by the test
// (test/support/fifo-watchdog.ts): the host has no watchdog device, and the rule is what is under test.
import { join } from 'node:path';

import t from 'tap';

import { createCluster, loggedAt, settled, until, type TestCluster } from '../support/cluster.js';
import { FifoWatchdog } from '../support/fifo-watchdog.js';
import { powerLossScript, sh } from '../support/netns.js';

const TIMEOUT_MS = 2000;

async function watchedCluster(t: { teardown(fn: () => unknown): void }, nodes: string[]): Promise<{ c: TestCluster; dogs: Record<string, FifoWatchdog> }> {
  const c = await createCluster(t, nodes, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }], {
    extra: (_node, nodeDir) => [`watchdog: { device: ${join(nodeDir, 'watchdog')}, timeoutMs: ${TIMEOUT_MS}, vouchTimeout: true }`, 'fencing: { watchdogMarginMs: 2000 }'],
    timing: { agentLeaseMs: 2000 },
  });
  const dogs: Record<string, FifoWatchdog> = {};
  for (const node of nodes) {
    const reset = () => sh(['sh', '-c', powerLossScript(c.rig.ns(node))]);
    const dog = new FifoWatchdog(join(c.dir, node, 'watchdog'), TIMEOUT_MS, reset);
    t.teardown(() => dog.close());
    dogs[node] = dog;
  }
  for (const node of nodes) c.start(node);
  await until('every node hears every other', async () => {
    for (const node of nodes) {
      const s = await c.status(node);
      if (s.peers.some((p) => p.state !== 'alive')) return undefined;
    }
    return true;
  }, 30_000);
  await settled(c, nodes);
  await until('a serves x', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 15_000);
  return { c, dogs };
}

t.test('three nodes: the host of a disk-less app, cut from both networks, is reset by its watchdog before the majority takes the app over', async (t) => {
  const { c, dogs } = await watchedCluster(t, ['a', 'b', 'c']);
  const view = (await c.status('b')).view;
  t.match(view?.peers.a, { bound: true }, 'a published that the minority rule binds it');
  t.ok((view?.peers.a?.watchdogBoundMs ?? 0) > TIMEOUT_MS, "a published its watchdog's bound");
  await c.rig.cut('a', 'lan1');
  await c.rig.cut('a', 'lan2');
  await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 40_000, 200);
  t.ok(dogs.a!.firedAt !== undefined, "a's watchdog reset it");
  const started = loggedAt(c, 'b', /"application started"/);
  t.ok(started !== undefined && dogs.a!.firedAt! < started, 'a was reset before x started on b');
  t.match(c.log('a'), /cluster view lost/);
  t.match(c.log('b'), /peer self-fenced/);
  t.equal(dogs.b!.firedAt, undefined, 'b was not reset');
  t.equal(dogs.c!.firedAt, undefined, 'c was not reset');
});

t.test('two nodes without disks: cut from both networks, neither knows which side is cut, so neither resets itself', async (t) => {
  const { c, dogs } = await watchedCluster(t, ['a', 'b']);
  t.match((await c.status('b')).view?.peers.a, { bound: false }, 'a is never bound: alone, it is half of the cluster');
  await c.rig.cut('a', 'lan1');
  await c.rig.cut('a', 'lan2');
  await until('b counts a as failed', async () => ((await c.status('b')).peers.find((p) => p.peer === 'a')?.state === 'failed' ? true : undefined), 10_000);
  // Past a's bound (failure timeout + lease + watchdog timeout) and the margin: nothing fired.
  await new Promise((r) => setTimeout(r, 400 + 2000 + TIMEOUT_MS + 2000 + 1000));
  t.equal(dogs.a!.firedAt, undefined, 'a was not reset');
  t.equal(dogs.b!.firedAt, undefined, 'b was not reset');
  t.notMatch(c.log('b'), /peer self-fenced/, 'b did not count a as self-fenced');
  t.match((await c.status('a')).view, { valid: true }, "a's view stays valid");
});

// Distress (seed 002) between two agents in network namespaces: a node that sends distress is failed over
// by its peer at once, long before the heartbeat timeout, and stays out of the cluster until `vigil rejoin`.
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { clusterTag, encodeDatagram } from '../../src/wire/datagram.js';
import { distressOptions } from '../../src/wire/distress-arming.js';
import { distressHeader, encodeDistressPayload, REASON_CODES, type DistressPayload } from '../../src/wire/distress.js';
import { createCluster, primaryServing, until, type Status, type TestCluster, settled } from '../support/cluster.js';
import { sh } from '../support/netns.js';

// A heartbeat timeout long enough that any takeover within it was the distress's doing.
const TIMING = { failAfterMs: 5000, recoverAfterMs: 1000 };

const host = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag)?.host;
const peer = (s: Status, name: string) => s.peers.find((p) => p.peer === name);

interface Out { out: { reason: string } | null; incarnation: string }

const agents = new WeakMap<TestCluster, Map<string, ChildProcess>>();

function start(c: TestCluster, node: string): ChildProcess {
  const child = c.start(node);
  let m = agents.get(c);
  if (!m) agents.set(c, (m = new Map()));
  m.set(node, child);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Starts the node's agent again (after it exited) and waits for its control socket. */
async function startAgain(c: TestCluster, node: string): Promise<Status & Out> {
  start(c, node);
  return until(`${node}'s agent answers`, async () => (await c.status(node).catch(() => undefined)) as (Status & Out) | undefined, 15_000);
}

/** An orderly restart of the node's agent (SIGTERM, then start). */
async function restartAgent(c: TestCluster, node: string): Promise<Status & Out> {
  const child = agents.get(c)!.get(node)!;
  child.kill('SIGTERM');
  await exited(child);
  return startAgain(c, node);
}

const bothUp = (c: TestCluster) => primaryServing(c, (n) => start(c, n));

t.test('distress sent from JS: the peer takes over at once; the sender stays out until vigil rejoin', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: TIMING });
  await bothUp(c);
  const sent = performance.now();
  await c.request('a', 'distress.send', { reason: 'hardware-fault' });
  const served = await until('b serves the VIP', async () => ((await c.probe(c.vip())) === 'b' ? performance.now() : undefined), 15_000, 20);
  t.comment(`distress → b serving: ${(served - sent).toFixed(0)} ms (heartbeat timeout ${TIMING.failAfterMs} ms)`);
  t.ok(served - sent < TIMING.failAfterMs, 'taken over before the heartbeat timeout');
  const sb = await c.status('b');
  t.equal(host(sb, 'web'), 'b');
  t.equal(sb.notices.filter((n) => n.notice === 'peer-distress').length, 1, 'one distress acted on');
  const sa = (await c.status('a')) as Status & Out;
  t.match(sa.out, { reason: 'hardware-fault' }, 'a says it is out');
  t.equal(sa.apps.find((x) => x.tag === 'web')?.here?.app, 'down', 'a stopped its app');
  await t.rejects(c.request('a', 'app.load', { tag: 'web' }), /out of the cluster/, 'a refuses cluster commands while out');
});

t.test('after distress the node stays out across a restart of its agent, and comes back only by vigil rejoin', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: TIMING });
  await bothUp(c);
  await c.request('a', 'distress.send', { reason: 'unknown' });
  await until('b hosts web', async () => (host(await c.status('b'), 'web') === 'b' ? true : undefined), 10_000);
  // The agent restarted (as after a reboot once the power is back): still out, and silent.
  const sa = await restartAgent(c, 'a');
  t.match(sa.out, { reason: 'unknown' }, 'the restarted agent stays out');
  t.equal(sa.heartbeat, undefined, 'no heartbeat thread while out');
  await new Promise((r) => setTimeout(r, 3 * TIMING.recoverAfterMs));
  t.equal(peer(await c.status('b'), 'a')?.state, 'failed', 'b never hears a again while it stays out');
  t.equal(host(await c.status('b'), 'web'), 'b', 'web stays on b');
  const r = (await c.request('a', 'rejoin')) as { restarting: boolean };
  t.equal(r.restarting, true, 'rejoin restarts the agent');
  await until('b hears a again', async () => (peer(await c.status('b'), 'a')?.state === 'alive' ? true : undefined), 15_000);
  const back = (await c.status('a')) as Status & Out;
  t.equal(back.out, null, 'a is a member again');
  t.not(back.incarnation, sa.incarnation, 'with a new incarnation');
  await settled(c, ['a', 'b']);
  t.equal(host(await c.status('b'), 'web'), 'b', 'no failback without auto-recover: web stays on b');
  await t.rejects(c.request('a', 'rejoin'), /nothing to rejoin/, 'a member cannot rejoin');
});

t.test('the agent dies of a fatal signal: its handler sends distress, the peer takes over at once, the node stays out', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: TIMING, debug: true });
  await bothUp(c);
  const crashed = performance.now();
  await c.request('a', 'debug.crash', { kind: 'segv' });
  const took = await until('b hosts web', async () => (host(await c.status('b'), 'web') === 'b' ? performance.now() : undefined), 10_000, 20);
  t.comment(`SIGSEGV in a's agent → b hosting: ${(took - crashed).toFixed(0)} ms (heartbeat timeout ${TIMING.failAfterMs} ms)`);
  t.ok(took - crashed < TIMING.failAfterMs, 'before the heartbeat timeout');
  const sb = await c.status('b');
  t.match(sb.notices.find((n) => n.notice === 'peer-distress')?.message, /fatal-signal/, 'the distress named the fatal signal');
  t.same(await exited(agents.get(c)!.get('a')!), { code: null, signal: 'SIGSEGV' }, 'a\'s agent died of the signal');
  const sa = await startAgain(c, 'a');
  t.match(sa.out, { reason: 'fatal-signal' }, 'the record the signal handler wrote keeps the restarted agent out');
});

t.test('a lone survivor whose UPS runs out keeps its priority: after vigil rejoin it starts alone (seed 003)', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: TIMING });
  await bothUp(c);
  await c.powerOff('b');
  await until('a declares b failed', async () => (peer(await c.status('a'), 'b')?.state === 'failed' ? true : undefined), 15_000);
  await c.request('a', 'distress.send', { reason: 'unknown' });
  await until('a is out', async () => ((await c.status('a')) as Status & Out).out ? true : undefined, 10_000);
  // The write of b's failure (M → SM, 1) may still be on its way when a leaves: wait for it, never for a 3.
  const priority = await until('a\'s priority settled', async () => {
    const pairs = (await c.request('a', 'priority.show')) as { pairs: { tag: string; priority: number }[] };
    const p = pairs.pairs.find((x) => x.tag === 'web')?.priority;
    return p === 1 || p === 3 ? p : undefined;
  }, 5000);
  t.equal(priority, 1, 'nobody took over: a keeps priority 1 (it processed last)');
  // The whole cluster is down now; power returns on a alone, and an operator brings it back.
  await restartAgent(c, 'a');
  await c.request('a', 'rejoin');
  await until('a serves alone', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 30_000, 200).catch(async (e) => {
    t.comment(JSON.stringify(await c.status('a'), null, 1));
    t.comment(JSON.stringify(await c.request('a', 'priority.show')));
    t.comment(c.log('a').split('\n').slice(-60).join('\n'));
    throw e;
  });
  t.pass('the last processor starts alone after rejoin, without a forced start');
});

/**
 * Signs a distress of `node`'s from its life `incarnation`, as its armed sender would have (what a capture
 * on the wire holds), and sends it from inside `from`'s namespace to every address of `to` every 50 ms for
 * `ms`: a replay by someone on the cluster's networks.
 */
async function replayDistress(c: TestCluster, o: { node: string; incarnation: bigint; from: string; to: string; ms: number }): Promise<void> {
  const config = parseConfig(await readFile(join(c.dir, `${o.to}.yaml`), 'utf8'), join(c.dir, `${o.to}.yaml`));
  const key = Buffer.from((await readFile(join(c.dir, 'cluster.key'), 'utf8')).trim(), 'hex');
  const sender = config.nodes.find((n) => n.name === o.node)!;
  const p: DistressPayload = {
    reasonCode: REASON_CODES['hardware-fault'], node: sender.id, incarnation: o.incarnation, event: 1n, repeat: 0, repeats: 1, armedAtMs: 0n,
  };
  const datagram = encodeDatagram(key, distressHeader(clusterTag(config.cluster), p), encodeDistressPayload(p)).toString('base64');
  const to = distressOptions(config, sender, key, o.incarnation, {}).peers.find((x) => x.id === config.nodes.find((n) => n.name === o.to)!.id)!;
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const b = Buffer.from(${JSON.stringify(datagram)}, 'base64');
    const to = ${JSON.stringify(to.addresses.map((a) => [a.host, a.port]))};
    const end = Date.now() + ${o.ms};
    const once = () => { for (const [h, p] of to) s.send(b, p, h, () => {}); if (Date.now() < end) setTimeout(once, 50); else setTimeout(() => s.close(), 100); };
    once();`;
  await c.rig.run(o.from, [process.execPath, '-e', script]);
}

t.test('a distress captured from an earlier life of a peer, replayed while this node starts, fences nobody', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: TIMING });
  await bothUp(c);
  const earlier = BigInt(((await c.status('a')) as Status & Out).incarnation);
  // b stops; a starts a new life while b is down, so the newest life of a that b knows is the earlier one.
  const b = agents.get(c)!.get('b')!;
  b.kill('SIGTERM');
  await exited(b);
  // Once a has counted b failed, it processed last and starts alone after its restart (seed 003).
  await until('a declares b failed', async () => (peer(await c.status('a'), 'b')?.state === 'failed' ? true : undefined), 15_000);
  await restartAgent(c, 'a');
  await until('a serves alone', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 30_000, 200);
  // a is silent (frozen) while b starts, and the capture arrives meanwhile: b cannot yet tell it is stale.
  const frozen = (await sh(['ip', 'netns', 'pids', c.rig.ns('a')])).stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of frozen) process.kill(pid, 'SIGSTOP');
  try {
    start(c, 'b');
    await replayDistress(c, { node: 'a', incarnation: earlier, from: 'a', to: 'b', ms: 3000 });
  } finally {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
  }
  await until('b hears a', async () => (peer(await c.status('b'), 'a')?.state === 'alive' ? true : undefined), 15_000);
  await settled(c, ['a', 'b']);
  const sb = await c.status('b');
  t.same(sb.notices.filter((n) => n.notice === 'peer-distress'), [], 'b never acted on the replay');
  t.match(await c.request('b', 'distress.status'), { dropped: { superseded: 1 }, held: [] }, 'b held it, then dropped it once a\'s heartbeats came from a newer life');
  t.equal(host(sb, 'web'), 'a', 'web stays on a');
  t.equal(await c.probe(c.vip()), 'a');
});

// A flood of forged heartbeats at one node (issue 12 A3: unauthenticated datagrams kept its heartbeat thread
// draining its sockets, so it stopped sending and its peer failed it over). Every datagram is well formed
// up to the HMAC, the most expensive check, so the receiver spends the most it can on each. The node must
// keep sending on time, and its peer must never count it failed. Figures: the flood's rate, the node's
// heartbeats sent meanwhile, the forged datagrams it dropped, and the longest silence its peer saw.
//
// This machine cannot flood faster than one thread drains for long (two cores: the flooders and the
// kernel's delivery share one): the old unbounded drain passed this test too, with one round late (its
// peer's longest silence 198 ms against 100 ms now). On a real network a flood outruns any drain, and
// the bound (native/heartbeat.cc, Run: 64 datagrams per socket per wake-up, and never past the next send)
// is what keeps the node sending; see the note of issue 12.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import t from 'tap';

import { packageRoot } from '../../src/util/package-root.js';
import { clusterTag } from '../../src/wire/datagram.js';
import { createCluster, NETWORKS, settled, until, type Status } from '../support/cluster.js';

const FLOOD_S = 10;

/** The parts of the status this test reads beyond the shared Status type. */
interface Full {
  peers: { peer: string; state: string; links?: { network: string; heardAgoMs: number }[] }[];
  heartbeat?: { sent: number; dropped?: Record<string, number> };
  apps: Status['apps'];
  notices: Status['notices'];
}
const full = (s: Status) => s as unknown as Full;

t.test(`a ${FLOOD_S} s flood of forged heartbeats on both networks of the primary: it keeps sending, and its peer never fails it`, async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  // The agents' own default: the heartbeat thread at SCHED_FIFO, as in production.
  c.start('a', { heartbeatPriority: null });
  c.start('b', { heartbeatPriority: null });
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 15_000);
  await settled(c, ['a', 'b']);
  const flood = join(c.dir, 'heartbeat-flood');
  await promisify(execFile)('cc', ['-O2', '-Wall', '-o', flood, join(packageRoot(), 'hw-fixtures', 'cluster', 'heartbeat-flood.c')]);

  const before = full(await c.status('a'));
  // From b's namespace, as b (id 2): a's sockets on both networks get datagrams that pass every check
  // before the HMAC.
  const floods = NETWORKS.map((net, i) => c.rig.exec('b', [flood, c.rig.addr('a', net), String(7400 + 10 * i), String(clusterTag('test')), '2', String(FLOOD_S)], { timeout: (FLOOD_S + 20) * 1000 }));
  const started = performance.now();
  const silence: Record<string, number> = {};
  const states = new Set<string>();
  while (performance.now() - started < FLOOD_S * 1000) {
    const a = full(await c.status('b')).peers.find((p) => p.peer === 'a');
    states.add(a?.state ?? 'unknown');
    for (const l of a?.links ?? []) silence[l.network] = Math.max(silence[l.network] ?? 0, l.heardAgoMs);
    await sleep(100);
  }
  const ran = await Promise.all(floods);
  t.same(ran.map((r) => r.code), ran.map(() => 0), `the flooders ran (${ran.map((r) => r.stderr.trim()).join(' ') || 'no errors'})`);
  const sent = ran.map((r) => Number(r.stdout.trim()));
  const after = full(await c.status('a'));
  const sb = full(await c.status('b'));
  const seconds = (performance.now() - started) / 1000;
  const heartbeats = (after.heartbeat?.sent ?? 0) - (before.heartbeat?.sent ?? 0);
  const forged = (after.heartbeat?.dropped?.hmac ?? 0) - (before.heartbeat?.dropped?.hmac ?? 0);
  const total = sent.reduce((x, y) => x + y, 0);
  t.comment(`flood: ${total} datagrams in ${FLOOD_S} s (${Math.round(total / FLOOD_S / 1000)} k/s over ${NETWORKS.length} networks)`);
  t.comment(`a dropped ${forged} of them at the HMAC check (${Math.round(forged / seconds / 1000)} k/s); the rest overflowed its socket buffers`);
  t.comment(`a sent ${heartbeats} heartbeats in ${seconds.toFixed(1)} s (${(heartbeats / seconds).toFixed(1)}/s; 20/s expected: 2 networks at 100 ms)`);
  t.comment(`b's longest silence of a, sampled every 100 ms: ${Object.entries(silence).map(([n, ms]) => `network ${n} ${ms.toFixed(0)} ms`).join(', ')}`);

  t.ok(total > 0 && forged > 0, 'the flood reached a, and a dropped what it read of it as forged');
  t.same([...states], ['alive'], 'b counted a alive throughout the flood');
  t.ok(heartbeats >= seconds * 20 * 0.5, `a kept sending its heartbeats (${heartbeats})`);
  t.equal(sb.apps.find((x) => x.tag === 'web')?.host, 'a', 'web stayed on a');
  t.notOk(sb.notices.some((n) => n.notice === 'primary-failed' || n.notice === 'split-brain'), 'no failover notice on b');
});

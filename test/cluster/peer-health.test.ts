// What vigil status and vigil doctor say of each peer beyond "alive", made real in the namespace rig:
// - its wall clock (src/daemon/peer-clocks.ts): b's agent runs under libfaketime 5 s ahead (its monotonic
//   clock left alone, so its heartbeats are as they were). a's status says b is about 5 s ahead, b's that
//   a is about 5 s behind, and doctor on a and `vigil status` say the clocks must be synchronised;
// - the heartbeats lost on a network (src/daemon/link-loss.ts): nftables in b's namespace drops 30% of
//   what arrives on lan1. b's status puts lan1's loss near that and lan2's at none, and doctor on b warns
//   about lan1 alone. Neither moves the app.
import { join } from 'node:path';

import t from 'tap';

import { applyRules } from '../nemesis/netfilter.js';
import { runCli } from '../support/cli.js';
import { createCluster, settled, until, type Status } from '../support/cluster.js';

/** Debian's faketime package (scripts/setup installs it). */
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const clockOf = (s: Status, peer: string) => s.peers.find((p) => p.peer === peer)?.clock;

t.test('a peer 5 s ahead, then a network that drops 30%: both in status, each doctor\'s WARN', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  c.start('a');
  c.start('b', { env: { LD_PRELOAD: FAKETIME, FAKETIME: '+5s', FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' } });
  await settled(c, ['a', 'b']);
  const seen = await until('a has an estimate of b\'s clock', async () => clockOf(await c.status('a'), 'b'), 15_000);
  t.ok(seen.offsetMs > 4000 && seen.offsetMs < 6000, `a sees b ${seen.offsetMs} ms ahead (it is 5000)`);
  const fromB = await until('b has an estimate of a\'s clock', async () => clockOf(await c.status('b'), 'a'), 15_000);
  t.ok(fromB.offsetMs < -4000 && fromB.offsetMs > -6000, `b sees a ${fromB.offsetMs} ms behind`);

  const ran = await runCli('vigil', ['doctor', '--config', join(c.dir, 'a.yaml'), '--node', 'a', '--json']);
  const report = JSON.parse(ran.stdout) as { checks: { id: string; verdict: string; summary: string; fix: string | null }[] };
  const clocks = report.checks.find((x) => x.id === 'clocks');
  t.match(clocks, { verdict: 'WARN', summary: /^clocks against this node's: b \+\d+ ms/, fix: /synchronise the clocks of this node and b/ }, "doctor on a: b's clock is off");
  t.same(report.checks.filter((x) => x.id.startsWith('network.') && x.verdict !== 'OK'), [], 'the heartbeats are unmoved by the skew');
  t.equal((await c.status('a')).apps.find((a) => a.tag === 'web')?.host, 'a', 'and so is the app');
  const human = await runCli('vigil', ['status', '--socket', c.socket('a')]);
  t.match(human.stdout, /\n {2}b {2}alive .*CLOCK \+\d+ ms \(synchronise the clocks\)\n/, "vigil status on a shows b's clock on b's line");

  await applyRules(c.rig, 'b', [{ net: 'lan1', dir: 'in', loss: 0.3 }]);
  t.teardown(() => applyRules(c.rig, 'b', []));
  // The loss is over vigild's last 10 s: wait for a window that is all lossy.
  await new Promise((r) => setTimeout(r, 11_000));
  const links = (await c.request('b', 'status') as { peers: { peer: string; links: { network: string; loss: number | null }[] }[] }).peers.find((p) => p.peer === 'a')!.links;
  const loss = (net: string) => links.find((l) => l.network === net)?.loss ?? null;
  t.ok(loss('lan1') !== null && loss('lan1')! > 0.15 && loss('lan1')! < 0.45, `b loses ${loss('lan1')} of a's heartbeats on lan1 (30% dropped)`);
  t.ok(loss('lan2') !== null && loss('lan2')! < 0.05, `and ${loss('lan2')} on lan2`);
  const onB = JSON.parse((await runCli('vigil', ['doctor', '--config', join(c.dir, 'b.yaml'), '--node', 'b', '--json'])).stdout) as { checks: { id: string; verdict: string; summary: string; fix: string | null }[] };
  t.match(onB.checks.find((x) => x.id === 'network.lan1'), { verdict: 'WARN', summary: /^lan1: a heard .*, [\d.]+% lost$/, fix: /^lan1 drops heartbeats between this node and a: / }, 'doctor on b: lan1 drops heartbeats');
  t.match(onB.checks.find((x) => x.id === 'network.lan2'), { verdict: 'OK' }, 'lan2 is fine');
  t.equal((await c.status('b')).apps.find((a) => a.tag === 'web')?.host, 'a', 'the app did not move');
});

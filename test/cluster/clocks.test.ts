// Each peer's wall clock as vigild estimates it (src/daemon/peer-clocks.ts), against a real skew: b's agent
// runs under libfaketime 5 s ahead (its monotonic clock left alone, so its heartbeats are as they were).
// a's status says b is about 5 s ahead, b's that a is about 5 s behind, and `vigil doctor` on a warns
// that the clocks must be synchronised, naming b, as does `vigil status`; the rest of the cluster is unmoved.
import { join } from 'node:path';

import t from 'tap';

import { runCli } from '../support/cli.js';
import { createCluster, settled, until, type Status } from '../support/cluster.js';

/** Debian's faketime package (scripts/setup installs it). */
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const clockOf = (s: Status, peer: string) => s.peers.find((p) => p.peer === peer)?.clock;

t.test('a peer 5 s ahead: both agents see the skew, and doctor warns about it', async (t) => {
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
});

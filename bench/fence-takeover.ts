// scripts/bench-failover's second part (on the host, as root): the takeover of a disk-less app whose host is
// cut from both cluster networks and still serves on the service network, which only a power fence makes
// safe, beside a plain power loss of the host (nothing to fence: its address is free), both as a client
// sees them. Each node has a real BMC (ipmi_sim, test/support/fenced-cluster.ts) whose power-off kills
// the node's processes. The app's primary is b and its backup a: a has the lower id, so it fences at once
// (a survivor of the higher id first waits fencing.raceDelayMs, docs/ipmi.md). Measured from the cut (or
// the power-off), per run: detection (a's "peer failed" log line), fence (a's "confirmed off"), and
// end-to-end (the prober's first answer from a).
//
// Options: --runs N (default 10), --json (JSON on stdout, the table on stderr).
import { createCluster, loggedAt, settled, until, type TestCluster } from '../test/support/cluster.js';
import { fencedCluster } from '../test/support/fenced-cluster.js';
import { now, powerOff, Prober, Scope, stats, waitFor, type Stats } from './rig.js';

const argv = process.argv.slice(2);
const RUNS = Number(argv.includes('--runs') ? argv[argv.indexOf('--runs') + 1] : 10);
const JSON_OUT = argv.includes('--json');
const out = JSON_OUT ? process.stderr : process.stdout;
const say = (s: string) => process.stderr.write(`bench-fence: ${s}\n`);

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const APPS = [{ tag: 'web', primary: 'b', backup: 'a', vip: true }];

interface Run { detectionMs: number; fenceMs: number | null; endToEndMs: number }

async function up(c: TestCluster, scope: Scope): Promise<Prober> {
  c.start('a');
  c.start('b');
  const prober = new Prober(c.rig, c.vip());
  scope.teardown(() => prober.stop());
  await waitFor('the client served by b', () => (prober.first('b') ? true : undefined), 30_000);
  await until('a hears b', async () => ((await c.status('a')).peers.find((p) => p.peer === 'b')?.state === 'alive' ? true : undefined), 20_000);
  // The pair settled as master and slave (seed 003): until then a takeover waits for the pair's decision.
  await settled(c, ['a', 'b']);
  return prober;
}

async function fencedRun(): Promise<Run> {
  const scope = new Scope();
  try {
    const { c } = await fencedCluster(scope, APPS);
    const prober = await up(c, scope);
    const t0 = now();
    await c.rig.cut('b', 'lan1');
    await c.rig.cut('b', 'lan2');
    const served = await waitFor('the client served by a', () => prober.first('a', t0), 30_000);
    const failed = loggedAt(c, 'a', /peer failed/, t0);
    const fenced = loggedAt(c, 'a', /power fence: the node is confirmed off/, t0);
    if (failed === undefined || fenced === undefined) throw new Error('a logged no failure or no fence');
    return { detectionMs: failed - t0, fenceMs: fenced - t0, endToEndMs: served.at - t0 };
  } finally {
    await scope.close();
  }
}

async function powerLossRun(): Promise<Run> {
  const scope = new Scope();
  try {
    const c = await createCluster(scope, ['a', 'b'], APPS);
    const prober = await up(c, scope);
    const t0 = await powerOff(c.rig, 'b');
    const served = await waitFor('the client served by a', () => prober.first('a', t0), 30_000);
    const failed = loggedAt(c, 'a', /peer failed/, t0);
    if (failed === undefined) throw new Error('a logged no failure');
    return { detectionMs: failed - t0, fenceMs: null, endToEndMs: served.at - t0 };
  } finally {
    await scope.close();
  }
}

const ms = (s: Stats) => `median ${s.median.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`;

const results: Record<string, { runs: Run[]; failed: number }> = { fenced: { runs: [], failed: 0 }, powerLoss: { runs: [], failed: 0 } };
for (let i = 0; i < RUNS; i++) {
  // Alternating, so that a drift of the machine's load weighs on both alike.
  for (const [name, run] of (i % 2 ? [['powerLoss', powerLossRun], ['fenced', fencedRun]] : [['fenced', fencedRun], ['powerLoss', powerLossRun]]) as [string, () => Promise<Run>][]) {
    try {
      results[name]!.runs.push(await run());
    } catch (e) {
      results[name]!.failed++;
      say(`${name} run ${i + 1} failed: ${(e as Error).message}`);
    }
  }
}

const fenced = results.fenced!.runs;
const lost = results.powerLoss!.runs;
const summary = {
  fenced: { n: fenced.length, failed: results.fenced!.failed, detection: stats(fenced.map((r) => r.detectionMs)), fence: stats(fenced.map((r) => r.fenceMs!)), endToEnd: stats(fenced.map((r) => r.endToEndMs)) },
  powerLoss: { n: lost.length, failed: results.powerLoss!.failed, detection: stats(lost.map((r) => r.detectionMs)), endToEnd: stats(lost.map((r) => r.endToEndMs)) },
};
out.write(`disk-less app, its host cut from both cluster networks, power-fenced through ipmi_sim (${summary.fenced.n} runs, ${summary.fenced.failed} failed):\n`);
out.write(`  detection ${ms(summary.fenced.detection)}\n  fence confirmed ${ms(summary.fenced.fence)}\n  end-to-end ${ms(summary.fenced.endToEnd)}\n`);
out.write(`the same app, its host losing power (nothing to fence) (${summary.powerLoss.n} runs, ${summary.powerLoss.failed} failed):\n`);
out.write(`  detection ${ms(summary.powerLoss.detection)}\n  end-to-end ${ms(summary.powerLoss.endToEnd)}\n`);
out.write(`the fence's cost end-to-end: ${(summary.fenced.endToEnd.median - summary.powerLoss.endToEnd.median).toFixed(0)} ms at the median\n`);
if (JSON_OUT) process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(summary.fenced.failed + summary.powerLoss.failed > 0 ? 1 : 0);

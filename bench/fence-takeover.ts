// scripts/bench-failover's second part (on the host, as root): the takeover of a disk-less app whose host is
// cut from both cluster networks and still serves on the service network, which only a power fence makes
// safe, beside a plain power loss of the host (nothing to fence: its address is free), both as a client
// sees them. Each node has a real BMC (ipmi_sim, test/support/fenced-cluster.ts) whose power-off kills
// the node's processes. The app's primary is b and its backup a: a has the lower id, so it fences at once
// (a survivor of the higher id first waits fencing.raceDelayMs, docs/ipmi.md). Measured from the cut (or
// the power-off), per run: detection (a's "peer failed" log line), fence (a's "confirmed off"), and
// end-to-end (the prober's first answer from a).
//
// In the lab guest (scripts/bench runs it there with --iscsi) a third path joins the other two, under the
// same emulated CPUs: the disk path, the same app owning the shared iSCSI unit, its host b losing power;
// a fails it when both networks and the disk heartbeat fall silent, takes the disk by PREEMPT AND ABORT
// ("fence" is the disk resource started), then the address. The host has no SCSI, hence the guest.
//
// Options: --runs N (default 10 on the host, 3 in the guest), --only fenced|powerLoss|disk, --json (JSON on
// stdout, the table on stderr). A failed run prints the survivor's last log lines.
import { createCluster, loggedAt, settled, until, type TestCluster } from '../test/support/cluster.js';
import { fencedCluster } from '../test/support/fenced-cluster.js';
import { lab, resetUnit } from '../test/support/lab.js';
import { now, powerOff, Prober, Scope, stats, waitFor, type Stats } from './rig.js';

const argv = process.argv.slice(2);
const IN_LAB = process.env.VIGIL_LAB !== undefined;
const RUNS = Number(argv.includes('--runs') ? argv[argv.indexOf('--runs') + 1] : IN_LAB ? 3 : 10);
const ONLY = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const JSON_OUT = argv.includes('--json');
const out = JSON_OUT ? process.stderr : process.stdout;
const say = (s: string) => process.stderr.write(`bench-fence: ${s}\n`);

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const APPS = [{ tag: 'web', primary: 'b', backup: 'a', vip: true }];
// Under TCG: the lab's cluster timing (test/lab/cluster.test.ts), for every path alike.
const TIMING = IN_LAB ? { timing: { heartbeatIntervalMs: 200, failAfterMs: 2000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 60_000 } } : {};
const STARTUP_MS = IN_LAB ? 120_000 : 30_000;
// Under TCG ipmi_sim answers slowly (its power-off hook alone spawns processes for a second and more):
// a request timeout of 1 s failed every fence there.
const FENCING_OPTION = IN_LAB ? { fencing: 'fencing: { raceDelayMs: 3000, requestTimeoutMs: 5000, confirmTimeoutMs: 10000 }' } : {};

interface Run { detectionMs: number; fenceMs: number | null; endToEndMs: number }

/** A failed run: the survivor's last log lines say why. */
function tell(c: TestCluster): void {
  say(`a's last log lines:\n${c.log('a').trim().split('\n').slice(-25).map((l) => `  ${l.slice(0, 300)}`).join('\n')}`);
}

async function up(c: TestCluster, scope: Scope): Promise<Prober> {
  c.start('a');
  c.start('b');
  const prober = new Prober(c.rig, c.vip());
  scope.teardown(() => prober.stop());
  await waitFor('the client served by b', () => (prober.first('b') ? true : undefined), STARTUP_MS);
  await until('a hears b', async () => ((await c.status('a')).peers.find((p) => p.peer === 'b')?.state === 'alive' ? true : undefined), STARTUP_MS);
  // The pair settled as master and slave (seed 003): until then a takeover waits for the pair's decision.
  await settled(c, ['a', 'b'], STARTUP_MS);
  return prober;
}

async function fencedRun(): Promise<Run> {
  const scope = new Scope();
  try {
    const { c } = await fencedCluster(scope, APPS, { ...TIMING, ...FENCING_OPTION });
    const prober = await up(c, scope);
    const t0 = now();
    await c.rig.cut('b', 'lan1');
    await c.rig.cut('b', 'lan2');
    const served = await waitFor('the client served by a', () => prober.first('a', t0), STARTUP_MS).catch((e: unknown) => { tell(c); throw e; });
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
    const c = await createCluster(scope, ['a', 'b'], APPS, TIMING);
    const prober = await up(c, scope);
    const t0 = await powerOff(c.rig, 'b');
    const served = await waitFor('the client served by a', () => prober.first('a', t0), STARTUP_MS).catch((e: unknown) => { tell(c); throw e; });
    const failed = loggedAt(c, 'a', /peer failed/, t0);
    if (failed === undefined) throw new Error('a logged no failure');
    return { detectionMs: failed - t0, fenceMs: null, endToEndMs: served.at - t0 };
  } finally {
    await scope.close();
  }
}

/** The lab only: the same app owning the shared iSCSI unit; b loses power, a preempts it and serves. */
async function diskRun(): Promise<Run> {
  const scope = new Scope();
  try {
    await resetUnit(lab.iscsiA, lab.iscsiB);
    const c = await createCluster(scope, ['a', 'b'], [{ ...APPS[0]!, disk: true }], { ...TIMING, disk: { identity: lab.iscsiId, paths: { a: lab.iscsiA, b: lab.iscsiB } } });
    const prober = await up(c, scope);
    const t0 = await powerOff(c.rig, 'b');
    const served = await waitFor('the client served by a', () => prober.first('a', t0), STARTUP_MS).catch((e: unknown) => { tell(c); throw e; });
    const failed = loggedAt(c, 'a', /peer failed/, t0);
    const taken = loggedAt(c, 'a', /"resource":"disk shared0".*"msg":"resource started"/, t0);
    if (failed === undefined || taken === undefined) throw new Error('a logged no failure or did not take the disk');
    return { detectionMs: failed - t0, fenceMs: taken - t0, endToEndMs: served.at - t0 };
  } finally {
    await scope.close();
  }
}

const ms = (s: Stats) => `median ${s.median.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`;

const results: Record<string, { runs: Run[]; failed: number }> = { fenced: { runs: [], failed: 0 }, powerLoss: { runs: [], failed: 0 }, disk: { runs: [], failed: 0 } };
const paths = ([['fenced', fencedRun], ['powerLoss', powerLossRun], ...(IN_LAB ? [['disk', diskRun]] : [])] as [string, () => Promise<Run>][])
  .filter(([name]) => ONLY === undefined || name === ONLY);
for (let i = 0; i < RUNS; i++) {
  // In turn, starting one later each round, so that a drift of the machine's load weighs on all alike.
  for (const [name, run] of [...paths.slice(i % paths.length), ...paths.slice(0, i % paths.length)]) {
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
// Only the paths that ran (--only), and a comparison only where both sides have runs.
const ran = (name: string) => results[name]!.runs.length + results[name]!.failed > 0;
if (ran('fenced')) {
  out.write(`disk-less app, its host cut from both cluster networks, power-fenced through ipmi_sim (${summary.fenced.n} runs, ${summary.fenced.failed} failed):\n`);
  out.write(`  detection ${ms(summary.fenced.detection)}\n  fence confirmed ${ms(summary.fenced.fence)}\n  end-to-end ${ms(summary.fenced.endToEnd)}\n`);
}
if (ran('powerLoss')) {
  out.write(`the same app, its host losing power (nothing to fence) (${summary.powerLoss.n} runs, ${summary.powerLoss.failed} failed):\n`);
  out.write(`  detection ${ms(summary.powerLoss.detection)}\n  end-to-end ${ms(summary.powerLoss.endToEnd)}\n`);
}
if (fenced.length && lost.length) out.write(`the fence's cost end-to-end: ${(summary.fenced.endToEnd.median - summary.powerLoss.endToEnd.median).toFixed(0)} ms at the median\n`);
const disk = results.disk!.runs;
const diskSummary = IN_LAB ? { n: disk.length, failed: results.disk!.failed, detection: stats(disk.map((r) => r.detectionMs)), taken: stats(disk.map((r) => r.fenceMs!)), endToEnd: stats(disk.map((r) => r.endToEndMs)) } : undefined;
if (diskSummary && ran('disk')) {
  out.write(`the same app owning the shared iSCSI unit, its host losing power: the disk path (${diskSummary.n} runs, ${diskSummary.failed} failed):\n`);
  out.write(`  detection ${ms(diskSummary.detection)}\n  disk taken (PREEMPT AND ABORT) ${ms(diskSummary.taken)}\n  end-to-end ${ms(diskSummary.endToEnd)}\n`);
  if (fenced.length && disk.length) out.write(`IPMI fence against the disk path end-to-end: ${(summary.fenced.endToEnd.median / diskSummary.endToEnd.median).toFixed(2)}× at the median\n`);
}
if (JSON_OUT) process.stdout.write(`${JSON.stringify({ ...summary, ...(diskSummary ? { disk: diskSummary } : {}) })}\n`);
process.exit(summary.fenced.failed + summary.powerLoss.failed + (diskSummary?.failed ?? 0) > 0 ? 1 : 0);

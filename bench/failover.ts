// scripts/bench-failover (on the host, as root): failover as a client sees it, vigil against keepalived in
// the same network-namespace rig (test/support/netns.ts). For each run: the primary "a" serves a virtual IP,
// a client prober connects to VIP:8080 every 10 ms, then "a" loses power (SIGSTOP then SIGKILL of everything
// in its namespace, then every link cut, as TestCluster.powerOff does). Measured from the kill:
//   detection  = the backup's log line saying the primary is gone (vigil: "peer failed: every channel
//                silent", pino's time field; keepalived: "Entering MASTER STATE", stamped as it arrives by a
//                wrapper process in b's namespace);
//   end-to-end = the prober's first answer from "b" (stamped when the answer arrives).
// Then false failovers: 100 % CPU load on the primary (nproc + 1 busy loops, 10 s) and, for vigil, a 3 s
// event-loop stall of the primary's agent (debug.stall).
// Then vigil's distress path (seed 002) against its heartbeat-timeout path, in pairs of runs alternating
// which goes first, each on a fresh cluster with default timing and the client probing every 5 ms:
//   distress  = at t0 the bench calls `distress.send` {reason: hardware-fault} (sent in sync mode, before
//               the agent answers) on a, and the moment the answer is in, a loses power as above (its
//               processes listed beforehand, so the kill follows the answer at once): a UPS-driven node
//               that sends distress and dies;
//   heartbeat = a loses power with no distress (t0 = the power-off), as in the vigil runs above;
// each measured from t0: detection (b's pino line `peer failed: …`: `distress: hardware-fault` or `every
// channel silent`), takeover (b's `failover-complete` notice) and end-to-end (the client's first answer
// from b). The goal checked: distress end-to-end p95 ≤ 300 ms.
//
// Options: --runs N (default 20), --default-runs N (keepalived with its default advert_int 1 s; default 10),
// --advert S,S (keepalived's sub-second advert_int values, VRRPv3; default 0.01, the smallest it accepts,
// and 0.1, vigil's heartbeat interval), --distress-runs N (pairs of distress/heartbeat runs; default
// VIGIL_BENCH_DISTRESS_RUNS, else --runs),
// --only vigil|distress|keepalived (or a comma list; default all three), --no-load, --json (JSON on stdout,
// the table on stderr; otherwise the JSON goes to .lab/bench-failover.json). VIGIL_BENCH_VERBOSE=1 prints
// every run.
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { APP_PORT, createCluster, until, type Status, type TestCluster, settled } from '../test/support/cluster.js';
import { KeepalivedRig, kaSettings } from './keepalived.js';
import { flag, lines, now, opt, pidsIn, powerOff, Prober, repeat, Scope, saveReport, stats, waitFor, type Run, type Stats } from './rig.js';

// ---- options ----

const RUNS = Number(opt('--runs') ?? 20);
const DEFAULT_RUNS = Number(opt('--default-runs') ?? 10);
const ADVERTS = (opt('--advert') ?? '0.01,0.1').split(',').map(Number);
const ONLY = opt('--only');
const wants = (part: 'vigil' | 'distress' | 'keepalived') => ONLY === undefined || ONLY.split(',').includes(part);
const DISTRESS_RUNS = Number(opt('--distress-runs') ?? process.env.VIGIL_BENCH_DISTRESS_RUNS ?? RUNS);
/** The prober's interval in the distress/heartbeat pairs: fine against a distress failover of ~100 ms. */
const DISTRESS_PROBE_MS = 5;
/** The goal for the distress path: end-to-end (t0 → the client served by b), p95, in ms. */
const DISTRESS_GOAL_MS = 300;
const LOAD = !flag('--no-load');
const JSON_OUT = flag('--json');
const VERBOSE = process.env.VIGIL_BENCH_VERBOSE === '1';
const LOAD_MS = 10_000;
const STALL_MS = 3000;
const HOGS = cpus().length + 1;

const out = JSON_OUT ? process.stderr : process.stdout;
const say = (s: string) => process.stderr.write(`bench-failover: ${s}\n`);

process.on('SIGINT', () => process.exit(130)); // so that the rigs' exit hook removes the namespaces
process.on('SIGTERM', () => process.exit(143));

interface LoadResult {
  /** Failovers: HOST changes seen on b (vigil) or MASTER transitions of b (keepalived). */
  failovers: number;
  /** Answers the client got from b during and after the load: a served copy that should not exist. */
  answersFromB: number;
  note?: string;
}

interface SystemResult {
  name: string;
  settings: Record<string, unknown>;
  runs: Run[];
  failed: number;
  detection: Stats;
  endToEnd: Stats;
  cpuLoad?: LoadResult;
  stall?: LoadResult;
}

function summarise(name: string, settings: Record<string, unknown>, runs: Run[], failed: number): SystemResult {
  return {
    name, settings, runs, failed,
    detection: stats(runs.map((r) => r.detectionMs)),
    endToEnd: stats(runs.map((r) => r.endToEndMs)),
  };
}

// ---- vigil ----

const APPS = [{ tag: 'web', primary: 'a', backup: 'b', vip: true }];
const hostOf = (s: Status) => s.apps.find((a) => a.tag === 'web')?.host ?? null;
const peerOf = (s: Status, name: string) => s.peers.find((p) => p.peer === name);

/** A line of an agent's log: its pino time (wall-clock ms) and message. */
interface Logged { at: number; msg: string }

interface VigilUp {
  c: TestCluster; prober: Prober; failedAt: number[]; stalls: number[];
  /** b's `peer failed: …` lines, whatever the cause (silence or distress). */
  declared: Logged[];
  /** b's `failover-complete` notices. */
  takenOver: Logged[];
  /** a's `distress sent …` lines, with the send mode it logged. */
  distressSent: (Logged & { mode?: string; sent?: unknown })[];
}

/** A fresh two-node cluster with default timing; resolves when the client is served by a and b sees a alive. */
async function vigilUp(scope: Scope, proberMs = 10): Promise<VigilUp> {
  const c = await createCluster(scope, ['a', 'b'], APPS, { debug: true }); // debug.stall
  const a = c.start('a');
  const b = c.start('b');
  const failedAt: number[] = [];
  const stalls: number[] = []; // a's own stalls, as it logs them
  const declared: Logged[] = [];
  const takenOver: Logged[] = [];
  const distressSent: VigilUp['distressSent'] = [];
  lines(a.stdout, (line) => {
    if (line.includes('distress sent')) {
      try {
        const rec = JSON.parse(line) as { time?: number; msg?: string; mode?: string; sent?: unknown };
        if (typeof rec.time === 'number') distressSent.push({ at: rec.time, msg: rec.msg ?? '', mode: rec.mode, sent: rec.sent });
      } catch { /* not JSON */ }
      return;
    }
    if (!line.includes('own event loop stalled')) return;
    try {
      const rec = JSON.parse(line) as { stallMs?: number };
      if (typeof rec.stallMs === 'number') stalls.push(rec.stallMs);
    } catch { /* not JSON */ }
  });
  lines(b.stdout, (line) => {
    if (!line.includes('peer failed:') && !line.includes('failover-complete')) return;
    try {
      const rec = JSON.parse(line) as { time?: number; msg?: string; notice?: string };
      if (typeof rec.time !== 'number') return;
      if (rec.notice === 'failover-complete') takenOver.push({ at: rec.time, msg: rec.msg ?? '' });
      else if (rec.msg?.startsWith('peer failed:')) {
        declared.push({ at: rec.time, msg: rec.msg });
        if (rec.msg === 'peer failed: every channel silent') failedAt.push(rec.time);
      }
    } catch { /* not JSON */ }
  });
  const prober = new Prober(c.rig, c.vip(), proberMs);
  scope.teardown(() => prober.stop());
  await waitFor('the client served by a', () => (prober.first('a') ? true : undefined), 20_000);
  await until('b seeing a alive', async () => (peerOf(await c.status('b'), 'a')?.state === 'alive' ? true : undefined), 10_000);
  await settled(c, ['a', 'b']);
  return { c, prober, failedAt, stalls, declared, takenOver, distressSent };
}

async function vigilRun(i: number): Promise<Run> {
  const scope = new Scope();
  try {
    const { c, prober, failedAt } = await vigilUp(scope);
    await sleep(200 + Math.random() * 300); // a random phase against the heartbeat interval
    const t0 = await powerOff(c.rig, 'a');
    const detected = await waitFor('b declaring a failed', () => failedAt.find((x) => x >= t0 - 1), 10_000);
    const served = await waitFor('the client served by b', () => prober.first('b', t0), 10_000);
    const run = { detectionMs: detected - t0, endToEndMs: served.at - t0 };
    if (VERBOSE) say(`vigil run ${i + 1}: detection ${run.detectionMs.toFixed(1)} ms, end-to-end ${run.endToEndMs.toFixed(1)} ms`);
    return run;
  } finally {
    await scope.close();
  }
}

async function vigilLoads(): Promise<{ cpuLoad: LoadResult; stall: LoadResult }> {
  const scope = new Scope();
  try {
    const { c, prober, failedAt, stalls } = await vigilUp(scope);
    await sleep(2500);
    // HOST as b sees it, polled throughout; a change away from a is a failover.
    let changes = 0;
    let last: string | null = 'a';
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const h = hostOf(await c.status('b'));
          if (h !== last) { changes++; last = h; }
        } catch { /* b busy: try again */ }
        await sleep(100);
      }
    })();
    const measure = async (load: () => Promise<void>): Promise<LoadResult> => {
      const [c0, f0, t0] = [changes, failedAt.length, now()];
      await load();
      await sleep(2000); // anything the load set off shows by now (detection is 400 ms)
      const final = hostOf(await c.status('b'));
      if (final !== last) { changes++; last = final; }
      return {
        failovers: changes - c0, answersFromB: prober.count('b', t0),
        ...(failedAt.length > f0 ? { note: `${failedAt.length - f0} "peer failed" on b` } : {}),
      };
    };
    const cpuLoad = await measure(async () => {
      const hogs = Array.from({ length: HOGS }, () => c.rig.spawn('a', [process.execPath, '-e', 'for(;;){}'], { stdio: 'ignore' }));
      await sleep(LOAD_MS);
      for (const h of hogs) h.kill('SIGKILL');
    });
    const stall = await measure(async () => {
      await c.request('a', 'debug.stall', { ms: STALL_MS });
      await sleep(STALL_MS);
    });
    const longest = Math.max(0, ...stalls);
    if (longest < STALL_MS - 500) throw new Error(`a did not stall (longest stall it logged: ${longest} ms)`);
    stall.note = [stall.note, `a logged a ${Math.round(longest)} ms stall of its own`].filter(Boolean).join('; ');
    polling = false;
    await poller;
    return { cpuLoad, stall };
  } finally {
    await scope.close();
  }
}

// ---- vigil: distress against the heartbeat timeout ----

type PathName = 'distress' | 'heartbeat';

interface PathRun extends Run {
  path: PathName;
  /** t0 → b's failover-complete notice (its pino time). */
  takeoverMs: number;
  /** b's reason for failing a, from its log: `distress: hardware-fault` or `every channel silent`. */
  declared: string;
  /** Distress only: t0 → a's answer to distress.send, and t0 → the first signal of the power-off. */
  answeredMs?: number;
  powerOffMs?: number;
  /** Distress only: a's own log of the send (t0 → its pino time; the mode it used), when it got out. */
  sentLoggedMs?: number;
  mode?: string;
}

/**
 * One run of either path on a fresh cluster. distress: t0 just before the bench sends distress.send to a's
 * control socket; the agent sends the distress (sync: on its own thread, before it answers), the bench
 * kills a's processes (listed before t0) as soon as the answer is in and cuts its links. heartbeat: the
 * power-off alone, as vigilRun.
 */
async function pathRun(path: PathName, i: number): Promise<PathRun> {
  const scope = new Scope();
  try {
    const { c, prober, declared, takenOver, distressSent } = await vigilUp(scope, DISTRESS_PROBE_MS);
    await sleep(200 + Math.random() * 300); // a random phase against the heartbeat interval
    let t0: number;
    const extra: Partial<PathRun> = {};
    if (path === 'distress') {
      const pids = await pidsIn(c.rig, 'a');
      t0 = now();
      const r = (await c.request('a', 'distress.send', { reason: 'hardware-fault' })) as { out?: unknown };
      const answered = now();
      const off = await powerOff(c.rig, 'a', pids);
      if (!r.out) throw new Error('a answered distress.send without being out of the cluster');
      extra.answeredMs = answered - t0;
      extra.powerOffMs = off - t0;
    } else {
      t0 = await powerOff(c.rig, 'a');
    }
    const detected = await waitFor('b declaring a failed', () => declared.find((x) => x.at >= t0 - 1), 10_000);
    const took = await waitFor('b completing the failover', () => takenOver.find((x) => x.at >= t0 - 1), 10_000);
    const served = await waitFor('the client served by b', () => prober.first('b', t0), 10_000);
    if (path === 'distress') {
      const sent = distressSent.find((x) => x.at >= t0 - 1);
      if (sent) Object.assign(extra, { sentLoggedMs: sent.at - t0, mode: sent.mode });
    }
    const run: PathRun = {
      path, detectionMs: detected.at - t0, takeoverMs: took.at - t0, endToEndMs: served.at - t0,
      declared: detected.msg.replace(/^peer failed: /, ''), ...extra,
    };
    if (VERBOSE) {
      say(`${path} run ${i + 1}: detection ${run.detectionMs.toFixed(1)} ms (${run.declared}), takeover ${run.takeoverMs.toFixed(1)} ms, `
        + `end-to-end ${run.endToEndMs.toFixed(1)} ms${run.powerOffMs === undefined ? '' : `; answered ${run.answeredMs!.toFixed(1)} ms, power off ${run.powerOffMs.toFixed(1)} ms`}`
        + `${run.mode === undefined ? '' : `, a logged the send (${run.mode}) at ${run.sentLoggedMs!.toFixed(0)} ms`}`);
    }
    return run;
  } finally {
    await scope.close();
  }
}

interface PathResult { runs: PathRun[]; failed: number; detection: Stats; takeover: Stats; endToEnd: Stats }

interface DistressResult {
  settings: Record<string, unknown>;
  distress: PathResult & {
    answered: Stats; powerOff: Stats;
    /** Distress runs in which b failed a for another reason than the distress (it was lost: the heartbeat timeout did it). */
    notByDistress: number;
  };
  heartbeat: PathResult;
  /** heartbeat / distress. */
  ratios: { detectionMedian: number; detectionP95: number; endToEndMedian: number; endToEndP95: number };
  goal: { statistic: 'p95'; endToEndMs: number; limitMs: number; met: boolean };
}

/** `n` pairs, alternating which path goes first, so that both see the same host conditions. */
async function distressPairs(n: number): Promise<DistressResult> {
  const loadBefore = loadavg()[0]!;
  const runs: Record<PathName, PathRun[]> = { distress: [], heartbeat: [] };
  const failed: Record<PathName, number> = { distress: 0, heartbeat: 0 };
  for (let i = 0; i < n; i++) {
    for (const path of (i % 2 === 0 ? ['distress', 'heartbeat'] : ['heartbeat', 'distress']) as PathName[]) {
      try {
        runs[path].push(await pathRun(path, i));
      } catch (e) {
        failed[path]++;
        say(`${path} run ${i + 1} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  const result = (path: PathName): PathResult => ({
    runs: runs[path], failed: failed[path],
    detection: stats(runs[path].map((r) => r.detectionMs)),
    takeover: stats(runs[path].map((r) => r.takeoverMs)),
    endToEnd: stats(runs[path].map((r) => r.endToEndMs)),
  });
  const d = result('distress');
  const h = result('heartbeat');
  return {
    settings: {
      heartbeatIntervalMs: 100, failAfterMs: 400, defaults: true, reason: 'hardware-fault', mode: 'sync', proberIntervalMs: DISTRESS_PROBE_MS,
      // The host's 1-minute load average before and after: the app's start on b, most of the distress path, is sensitive to it.
      loadAverage: [loadBefore, loadavg()[0]!],
    },
    distress: {
      ...d,
      answered: stats(d.runs.map((r) => r.answeredMs ?? NaN)),
      powerOff: stats(d.runs.map((r) => r.powerOffMs ?? NaN)),
      notByDistress: d.runs.filter((r) => !r.declared.startsWith('distress')).length,
    },
    heartbeat: h,
    ratios: {
      detectionMedian: h.detection.median / d.detection.median, detectionP95: h.detection.p95 / d.detection.p95,
      endToEndMedian: h.endToEnd.median / d.endToEnd.median, endToEndP95: h.endToEnd.p95 / d.endToEnd.p95,
    },
    goal: { statistic: 'p95', endToEndMs: d.endToEnd.p95, limitMs: DISTRESS_GOAL_MS, met: d.failed === 0 && d.endToEnd.p95 <= DISTRESS_GOAL_MS },
  };
}

// ---- main ----

const started = performance.now();
const results: SystemResult[] = [];

if (wants('vigil')) {
  say(`vigil: ${RUNS} runs, default timing (heartbeat 100 ms, failAfter 400 ms)`);
  const { runs, failed } = await repeat('vigil', RUNS, vigilRun, say);
  const r = summarise('vigil', { heartbeatIntervalMs: 100, failAfterMs: 400, defaults: true }, runs, failed);
  if (LOAD) {
    say(`vigil: ${HOGS} busy loops on a for ${LOAD_MS / 1000} s, then a ${STALL_MS / 1000} s event-loop stall of a's agent`);
    Object.assign(r, await vigilLoads());
  }
  results.push(r);
}

let distress: DistressResult | undefined;
if (wants('distress') && DISTRESS_RUNS > 0) {
  say(`vigil distress against heartbeat timeout: ${DISTRESS_RUNS} pairs of runs, default timing, client probing every ${DISTRESS_PROBE_MS} ms`);
  distress = await distressPairs(DISTRESS_RUNS);
}

if (wants('keepalived')) {
  const ka = await KeepalivedRig.create();
  try {
    for (const [advert, n] of [...ADVERTS.map((a) => [a, RUNS] as const), [1, DEFAULT_RUNS] as const]) {
      if (n <= 0) continue;
      say(`keepalived advert_int ${advert} s: ${n} runs`);
      const { runs, failed } = await repeat(`keepalived ${advert} s`, n, async (i) => {
        const run = await ka.run(advert, i);
        if (VERBOSE) say(`keepalived ${advert} s run ${i + 1}: detection ${run.detectionMs.toFixed(1)} ms, end-to-end ${run.endToEndMs.toFixed(1)} ms`);
        return run;
      }, say);
      const r = summarise(`keepalived (advert_int ${advert} s)`, kaSettings(advert), runs, failed);
      if (LOAD) {
        say(`keepalived advert_int ${advert} s: ${HOGS} busy loops on a for ${LOAD_MS / 1000} s`);
        r.cpuLoad = await ka.cpuLoad(advert, HOGS, LOAD_MS);
      }
      results.push(r);
    }
  } finally {
    await ka.destroy();
  }
}

// ---- report ----

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0).padStart(6) : '     –');
const load = (l: LoadResult | undefined) => (l === undefined ? 'n/a' : String(l.failovers)); // notes: in the JSON
if (results.length > 0) {
  out.write(`\nFailover, client probing VIP:${APP_PORT} every 10 ms; times in ms from the power-off of the primary\n`);
  out.write(`${'system'.padEnd(32)}  runs   detection med/p95/max        end-to-end med/p95/max   false failovers: CPU ${HOGS} loops 10 s | 3 s stall\n`);
}
for (const r of results) {
  out.write(`${r.name.padEnd(32)}  ${String(r.detection.n).padStart(4)}${r.failed ? `(-${r.failed})` : '    '} ${f(r.detection.median)} ${f(r.detection.p95)} ${f(r.detection.max)}       `
    + `${f(r.endToEnd.median)} ${f(r.endToEnd.p95)} ${f(r.endToEnd.max)}      ${load(r.cpuLoad).padStart(6)} | ${load(r.stall)}\n`);
}
const vigil = results.find((r) => r.name === 'vigil');
const ratios: Record<string, { detectionMedian: number; endToEndMedian: number; detectionP95: number; endToEndP95: number }> = {};
if (vigil) {
  for (const k of results.filter((r) => r !== vigil)) {
    const q = {
      detectionMedian: vigil.detection.median / k.detection.median, detectionP95: vigil.detection.p95 / k.detection.p95,
      endToEndMedian: vigil.endToEnd.median / k.endToEnd.median, endToEndP95: vigil.endToEnd.p95 / k.endToEnd.p95,
    };
    ratios[k.name] = q;
    out.write(`vigil / ${k.name}: detection ${q.detectionMedian.toFixed(2)}× (p95 ${q.detectionP95.toFixed(2)}×), end-to-end ${q.endToEndMedian.toFixed(2)}× (p95 ${q.endToEndP95.toFixed(2)}×)\n`);
  }
}
let goals: Record<string, boolean> | undefined;
if (vigil) {
  goals = {
    detectionP95Le500: vigil.detection.p95 <= 500,
    endToEndP95Le1000: vigil.endToEnd.p95 <= 1000,
    noFalseFailovers: (vigil.cpuLoad?.failovers ?? 0) === 0 && (vigil.stall?.failovers ?? 0) === 0,
    allRunsCompleted: vigil.failed === 0,
  };
  const yes = (b: boolean) => (b ? 'met' : 'NOT met');
  out.write(`Goals (vigil, defaults): detection ≤ 500 ms (p95 ${vigil.detection.p95.toFixed(0)}): ${yes(goals.detectionP95Le500!)}; `
    + `end-to-end ≤ 1 s (p95 ${vigil.endToEnd.p95.toFixed(0)}): ${yes(goals.endToEndP95Le1000!)}; `
    + `zero false failovers: ${LOAD ? yes(goals.noFalseFailovers!) : 'not measured'}\n`);
}
if (distress) {
  const { distress: d, heartbeat: h, ratios: q, goal } = distress;
  const row = (name: string, r: PathResult) => `${name.padEnd(32)}  ${String(r.endToEnd.n).padStart(4)}${r.failed ? `(-${r.failed})` : '    '} `
    + `${f(r.detection.median)} ${f(r.detection.p95)} ${f(r.detection.max)}       ${f(r.takeover.median)} ${f(r.takeover.p95)} ${f(r.takeover.max)}       `
    + `${f(r.endToEnd.median)} ${f(r.endToEnd.p95)} ${f(r.endToEnd.max)}\n`;
  const [l0, l1] = distress.settings.loadAverage as number[];
  out.write(`\nvigil (defaults) distress against heartbeat timeout, runs in pairs, client probing every ${DISTRESS_PROBE_MS} ms; times in ms from t0\n`
    + `(distress: the bench's distress.send to a, then a's power-off once it answered; heartbeat: the power-off alone; `
    + `host load average ${l0!.toFixed(1)} before, ${l1!.toFixed(1)} after)\n`);
  out.write(`${'path'.padEnd(32)}  runs   detection med/p95/max    takeover med/p95/max     end-to-end med/p95/max\n`);
  out.write(row('distress (hardware-fault, sync)', d));
  out.write(row('heartbeat timeout (400 ms)', h));
  out.write(`heartbeat / distress: detection ${q.detectionMedian.toFixed(1)}× (p95 ${q.detectionP95.toFixed(1)}×), end-to-end ${q.endToEndMedian.toFixed(1)}× (p95 ${q.endToEndP95.toFixed(1)}×)\n`);
  out.write(`distress runs: a answered distress.send ${d.answered.median.toFixed(1)} ms after t0 (max ${d.answered.max.toFixed(1)}), its power-off began at ${d.powerOff.median.toFixed(1)} ms `
    + `(max ${d.powerOff.max.toFixed(1)}); b failed a by the distress in ${d.runs.length - d.notByDistress} of ${d.runs.length}\n`);
  out.write(`Goal (distress): end-to-end ≤ ${goal.limitMs} ms, p95 ${f(goal.endToEndMs).trim()} (median ${f(d.endToEnd.median).trim()}): ${goal.met ? 'met' : 'NOT met'}`
    + `${d.failed ? ` (${d.failed} runs failed)` : ''}\n`);
}
const elapsedS = (performance.now() - started) / 1000;
out.write(`(${elapsedS.toFixed(0)} s; host: ${cpus().length} CPUs, ${cpus()[0]?.model ?? '?'})\n`);

const report = {
  date: new Date().toISOString(), host: { cpus: cpus().length, model: cpus()[0]?.model }, elapsedS,
  method: { proberIntervalMs: 10, cpuLoad: { loops: HOGS, ms: LOAD_MS }, stallMs: STALL_MS },
  results, ratios, goals, ...(distress ? { distress } : {}),
};
await saveReport('bench-failover.json', report, out);
process.exit((vigil && vigil.failed > 0) || (distress && distress.distress.failed + distress.heartbeat.failed > 0) ? 1 : 0);

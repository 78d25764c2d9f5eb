// node dist/bench/switchover.js (on the host, as root; scripts/bench runs it after the failover bench): the
// service gap of a planned switchover as a client sees it (issue 14), against a failover of the same app
// and against keepalived's planned handover, in the namespace rig of bench/failover.ts. The gap is the
// client's last answer from the old node → its first answer from the new one (arrival times), the client
// probing VIP:8080 every 10 ms (bench/rig.ts's Prober). Per vigil run, on a fresh two-node cluster whose app
// `web` (cluster-aware by default: AWARE_APP, which serves once ready() and saves its marker on unload)
// has a virtual IP:
//   switchover a → b  `vigil switchover web --to b` asked on a: a unloads the app, releases the address,
//                     hands over; b adds the address and starts a new app process;
//   switchover b → a  asked on b, once a holds the app paused (a cluster-aware app's primary does while the
//                     backup hosts it): b stops it and a only releases the pause;
//   failover a → b    a loses power (bench/rig.ts powerOff) once a serves again and the pair has settled.
// keepalived (bench/keepalived.ts): NAME_SERVER on both nodes, a master at priority 150, b at 100; the
// planned handover swaps the priorities in both configurations and reloads both daemons (SIGHUP).
// The goal checked: the switchover's median gap ≤ 1/3 of the failover's, in each direction.
//
// Options: --runs N (vigil runs, each all three moves; default 10), --ka-runs N (keepalived handovers per
// advert_int; default 10), --advert S,S (keepalived's advert_int values; default 0.1, vigil's heartbeat
// interval, and 1, keepalived's default), --app aware|capable (the app's type; default aware; a
// cluster-capable app is NAME_SERVER, started afresh on every move), --only vigil|keepalived, --json (JSON
// on stdout, the table on stderr; otherwise the JSON goes to .lab/bench-switchover.json).
// VIGIL_BENCH_VERBOSE=1 prints every run.
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { runCli } from '../test/support/cli.js';
import { APP_PORT, AWARE_APP, createCluster, NAME_SERVER, primaryServing, settled, until, type TestCluster } from '../test/support/cluster.js';
import type { SwitchoverRecord } from '../src/db/object.js';
import { KeepalivedRig, kaSettings, type Handover } from './keepalived.js';
import { flag, now, opt, powerOff, Prober, repeat, Scope, saveReport, stats, waitFor, type Gap, type Stats } from './rig.js';

// ---- options ----

const RUNS = Number(opt('--runs') ?? 10);
const KA_RUNS = Number(opt('--ka-runs') ?? 10);
const ADVERTS = (opt('--advert') ?? '0.1,1').split(',').map(Number);
const APP_TYPE = opt('--app') ?? 'aware';
const ONLY = opt('--only');
const wants = (part: 'vigil' | 'keepalived') => ONLY === undefined || ONLY.split(',').includes(part);
const JSON_OUT = flag('--json');
const VERBOSE = process.env.VIGIL_BENCH_VERBOSE === '1';
const PROBE_MS = 10;
/** The goal of issue 14: the planned gap at most this fraction of the failover's. */
const GOAL_FRACTION = 1 / 3;

const out = JSON_OUT ? process.stderr : process.stdout;
const say = (s: string) => process.stderr.write(`bench-switchover: ${s}\n`);

if (APP_TYPE !== 'aware' && APP_TYPE !== 'capable') {
  say(`--app: aware or capable, not ${APP_TYPE}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  say('needs root (network namespaces)');
  process.exit(1);
}

process.on('SIGINT', () => process.exit(130)); // so that the rigs' exit hook removes the namespaces
process.on('SIGTERM', () => process.exit(143));

// ---- vigil ----

type Move = 'switchover a → b' | 'switchover b → a' | 'failover a → b';
const MOVES: Move[] = ['switchover a → b', 'switchover b → a', 'failover a → b'];

/** One move as the client saw it; times in ms from t0 (the command started, or the power-off). */
interface Moved extends Gap {
  /** t0 → the client's first answer from the new node. */
  endToEndMs: number;
  /**
   * t0 − the old node's last answer (negative: it came after t0, as in a switchover, where the old node
   * serves until it stops). Large before a power-off: the client heard nothing for that long before it,
   * and the gap includes it.
   */
  lastBeforeMs: number;
  /** The agents' gap from the command's answer (the source's app stop → the target's app start). */
  agentsGapMs?: number;
  /**
   * The client's gap in three, from the switchover record's times (the agents' clocks, this host's): the
   * old node's last answer → its app recorded stopped; the agents' gap; the target's app recorded started
   * (its process spawned, or released from its pause) → the client's first answer from it.
   */
  steps?: { lastAnswerToStopMs: number; agentsGapMs: number; startToServedMs: number };
}

const webOf = async (c: TestCluster, node: string) => (await c.status(node)).apps.find((a) => a.tag === 'web');

function moved(prober: Prober, from: string, to: string, t0: number): Moved {
  const gap = prober.gap(from, to, t0);
  if (!gap) throw new Error(`the client had no answer from ${from} before ${to}`);
  return { ...gap, endToEndMs: gap.firstTo - t0, lastBeforeMs: t0 - gap.lastFrom };
}

/** `vigil switchover web --to TO --json`, asked on the source, as an operator would; resolves once the client is served by TO. */
async function switchover(c: TestCluster, prober: Prober, from: string, to: string): Promise<Moved> {
  const t0 = now();
  const r = await runCli('vigil', ['switchover', 'web', '--to', to, '--json', '--socket', c.socket(from)]);
  const answer = JSON.parse(r.stdout || '{}') as { outcome?: string; gapMs?: number };
  if (r.code !== 0 || answer.outcome !== 'complete') throw new Error(`switchover ${from} → ${to}: exit ${r.code}, ${r.stdout.trim()} ${r.stderr.trim()}`);
  await waitFor(`the client served by ${to}`, () => prober.first(to, t0), 30_000);
  await sleep(500); // answers of the old node still in flight show by now
  const m = moved(prober, from, to, t0);
  const rec = ((await webOf(c, to)) as { switchover?: SwitchoverRecord } | undefined)?.switchover;
  const steps = rec?.appStoppedAt !== undefined && rec.appStartedAt !== undefined
    ? { lastAnswerToStopMs: rec.appStoppedAt - m.lastFrom, agentsGapMs: rec.appStartedAt - rec.appStoppedAt, startToServedMs: m.firstTo - rec.appStartedAt }
    : undefined;
  const done = { ...m, agentsGapMs: answer.gapMs, ...(steps ? { steps } : {}) };
  explainSlow(c, `switchover ${from} → ${to}`, done, t0);
  return done;
}

/** A gap this long is not the move's own cost: the agents' warnings and notices since t0 are said, to show why. */
const SLOW_MS = 2000;

function explainSlow(c: TestCluster, what: string, m: Moved, t0: number): void {
  if (m.gapMs < SLOW_MS) return;
  const said = ['a', 'b'].flatMap((node) => c.log(node).split('\n').flatMap((line) => {
    try {
      const r = JSON.parse(line) as { level?: number; time?: number; msg?: string; notice?: string; err?: string };
      const wanted = (r.time ?? 0) >= t0 - 1 && ((r.level ?? 0) >= 40 || r.notice !== undefined);
      return wanted ? [`${node} +${((r.time ?? 0) - t0).toFixed(0)} ms: ${r.notice ? `[${r.notice}] ` : ''}${r.msg ?? ''}${r.err ? ` (${r.err})` : ''}`] : [];
    } catch { return []; }
  }));
  say(`${what}: gap ${m.gapMs.toFixed(0)} ms; the agents' warnings and notices from t0 on:\n  ${said.slice(0, 30).join('\n  ') || '(none)'}`);
}

async function vigilRun(i: number): Promise<Record<Move, Moved>> {
  const scope = new Scope();
  try {
    const aware = APP_TYPE === 'aware';
    const c = await createCluster(scope, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, aware, command: aware ? AWARE_APP : NAME_SERVER }]);
    await primaryServing(c);
    const prober = new Prober(c.rig, c.vip(), PROBE_MS);
    scope.teardown(() => prober.stop());
    await waitFor('the client served by a', () => (prober.first('a') ? true : undefined), 20_000);
    await sleep(500);
    const toB = await switchover(c, prober, 'a', 'b');
    // The case of the way back: a, the primary, holds a cluster-aware app paused (a capable one: not running).
    await until('a holding the app', async () => ((await webOf(c, 'a'))?.here?.app === (aware ? 'paused' : 'down') ? true : undefined), 20_000, 50);
    await sleep(500);
    const toA = await switchover(c, prober, 'b', 'a');
    // A power loss is taken over only once the pair has settled as master and slave again (seed 003).
    await settled(c, ['a', 'b']);
    await sleep(200 + Math.random() * 300); // a random phase against the heartbeat interval
    const t0 = await powerOff(c.rig, 'a');
    await waitFor('the client served by b', () => prober.first('b', t0), 30_000);
    const failover = moved(prober, 'a', 'b', t0);
    explainSlow(c, 'failover a → b', failover, t0);
    const run = { 'switchover a → b': toB, 'switchover b → a': toA, 'failover a → b': failover };
    if (VERBOSE) {
      say(`vigil run ${i + 1}: ${MOVES.map((m) => `${m} ${run[m].gapMs.toFixed(0)} ms${run[m].agentsGapMs === undefined ? '' : ` (agents ${run[m].agentsGapMs})`}`).join(', ')}`);
    }
    return run;
  } finally {
    await scope.close();
  }
}

interface CaseResult {
  name: string; runs: number; failed: number;
  /** The client's gap, ms. */
  gap: Stats;
  /** t0 → the client's first answer from the new node, ms. */
  endToEnd: Stats;
  /** The agents' own gap (switchovers only). */
  agentsGap?: Stats;
  /** Answers of the old node that arrived after the new node's first, over all runs. */
  strays: number;
  /** Medians of Moved.steps (switchovers only). */
  steps?: { lastAnswerToStopMs: number; agentsGapMs: number; startToServedMs: number };
  samples: Moved[] | Handover[];
  settings?: Record<string, unknown>;
}

function summarise(name: string, samples: Moved[] | Handover[], failed: number, settings?: Record<string, unknown>): CaseResult {
  const agents = (samples as Moved[]).map((s) => s.agentsGapMs).filter((x): x is number => x !== undefined);
  const steps = (samples as Moved[]).map((s) => s.steps).filter((x) => x !== undefined);
  const median = (k: keyof NonNullable<Moved['steps']>) => stats(steps.map((x) => x[k])).median;
  return {
    name, runs: samples.length, failed,
    gap: stats(samples.map((s) => s.gapMs)), endToEnd: stats(samples.map((s) => s.endToEndMs)),
    ...(agents.length ? { agentsGap: stats(agents) } : {}),
    ...(steps.length ? { steps: { lastAnswerToStopMs: median('lastAnswerToStopMs'), agentsGapMs: median('agentsGapMs'), startToServedMs: median('startToServedMs') } } : {}),
    strays: samples.reduce((n, s) => n + s.strays, 0), samples, ...(settings ? { settings } : {}),
  };
}

// ---- main ----

const started = performance.now();
const loadBefore = loadavg()[0]!;
const results: CaseResult[] = [];

if (wants('vigil') && RUNS > 0) {
  say(`vigil: ${RUNS} runs of switchover a → b, b → a and a failover a → b, a cluster-${APP_TYPE === 'aware' ? 'aware' : 'capable'} app, default timing`);
  const { runs: samples, failed } = await repeat('vigil', RUNS, vigilRun, say);
  for (const m of MOVES) results.push(summarise(`vigil ${m}`, samples.map((s) => s[m]), failed));
}

if (wants('keepalived') && KA_RUNS > 0) {
  const ka = await KeepalivedRig.create();
  try {
    for (const advert of ADVERTS) {
      say(`keepalived advert_int ${advert} s: ${KA_RUNS} planned handovers (priorities swapped, both reloaded)`);
      const { runs: samples, failed } = await repeat(`keepalived ${advert} s handover`, KA_RUNS, async (i) => {
        const h = await ka.handover(advert, i, PROBE_MS);
        if (VERBOSE) say(`keepalived ${advert} s handover ${i + 1}: gap ${h.gapMs.toFixed(0)} ms, b master at ${h.masterMs.toFixed(0)} ms, served at ${h.endToEndMs.toFixed(0)} ms`);
        return h;
      }, say);
      const r = summarise(`keepalived handover (advert_int ${advert} s)`, samples, failed, kaSettings(advert));
      results.push({ ...r, settings: { ...r.settings, masterAt: stats(samples.map((s) => s.masterMs)) } });
    }
  } finally {
    await ka.destroy();
  }
}

// ---- report ----

const f = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x.toFixed(0).padStart(6) : '     –');
const loadAfter = loadavg()[0]!;
out.write(`\nService gap as the client sees it (last answer from the old node → first from the new), probing VIP:${APP_PORT} every ${PROBE_MS} ms; ms\n`);
out.write(`${'case'.padEnd(40)}  runs   gap med/min/max          t0 → new node med/min/max   agents' gap med/min/max\n`);
for (const r of results) {
  out.write(`${r.name.padEnd(40)}  ${String(r.runs).padStart(4)}${r.failed ? `(-${r.failed})` : '    '} ${f(r.gap.median)} ${f(r.gap.min)} ${f(r.gap.max)}       `
    + `${f(r.endToEnd.median)} ${f(r.endToEnd.min)} ${f(r.endToEnd.max)}        ${r.agentsGap ? `${f(r.agentsGap.median)} ${f(r.agentsGap.min)} ${f(r.agentsGap.max)}` : ''}\n`);
}
for (const r of results.filter((x) => x.steps)) {
  const st = r.steps!;
  out.write(`${r.name}, the gap's medians: the old node's last answer → its app stopped ${st.lastAnswerToStopMs.toFixed(0)} ms, `
    + `→ the app started on the new node ${st.agentsGapMs.toFixed(0)}, → the client served ${st.startToServedMs.toFixed(0)}\n`);
}
for (const r of results) {
  const early = (r.samples as Moved[]).filter((x) => x.lastBeforeMs > 5 * PROBE_MS).map((x) => x.lastBeforeMs);
  if (early.length) out.write(`${r.name}: in ${early.length} run(s) the old node's last answer came ${early.map((x) => x.toFixed(0)).join(', ')} ms before t0 (the gap includes that silence)\n`);
}
const byName = (n: string) => results.find((r) => r.name === n);
const failover = byName('vigil failover a → b');
const ratios: Record<string, number> = {};
const goal: Record<string, { gapMs: number; limitMs: number; met: boolean }> = {};
for (const m of ['switchover a → b', 'switchover b → a'] as const) {
  const s = byName(`vigil ${m}`);
  if (!s) continue;
  if (failover) {
    ratios[`${m} / failover`] = s.gap.median / failover.gap.median;
    goal[m] = { gapMs: s.gap.median, limitMs: failover.gap.median * GOAL_FRACTION, met: s.failed === 0 && s.gap.median <= failover.gap.median * GOAL_FRACTION };
  }
  for (const k of results.filter((r) => r.name.startsWith('keepalived'))) ratios[`${m} / ${k.name}`] = s.gap.median / k.gap.median;
}
for (const [k, q] of Object.entries(ratios)) out.write(`${k}: ${q.toFixed(2)}× (medians)\n`);
for (const [m, g] of Object.entries(goal)) {
  out.write(`Goal (${m}): median gap ≤ 1/3 of the failover's (${g.limitMs.toFixed(0)} ms): ${g.gapMs.toFixed(0)} ms, ${g.met ? 'met' : 'NOT met'}\n`);
}
const elapsedS = (performance.now() - started) / 1000;
out.write(`(${elapsedS.toFixed(0)} s; app cluster-${APP_TYPE}; host: ${cpus().length} CPUs, ${cpus()[0]?.model ?? '?'}, load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after)\n`);

const report = {
  date: new Date().toISOString(), host: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: [loadBefore, loadAfter] }, elapsedS,
  method: { proberIntervalMs: PROBE_MS, app: `cluster-${APP_TYPE}`, goalFraction: GOAL_FRACTION },
  results, ratios, goal,
};
await saveReport('bench-switchover.json', report, out);
process.exit(results.some((r) => r.failed > 0) ? 1 : 0);

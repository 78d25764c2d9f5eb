// The bounded nemesis campaign (docs/nemesis.md): 16 schedules of random faults against vigild agents in
// network namespaces, each its own subtest named after its seed, one after the other; the last 4 in the
// rig with a BMC per node (test/nemesis/bmc.ts: every takeover power-fenced, no overlap excused). The base
// seed is random and printed first; VIGIL_NEMESIS_SEED=N fixes it. A failing schedule prints its report
// (schedule, timeline, the agents' log around the violation) and the command that replays it alone.
import { randomInt } from 'node:crypto';

import t from 'tap';

import { NETNS_BMC } from '../nemesis/bmc.js';
import { summary } from '../nemesis/figures.js';
import { checkSchedule, type RunResult } from '../nemesis/runner.js';
import { makeSchedule } from '../nemesis/schedule.js';

/**
 * 16 (30, then 20, until the suite neared its 45 minutes: each CI run draws a fresh base seed, and the
 * long campaigns run outside it, npm run nemesis); VIGIL_NEMESIS_RUNS=K runs fewer or more.
 */
const RUNS = Number(process.env.VIGIL_NEMESIS_RUNS || 16);
/** Of these, the last ones in the rig with a BMC per node; VIGIL_NEMESIS_BMC_RUNS=K. */
const BMC_RUNS = Math.min(RUNS, Number(process.env.VIGIL_NEMESIS_BMC_RUNS || 4));
const fixed = process.env.VIGIL_NEMESIS_SEED;
const base = fixed === undefined || fixed === '' ? randomInt(1, 2 ** 31) : Number(fixed);
if (!Number.isSafeInteger(base)) throw new Error(`VIGIL_NEMESIS_SEED: not a whole number: ${fixed}`);

t.comment(`nemesis base seed ${base}: schedules ${base} to ${base + RUNS - 1} (VIGIL_NEMESIS_SEED=${base} runs them again)`);
// About 15 s a schedule, 5-6 minutes in all: well past the cluster stage's 300 s per file.
t.setTimeout(12 * 60_000);

const results: RunResult[] = [];
for (let i = 0; i < RUNS; i++) {
  // With operator switchovers among the faults (replayed with --switchovers).
  const sched = makeSchedule(base + i, { switchovers: true });
  const bmc = i >= RUNS - BMC_RUNS;
  t.test(`seed ${sched.seed} (${sched.layout.nodes.length} nodes${bmc ? ', a BMC each' : ''}: ${sched.faults.map((f) => f.kind).join(' ')})`,
    (t) => checkSchedule(t, sched, results, bmc ? { profile: NETNS_BMC } : {}));
}

t.teardown(() => {
  if (results.length > 0) t.comment(summary(results));
});

// The lab rig of the nemesis campaign (docs/nemesis.md, "The lab rig"), bounded: 2 schedules of random
// faults (the shared disk's among them: path loss, a busy mount, a crash with the file system mounted)
// against two agents on the lab's iSCSI unit, an app appending records with O_DIRECT|O_SYNC, and the record
// checks at the end. The base seed is random and printed first; VIGIL_NEMESIS_SEED=N fixes it. A failing
// schedule prints its report and the command that replays it (scripts/nemesis --lab --seed N).
import { randomInt } from 'node:crypto';

import t from 'tap';

import { summary } from '../nemesis/figures.js';
import { labProfile } from '../nemesis/lab/profile.js';
import { makeLabSchedule } from '../nemesis/lab/schedule.js';
import { checkSchedule, type RunResult } from '../nemesis/runner.js';

/** 2 (5, then 3, until the suite neared its 45 minutes; the long lab campaigns run outside it); VIGIL_NEMESIS_LAB_RUNS=K runs fewer or more. */
const RUNS = Number(process.env.VIGIL_NEMESIS_LAB_RUNS || 2);
const fixed = process.env.VIGIL_NEMESIS_SEED;
const base = fixed === undefined || fixed === '' ? randomInt(1, 2 ** 31) : Number(fixed);
if (!Number.isSafeInteger(base)) throw new Error(`VIGIL_NEMESIS_SEED: not a whole number: ${fixed}`);

t.comment(`nemesis (lab) base seed ${base}: schedules ${base} to ${base + RUNS - 1} (VIGIL_NEMESIS_SEED=${base} runs them again)`);
// 60-100 s a schedule in the guest; one that waits out T_converge about 150 s.
t.setTimeout(RUNS * 200_000);

const profile = labProfile();
const results: RunResult[] = [];
for (let i = 0; i < RUNS; i++) {
  const sched = makeLabSchedule(base + i);
  t.test(`seed ${sched.seed} (${sched.faults.map((f) => f.kind).join(' ')})`, (t) => checkSchedule(t, sched, results, { profile }));
}

t.teardown(() => {
  if (results.length > 0) t.comment(summary(results));
});

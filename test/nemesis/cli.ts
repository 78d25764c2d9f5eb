// `npm run nemesis -- [--seed N] [--runs K] [--nodes 2|3] [--verbose] [--switchovers] [--without KIND,...] [--lab | --bmc]`: runs K
// schedules, seeds N, N+1, ... (N random unless given, and printed first), one after the other, and prints
// a line per schedule, the report of every failing one, and the figures. Exit status 1 if any failed.
// --lab: the lab rig (inside the lab guest: scripts/nemesis --lab boots it). --bmc: the namespace rig with a
// BMC per node, every takeover power-fenced, no overlap excused (bmc.ts).
import { randomInt } from 'node:crypto';

import { Command, InvalidArgumentError } from 'commander';

import { NETNS_BMC } from './bmc.js';
import { summary } from './figures.js';
import { labProfile } from './lab/profile.js';
import { makeLabSchedule } from './lab/schedule.js';
import { replayCommand, runSchedule, type RunResult } from './runner.js';
import { makeSchedule, type FaultKind } from './schedule.js';

interface Options { seed?: number; runs?: number; nodes?: 2 | 3; verbose?: boolean; logs?: boolean; without?: FaultKind[]; lab?: boolean; bmc?: boolean; switchovers?: boolean }

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};

async function main(o: Options): Promise<void> {
  const base = o.seed ?? randomInt(1, 2 ** 31);
  const runs = o.runs ?? (o.seed === undefined ? 10 : 1);
  if (o.lab && !process.env.VIGIL_LAB) throw new Error('--lab runs inside the lab guest: scripts/nemesis --lab boots it');
  if (o.lab && o.bmc) throw new Error('--lab and --bmc: one rig at a time');
  const profile = o.lab ? labProfile() : o.bmc ? NETNS_BMC : undefined;
  process.stdout.write(`nemesis${o.lab ? ' (lab)' : o.bmc ? ' (a BMC per node)' : ''}: base seed ${base}, ${runs} schedule(s)${o.nodes ? `, ${o.nodes} nodes` : ''}${o.without?.length ? `, without ${o.without.join(',')}` : ''}\n`);
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) {
    const sched = o.lab ? makeLabSchedule(base + i, { without: o.without }) : makeSchedule(base + i, { nodes: o.nodes, without: o.without, switchovers: o.switchovers });
    const r = await runSchedule(sched, { verbose: o.verbose, logs: o.logs, profile });
    results.push(r);
    const invs = [...new Set(r.violations.map((v) => v.inv))];
    process.stdout.write(`seed ${r.seed} (${r.nodes} nodes, ${sched.faults.map((f) => f.kind).join(' ')}): ${invs.length ? `FAILED ${invs.join(', ')}` : 'passed'} in ${(r.ms.total / 1000).toFixed(1)} s (start-up ${(r.ms.startup / 1000).toFixed(1)}, faults ${(r.ms.faults / 1000).toFixed(1)}, convergence ${r.ms.converge === undefined ? '-' : (r.ms.converge / 1000).toFixed(1)})\n`);
    if (invs.length || o.verbose || o.logs) process.stdout.write(`${r.report}\nreplay: ${replayCommand(sched, o.without, profile)}\n\n`);
  }
  process.stdout.write(`\n${summary(results)}\n`);
  process.exitCode = results.some((r) => r.violations.length) ? 1 : 0;
}

await new Command('nemesis')
  .description('randomized fault injection against vigild in network namespaces (docs/nemesis.md)')
  .option('--seed <n>', 'the first schedule\'s seed (default: random, printed)', int)
  .option('--runs <k>', 'schedules to run (default 10, or 1 with --seed)', int)
  .option('--nodes <n>', '2 or 3 nodes (default: drawn from each seed)', (v) => {
    if (v !== '2' && v !== '3') throw new InvalidArgumentError('2 or 3');
    return Number(v) as 2 | 3;
  })
  .option('--switchovers', 'operator switchovers (vigil switchover) among the faults')
  .option('--without <kinds>', 'fault kinds never to draw, comma-separated', (v) => v.split(',') as FaultKind[])
  .option('--verbose', 'echo the timeline as it happens and print every report')
  .option('--logs', 'print every agent log line (info and above) in the reports')
  .option('--lab', 'the lab rig: a shared disk, real fencing, the records checks (inside the lab guest)')
  .option('--bmc', 'the namespace rig with a BMC per node (ipmi_sim): every takeover power-fenced, no second copy excused')
  .action(main)
  .parseAsync(process.argv);

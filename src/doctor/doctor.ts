// `vigil doctor` as a function: gathers the facts, judges them, and returns the report (also what
// `vigil collect` embeds as doctor --json).
import { runChecks } from './checks.js';
import { gatherFacts, type GatherOptions } from './gather.js';
import { worst, type DoctorReport, type Verdict } from './report.js';

export type DoctorOptions = GatherOptions;

export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const facts = await gatherFacts(opts);
  const checks = runChecks(facts);
  const counts: Record<Verdict, number> = { OK: 0, WARN: 0, FAIL: 0 };
  for (const c of checks) counts[c.verdict]++;
  return {
    version: 1, at: new Date().toISOString(), config: opts.config, cluster: facts.config?.cluster ?? null, node: facts.self,
    agent: facts.agent !== null, verdict: worst(checks), counts, checks,
  };
}

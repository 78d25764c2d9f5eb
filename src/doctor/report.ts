// The shape of `vigil doctor`'s answer (docs/cli.md "vigil doctor"): a list of checks, each with a verdict
// and, unless it is OK, one line saying what to do. `vigil collect` embeds it as it is.

export type Verdict = 'OK' | 'WARN' | 'FAIL';

export interface Check {
  /** Stable: "config", "disk.<name>.paths", "network.<name>", "leftovers.mounts", … (docs/cli.md lists them). */
  id: string;
  verdict: Verdict;
  /** What was found, one line. */
  summary: string;
  /** What to do, one line; null when the verdict is OK. */
  fix: string | null;
  /** The facts behind the verdict, for programs (shape per check, documented in docs/cli.md). */
  detail?: unknown;
}

export interface DoctorReport {
  /** Bumped only when a field changes meaning or goes away. */
  version: 1;
  at: string;
  config: string;
  cluster: string | null;
  node: string | null;
  /** Whether this node's vigild answered: without it the checks that need its view are not made. */
  agent: boolean;
  verdict: Verdict;
  counts: Record<Verdict, number>;
  checks: Check[];
}

const RANK: Record<Verdict, number> = { OK: 0, WARN: 1, FAIL: 2 };

export function worst(checks: readonly Check[]): Verdict {
  return checks.reduce<Verdict>((w, c) => (RANK[c.verdict] > RANK[w] ? c.verdict : w), 'OK');
}

export function ok(id: string, summary: string, detail?: unknown): Check {
  return detail === undefined ? { id, verdict: 'OK', summary, fix: null } : { id, verdict: 'OK', summary, fix: null, detail };
}

export function warn(id: string, summary: string, fix: string, detail?: unknown): Check {
  return detail === undefined ? { id, verdict: 'WARN', summary, fix } : { id, verdict: 'WARN', summary, fix, detail };
}

export function fail(id: string, summary: string, fix: string, detail?: unknown): Check {
  return detail === undefined ? { id, verdict: 'FAIL', summary, fix } : { id, verdict: 'FAIL', summary, fix, detail };
}

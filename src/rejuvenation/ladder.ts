// The rejuvenation ladder (seed 000 claim 7; docs/rejuvenation.md "The ladder"): rungs from the gentlest
// to the hardest, each tried only once the one before it left the node unhealthy. Which rung is next, and
// what "healthy" means after a rung. Pure.
import type { AgingConfig } from '../config/schema.js';
import type { NodeReadings } from '../aging/monitor.js';
import type { LadderStep, StepRecord } from '../db/node-record.js';

/**
 * The rung after those tried, or undefined when the ladder is climbed (each rung once, in the configured
 * order). A rung whose record has no end was under way when the agent stopped (the agent's re-exec, a
 * reboot): it is the one to verify, not to try again.
 */
export function nextStep(ladder: readonly LadderStep[], tried: readonly StepRecord[]): LadderStep | undefined {
  const last = tried[tried.length - 1];
  const from = last === undefined ? 0 : ladder.indexOf(last.step) + 1;
  return ladder[from];
}

/** A rung whose start is recorded but whose verdict is not: the agent came back from it. */
export function unfinished(tried: readonly StepRecord[]): StepRecord | undefined {
  const last = tried[tried.length - 1];
  return last !== undefined && last.outcome === undefined ? last : undefined;
}

/**
 * Healthy: every judged node signal on the healthy side of its band's `leave` (the level at which the
 * aging monitor would clear it), so a rung that leaves the node just under the alarm does not count.
 */
export function healthy(r: NodeReadings, aging: AgingConfig): { healthy: boolean; why: string } {
  const problems: string[] = [];
  const load = r.load.load1 / r.cpus;
  if (load > aging.load.leave) problems.push(`load ${load.toFixed(2)}/cpu above ${aging.load.leave}`);
  const mem = r.mem.available / r.mem.total;
  if (mem < aging.memAvailable.leave) problems.push(`memory available ${(100 * mem).toFixed(1)}% below ${(100 * aging.memAvailable.leave).toFixed(1)}%`);
  if (r.mem.swapTotal > 0) {
    const swap = r.mem.swapFree / r.mem.swapTotal;
    if (swap < aging.swapFree.leave) problems.push(`swap free ${(100 * swap).toFixed(1)}% below ${(100 * aging.swapFree.leave).toFixed(1)}%`);
  }
  return problems.length
    ? { healthy: false, why: problems.join('; ') }
    : { healthy: true, why: `load ${load.toFixed(2)}/cpu, memory available ${(100 * mem).toFixed(1)}%` };
}

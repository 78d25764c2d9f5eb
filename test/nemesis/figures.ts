// The campaign's figures over many runs: time per schedule, how long each kind of overlap lasted, how
// long convergence took, and the distinct violations (by invariant and by the kinds of fault in the run).
import type { RunResult } from './runner.js';

export function quantiles(xs: number[]): string {
  if (xs.length === 0) return 'none';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `n=${s.length} min ${s[0]} median ${q(0.5)} p90 ${q(0.9)} max ${s[s.length - 1]}`;
}

export function summary(results: RunResult[]): string {
  const lines: string[] = [];
  const failed = results.filter((r) => r.violations.length > 0);
  lines.push(`schedules: ${results.length} (${results.filter((r) => r.nodes === 2).length} of 2 nodes, ${results.filter((r) => r.nodes === 3).length} of 3), failed: ${failed.length}`);
  lines.push(`time per schedule (s): ${quantiles(results.map((r) => Math.round(r.ms.total / 100) / 10))}`);
  lines.push(`  start-up (ms): ${quantiles(results.map((r) => r.ms.startup))}`);
  lines.push(`  convergence after the last heal (ms): ${quantiles(results.flatMap((r) => (r.ms.converge === undefined ? [] : [r.ms.converge])))}`);
  const eps = results.flatMap((r) => r.episodes.filter((e) => e.end !== undefined));
  for (const inv of ['INV-VIP', 'INV-RUN'] as const) {
    const mine = eps.filter((e) => e.inv === inv);
    const plain = mine.filter((e) => e.excusedUntil === undefined && !e.violated).map((e) => e.end! - e.start);
    const excused = mine.filter((e) => e.excusedUntil !== undefined && !e.violated);
    lines.push(`${inv} overlaps (sampled): ${mine.length}; not excused and within the limit (ms): ${quantiles(plain)}`);
    lines.push(`  excused: resolved after the excusing fault ended (ms): ${quantiles(excused.map((e) => Math.max(0, e.end! - e.excusedUntil!)))}`);
    lines.push(`  violations: ${mine.filter((e) => e.violated).length}; their length (ms): ${quantiles(mine.filter((e) => e.violated).map((e) => e.end! - e.start))}`);
  }
  // The exact hand-overs of VIPs (ip monitor): overlap > 0 means two nodes held it, ≤ 0 a gap with none.
  const hos = results.flatMap((r) => r.handOvers);
  const plainHo = hos.filter((h) => !h.excused && !h.leftover);
  lines.push(`VIP hand-overs (exact): ${hos.length}; excused by a fault ${hos.filter((h) => h.excused).length}, a killed agent's leftover ${hos.filter((h) => h.leftover).length}`);
  lines.push(`  the others: overlap (ms, > 0 both held it): ${quantiles(plainHo.filter((h) => h.overlapMs > 0).map((h) => h.overlapMs))}`);
  lines.push(`  the others: gap (ms, nobody held it): ${quantiles(plainHo.filter((h) => h.overlapMs <= 0).map((h) => -h.overlapMs))}`);
  for (const r of results) for (const h of r.handOvers.filter((x) => !x.excused && !x.leftover && x.overlapMs > 0)) {
    lines.push(`  overlapping hand-over: seed ${r.seed} ${h.tag} ${h.from}→${h.to} at ${(h.at / 1000).toFixed(3)}s: ${h.overlapMs} ms`);
  }
  // Every overlap that was neither excused nor a violation, with where to find it: these are what H is for.
  for (const r of results) {
    for (const e of r.episodes.filter((x) => x.end !== undefined && x.excusedUntil === undefined && !x.violated)) {
      lines.push(`  short ${e.inv} overlap: seed ${r.seed} ${e.tag} on ${e.nodes.join('+')} at ${(e.start / 1000).toFixed(3)}s for ${e.end! - e.start} ms (sampled)`);
    }
  }
  // By invariant; overlaps whose older side is a killed agent's leftover are counted apart, being one
  // known cause (vigild leaves its apps to systemd's KillMode when it dies).
  const byInv = new Map<string, number[]>();
  const label = (v: RunResult['violations'][number]) => (v.leftover ? `${v.inv} (leftover of an agent killed with -9)` : v.inv);
  for (const r of failed) for (const inv of new Set(r.violations.map(label))) byInv.set(inv, [...(byInv.get(inv) ?? []), r.seed]);
  for (const [inv, seeds] of byInv) lines.push(`${inv}: ${seeds.length} schedule(s): seeds ${seeds.join(' ')}`);
  return lines.join('\n');
}

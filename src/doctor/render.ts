// The doctor's report for people: one line per check (verdict, id, what was found), and under each WARN
// and FAIL the line saying what to do; a summary last.
import type { DoctorReport } from './report.js';

export function renderDoctor(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.id.length));
  const lines = [`vigil doctor: ${r.node ?? '?'} of cluster ${r.cluster ?? '?'} (${r.config})${r.agent ? '' : ', vigild not answering'}`];
  for (const c of r.checks) {
    lines.push(`${c.verdict.padEnd(4)}  ${c.id.padEnd(width)}  ${c.summary}`);
    if (c.fix) lines.push(`${' '.repeat(6 + width)}  -> ${c.fix}`);
  }
  lines.push(`${r.verdict}: ${r.counts.OK} ok, ${r.counts.WARN} warning${r.counts.WARN === 1 ? '' : 's'}, ${r.counts.FAIL} failed`);
  return lines.join('\n');
}

// The timeline as text for the terminal: the clocks, then each incident's phases with their durations,
// then its events, each on the reference clock.
import type { Timeline, TimelineEvent } from './merge.js';

const clockOf = (ms: number) => new Date(ms).toISOString().slice(11, 23);
const msText = (ms: number) => `${ms.toFixed(ms % 1 === 0 ? 0 : 1)} ms`;

const signed = (ms: number) => `${ms >= 0 ? '+' : ''}${ms}`;

export function offsetText(n: Timeline['nodes'][number]): string {
  switch (n.offsetSource) {
    case 'reference': return 'reference clock';
    case 'given': return `offset ${signed(n.offsetMs!)} ms (given)`;
    case 'estimated': return `offset ${signed(n.offsetMs!)} ms ±${n.offsetBoundMs} ms (from ${n.offsetSamples} heartbeat clock sample${n.offsetSamples === 1 ? '' : 's'})`;
    default: return 'offset unknown (times as logged)';
  }
}

function eventText(e: TimelineEvent): string {
  const detail = [e.tag, e.resource, e.peer ? `peer ${e.peer}` : undefined].filter(Boolean).join(', ');
  return `${e.kind}${detail ? ` (${detail})` : ''}: ${e.message}${e.tookMs !== undefined ? ` [took ${msText(e.tookMs)}]` : ''}`;
}

export function renderText(t: Timeline): string {
  const out: string[] = [];
  out.push(`nodes (${t.nodes.length}):`);
  for (const n of t.nodes) {
    out.push(`  ${n.node}: ${n.lines} lines from ${n.files.join(', ')}; ${offsetText(n)}${n.malformed ? `; ${n.malformed} malformed lines skipped` : ''}`);
  }
  if (t.nodes.some((n) => n.offsetSource === 'unknown')) {
    out.push('  a clock offset is unknown when the logs carry no \'clock sample\' line of that node and the reference: events');
    out.push('  of different nodes closer than their clocks\' difference may be out of order. --offset NODE=MS gives a known one.');
  }
  if (t.incidents.length === 0) out.push('', 'no incident events in these logs');
  t.incidents.forEach((inc, i) => {
    out.push('', `incident ${i + 1}: ${new Date(inc.start).toISOString()}, ${msText(inc.durationMs)}`);
    out.push('  phase                   node      at        duration  took');
    for (const p of inc.phases) {
      out.push(`  ${p.phase.padEnd(22)}  ${p.node.padEnd(8)}  ${`+${msText(p.sinceStartMs)}`.padEnd(10)}${msText(p.durationMs).padStart(9)}  ${p.tookMs !== undefined ? msText(p.tookMs) : ''}`.trimEnd());
    }
    out.push('  events:');
    for (const e of inc.events.map((k) => t.events[k]!)) out.push(`    ${clockOf(e.time)}  ${e.node.padEnd(8)}  ${eventText(e)}`);
  });
  return out.join('\n');
}

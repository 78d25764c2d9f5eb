// The timeline as one self-contained HTML page: the styles inline, one SVG picture per incident (a lane per
// node, a mark per event, a bar per phase with its duration), the event tables; no script, no external
// asset, so the page opens from a support ticket or a USB stick as it is. Every text from a log is escaped.
import { PHASES, type Phase } from './catalogue.js';
import type { Incident, Timeline } from './merge.js';
import { offsetText } from './render-text.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const COLOURS: Record<Phase, string> = {
  power: '#b8860b', distress: '#c0392b', detection: '#d35400', fence: '#8e44ad', mount: '#2980b9',
  address: '#16a085', 'app start': '#27ae60', switchover: '#2c3e50', 'first client answer': '#e84393',
};

const WIDTH = 1000;
const LEFT = 90;
const RIGHT = 230;
const LANE = 64;
const msText = (ms: number) => `${ms.toFixed(ms % 1 === 0 ? 0 : 1)} ms`;

function incidentSvg(t: Timeline, inc: Incident, n: number): string {
  const events = inc.events.map((k) => t.events[k]!);
  const lanes = [...new Set(events.map((e) => e.node))].sort();
  const span = Math.max(inc.durationMs, 1);
  const x = (time: number) => LEFT + ((time - inc.start) / span) * (WIDTH - LEFT - RIGHT);
  const barsTop = 30 + lanes.length * LANE;
  const height = barsTop + 30 + inc.phases.length * 22 + 10;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="incident ${n}">`);
  out.push(`<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
  // The time axis: 0 and the end, with a tick every tenth of the span.
  for (let i = 0; i <= 10; i++) {
    const tx = LEFT + (i / 10) * (WIDTH - LEFT - RIGHT);
    out.push(`<line x1="${tx}" y1="20" x2="${tx}" y2="${barsTop}" stroke="#dddddd"/>`);
    out.push(`<text x="${tx}" y="14" font-size="10" text-anchor="middle" fill="#555555">+${Math.round((span * i) / 10)} ms</text>`);
  }
  lanes.forEach((node, i) => {
    const y = 30 + i * LANE + LANE / 2;
    out.push(`<line x1="${LEFT}" y1="${y}" x2="${WIDTH - RIGHT}" y2="${y}" stroke="#999999"/>`);
    out.push(`<text x="8" y="${y + 4}" font-size="13" font-weight="bold" fill="#222222">node ${escapeHtml(node)}</text>`);
  });
  events.forEach((e, i) => {
    const y = 30 + lanes.indexOf(e.node) * LANE + LANE / 2;
    const ex = x(e.time);
    out.push(`<circle cx="${ex.toFixed(1)}" cy="${y}" r="6" fill="${COLOURS[e.phase]}"><title>${escapeHtml(`${e.node} +${msText(e.time - inc.start)} ${e.kind}: ${e.message}`)}</title></circle>`);
    // Labels take turns on four rows, two above the lane and two below, so that close events stay readable.
    const dy = [-10, 18, -21, 29][i % 4]!;
    out.push(`<text x="${ex.toFixed(1)}" y="${y + dy}" font-size="10" text-anchor="middle" fill="${COLOURS[e.phase]}">${escapeHtml(e.kind)}</text>`);
  });
  inc.phases.forEach((p, i) => {
    const y = barsTop + 20 + i * 22;
    const from = i === 0 ? p.time : inc.phases[i - 1]!.time;
    const x0 = x(from);
    const w = Math.max(x(p.time) - x0, 2);
    out.push(`<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="16" fill="${COLOURS[p.phase]}"/>`);
    out.push(`<text x="8" y="${y + 12}" font-size="11" fill="#222222">${escapeHtml(p.phase)}</text>`);
    const labelX = x0 + w + 6; // the right margin holds the longest label
    out.push(`<text x="${labelX.toFixed(1)}" y="${y + 12}" font-size="11" fill="#222222">${escapeHtml(`${msText(p.durationMs)} (${p.node}, ${p.kind})`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function table(head: string[], rows: string[][]): string {
  return `<table><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>\n${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n')}</table>`;
}

export function renderHtml(t: Timeline, title = 'vigil timeline'): string {
  const body: string[] = [];
  body.push(`<h1>${escapeHtml(title)}</h1>`);
  body.push(table(['node', 'files', 'lines', 'malformed', 'clock'], t.nodes.map((n) => [n.node, n.files.join(', '), String(n.lines), String(n.malformed), offsetText(n)])));
  if (t.nodes.some((n) => n.offsetSource === 'unknown')) {
    body.push('<p class="note">A clock offset is unknown when the logs carry no &#39;clock sample&#39; line of that node and the reference node: events of different nodes closer than their clocks&#39; difference may be out of order.</p>');
  }
  body.push(`<p class="legend">${PHASES.map((p) => `<span style="color:${COLOURS[p]}">&#9679; ${escapeHtml(p)}</span>`).join(' ')}</p>`);
  if (t.incidents.length === 0) body.push('<p>No incident events in these logs.</p>');
  t.incidents.forEach((inc, i) => {
    body.push(`<h2>incident ${i + 1}: ${escapeHtml(new Date(inc.start).toISOString())}, ${escapeHtml(msText(inc.durationMs))}</h2>`);
    body.push(incidentSvg(t, inc, i + 1));
    body.push(table(['phase', 'node', 'event', 'at', 'duration', 'took'], inc.phases.map((p) => [
      p.phase, p.node, p.kind, `+${msText(p.sinceStartMs)}`, msText(p.durationMs), p.tookMs === undefined ? '' : msText(p.tookMs)])));
    body.push(table(['time', 'node', 'event', 'message'], inc.events.map((k) => t.events[k]!).map((e) => [
      new Date(e.time).toISOString().slice(11, 23), e.node, e.kind, e.message])));
  });
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font-family: sans-serif; margin: 20px; color: #222; background: #fff; }
table { border-collapse: collapse; margin: 10px 0 24px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
.note { color: #a04000; }
.legend span { margin-right: 12px; }
svg { display: block; border: 1px solid #ddd; }
</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}

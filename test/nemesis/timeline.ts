// The run's record: schedule steps as they were carried out, operator requests and their outcomes, the
// agents' view (HOST and phase per app, when it changes), and the samples at which an invariant broke.
// A failing run prints it with the agents' own log lines around each violation.
export type EntryKind = 'step' | 'request' | 'agent' | 'view' | 'violation' | 'note';

export interface Entry {
  /** ms since t0. */
  at: number;
  kind: EntryKind;
  text: string;
}

export class Timeline {
  readonly entries: Entry[] = [];

  constructor(private readonly t0: number, private readonly echo = false) {}

  add(kind: EntryKind, text: string, at = Date.now() - this.t0): void {
    this.entries.push({ at, kind, text });
    if (this.echo) process.stderr.write(`${fmt(at)} ${kind.padEnd(9)} ${text}\n`);
  }

  format(kinds?: EntryKind[]): string {
    return [...this.entries].sort((a, b) => a.at - b.at).filter((e) => !kinds || kinds.includes(e.kind))
      .map((e) => `${fmt(e.at)} ${e.kind.padEnd(9)} ${e.text}`).join('\n');
  }
}

export function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(3).padStart(7)}s`;
}

interface LogLine { time?: number; level?: number; msg?: string; node?: string; [k: string]: unknown }

const LEVEL: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const BORING = new Set(['time', 'level', 'msg', 'node', 'cluster', 'pid', 'hostname']);

/**
 * The agents' JSON log lines (pino: `time` in epoch ms, the clock t0 is on) between `from` and `to` ms
 * since t0, info and above, one line each with the fields that say what it was about.
 */
export function logsAround(logs: Record<string, string>, t0: number, from: number, to: number): string[] {
  const out: { at: number; text: string }[] = [];
  for (const [node, text] of Object.entries(logs)) {
    for (const raw of text.split('\n')) {
      if (!raw.startsWith('{')) continue;
      let l: LogLine;
      try { l = JSON.parse(raw) as LogLine; } catch { continue; }
      if (l.time === undefined || (l.level ?? 30) < 30) continue;
      const at = l.time - t0;
      if (at < from || at > to) continue;
      const extra = Object.entries(l).filter(([k]) => !BORING.has(k)).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
      out.push({ at, text: `${fmt(at)} log ${node} ${LEVEL[l.level ?? 30] ?? l.level} ${l.msg ?? ''}${extra ? ` (${extra})` : ''}` });
    }
  }
  return out.sort((a, b) => a.at - b.at).map((x) => x.text);
}

// Operator notices: the events `vigil status` lists (failover started, fenced, distress received, …) and
// their counts for the metrics. Each is also a log line.
import type { AgentLog } from './log.js';

export interface Notice { at: string; tag: string; notice: string; message: string }

export class Notices {
  readonly list: Notice[] = [];
  readonly counts: Record<string, number> = {};

  constructor(private readonly log: AgentLog, private readonly keep = 200) {}

  add(tag: string, notice: string, message: string): void {
    this.list.push({ at: new Date().toISOString(), tag, notice, message });
    if (this.list.length > this.keep) this.list.shift();
    this.counts[notice] = (this.counts[notice] ?? 0) + 1;
    this.log.info({ tag, notice }, message);
  }

  recent(n = 20): Notice[] {
    return this.list.slice(-n);
  }
}

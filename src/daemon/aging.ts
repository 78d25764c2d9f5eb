// The aging monitor's I/O half: every `aging.intervalMs` it reads /proc for the node and for the process
// of each app running here (async reads only: the agent's event loop carries heartbeats), feeds the
// judges (src/aging/monitor.ts), and tells of each transition: a warning with the judgement's explanation
// and a notice when a signal becomes unstable, an info line when it clears. An app is its process (the
// pid vigild started): a command that forks its real server and exits is not followed.
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

import { AgingMonitor, type AgingTransition, type AppReadings, type NodeReadings, type SignalJudgement } from '../aging/monitor.js';
import { parseCpuTicks, parseLoadAvg, parseMemInfo, parseOpenFilesLimit, parseProcessStatus, parseUptime } from '../aging/proc-parse.js';
import type { AgingConfig } from '../config/schema.js';
import type { AgentLog } from './log.js';
import type { Notices } from './notices.js';

/** A judgement as `vigil status` shows it: `since` as wall-clock time. */
export interface AgingJudgementStatus extends Omit<SignalJudgement, 'since'> {
  since: string | null;
}

export interface AgingStatus {
  intervalMs: number;
  holdMs: number;
  horizonMs: number;
  /** The latest reading's problem, if the latest round could not read the node's files. */
  error: string | null;
  node: AgingJudgementStatus[];
  apps: { tag: string; pid: number; signals: AgingJudgementStatus[] }[];
}

export interface AgingDeps {
  config: AgingConfig;
  log: AgentLog;
  notices: Notices;
  /** The apps running on this node now, with their process ids. */
  apps: () => { tag: string; pid: number }[];
  /** Where /proc is (tests). */
  proc?: string;
}

export async function readNode(proc = '/proc'): Promise<NodeReadings> {
  const [load, mem, uptime] = await Promise.all([
    readFile(`${proc}/loadavg`, 'utf8'), readFile(`${proc}/meminfo`, 'utf8'), readFile(`${proc}/uptime`, 'utf8'),
  ]);
  return { load: parseLoadAvg(load), mem: parseMemInfo(mem), uptime: parseUptime(uptime), cpus: availableParallelism() };
}

export async function readApp(pid: number, proc = '/proc'): Promise<AppReadings> {
  const [status, limits, fds] = await Promise.all([
    readFile(`${proc}/${pid}/status`, 'utf8'), readFile(`${proc}/${pid}/limits`, 'utf8'), readdir(`${proc}/${pid}/fd`),
  ]);
  return { status: parseProcessStatus(status, pid), fdLimit: parseOpenFilesLimit(limits, pid), fds: fds.length };
}

/** What the rejuvenation needs of the latest round: the node's readings, and each app's RSS and CPU use. */
export interface LatestReadings {
  node: NodeReadings | undefined;
  /** By tag: RSS in bytes, and CPU in CPUs (the process's CPU time over the last round's wall time). */
  apps: Record<string, { rss: number; cpu: number }>;
}

/** Clock ticks per second of /proc/PID/stat: USER_HZ, 100 on every Linux architecture vigil runs on. */
const USER_HZ = 100;

export class AgingSampler {
  private readonly monitor: AgingMonitor;
  private lastNode: NodeReadings | undefined;
  private readonly lastApps = new Map<string, { pid: number; rss: number; ticks: number; at: number; cpu: number }>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private error: string | null = null;

  constructor(private readonly d: AgingDeps) {
    this.monitor = new AgingMonitor(d.config);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { void this.round(); }, this.d.config.intervalMs);
    this.timer.unref();
    void this.round();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round of samples; a round still reading when the next is due makes that one skip (a slow /proc). */
  async round(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const node = await readNode(this.d.proc).then((r) => r, (e: unknown) => this.readError(e));
      if (!node) return;
      this.error = null;
      this.lastNode = node;
      const t = performance.now();
      this.report(this.monitor.observeNode(t, node));
      const apps = this.d.apps();
      this.monitor.keepApps(apps.map((a) => a.tag));
      for (const tag of this.lastApps.keys()) if (!apps.some((a) => a.tag === tag)) this.lastApps.delete(tag);
      for (const { tag, pid } of apps) {
        // The process may exit between the list and the read: its flow deals with that; nothing to judge.
        // Each app's reads yield to the event loop, so a round's judging never holds it for long.
        const r = await readApp(pid, this.d.proc).catch(() => undefined);
        if (r) this.report(this.monitor.observeApp(tag, pid, performance.now(), r));
        const ticks = await readFile(`${this.d.proc ?? '/proc'}/${pid}/stat`, 'utf8').then((x) => parseCpuTicks(x, pid), () => undefined);
        if (r && ticks !== undefined) this.noteApp(tag, pid, r.status.rss, ticks);
      }
    } finally {
      this.busy = false;
    }
  }

  private noteApp(tag: string, pid: number, rss: number, ticks: number): void {
    const at = performance.now();
    const prev = this.lastApps.get(tag);
    const cpu = prev && prev.pid === pid && at > prev.at ? Math.max(0, (ticks - prev.ticks) / USER_HZ / ((at - prev.at) / 1000)) : 0;
    this.lastApps.set(tag, { pid, rss, ticks, at, cpu });
  }

  latest(): LatestReadings {
    return { node: this.lastNode, apps: Object.fromEntries([...this.lastApps].map(([tag, a]) => [tag, { rss: a.rss, cpu: a.cpu }])) };
  }

  private readError(e: unknown): undefined {
    const err = e instanceof Error ? e.message : String(e);
    if (err !== this.error) this.d.log.error({ err }, 'aging: cannot read the node\'s /proc files; no judgement this round');
    this.error = err;
    return undefined;
  }

  private report(transitions: AgingTransition[]): void {
    for (const tr of transitions) {
      const j = wallClock(tr.judgement);
      const fields = { app: tr.app ?? null, ...j };
      const subject = tr.app === undefined ? 'node' : `app ${tr.app}`;
      if (tr.to === 'unstable') {
        const text = `${subject}: ${explain(j)}`;
        this.d.log.warn(fields, `aging: ${subject} ${tr.signal} unstable`);
        this.d.notices.add(tr.app ?? 'node', 'aging-unstable', text);
      } else {
        this.d.log.info(fields, `aging: ${subject} ${tr.signal} stable again`);
      }
    }
  }

  status(): AgingStatus {
    const s = this.monitor.status();
    const c = this.d.config;
    return {
      intervalMs: c.intervalMs, holdMs: c.holdMs, horizonMs: c.horizonMs, error: this.error,
      node: s.node.map(wallClock),
      apps: s.apps.map((a) => ({ tag: a.tag, pid: a.pid, signals: a.signals.map(wallClock) })),
    };
  }
}

function wallClock(j: SignalJudgement): AgingJudgementStatus {
  const since = j.since === null ? null : new Date(Date.now() - (performance.now() - j.since)).toISOString();
  return { ...j, since };
}

/** One line for the notice: the signal, its value, why it is unstable (threshold or trend), since when. */
export function explain(j: AgingJudgementStatus): string {
  const v = (x: number) => formatValue(x, j.unit);
  const parts = [`${j.signal} unstable (${j.condition ?? 'cleared'}): ${v(j.value)}`];
  if (j.condition === 'threshold' && j.enter !== null) parts.push(`threshold ${v(j.enter)} (clears at ${v(j.leave ?? j.enter)})`);
  if (j.slopePerHour !== null) parts.push(`trend ${j.slopePerHour >= 0 ? '+' : '-'}${v(Math.abs(j.slopePerHour))}/h over ${j.samples} samples`);
  if (j.etaMs !== null) parts.push(`exhausted in about ${Math.round(j.etaMs / 60_000)} min`);
  if (j.since) parts.push(`since ${j.since}`);
  return parts.join(', ');
}

function formatValue(x: number, unit: SignalJudgement['unit']): string {
  if (unit === 'bytes') return `${(x / 1048576).toFixed(1)} MiB`;
  if (unit === 'load/cpu') return `load ${x.toFixed(2)}/cpu`;
  if (unit === 'seconds') return `${Math.round(x)} s`;
  return String(Math.round(x));
}

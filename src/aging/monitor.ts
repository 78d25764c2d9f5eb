// The aging monitor's judges (seed 000 claims 2, 9, 10): one SignalJudge per signal of the node and of
// each app it runs, fed with readings parsed from /proc. It turns readings into samples (value, limit,
// threshold band) and keeps the judgements; reading /proc is src/daemon/aging.ts's job. Pure.
//
// Node signals: load (1-minute run queue per CPU), memAvailable, swapFree (when there is swap), and,
// recorded but not judged, buffersCache (reclaimable: its growth is not aging) and uptime (the
// rejuvenation decision's input, not a sign of instability by itself).
// App signals: rss (its limit: what the node could still give it, rss + MemAvailable), fds (its limit:
// RLIMIT_NOFILE) and threads.
import type { AgingConfig } from '../config/schema.js';
import type { LoadAvg, MemInfo, ProcessStatus } from './proc-parse.js';
import { SignalJudge, type Judgement, type Sample } from './judge.js';

export type NodeSignal = 'load' | 'memAvailable' | 'swapFree' | 'buffersCache' | 'uptime';
export type AppSignal = 'rss' | 'fds' | 'threads';

export interface NodeReadings {
  load: LoadAvg;
  cpus: number;
  mem: MemInfo;
  /** Seconds since boot. */
  uptime: number;
}

export interface AppReadings {
  status: ProcessStatus;
  fds: number;
  /** RLIMIT_NOFILE's soft limit; undefined: unlimited. */
  fdLimit: number | undefined;
}

export interface SignalJudgement extends Judgement {
  signal: string;
  unit: 'load/cpu' | 'bytes' | 'seconds' | 'count';
}

export interface AgingTransition {
  /** undefined: the node's own signal. */
  app: string | undefined;
  signal: string;
  to: 'stable' | 'unstable';
  judgement: SignalJudgement;
}

const UNITS: Record<NodeSignal | AppSignal, SignalJudgement['unit']> = {
  load: 'load/cpu', memAvailable: 'bytes', swapFree: 'bytes', buffersCache: 'bytes', uptime: 'seconds',
  rss: 'bytes', fds: 'count', threads: 'count',
};

const WORSE: Record<NodeSignal | AppSignal, 'rises' | 'falls'> = {
  load: 'rises', memAvailable: 'falls', swapFree: 'falls', buffersCache: 'rises', uptime: 'rises',
  rss: 'rises', fds: 'rises', threads: 'rises',
};

/** The judges of one subject (the node, or one app's process). */
class Judges<S extends string> {
  private readonly judges = new Map<S, SignalJudge>();

  constructor(private readonly config: AgingConfig) {}

  observe(app: string | undefined, samples: [S, Sample][]): AgingTransition[] {
    const out: AgingTransition[] = [];
    for (const [signal, sample] of samples) {
      let judge = this.judges.get(signal);
      if (!judge) {
        judge = new SignalJudge({
          worse: WORSE[signal as NodeSignal | AppSignal], windowSamples: this.config.windowSamples,
          holdMs: this.config.holdMs, horizonMs: this.config.horizonMs,
        });
        this.judges.set(signal, judge);
      }
      const t = judge.observe(sample);
      if (t) out.push({ app, signal, to: t.to, judgement: this.explained(signal, t.judgement) });
    }
    return out;
  }

  judgements(): SignalJudgement[] {
    return [...this.judges].flatMap(([signal, j]) => (j.judgement ? [this.explained(signal, j.judgement)] : []));
  }

  private explained(signal: S, j: Judgement): SignalJudgement {
    return { signal, unit: UNITS[signal as NodeSignal | AppSignal], ...j };
  }
}

export class AgingMonitor {
  private readonly node: Judges<NodeSignal>;
  private readonly apps = new Map<string, { pid: number; judges: Judges<AppSignal> }>();
  /** The node's latest MemAvailable: the room an app's RSS can still grow into. */
  private memAvailable: number | undefined;

  constructor(private readonly config: AgingConfig) {
    this.node = new Judges(config);
  }

  observeNode(t: number, r: NodeReadings): AgingTransition[] {
    const c = this.config;
    this.memAvailable = r.mem.available;
    const samples: [NodeSignal, Sample][] = [
      ['load', { t, value: r.load.load1 / Math.max(1, r.cpus), enter: c.load.enter, leave: c.load.leave }],
      ['memAvailable', { t, value: r.mem.available, limit: 0, enter: c.memAvailable.enter * r.mem.total, leave: c.memAvailable.leave * r.mem.total }],
      ['buffersCache', { t, value: r.mem.buffers + r.mem.cached }],
      ['uptime', { t, value: r.uptime }],
    ];
    if (r.mem.swapTotal > 0) {
      samples.push(['swapFree', { t, value: r.mem.swapFree, limit: 0, enter: c.swapFree.enter * r.mem.swapTotal, leave: c.swapFree.leave * r.mem.swapTotal }]);
    }
    return this.node.observe(undefined, samples);
  }

  /**
   * One sample of an app's process. A new pid (the app restarted) starts its judges afresh: the old
   * process's trend says nothing about the new one.
   */
  observeApp(tag: string, pid: number, t: number, r: AppReadings): AgingTransition[] {
    let entry = this.apps.get(tag);
    if (!entry || entry.pid !== pid) {
      entry = { pid, judges: new Judges(this.config) };
      this.apps.set(tag, entry);
    }
    const c = this.config;
    const rssLimit = this.memAvailable === undefined ? undefined : r.status.rss + this.memAvailable;
    const samples: [AppSignal, Sample][] = [
      ['rss', { t, value: r.status.rss, limit: rssLimit }],
      ['fds', { t, value: r.fds, limit: r.fdLimit, ...(r.fdLimit === undefined ? {} : { enter: c.fds.enter * r.fdLimit, leave: c.fds.leave * r.fdLimit }) }],
      ['threads', { t, value: r.status.threads, ...(c.threads ? { enter: c.threads.enter, leave: c.threads.leave } : {}) }],
    ];
    return entry.judges.observe(tag, samples);
  }

  /** Forgets the apps not in `running` (stopped here, or moved away). */
  keepApps(running: Iterable<string>): void {
    const keep = new Set(running);
    for (const tag of this.apps.keys()) if (!keep.has(tag)) this.apps.delete(tag);
  }

  status(): { node: SignalJudgement[]; apps: { tag: string; pid: number; signals: SignalJudgement[] }[] } {
    return {
      node: this.node.judgements(),
      apps: [...this.apps].map(([tag, e]) => ({ tag, pid: e.pid, signals: e.judges.judgements() })),
    };
  }
}

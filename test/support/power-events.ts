// Collects a power source's events for tests: next(kind) waits for the next unread event of that kind, time(e)
// is when it arrived (performance.now()), for latency figures.
import type { PowerEvent, PowerEventKind, PowerSource } from '../../src/power/source.js';

export class PowerEvents {
  readonly all: PowerEvent[] = [];
  readonly atMs: number[] = [];
  private waiters: { kind: PowerEventKind | undefined; resolve: (e: PowerEvent) => void }[] = [];
  private read = 0;

  constructor(src: PowerSource) {
    src.on('event', (e) => {
      this.all.push(e);
      this.atMs.push(performance.now());
      this.flush();
    });
  }

  private flush(): void {
    for (const w of [...this.waiters]) {
      const i = this.all.findIndex((e, j) => j >= this.read && (w.kind === undefined || e.kind === w.kind));
      if (i >= 0) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        this.read = i + 1;
        w.resolve(this.all[i]!);
      }
    }
  }

  /** The next unread event of this kind (events of other kinds before it are passed over), waiting up to timeoutMs. */
  next(kind?: PowerEventKind, timeoutMs = 10_000): Promise<PowerEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no ${kind ?? 'event'} within ${timeoutMs} ms; got ${this.kinds().join(', ')}`));
      }, timeoutMs);
      const done = (e: PowerEvent): void => { clearTimeout(timer); resolve(e); };
      this.waiters.push({ kind, resolve: done });
      this.flush();
    });
  }

  /** performance.now() when an event arrived. */
  time(e: PowerEvent): number {
    return this.atMs[this.all.indexOf(e)]!;
  }

  kinds(): string[] {
    return this.all.map((e) => e.kind);
  }

  /** Events not yet returned by next(). */
  unread(): PowerEvent[] {
    return this.all.slice(this.read);
  }
}

export function latencyStats(xs: number[], digits = 0): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const f = (x: number): string => x.toFixed(digits);
  return `n=${s.length} min ${f(s[0]!)} p50 ${f(q(0.5))} p99 ${f(q(0.99))} max ${f(s[s.length - 1]!)} ms`;
}

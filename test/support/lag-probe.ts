// Keeps `inFlight` commands going over some paths for a while and measures how late a 1 ms interval timer
// fires (event-loop lag), with the time V8 spent in garbage collection inside each gap reported apart.
// Run as a program (for a child pinned to one CPU): node lag-probe.js SECONDS IN_FLIGHT PATH... → JSON.
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { ScsiDevice } from '../../src/scsi/device.js';

export interface LagReport {
  commands: number;
  ticks: number;
  /** 95th and 99th percentiles of the gaps beyond the 1 ms period, in ms. */
  p95LagMs: number;
  p99LagMs: number;
  /** The same with the garbage collection inside each gap taken out. */
  p95LagWithoutGcMs: number;
  p99LagWithoutGcMs: number;
  /** Longest gap between timer ticks beyond its 1 ms period, in ms. */
  maxLagMs: number;
  /** The same with the garbage collection inside each gap taken out. */
  maxLagWithoutGcMs: number;
  maxGcMs: number;
}

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * p)] ?? 0;
}

/** The same timer with nothing else going on: the floor the machine itself sets. */
export async function idleLag(seconds: number): Promise<{ ticks: number; p99LagMs: number; maxLagMs: number }> {
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last - 1);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(timer);
  return { ticks: gaps.length, p99LagMs: percentile(gaps, 0.99), maxLagMs: Math.max(...gaps) };
}

export async function measureLag(paths: string[], seconds: number, inFlight: number, withData = true): Promise<LagReport> {
  const devs = await Promise.all(paths.map((p) => ScsiDevice.open(p, { defaultTimeoutMs: 10_000 })));
  const gcs: [number, number][] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]);
  });
  obs.observe({ entryTypes: ['gc'] });
  const run = async (ms: number, measure: boolean) => {
    let commands = 0;
    const gaps: [number, number][] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push([last, now]);
      last = now;
    }, 1);
    const until = performance.now() + ms;
    await Promise.all(Array.from({ length: inFlight }, async (_, i) => {
      const dev = devs[i % devs.length]!;
      while (performance.now() < until) {
        if (!withData || commands % 2) await dev.testUnitReady();
        else await dev.read16(BigInt(i * 128), 128, 512);
        commands++;
      }
    }));
    clearInterval(timer);
    if (!measure) return undefined;
    const lags = gaps.map(([a, b]) => b - a - 1);
    const withoutGc = gaps.map(([a, b]) => b - a - 1 - gcs.reduce((sum, [x, y]) => sum + Math.max(0, Math.min(b, y) - Math.max(a, x)), 0));
    const maxGcMs = Math.max(0, ...gcs.filter(([x]) => x >= gaps[0]![0]).map(([x, y]) => y - x));
    return {
      commands, ticks: gaps.length,
      p95LagMs: percentile(lags, 0.95), p99LagMs: percentile(lags, 0.99),
      p95LagWithoutGcMs: percentile(withoutGc, 0.95), p99LagWithoutGcMs: percentile(withoutGc, 0.99),
      maxLagMs: Math.max(...lags), maxLagWithoutGcMs: Math.max(...withoutGc), maxGcMs,
    };
  };
  await run(1000, false); // warm-up: V8 compiles the paths taken, TCG translates them
  gcs.length = 0;
  const report = (await run(seconds * 1000, true))!;
  obs.disconnect();
  devs.forEach((d) => d.close());
  return report;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [seconds, inFlight, data, ...paths] = process.argv.slice(2);
  console.log(JSON.stringify(await measureLag(paths, Number(seconds), Number(inFlight), data === 'data')));
}

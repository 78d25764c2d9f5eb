// The aging monitor above one judge: the node's and each app's signals built from readings (limits and
// thresholds from the node's totals), an app restarted or gone, and the sampler reading a /proc of files
// written by the test: a transition is logged, noticed, shown in `vigil status` and exported as metrics.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { AgingMonitor, type AppReadings, type NodeReadings } from '../../src/aging/monitor.js';
import { agingLines, formatStatus } from '../../src/cli/status-format.js';
import { DEFAULT_AGING, type AgingConfig } from '../../src/config/schema.js';
import { AgingSampler, explain } from '../../src/daemon/aging.js';
import { metricsRegistry } from '../../src/daemon/metrics.js';
import { Notices } from '../../src/daemon/notices.js';
import type { StatusLike } from '../../src/daemon/status.js';

const MiB = 1024 * 1024;
const config = (o: Partial<AgingConfig> = {}): AgingConfig => ({
  ...DEFAULT_AGING, load: { ...DEFAULT_AGING.load }, memAvailable: { ...DEFAULT_AGING.memAvailable }, swapFree: { ...DEFAULT_AGING.swapFree },
  fds: { ...DEFAULT_AGING.fds }, threads: undefined, holdMs: 0, windowSamples: 8, ...o,
});

const node = (o: { available?: number; swapFree?: number; swapTotal?: number; load1?: number } = {}): NodeReadings => ({
  load: { load1: o.load1 ?? 0.5, load5: 0.5, load15: 0.5 }, cpus: 2, uptime: 1000,
  mem: { total: 1000 * MiB, available: o.available ?? 800 * MiB, buffers: 10 * MiB, cached: 100 * MiB, swapTotal: o.swapTotal ?? 0, swapFree: o.swapFree ?? 0 },
});
/** fdLimit null: unlimited. */
const app = (rss: number, fds = 10, fdLimit: number | null = 1024, threads = 4): AppReadings => ({ status: { rss, threads }, fds, fdLimit: fdLimit ?? undefined });

class Collector {
  readonly lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  info = (fields: object, message: string) => void this.lines.push({ level: 'info', fields: fields as Record<string, unknown>, message });
  warn = (fields: object, message: string) => void this.lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message });
  error = (fields: object, message: string) => void this.lines.push({ level: 'error', fields: fields as Record<string, unknown>, message });
}

t.test('node: load is per CPU; memory thresholds are fractions of the total; no swap signal without swap', async (t) => {
  const m = new AgingMonitor(config());
  t.strictSame(m.observeNode(0, node({ load1: 3 })), [], 'load 1.5/cpu: below 2');
  const tr = m.observeNode(1000, node({ load1: 5, available: 50 * MiB }));
  t.strictSame(tr.map((x) => [x.app, x.signal, x.to]).sort(), [[undefined, 'load', 'unstable'], [undefined, 'memAvailable', 'unstable']]);
  const mem = tr.find((x) => x.signal === 'memAvailable')!.judgement;
  t.equal(mem.enter, 100 * MiB, '10% of 1000 MiB');
  t.equal(mem.leave, 150 * MiB);
  t.equal(mem.limit, 0);
  t.strictSame(m.status().node.map((j) => j.signal).sort(), ['buffersCache', 'load', 'memAvailable', 'uptime']);
  t.equal(m.status().node.find((j) => j.signal === 'buffersCache')?.value, 110 * MiB, 'buffers and cache recorded');
});

t.test('node: with swap, free swap below a quarter of it is unstable', async (t) => {
  const m = new AgingMonitor(config());
  const tr = m.observeNode(0, node({ swapTotal: 400 * MiB, swapFree: 90 * MiB }));
  t.strictSame(tr.map((x) => [x.signal, x.to]), [['swapFree', 'unstable']]);
  t.equal(tr[0]!.judgement.enter, 100 * MiB);
});

t.test("app: RSS heads for the node's available memory; a steady leak gets an ETA and is unstable, a flat app is not", async (t) => {
  const m = new AgingMonitor(config({ horizonMs: 3_600_000 }));
  const seen: string[] = [];
  for (let i = 0; i < 10; i++) {
    m.observeNode(i * 1000, node({ available: (800 - 10 * i) * MiB }));
    for (const x of m.observeApp('leaky', 100, i * 1000, app((50 + 10 * i) * MiB))) seen.push(`${x.app} ${x.signal} ${x.to}`);
    for (const x of m.observeApp('steady', 200, i * 1000, app(50 * MiB))) seen.push(`${x.app} ${x.signal} ${x.to}`);
  }
  t.strictSame(seen, ['leaky rss unstable']);
  const rss = m.status().apps.find((a) => a.tag === 'leaky')!.signals.find((s) => s.signal === 'rss')!;
  t.equal(rss.slopePerHour, 10 * MiB * 3600, '10 MiB a second');
  t.equal(rss.limit, 140 * MiB + 710 * MiB, 'its RSS plus what the node still has');
  t.equal(rss.etaMs, 71_000, '710 MiB at 10 MiB/s');
  t.equal(rss.condition, 'trend');
});

t.test('app: descriptors against RLIMIT_NOFILE; threads judged only with a configured band', async (t) => {
  const m = new AgingMonitor(config({ threads: { enter: 100, leave: 80 } }));
  const tr = m.observeApp('x', 1, 0, app(MiB, 900, 1024, 150));
  t.strictSame(tr.map((x) => x.signal).sort(), ['fds', 'threads']);
  t.equal(tr.find((x) => x.signal === 'fds')!.judgement.enter, 0.8 * 1024);
  const unlimited = new AgingMonitor(config());
  t.strictSame(unlimited.observeApp('x', 1, 0, app(MiB, 1e6, null, 1e5)), [], 'no fd limit, no threads band: nothing to cross');
});

t.test('app: a new pid starts its judges afresh; an app no longer running is forgotten', async (t) => {
  const m = new AgingMonitor(config({ threads: { enter: 100, leave: 80 } }));
  t.equal(m.observeApp('x', 1, 0, app(MiB, 10, 1024, 150))[0]?.to, 'unstable');
  t.strictSame(m.observeApp('x', 2, 1000, app(MiB, 10, 1024, 150)).map((x) => x.to), ['unstable'], 'the new process is judged on its own');
  t.equal(m.status().apps[0]?.pid, 2);
  t.equal(m.status().apps[0]?.signals.find((s) => s.signal === 'threads')?.samples, 1);
  m.keepApps([]);
  t.strictSame(m.status().apps, []);
});

/** A /proc of the test's own: the node's files and one process's. */
async function fakeProc(t: { teardown(fn: () => unknown): void }): Promise<{ dir: string; set(o: { available?: number; rss?: number; fds?: number }): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-proc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'loadavg'), '0.10 0.20 0.30 1/100 4242\n');
  await writeFile(join(dir, 'uptime'), '5000.00 9000.00\n');
  await mkdir(join(dir, '42', 'fd'), { recursive: true });
  await writeFile(join(dir, '42', 'limits'), 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            100                  4096                 files\n');
  let fdCount = 0;
  return {
    dir,
    async set({ available = 800 * MiB, rss = 10 * MiB, fds = 3 }) {
      await writeFile(join(dir, 'meminfo'), `MemTotal: ${1000 * 1024} kB\nMemFree: 1 kB\nMemAvailable: ${available / 1024} kB\nBuffers: 1 kB\nCached: 1 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n`);
      await writeFile(join(dir, '42', 'status'), `Name:\tapp\nVmRSS:\t${rss / 1024} kB\nThreads:\t3\n`);
      while (fdCount < fds) await writeFile(join(dir, '42', 'fd', String(fdCount++)), '');
    },
  };
}

t.test('sampler: a transition is a warning with its explanation and a notice; clearing is an info line; status and metrics show it', async (t) => {
  const proc = await fakeProc(t);
  const log = new Collector();
  const notices = new Notices(log);
  const s = new AgingSampler({ config: config(), log, notices, apps: () => [{ tag: 'web', pid: 42 }, { tag: 'gone', pid: 999_999 }], proc: proc.dir });
  await proc.set({ fds: 90 });
  await s.round();
  const warn = log.lines.find((l) => l.level === 'warn');
  t.equal(warn?.message, 'aging: app web fds unstable');
  t.match(warn?.fields, { app: 'web', signal: 'fds', value: 90, enter: 80, leave: 70, limit: 100, condition: 'threshold' });
  t.equal(notices.list.length, 1);
  t.match(notices.list[0], { tag: 'web', notice: 'aging-unstable', message: /^app web: fds unstable \(threshold\): 90, threshold 80 \(clears at 70\)/ });

  const status = s.status();
  t.equal(status.error, null);
  t.strictSame(status.apps.map((a) => a.tag), ['web'], 'the app whose process is gone is skipped');
  const fds = status.apps[0]!.signals.find((j) => j.signal === 'fds')!;
  t.match(fds.since, /^\d{4}-\d\d-\d\dT/, 'since as wall-clock time');

  const text = formatStatus({ node: 'a', aging: status });
  t.match(text, /\naging\n  app web fds UNSTABLE: 90, threshold 80, since /);
  t.notMatch(text, /memAvailable/, 'stable signals are not listed');

  const { scrape } = metricsRegistry(() => ({ ...minimalStatus(), aging: status }));
  const metrics = await scrape();
  t.match(metrics, /vigil_aging_unstable\{signal="fds",app="web"\} 1/);
  t.match(metrics, /vigil_aging_unstable\{signal="memAvailable",app=""\} 0/);
  t.match(metrics, /vigil_aging_value\{signal="rss",app="web"\} 10485760/);

  await proc.set({ fds: 90 }); // the files stay; the count of entries is what is read
  await rm(join(proc.dir, '42', 'fd'), { recursive: true });
  await mkdir(join(proc.dir, '42', 'fd'));
  await s.round();
  const info = log.lines.find((l) => l.level === 'info' && l.message.startsWith('aging:'));
  t.equal(info?.message, 'aging: app web fds stable again');
  t.equal(notices.list.length, 1, 'no notice for clearing');
  t.strictSame(agingLines(s.status()), [], 'nothing to show once stable');
});

t.test('sampler: a leak in the files becomes an RSS trend with an ETA; the metrics carry slope and ETA', async (t) => {
  const proc = await fakeProc(t);
  const log = new Collector();
  const s = new AgingSampler({ config: config({ windowSamples: 8 }), log, notices: new Notices(log), apps: () => [{ tag: 'web', pid: 42 }], proc: proc.dir });
  for (let i = 0; i < 8; i++) {
    await proc.set({ rss: (10 + 20 * i) * MiB });
    await s.round();
  }
  const rss = s.status().apps[0]!.signals.find((j) => j.signal === 'rss')!;
  t.equal(rss.state, 'unstable');
  t.ok(rss.slopePerHour! > 0 && rss.etaMs! > 0, `slope ${rss.slopePerHour}, eta ${rss.etaMs}`);
  t.match(explain(rss), /^rss unstable \(trend\): 150\.0 MiB, trend \+[\d.]+ MiB\/h over 8 samples, exhausted in about \d+ min/);
  const metrics = await metricsRegistry(() => ({ ...minimalStatus(), aging: s.status() })).scrape();
  t.match(metrics, /vigil_aging_eta_seconds\{signal="rss",app="web"\} [\d.e+-]+/);
  t.match(metrics, /vigil_aging_slope_per_hour\{signal="rss",app="web"\} [\d.e+]+/);
  t.notMatch(metrics, /vigil_aging_eta_seconds\{signal="load"/, 'no ETA for a signal without a limit');
});

t.test("sampler: unreadable node files are one error line until they read again, and shown in status", async (t) => {
  const proc = await fakeProc(t);
  const log = new Collector();
  const s = new AgingSampler({ config: config(), log, notices: new Notices(log), apps: () => [], proc: proc.dir });
  await writeFile(join(proc.dir, 'meminfo'), 'garbage\n');
  await s.round();
  await s.round();
  t.equal(log.lines.filter((l) => l.level === 'error').length, 1);
  t.match(s.status().error, /\/proc\/meminfo: no "Key: value" lines/);
  t.match(agingLines(s.status()), ['aging', /cannot read \/proc: .*meminfo/]);
  await proc.set({});
  await s.round();
  t.equal(s.status().error, null);
});

t.test('sampler: start samples at once and every interval; stop stops it', async (t) => {
  const proc = await fakeProc(t);
  await proc.set({});
  const log = new Collector();
  let asked = 0;
  const s = new AgingSampler({ config: config({ intervalMs: 100 }), log, notices: new Notices(log), apps: () => { asked++; return []; }, proc: proc.dir });
  s.start();
  s.start(); // a second start is no second timer
  const until = Date.now() + 5000;
  while (asked < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  s.stop();
  t.ok(asked >= 3, `sampled ${asked} times`);
  const after = asked;
  await new Promise((r) => setTimeout(r, 300));
  t.ok(asked <= after + 1, 'no more rounds after stop (one may have been reading)');
});

t.test('agingLines: a pending condition is shown as pending; an unstable one clearing says so; odd input is no crash', async (t) => {
  const j = { signal: 'load', unit: 'load/cpu', value: 2.5, enter: 2, leave: 1.5, slopePerHour: null, etaMs: null, samples: 3, since: null };
  t.strictSame(agingLines({ node: [{ ...j, state: 'stable', condition: 'threshold' }], apps: [] }), ['aging', '  node load pending (threshold): 2.50/cpu, threshold 2.00/cpu']);
  t.strictSame(agingLines({ node: [{ ...j, state: 'unstable', condition: null, value: 1 }], apps: [] }), ['aging', '  node load UNSTABLE: 1.00/cpu, clearing']);
  t.strictSame(agingLines(null), []);
  t.strictSame(agingLines({ node: 'x', apps: [{ signals: [{ state: 'unstable' }] }] }), ['aging', '  app ? ? UNSTABLE: NaN, clearing']);
});

function minimalStatus(): StatusLike {
  return { cluster: 'c', node: 'a', incarnation: '1', uptimeMs: 1, peers: [], heartbeat: undefined, messages: { sent: 0, received: 0, dropped: {} }, apps: [], notices: [] };
}

// What the host benchmarks in network namespaces share (bench/failover.ts, bench/fence-takeover.ts,
// bench/switchover.ts): a teardown scope standing in for a tap test, waiting, a node's power loss, the
// client prober that stamps every answer of the virtual IP with its arrival time and who served it, and
// the command line and the JSON report.
import { type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { APP_PORT } from '../test/support/cluster.js';
import { sh, type Rig } from '../test/support/netns.js';
import { packageRoot } from '../src/util/package-root.js';

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes (and with Date.now()). */
export const now = (): number => performance.timeOrigin + performance.now();

/** Stands in for a tap test: collects teardowns and runs them, newest first. */
export class Scope {
  private fns: (() => unknown)[] = [];
  teardown(fn: () => unknown): void { this.fns.push(fn); }
  async close(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try { await fn(); } catch (e) { process.stderr.write(`bench: teardown: ${String(e)}\n`); }
    }
    this.fns = [];
  }
}

/** Calls `fn` for each complete line of a stream, with the wall-clock time it arrived. */
export function lines(stream: NodeJS.ReadableStream | null | undefined, fn: (line: string, at: number) => void): void {
  if (!stream) throw new Error('bench: no stream to read');
  let buf = '';
  stream.on('data', (d: Buffer | string) => {
    const at = now();
    buf += typeof d === 'string' ? d : d.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      fn(buf.slice(0, i), at);
      buf = buf.slice(i + 1);
    }
  });
}

/** Resolves with the first value `check` returns other than undefined, polling every 5 ms. */
export async function waitFor<T>(what: string, check: () => T | undefined, ms: number): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export async function pidsIn(rig: Rig, node: string): Promise<number[]> {
  return (await sh(['ip', 'netns', 'pids', rig.ns(node)])).stdout.split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Power loss, as TestCluster.powerOff: every process of the node killed (the time is taken just before),
 * then every link cut. Every process is stopped before any is killed: keepalived's VRRP child has
 * PR_SET_PDEATHSIG SIGTERM, so killing its parent first lets it send a priority-0 advert (a graceful
 * hand-over, which the backup acts on after the skew time alone) before its own SIGKILL lands.
 */
export async function powerOff(rig: Rig, node: string, listed?: number[]): Promise<number> {
  const pids = listed ?? await pidsIn(rig, node);
  const t0 = now();
  for (const sig of ['SIGSTOP', 'SIGKILL'] as const) {
    for (const pid of pids) {
      try { process.kill(pid, sig); } catch { /* gone already */ }
    }
  }
  // Listed beforehand: anything the node started since (a command of its agent's) goes too.
  if (listed) {
    for (const pid of await pidsIn(rig, node)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
    }
  }
  await rig.cutAll(node);
  return t0;
}

/** `fn` `n` times in a row; a run that throws is counted, said, and the next one goes on. */
export async function repeat<T>(what: string, n: number, fn: (i: number) => Promise<T>, say: (s: string) => void): Promise<{ runs: T[]; failed: number }> {
  const runs: T[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    try {
      runs.push(await fn(i));
    } catch (e) {
      failed++;
      say(`${what} run ${i + 1} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { runs, failed };
}

/** Kills everything in a namespace and waits until it is gone. */
export async function killAll(rig: Rig, node: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const pids = await pidsIn(rig, node);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await sleep(20);
  }
  throw new Error(`bench: processes left in ${node}`);
}

// ---- the client prober ----

export interface Answer { at: number; startedAt: number; who: string }

/**
 * A move of the service as the client saw it: its last answer from the old node before the first from the
 * new one (arrival times), and how many answers of the old node arrived after that first one.
 */
export interface Gap { gapMs: number; lastFrom: number; firstTo: number; strays: number }

/** Connects to vip:8080 every `ms` (10) ms from the client namespace; one line per answer: arrival, start, who. */
const PROBER = (vip: string, ms: number) => `
const net = require('net');
const t = () => performance.timeOrigin + performance.now();
setInterval(() => {
  const started = t();
  const s = net.connect({ host: '${vip}', port: ${APP_PORT} });
  let d = '';
  s.setTimeout(2000, () => s.destroy());
  s.on('data', (x) => { d += x; });
  s.on('end', () => { const who = d.trim(); if (who) process.stdout.write(t().toFixed(3) + ' ' + started.toFixed(3) + ' ' + who + '\\n'); });
  s.on('error', () => {});
}, ${ms});`;

export class Prober {
  readonly answers: Answer[] = [];
  private readonly child: ChildProcess;
  constructor(rig: Rig, vip: string, intervalMs = 10) {
    this.child = rig.spawn('client', [process.execPath, '-e', PROBER(vip, intervalMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    lines(this.child.stdout, (line) => {
      const [at, startedAt, who] = line.split(' ');
      if (who !== undefined) this.answers.push({ at: Number(at), startedAt: Number(startedAt), who });
    });
  }
  /** The first answer from `who` that arrived after `after`. */
  first(who: string, after = 0): Answer | undefined {
    return this.answers.find((a) => a.who === who && a.at > after);
  }
  count(who: string, after = 0): number {
    return this.answers.filter((a) => a.who === who && a.at > after).length;
  }
  /**
   * The gap of a move from `from` to `to` that began at `after`: from the last answer of `from` before the
   * first of `to` after `after`, however long before `after` that came (the prober, one process on a
   * busy host, can fall silent for a while). Undefined until both are there.
   */
  gap(from: string, to: string, after: number): Gap | undefined {
    const firstTo = this.first(to, after);
    const lastFrom = firstTo && this.answers.filter((a) => a.who === from && a.at < firstTo.at).at(-1);
    if (!firstTo || !lastFrom) return undefined;
    return { gapMs: firstTo.at - lastFrom.at, lastFrom: lastFrom.at, firstTo: firstTo.at, strays: this.count(from, firstTo.at) };
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await gone;
  }
}

// ---- statistics ----

export interface Run { detectionMs: number; endToEndMs: number }
export interface Stats { n: number; median: number; p95: number; max: number; min: number }

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n, median: NaN, p95: NaN, max: NaN, min: NaN };
  const median = n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  const p95 = s[Math.min(n - 1, Math.ceil(0.95 * n) - 1)]!; // nearest rank
  return { n, median, p95, max: s[n - 1]!, min: s[0]! };
}

// ---- the command line and the report ----

const ARGV = process.argv.slice(2);

/** The value after `name` on the command line (`--runs 5`), or undefined. */
export function opt(name: string): string | undefined {
  const i = ARGV.indexOf(name);
  return i >= 0 ? ARGV[i + 1] : undefined;
}

/** Whether the flag `name` (`--json`) is on the command line. */
export const flag = (name: string): boolean => ARGV.includes(name);

/** The JSON report: on stdout with --json (the table went to stderr then), otherwise into .lab/`file`, said on `out`. */
export async function saveReport(file: string, report: unknown, out: NodeJS.WritableStream): Promise<void> {
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (flag('--json')) {
    process.stdout.write(text);
    return;
  }
  const path = join(packageRoot(), '.lab', file);
  await mkdir(join(packageRoot(), '.lab'), { recursive: true });
  await writeFile(path, text);
  out.write(`JSON: ${path}\n`);
}

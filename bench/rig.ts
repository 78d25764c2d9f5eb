// What the host benchmarks in network namespaces share (bench/failover.ts, bench/fence-takeover.ts): a
// teardown scope standing in for a tap test, waiting, a node's power loss, and the client prober that
// stamps every answer of the virtual IP with its arrival time and who served it.
import { type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { APP_PORT } from '../test/support/cluster.js';
import { sh, type Rig } from '../test/support/netns.js';

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

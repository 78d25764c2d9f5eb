// Ground truth, read from the kernel rather than from the agents (which may be frozen, dead or wrong):
//   - which copies of each app run, and where: every process of the rig's node namespaces whose command
//     line carries the app marker (/proc/<pid>/ns/net compared with the namespace's inode, as
//     `ip netns pids` does, but in-process: a spawn per node per sample would cost more than the scan);
//   - which nodes have each app's VIP on their service interface (`ip -j addr show dev svc`);
//   - who answers each VIP from the client namespace (the long-lived prober.mjs).
import { type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import type { TestCluster } from '../support/cluster.js';
import { APP_PORT } from '../support/cluster.js';
import { SERVICE, sh } from '../support/netns.js';
import { packageRoot } from '../../src/util/package-root.js';
import { MARKER } from './layout.js';

export interface Copy {
  node: string;
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22): which copy is older. */
  start: number;
  /** The same as ms since the epoch (10 ms ticks; the boot time is known to ~10 ms). */
  startedAtMs: number;
}

/** The epoch ms of boot, from /proc/uptime: converts a process's start ticks to wall-clock time. */
const BOOT_MS = Date.now() - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
/** USER_HZ: 100 on every Linux architecture this runs on. */
const TICK_MS = 10;

export interface Sample {
  /** ms since the schedule's t0 (wall clock, the same clock as the agents' log lines). */
  at: number;
  /** Per app tag: the copies running in powered-on nodes. */
  copies: Record<string, Copy[]>;
  /** Per app tag: the powered-on nodes that have its VIP on their service interface. */
  vips: Record<string, string[]>;
  /** Per app tag: the node that answered the client's last probe (null: none), and when (ms since t0). */
  answer: Record<string, { node: string | null; at: number } | undefined>;
}

/** The app processes in the given namespaces: one /proc walk. */
export function scanCopies(namespaces: Map<string, string>): Record<string, Copy[]> {
  const byInode = new Map<string, string>();
  for (const [node, ns] of namespaces) {
    try {
      byInode.set(`net:[${statSync(join('/run/netns', ns)).ino}]`, node);
    } catch { /* deleted: nothing runs there */ }
  }
  const out: Record<string, Copy[]> = {};
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) > 57) continue; // not a pid
    let node: string | undefined;
    try {
      node = byInode.get(readlinkSync(`/proc/${name}/ns/net`));
    } catch { continue; }
    if (node === undefined) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf(MARKER);
      if (i < 0) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') continue; // exited, not yet reaped: not a running copy
      const tag = argv[i + 1] ?? '?';
      const start = Number(fields[19]);
      (out[tag] ??= []).push({ node, pid: Number(name), start, startedAtMs: BOOT_MS + start * TICK_MS });
    } catch { /* exited during the scan */ }
  }
  return out;
}

/** The addresses on a node's service interface. */
async function serviceAddresses(c: TestCluster, node: string): Promise<string[]> {
  // `ip -n` rather than `ip netns exec`: one exec and no mount namespace per sample.
  const r = await sh(['ip', '-n', c.rig.ns(node), '-j', 'addr', 'show', 'dev', SERVICE], { timeout: 2000 });
  if (r.code !== 0) return [];
  try {
    const links = JSON.parse(r.stdout || '[]') as { addr_info?: { family: string; local: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local));
  } catch {
    return [];
  }
}

export interface GroundOptions {
  c: TestCluster;
  nodes: string[];
  /** tag → VIP */
  vips: Record<string, string>;
  t0: number;
  /** Nodes that are powered off now: whatever their namespace still holds is not running. */
  poweredOff(node: string): boolean;
}

/** Reads samples on demand; keeps the client prober running in between. */
export class Ground {
  private prober: ChildProcess | undefined;
  private readonly answers: Record<string, { node: string | null; at: number } | undefined> = {};
  private readonly namespaces: Map<string, string>;

  constructor(private readonly o: GroundOptions) {
    this.namespaces = new Map(o.nodes.map((n) => [n, o.c.rig.ns(n)]));
  }

  startProber(): void {
    const vips = Object.values(this.o.vips);
    const tagOf = new Map(Object.entries(this.o.vips).map(([tag, vip]) => [vip, tag]));
    const p = this.o.c.rig.spawn('client', [process.execPath, join(packageRoot(), 'test', 'nemesis', 'prober.mjs'), String(APP_PORT), ...vips], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.prober = p;
    createInterface({ input: p.stdout! }).on('line', (line) => {
      try {
        const r = JSON.parse(line) as { t: number; a: Record<string, string | null> };
        for (const [vip, node] of Object.entries(r.a)) {
          const tag = tagOf.get(vip);
          if (tag !== undefined) this.answers[tag] = { node, at: r.t - this.o.t0 };
        }
      } catch { /* a torn line at exit */ }
    });
  }

  stopProber(): void {
    this.prober?.kill('SIGKILL');
    this.prober = undefined;
  }

  async sample(): Promise<Sample> {
    const at = Date.now() - this.o.t0;
    const on = this.o.nodes.filter((n) => !this.o.poweredOff(n));
    const addresses = await Promise.all(on.map(async (n) => [n, await serviceAddresses(this.o.c, n)] as const));
    const copies = scanCopies(new Map([...this.namespaces].filter(([n]) => !this.o.poweredOff(n))));
    const vips: Record<string, string[]> = {};
    for (const [tag, vip] of Object.entries(this.o.vips)) vips[tag] = addresses.filter(([, a]) => a.includes(vip)).map(([n]) => n);
    return { at, copies, vips, answer: { ...this.answers } };
  }
}

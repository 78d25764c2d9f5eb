// The exact history of every VIP: `ip -ts monitor address` in each node's namespace reports each address
// added or deleted with the kernel event's time (µs), so a hand-over's overlap (or gap) is measured to the
// millisecond rather than to the sampling period. A powered-off node holds nothing from the moment it is
// switched off (its monitor dies with it); its monitor is started again once it is powered on.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import type { TestCluster } from '../support/cluster.js';
import { SERVICE } from '../support/netns.js';

export interface Held {
  tag: string;
  node: string;
  /** ms since t0. */
  from: number;
  /** ms since t0; Infinity while held. */
  to: number;
}

/** `[2026-12-06T14:30:30.134574] Deleted 3: svc    inet 10.200.7.100/24 scope global secondary svc` */
const LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\d*\] (Deleted )?\d+: (\S+)\s+inet (\d+\.\d+\.\d+\.\d+)\//;

export class VipWatch {
  readonly held: Held[] = [];
  private readonly monitors = new Map<string, ChildProcess>();
  private readonly tagOf: Map<string, string>;

  constructor(private readonly c: TestCluster, vips: Record<string, string>, private readonly t0: number) {
    this.tagOf = new Map(Object.entries(vips).map(([tag, vip]) => [vip, tag]));
  }

  /** Starts the node's monitor, then records what the node holds already (as held from now). */
  async start(node: string): Promise<void> {
    const p = this.c.rig.spawn(node, ['ip', '-ts', 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitors.set(node, p);
    createInterface({ input: p.stdout! }).on('line', (line) => this.event(node, line));
    await new Promise((r) => setTimeout(r, 50)); // the monitor's netlink socket is bound before the read below
    const out = await this.c.rig.exec(node, ['ip', '-j', 'addr', 'show', 'dev', SERVICE]);
    const now = Date.now() - this.t0;
    for (const link of JSON.parse(out.stdout || '[]') as { addr_info?: { family: string; local: string }[] }[]) {
      for (const a of link.addr_info ?? []) {
        const tag = this.tagOf.get(a.local);
        if (a.family === 'inet' && tag !== undefined && !this.current(tag, node)) this.held.push({ tag, node, from: now, to: Infinity });
      }
    }
  }

  /** The node lost power at `at`: it holds nothing from then on (its monitor is killed with it). */
  poweredOff(node: string, at: number): void {
    this.monitors.delete(node);
    for (const h of this.held) if (h.node === node && h.to === Infinity) h.to = at;
  }

  /** The end of the run: whatever is held is held until `at`. */
  stop(at: number): void {
    for (const p of this.monitors.values()) p.kill('SIGKILL');
    this.monitors.clear();
    for (const h of this.held) if (h.to === Infinity) h.to = at;
  }

  private current(tag: string, node: string): Held | undefined {
    return this.held.find((h) => h.tag === tag && h.node === node && h.to === Infinity);
  }

  private event(node: string, line: string): void {
    const m = LINE.exec(line);
    if (!m || m[3] !== SERVICE || !this.monitors.has(node)) return;
    const tag = this.tagOf.get(m[4]!);
    if (tag === undefined) return;
    const at = Date.parse(m[1]!) - this.t0;
    const open = this.current(tag, node);
    if (m[2] && open) open.to = at;
    if (!m[2] && !open) this.held.push({ tag, node, from: at, to: Infinity });
  }
}

export interface HandOver {
  tag: string;
  from: string;
  to: string;
  /** When the new holder added it (ms since t0). */
  at: number;
  /** Since when the previous holder had it. */
  since: number;
  /** > 0: both held it this long; ≤ 0: nobody held it for -overlap ms. */
  overlapMs: number;
}

/** Every change of holder of every VIP: the next holder's add against the previous holder's delete. */
export function handOvers(held: readonly Held[]): HandOver[] {
  const out: HandOver[] = [];
  for (const tag of new Set(held.map((h) => h.tag))) {
    const list = held.filter((h) => h.tag === tag).sort((a, b) => a.from - b.from);
    for (let i = 1; i < list.length; i++) {
      const next = list[i]!;
      // The previous holder: the one whose hold began last before this one, on another node.
      const prev = list.slice(0, i).reverse().find((h) => h.node !== next.node);
      if (!prev) continue;
      out.push({ tag, from: prev.node, to: next.node, at: next.from, since: prev.from, overlapMs: Math.round((Math.min(prev.to, next.to) - next.from) * 10) / 10 });
    }
  }
  return out;
}

// What the harness itself has done to the cluster, with the time of each change: which nodes are powered
// off, whose agent is frozen or dead, which links are impaired in which direction. Only the harness changes
// these, so they are facts, not observations; the invariant checker asks them whether an overlap of two
// copies is one the cluster could not have prevented (a frozen node, a node cut off from the taker).
import type { ChildProcess } from 'node:child_process';

import { NETS } from './schedule.js';

/** One impairment of one link, in ms since t0; `until` is Infinity while it lasts. */
interface Impairment {
  node: string;
  net: string;
  /** out: datagrams leaving `node` on `net`; in: arriving at it; both: a cut cable. */
  dir: 'in' | 'out' | 'both';
  since: number;
  until: number;
}

interface Interval { since: number; until: number }

export class World {
  readonly agents = new Map<string, ChildProcess | undefined>();
  private readonly off = new Set<string>();
  private readonly frozen = new Map<string, Interval[]>();
  private readonly impairments: Impairment[] = [];
  /** Per node, the last thing the harness did to its agent or power, for the reports. */
  private readonly lastDone = new Map<string, { what: string; at: number }>();

  /**
   * `excuses` false: no fault excuses two copies (the rig fences every takeover from a node that may still
   * run its copy: each node has a BMC whose power-off kills it, runner.ts NETNS_BMC).
   */
  constructor(readonly nodes: string[], private readonly t0: number, private readonly excuses = true) {}

  now(): number {
    return Date.now() - this.t0;
  }

  // ---- power and agents ----

  /** When each node's agent was killed with -9 (ms since t0). */
  private readonly kills = new Map<string, number[]>();

  /** Records what was done to a node's agent or power (killed, stopped, started, frozen, ...). */
  did(node: string, what: string): void {
    this.lastDone.set(node, { what, at: this.now() });
    if (what.startsWith('agent killed')) this.kills.set(node, [...(this.kills.get(node) ?? []), this.now()]);
  }

  /** The last kill -9 of the node's agent between `since` and `until` (ms since t0): what left a copy behind. */
  killedAfter(node: string, since: number, until = Infinity): number | undefined {
    return (this.kills.get(node) ?? []).filter((k) => k >= since && k <= until).pop();
  }

  /** The node's agent and power as a phrase for a report: "agent killed at 8.136s". */
  describe(node: string): string {
    const d = this.lastDone.get(node);
    const state = this.off.has(node) ? 'powered off' : this.isFrozen(node) ? 'agent frozen' : this.agentRunning(node) ? 'agent running' : 'agent not running';
    return `${node}: ${state}${d ? `, last ${d.what} at ${(d.at / 1000).toFixed(3)}s` : ''}`;
  }

  setPowered(node: string, on: boolean): void {
    if (on) this.off.delete(node);
    else this.off.add(node);
  }

  poweredOff(node: string): boolean {
    return this.off.has(node);
  }

  setFrozen(node: string, frozen: boolean): void {
    const list = this.frozen.get(node) ?? [];
    this.frozen.set(node, list);
    const last = list[list.length - 1];
    if (frozen && (!last || last.until !== Infinity)) list.push({ since: this.now(), until: Infinity });
    if (!frozen && last && last.until === Infinity) last.until = this.now();
  }

  isFrozen(node: string, at = this.now()): boolean {
    return (this.frozen.get(node) ?? []).some((i) => i.since <= at && at < i.until);
  }

  agentRunning(node: string): boolean {
    const a = this.agents.get(node);
    return a !== undefined && a.exitCode === null && a.signalCode === null;
  }

  // ---- links ----

  impair(node: string, net: string, dir: Impairment['dir']): void {
    this.impairments.push({ node, net, dir, since: this.now(), until: Infinity });
  }

  heal(node: string, net: string): void {
    const now = this.now();
    for (const i of this.impairments) if (i.node === node && i.net === net && i.until === Infinity) i.until = now;
  }

  /** Anything impaired, a node off, frozen or without its agent: the cluster is not healed. */
  unhealed(): string[] {
    const out: string[] = [];
    for (const n of this.nodes) {
      if (this.off.has(n)) out.push(`${n} powered off`);
      else if (!this.agentRunning(n)) out.push(`${n}'s agent not running`);
      if (this.isFrozen(n)) out.push(`${n}'s agent frozen`);
    }
    for (const i of this.impairments) if (i.until === Infinity) out.push(`${i.node} ${i.net} impaired (${i.dir})`);
    return out;
  }

  /** Datagrams from `from` to `to` on `net` are dropped (all or some) at `at`. */
  private impaired(from: string, to: string, net: string, at: number): boolean {
    return this.impairments.some((i) => i.net === net && i.since <= at && at < i.until && (
      (i.node === from && (i.dir === 'out' || i.dir === 'both')) || (i.node === to && (i.dir === 'in' || i.dir === 'both'))));
  }

  /**
   * How a second copy on `taker` may have begun while `old` ran one, without the cluster being at fault:
   * `old`'s agent is frozen, or every cluster network drops (some or all of) what `old` sends to `taker`.
   */
  mayStart(old: string, taker: string, at: number): boolean {
    if (!this.excuses) return false;
    return this.isFrozen(old, at) || NETS.every((net) => this.impaired(old, taker, net, at));
  }

  /**
   * Why two copies on `old` and `taker` may go on: neither can learn of the other, because either agent is
   * frozen, or every network drops what one of them sends to the other (the older node learns that HOST
   * moved only from the taker, and the taker that the old one still runs only from it).
   */
  mayLast(old: string, taker: string, at: number): boolean {
    if (!this.excuses) return false;
    return this.isFrozen(old, at) || this.isFrozen(taker, at)
      || NETS.every((net) => this.impaired(old, taker, net, at)) || NETS.every((net) => this.impaired(taker, old, net, at));
  }

  /** The latest time ≤ `at` at which `cond(old, taker)` held, or undefined if never. */
  lastHeld(cond: 'mayStart' | 'mayLast', old: string, taker: string, at: number): number | undefined {
    const test = (t: number) => (cond === 'mayStart' ? this.mayStart(old, taker, t) : this.mayLast(old, taker, t));
    if (test(at)) return at;
    // The condition can only stop holding at the end of an interval: test just before each end.
    const ends = [
      ...[...this.frozen.values()].flat().map((i) => i.until),
      ...this.impairments.map((i) => i.until),
    ].filter((e) => e <= at).sort((a, b) => b - a);
    for (const e of ends) if (test(e - 0.001)) return e;
    return undefined;
  }
}

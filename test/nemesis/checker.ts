// The continuous invariants, checked on every sample of the ground truth (docs/nemesis.md has the exact
// definitions):
//   INV-RUN  at most one running copy of each app. A second copy is excused only if it appeared while the
//            older copy's node was frozen or cut off from it (every cluster network dropping what the
//            older node sends it), or at most T_start after that ended; it may then last while the two
//            cannot learn of each other (either agent frozen, or every network dropping one direction),
//            and at most T_resolve after that ends.
//   INV-VIP  at most one node has an app's VIP, and the client is answered by at most one node; the same
//            allowance, plus any overlap no longer than the hand-over window H.
// Every overlap episode is also recorded with its length and how it ended, for the figures.
import type { Sample } from './ground.js';
import type { Held } from './vipwatch.js';
import type { World } from './world.js';

export type Invariant = 'INV-RUN' | 'INV-VIP' | 'INV-LIVE' | 'INV-CONVERGE' | 'INV-ACK' | 'AGENT-EXIT' | 'HARNESS'
  // The lab rig's records (lab/records.ts).
  | 'INV-REC-ORDER' | 'INV-REC-EPOCH' | 'INV-REC-STALE' | 'INV-REC-ACK' | 'INV-REC-TORN' | 'INV-REC-LIVE';

export interface Violation {
  inv: Invariant;
  /** ms since t0. */
  at: number;
  text: string;
  /** The older copy (or VIP) is a leftover of an agent killed with -9 (vigild relies on systemd's KillMode for those). */
  leftover?: boolean;
}

export interface Limits {
  /** The VIP hand-over window: an overlap this short is no violation. */
  hMs: number;
  /** After the fault that excused an overlap ends, the overlap must be over within this. */
  resolveMs: number;
  /**
   * A takeover decided during the fault may put its copy up this long after the fault ended (sync,
   * address, start); a copy that appears later was decided on a healed cluster and is not excused.
   */
  startMs: number;
}

/** One overlap, from the first sample that saw it to the first that did not. */
export interface Episode {
  inv: 'INV-RUN' | 'INV-VIP';
  tag: string;
  nodes: string[];
  start: number;
  end: number | undefined;
  /** The excusing fault's end, if the overlap was excused at some point. */
  excusedUntil: number | undefined;
  violated: boolean;
}

interface Holder {
  node: string;
  /** ms since t0 from which this holder certainly existed (a copy's process start, a VIP's first sample). */
  from: number;
  /** When this holder was first sampled (ms since t0). */
  seen: number;
  /** Orders holders by age: a copy's process start time, a VIP's `seen`. */
  rank: number;
}

export class Checker {
  readonly episodes: Episode[] = [];
  private readonly open = new Map<string, Episode>();
  /** Per invariant, tag and holder (a copy's pid, a VIP's node): when it was first sampled. */
  private readonly seen = new Map<string, number>();
  /** Per tag: the client's recent answers (node, time), for the alternation check. */
  private readonly answers = new Map<string, { node: string; at: number }[]>();
  private readonly reported = new Set<string>();

  constructor(private readonly world: World, private readonly tags: string[], private readonly limits: Limits, private readonly t0: number) {}

  observe(s: Sample): Violation[] {
    const out: Violation[] = [];
    for (const tag of this.tags) {
      const copies = s.copies[tag] ?? [];
      const running = this.holders('INV-RUN', tag, copies.map((c) => ({ id: String(c.pid), node: c.node, rank: c.start, from: c.startedAtMs - this.t0 })), s.at);
      this.track('INV-RUN', tag, running, s.at, 0, out, copies.map((c) => `${c.node}:${c.pid}`).join(' '));
      const vip = this.holders('INV-VIP', tag, (s.vips[tag] ?? []).map((node) => ({ id: node, node, rank: undefined, from: undefined })), s.at);
      this.track('INV-VIP', tag, vip, s.at, this.limits.hMs, out, `VIP on ${vip.map((h) => h.node).join(' and ')}`);
      this.clientCheck(tag, s, out);
    }
    return out;
  }

  /** Overlaps still open at the end count until then. */
  close(at: number): void {
    for (const e of this.open.values()) e.end = at;
    this.open.clear();
  }

  /**
   * The holders (copies or VIPs) of one app, oldest first, each with the time it was first sampled. A
   * copy's age is its process start time; a VIP's is when it was first seen.
   */
  private holders(inv: string, tag: string, now: { id: string; node: string; rank: number | undefined; from: number | undefined }[], at: number): Holder[] {
    const prefix = `${inv}\0${tag}\0`;
    const ids = new Set(now.map((h) => prefix + h.id));
    for (const key of [...this.seen.keys()]) if (key.startsWith(prefix) && !ids.has(key)) this.seen.delete(key);
    return now.map((h) => {
      const key = prefix + h.id;
      if (!this.seen.has(key)) this.seen.set(key, at);
      const seen = this.seen.get(key)!;
      return { node: h.node, seen, rank: h.rank ?? seen, from: h.from ?? seen };
    }).sort((a, b) => a.rank - b.rank);
  }

  /**
   * One invariant for one app: `holders` oldest first. Two or more open an episode (or continue it); at
   * each sample every newer holder is weighed against the oldest: allowed while the overlap is shorter
   * than `graceMs`, or, if a fault explains how it began, until T_resolve after the last moment a fault
   * kept the two nodes from resolving it.
   */
  private track(inv: 'INV-RUN' | 'INV-VIP', tag: string, holders: Holder[], at: number, graceMs: number, out: Violation[], what: string): void {
    const key = `${inv}\0${tag}`;
    let e = this.open.get(key);
    if (holders.length < 2) {
      if (e) {
        e.end = at;
        this.open.delete(key);
      }
      return;
    }
    if (!e) {
      e = { inv, tag, nodes: [], start: at, end: undefined, excusedUntil: undefined, violated: false };
      this.open.set(key, e);
      this.episodes.push(e);
    }
    const old = holders[0]!;
    for (const h of holders) if (!e.nodes.includes(h.node)) e.nodes.push(h.node);
    for (const h of holders.slice(1)) {
      let allowed = e.start + graceMs;
      let why = graceMs > 0 ? `longer than H ${graceMs} ms` : 'no excusing fault';
      if (h.node === old.node) why = `two copies on ${old.node}`;
      else {
        // Holders with the same age: which is older is unknown, so either may be the one excused.
        const tie = h.rank === old.rank;
        const latest = (cond: 'mayStart' | 'mayLast', at_: number) => Math.max(this.world.lastHeld(cond, old.node, h.node, at_) ?? -Infinity,
          tie ? this.world.lastHeld(cond, h.node, old.node, at_) ?? -Infinity : -Infinity);
        const began = latest('mayStart', h.seen);
        const last = latest('mayLast', at);
        if (began > -Infinity && h.seen > began + this.limits.startMs) {
          why = `the newer one on ${h.node} appeared ${h.seen - began} ms after the fault that could excuse it ended at ${(began / 1000).toFixed(3)}s (allowance T_start ${this.limits.startMs} ms)`;
        } else if (began > -Infinity && last + this.limits.resolveMs > allowed) {
          e.excusedUntil = Math.max(e.excusedUntil ?? -Infinity, last);
          allowed = last + this.limits.resolveMs;
          why = last === at ? '' : `not resolved within T_resolve ${this.limits.resolveMs} ms of the end of the fault that excused it, at ${(last / 1000).toFixed(3)}s`;
        }
      }
      // Without a grace (INV-RUN), one sample that shows an unexcused overlap is enough.
      const over = graceMs === 0 ? at >= allowed : at > allowed;
      if (over && !e.violated) {
        e.violated = true;
        // Either side may be what a killed agent left behind (a takeover's copy, killed with its agent's
        // -9 before the overlap ended, is a leftover too).
        const [who, killed] = ([old, h] as const).map((x) => [x.node, this.world.killedAfter(x.node, x.from, at)] as const).find(([, k]) => k !== undefined) ?? [undefined, undefined];
        const left = killed === undefined ? '' : `; the copy on ${who} is a leftover of its agent, killed with -9 at ${(killed / 1000).toFixed(3)}s`;
        out.push({ inv, at, leftover: killed !== undefined, text: `${tag}: ${what} since ${(e.start / 1000).toFixed(3)}s (older on ${old.node}); ${why}${left} [${this.world.describe(old.node)}; ${this.world.describe(h.node)}]` });
      }
    }
  }

  /**
   * The client's side of INV-VIP. One probe is answered by one node, so two answering nodes show only as
   * answers that alternate between them within a second (X, Y, X, faster than any two hand-overs): both
   * answered from Y's first answer on, an overlap judged like one of configured VIPs.
   */
  private clientCheck(tag: string, s: Sample, out: Violation[]): void {
    const a = s.answer[tag];
    if (!a || a.node === null) return;
    const list = this.answers.get(tag) ?? [];
    this.answers.set(tag, list);
    const last = list[list.length - 1];
    if (last && last.at === a.at) return; // the same probe as last sample
    list.push({ node: a.node, at: a.at });
    while (list.length > 0 && list[0]!.at < a.at - 1000) list.shift();
    const distinct: { node: string; at: number }[] = [];
    for (const x of list) if (distinct[distinct.length - 1]?.node !== x.node) distinct.push(x);
    const n = distinct.length;
    if (n >= 3 && distinct[n - 1]!.node === distinct[n - 3]!.node) {
      const x = distinct[n - 3]!.node;
      const y = distinct[n - 2]!.node;
      const since = distinct[n - 2]!.at;
      const last = this.world.lastHeld('mayLast', x, y, a.at);
      const allowed = Math.max(since + this.limits.hMs, last === undefined ? -Infinity : last + this.limits.resolveMs);
      const key = `${tag}@${since}`;
      if (a.at - since > this.limits.hMs && a.at > allowed && !this.reported.has(key)) {
        this.reported.add(key);
        out.push({ inv: 'INV-VIP', at: a.at, text: `${tag}: the client was answered by ${x}, then ${y} at ${(since / 1000).toFixed(3)}s, then ${x} again: both answered` });
      }
    }
  }
}

/**
 * INV-VIP from the exact VIP history (vipwatch.ts), at the end of the run: every time two nodes held one
 * VIP, for longer than H, judged like a sampled overlap (excused by a fault, then T_start and T_resolve).
 * Catches overlaps too short for the sampling to see twice; those the sampling reported are left out.
 */
export function exactVipViolations(held: readonly Held[], world: World, limits: Limits, sampled: readonly Violation[]): Violation[] {
  const out: Violation[] = [];
  const byTag = new Map<string, Held[]>();
  for (const h of held) byTag.set(h.tag, [...(byTag.get(h.tag) ?? []), h]);
  for (const [tag, list] of byTag) {
    for (let i = 0; i < list.length; i++) {
      for (let j = 0; j < list.length; j++) {
        const [old, neu] = [list[i]!, list[j]!];
        if (old.node === neu.node || !(old.from < neu.from || (old.from === neu.from && i < j))) continue;
        const end = Math.min(old.to, neu.to);
        const length = end - neu.from;
        if (length <= limits.hMs) continue;
        if (sampled.some((v) => v.inv === 'INV-VIP' && v.text.startsWith(`${tag}:`) && v.at >= neu.from && v.at <= end + 1000)) continue;
        if (excusedOverlap(world, limits, old.node, neu.node, neu.from, end)) continue;
        const killed = world.killedAfter(old.node, old.from, end) ?? world.killedAfter(neu.node, neu.from, end);
        out.push({
          inv: 'INV-VIP', at: end, leftover: killed !== undefined,
          text: `${tag}: VIP on ${old.node} and ${neu.node} for ${Math.round(length)} ms from ${(neu.from / 1000).toFixed(3)}s (exact, ip monitor), longer than H ${limits.hMs} ms and not excused${killed === undefined ? '' : `; a leftover of an agent killed with -9 at ${(killed / 1000).toFixed(3)}s`}`,
        });
      }
    }
  }
  return out;
}

/**
 * An overlap of a holder on `old` with a newer one on `taker` from `from` to `end` (ms since t0), judged as
 * a whole: the newer one began while a fault could explain it (or T_start after), and every moment of it
 * lies within T_resolve of a moment where a fault kept the two from resolving it.
 */
export function excusedOverlap(world: World, limits: Limits, old: string, taker: string, from: number, end: number): boolean {
  const began = world.lastHeld('mayStart', old, taker, from);
  if (began === undefined || from > began + limits.startMs) return false;
  // Walk the overlap in steps shorter than T_resolve: each must be covered.
  for (let t = from; ; t = Math.min(end, t + limits.resolveMs / 4)) {
    const last = world.lastHeld('mayLast', old, taker, t);
    if (last === undefined || t > last + limits.resolveMs) return false;
    if (t >= end) return true;
  }
}

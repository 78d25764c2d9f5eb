// This agent's own stalls, to tell whether something it decided is still its to carry out.
//
// WHY. A decision to start an app here (HOST is this node, the address was probed free) holds only while
// the peers know this node is alive. When the whole agent is stopped (SIGSTOP, a debugger, a frozen
// cgroup, the machine suspended) its heartbeat thread stops too: after failAfterMs of silence a peer
// declares it failed and takes the app over. The stopped agent knows none of that when it continues, and
// would go on with the step it was in: add the address the peer now holds, spawn a second copy. So each
// irreversible step of a start first asks whether the agent stalled since the decision for long enough
// that the peers may have failed it; if so, the decision is stale and is made again.
//
// HOW. The agent's tick runs every `tickMs`; a gap between ticks longer than `capMs` is a stall of ours
// (the membership's rule, membership.ts). A stall is remembered when it reaches `limitMs`; one still under
// way (no tick since it began: the step runs right after the agent continued, before the tick does) counts
// too. An event-loop stall alone (the heartbeat thread kept sending) is treated the same: JS cannot tell it
// from a stopped process, and a start decided again costs one retry, never safety. Pure: the caller passes
// a monotonic millisecond clock in.

export class OwnStalls {
  private lastTick: number;
  /** The stalls at least limitMs long, as the tick that ended each saw it (bounded: only the latest matter). */
  private readonly stalls: { end: number; ms: number }[] = [];

  /**
   * capMs: the longest gap between ticks that is not a stall. limitMs: a stall this long may have let the
   * peers declare this node failed (failAfterMs less one heartbeat interval).
   */
  constructor(private readonly capMs: number, private readonly limitMs: number, now: number) {
    if (!(capMs > 0) || !(limitMs > 0)) throw new RangeError(`OwnStalls: capMs (${capMs}) and limitMs (${limitMs}) must be > 0`);
    this.lastTick = now;
  }

  tick(now: number): void {
    const ms = now - this.lastTick - this.capMs;
    if (ms >= this.limitMs) {
      this.stalls.push({ end: now, ms });
      if (this.stalls.length > 32) this.stalls.shift();
    }
    this.lastTick = Math.max(this.lastTick, now);
  }

  /** The longest stall of ours that ended after `since`, or is still under way at `now` (0: none). */
  longestSince(since: number, now: number): number {
    let longest = Math.max(0, now - this.lastTick - this.capMs);
    for (const s of this.stalls) if (s.end > since) longest = Math.max(longest, s.ms);
    return longest;
  }

  /**
   * Undefined while a decision taken at `since` may still be carried out; otherwise why not (the stall
   * that may have let the peers fail this node meanwhile).
   */
  staleSince(since: number, now: number): string | undefined {
    const ms = this.longestSince(since, now);
    return ms >= this.limitMs ? `this agent stalled ${Math.round(ms)} ms since (its peers may have failed it and taken over)` : undefined;
  }
}

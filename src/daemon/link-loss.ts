// Heartbeat loss per peer and network, for `vigil status` and `vigil doctor`: a network that drops some
// heartbeats still looks "up" to membership (one heartbeat in each failAfterMs is enough), yet it is the
// network that will fail next. Each peer sends one heartbeat per heartbeatIntervalMs on every network; the
// heartbeat thread counts those heard per link (heardCount). Sampled once a second, the share missing over
// the last ten seconds is the loss. A peer sends a little more at times (an answer to a probe): more than
// expected counts as none lost.

const SAMPLE_EVERY_MS = 1000;
const WINDOW_MS = 10_000;
/** Less than this much history says too little (a peer just heard, this agent just started). */
const MIN_SPAN_MS = 3000;

interface Sample { at: number; count: number }

export class LinkLoss {
  private readonly history = new Map<string, Sample[]>();
  private sampledAt = -Infinity;

  constructor(private readonly intervalMs: number) {}

  /** Every tick: each link's heard count (`key`: peer and network) at this monotonic time. */
  tick(links: Iterable<{ key: string; heardCount: number; heard: boolean }>, now: number): void {
    if (now - this.sampledAt < SAMPLE_EVERY_MS) return;
    this.sampledAt = now;
    for (const l of links) {
      // Never heard: no loss to speak of (a network not cabled yet is the network check's business).
      if (!l.heard) {
        this.history.delete(l.key);
        continue;
      }
      const h = this.history.get(l.key) ?? [];
      // A count that went back: the peer's agent restarted (a new heartbeat engine); start again.
      if (h.length > 0 && l.heardCount < h[h.length - 1]!.count) h.length = 0;
      h.push({ at: now, count: l.heardCount });
      while (h.length > 1 && now - h[0]!.at > WINDOW_MS) h.shift();
      this.history.set(l.key, h);
    }
  }

  /** The share of heartbeats lost over the last ten seconds (0..1), or null with too little history. */
  loss(key: string): number | null {
    const h = this.history.get(key);
    if (!h || h.length < 2) return null;
    const first = h[0]!;
    const last = h[h.length - 1]!;
    const span = last.at - first.at;
    if (span < MIN_SPAN_MS) return null;
    const expected = span / this.intervalMs;
    const lost = 1 - (last.count - first.count) / expected;
    return Math.round(Math.min(1, Math.max(0, lost)) * 1000) / 1000;
  }
}

// Heartbeat loss per peer and network, for `vigil status` and `vigil doctor`: a network that drops some
// heartbeats still looks "up" to membership (one heartbeat in each failAfterMs is enough), yet it is the
// network that will fail next. The peer numbers every heartbeat datagram it sends, one per peer and
// network each round (native/heartbeat.cc), so between two readings of a link it sent (Δsequence / its
// datagrams per round) heartbeats on it, of which this node heard ΔheardCount. Counting on the sender's
// numbers, not on time, a sender that skipped rounds (descheduled, its lease lapsed) loses nothing here:
// what is measured is the network. Sampled once a second, over the last ten seconds.

const SAMPLE_EVERY_MS = 1000;
const WINDOW_MS = 10_000;
/** Fewer rounds than this say too little (a peer just heard, this agent just started). */
const MIN_ROUNDS = 20;

interface Sample { at: number; count: number; seq: number }

export interface LinkReading {
  /** Peer and network. */
  key: string;
  heardCount: number;
  /** The peer's sequence number in the last heartbeat heard on the link; 0: never heard. */
  peerSeq: number;
}

export class LinkLoss {
  private readonly history = new Map<string, Sample[]>();
  private sampledAt = -Infinity;

  /** `perRound`: the datagrams each node sends per round, one per peer and network. */
  constructor(private readonly perRound: number) {}

  /** Every tick: each link's reading at this monotonic time (sampled once a second). */
  tick(links: Iterable<LinkReading>, now: number): void {
    if (now - this.sampledAt < SAMPLE_EVERY_MS) return;
    this.sampledAt = now;
    for (const l of links) {
      if (l.peerSeq <= 0) {
        this.history.delete(l.key);
        continue;
      }
      const h = this.history.get(l.key) ?? [];
      // Its sequence went back: the peer restarted (a new incarnation numbers from 1); start again.
      if (h.length > 0 && l.peerSeq < h[h.length - 1]!.seq) h.length = 0;
      h.push({ at: now, count: l.heardCount, seq: l.peerSeq });
      while (h.length > 1 && now - h[0]!.at > WINDOW_MS) h.shift();
      this.history.set(l.key, h);
    }
  }

  /** The share of the peer's heartbeats on the link lost over the last ten seconds (0..1), or null. */
  loss(key: string): number | null {
    const h = this.history.get(key);
    if (!h || h.length < 2) return null;
    const first = h[0]!;
    const last = h[h.length - 1]!;
    const sent = (last.seq - first.seq) / this.perRound;
    if (sent < MIN_ROUNDS) return null;
    const lost = 1 - (last.count - first.count) / sent;
    return Math.round(Math.min(1, Math.max(0, lost)) * 1000) / 1000;
  }
}

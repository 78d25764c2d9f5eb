// Each peer's wall clock against this node's, for `vigil status` and `vigil doctor`. The heartbeat carries
// only monotonic clocks (nothing about wall time goes on its wire), so the wall clock rides the 'view'
// message each node sends every peer once a second (self-fence.ts): `sentAtMs`, the sender's Date.now().
// Received at this node's Date.now(), a sample says the peer's clock minus this one's, less the transit
// and any delay in this node's event loop: both make it look further behind, never ahead. So the estimate
// is the largest of the last samples, and it is good to about the round trip. Why it matters: replicated
// attributes and markers merge by the wall time of their write (src/db/database.ts), and `vigil timeline`
// and the switchover's service gap read both nodes' clocks.

/** Beyond this two clocks disagree enough to matter (doctor warns, `vigil status` shows it). */
export const CLOCK_WARN_MS = 500;

/** Samples kept per peer: ten seconds at one a second; one stall of the event loop does not move it. */
const WINDOW = 10;

export interface PeerClock {
  /** The peer's wall clock minus this node's, ms (positive: the peer is ahead). */
  offsetMs: number;
  /** The round trip of the peer's fastest link when measured, ms: the estimate is good to about this. */
  rttMs: number | null;
  /** How long ago the newest sample arrived, ms. */
  ageMs: number;
}

export class PeerClocks {
  private readonly samples = new Map<string, { deltas: number[]; at: number }>();

  /** A view message from `peer`, sent at its `sentAtMs`, received now (`receivedAtMs`, this node's clock). */
  onSample(peer: string, sentAtMs: number, receivedAtMs: number): void {
    const s = this.samples.get(peer) ?? { deltas: [], at: receivedAtMs };
    s.deltas.push(sentAtMs - receivedAtMs);
    if (s.deltas.length > WINDOW) s.deltas.shift();
    s.at = receivedAtMs;
    this.samples.set(peer, s);
  }

  of(peer: string, nowMs: number, rttUs: number | undefined): PeerClock | undefined {
    const s = this.samples.get(peer);
    if (!s || s.deltas.length === 0) return undefined;
    return { offsetMs: Math.max(...s.deltas), rttMs: rttUs !== undefined && rttUs >= 0 ? Math.round(rttUs / 100) / 10 : null, ageMs: Math.max(0, nowMs - s.at) };
  }
}

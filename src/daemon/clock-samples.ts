// The 'clock sample' log line: what `vigil timeline` estimates the nodes' clock offsets from. The heartbeat
// carries the sender's monotonic clock, not its wall clock, so a sample pairs three readings: the peer's
// monotonic stamp of the last heartbeat heard, this node's monotonic time of its arrival and the round trip;
// the line's own `time` (wall clock) with `monoUs` ties this node's monotonic clock to its wall clock. The
// peer's lines tie its monotonic clock to its wall clock the same way. Nothing is added to the wire.
import type { Config } from '../config/schema.js';
import type { HeartbeatSnapshot } from '../native.js';
import type { AgentLog } from './log.js';

export const CLOCK_SAMPLE_MESSAGE = 'clock sample';
const EVERY_MS = 60_000;

export interface ClockSample {
  peer: string;
  network: string;
  rttUs: number;
  /** This node's CLOCK_MONOTONIC (µs) as the line is written. */
  monoUs: number;
  heardMonoUs: number;
  peerSentMonoUs: number;
}

/** The sample of each peer from its link with the shortest measured round trip (the tightest bound). */
export function clockSamples(snapshot: HeartbeatSnapshot, config: Config, monoUs: number): ClockSample[] {
  const out: ClockSample[] = [];
  for (const peer of snapshot.peers) {
    const node = config.nodes.find((n) => n.id === peer.id);
    const links = peer.links.filter((l) => l.rttUs >= 0 && l.peerSentMonoUs > 0 && l.heardMonoUs > 0).sort((a, b) => a.rttUs - b.rttUs);
    const best = links[0];
    if (!node || !best) continue;
    out.push({
      peer: node.name, network: config.networks[best.network]?.name ?? String(best.network),
      rttUs: best.rttUs, monoUs, heardMonoUs: best.heardMonoUs, peerSentMonoUs: best.peerSentMonoUs,
    });
  }
  return out;
}

/** Logs each peer's sample once it has a round trip, again once a minute, and again after it comes back. */
export class ClockSampler {
  private readonly lastAt = new Map<string, number>();

  constructor(private readonly log: AgentLog, private readonly config: Config) {}

  peerAlive(peer: string): void {
    this.lastAt.delete(peer);
  }

  tick(snapshot: HeartbeatSnapshot, now: number, monoUs = Number(process.hrtime.bigint() / 1000n)): void {
    for (const s of clockSamples(snapshot, this.config, monoUs)) {
      const last = this.lastAt.get(s.peer);
      if (last !== undefined && now - last < EVERY_MS) continue;
      this.lastAt.set(s.peer, now);
      this.log.info(s, CLOCK_SAMPLE_MESSAGE);
    }
  }
}

// Clock offsets between nodes from the agents' 'clock sample' lines (src/daemon/clock-samples.ts). A node's
// own lines tie its monotonic clock to its wall clock (`time` - `monoUs`); a sample on node A about peer B
// says B's monotonic clock read `peerSentMonoUs` about half a round trip before A's read `heardMonoUs`.
// Both tied to wall clocks, that is B's wall clock minus A's, within half the round trip (the one-way
// delays need not be equal) plus a millisecond (the log's `time` is in whole ms).
import { CLOCK_SAMPLE_MESSAGE } from '../daemon/clock-samples.js';
import type { NodeLog } from './parse.js';

export interface OffsetEstimate {
  /** The node's clock minus the reference node's, ms. */
  offsetMs: number;
  /** The estimate is within ± this many ms. */
  boundMs: number;
  samples: number;
}

interface Sample { node: string; peer: string; rttUs: number; monoUs: number; heardMonoUs: number; peerSentMonoUs: number; time: number }

function samplesOf(log: NodeLog): Sample[] {
  const out: Sample[] = [];
  for (const l of log.lines) {
    if (l.msg !== CLOCK_SAMPLE_MESSAGE) continue;
    const f = l.fields;
    if (typeof f.peer !== 'string' || ![f.rttUs, f.monoUs, f.heardMonoUs, f.peerSentMonoUs].every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) continue;
    out.push({ node: log.node, peer: f.peer, rttUs: f.rttUs as number, monoUs: f.monoUs as number, heardMonoUs: f.heardMonoUs as number, peerSentMonoUs: f.peerSentMonoUs as number, time: l.time });
  }
  return out;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** Offsets of the nodes that have samples with the reference node (either way), by node name. */
export function estimateOffsets(logs: NodeLog[], reference: string): Map<string, OffsetEstimate> {
  const samples = logs.flatMap(samplesOf);
  // Wall minus monotonic, ms, per node: steady unless the wall clock is stepped or the node reboots.
  const wallMinusMono = new Map<string, number>();
  for (const node of new Set(samples.map((s) => s.node))) {
    wallMinusMono.set(node, median(samples.filter((s) => s.node === node).map((s) => s.time - s.monoUs / 1000)));
  }
  const found = new Map<string, { offset: number; bound: number; rtt: number; n: number }>();
  for (const s of samples) {
    const own = wallMinusMono.get(s.node);
    const peers = wallMinusMono.get(s.peer);
    if (own === undefined || peers === undefined) continue;
    const peerMinusOwn = (s.peerSentMonoUs + s.rttUs / 2) / 1000 + peers - (s.heardMonoUs / 1000 + own);
    let node: string;
    let offset: number;
    if (s.node === reference) [node, offset] = [s.peer, peerMinusOwn];
    else if (s.peer === reference) [node, offset] = [s.node, -peerMinusOwn];
    else continue;
    const best = found.get(node);
    // The sample with the shortest round trip bounds the offset best (as NTP picks its best sample).
    if (!best || s.rttUs < best.rtt) found.set(node, { offset, bound: s.rttUs / 2000 + 1, rtt: s.rttUs, n: (best?.n ?? 0) + 1 });
    else best.n++;
  }
  return new Map([...found].map(([node, f]) => [node, { offsetMs: round(f.offset), boundMs: round(f.bound), samples: f.n }]));
}

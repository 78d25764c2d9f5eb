// What the rejuvenation cluster tests read from the agents: each node's record in the available-server
// list as a node's `vigil status --json` shows it, and the aging section that makes a node judge itself
// unstable on demand, whatever the test machine's own load.
import type { TestCluster } from './cluster.js';

export interface Step { step: string; outcome?: string; detail?: string }
export interface Rec {
  node: string; role: string; state: string;
  rejuvenation?: { by: string; reason: string; moved: { tag: string; to: string }[]; steps: Step[]; startedAt: number; endedAt?: number; outcome?: string; why?: string };
}

/** Every node's record, as `on`'s replica has it. */
export const records = async (c: TestCluster, on: string): Promise<Rec[]> => ((await c.status(on)) as unknown as { rejuvenation: { nodes: Rec[] } }).rejuvenation.nodes;
export const recordOf = async (c: TestCluster, on: string, node: string): Promise<Rec | undefined> => (await records(c, on)).find((r) => r.node === node);

// The test machine's load (other tests, CI) is no part of these cases: a load band no machine reaches.
export const agingWith = (more = '', holdMs = 2000): string => `aging: { intervalMs: 200, holdMs: ${holdMs}, windowSamples: 20, load: { enter: 1000, leave: 999 }${more} }`;

/** memAvailable must stay above 99.5% of MemTotal to be healthy: no machine's does, so the node is judged unstable and no rung heals it. */
export const NEVER_HEALTHY = ', memAvailable: { enter: 0.99, leave: 0.995 }';

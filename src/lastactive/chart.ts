// The states and edge labels of seed 003's M/SM/SL/X chart (JP 2001-175626 A, 図2; the figure is missing
// from the seed, the reconstruction is ../shared/notes/seed002_003.md B.3, tabled in docs/last-active.md).
//
// Each node runs its own side of the chart in LastActive (src/daemon/last-active.ts): entering SM writes
// 1, M writes 2, SL writes 3, X writes nothing, each durable before the state takes effect, with the label
// of the edge that wrote it. test/unit/lastactive-model.test.ts drives two LastActive instances against
// an oracle. The priority store (priority-store.ts) records the state and the label, the recovery
// decision (decision.ts) reads them: a 1's label says whether it was written alone (2-x), by a forced
// start, or with the peer present or just failed (1-x-1, 4-x).

export type State = 'M' | 'SM' | 'SL' | 'X';
export type Priority = 1 | 2 | 3;

export const STATES: readonly State[] = ['M', 'SM', 'SL', 'X'];

/** Does a server in this state run the application? (B.2: M and SM process, SL and X do not.) */
export function isProcessing(state: State): boolean {
  return state === 'M' || state === 'SM';
}

/**
 * The labels of B.3, in its order; a stored record names the edge that wrote it by index + 1, so the
 * order is part of the record format. With A the node of the lower id (LastActive's side A):
 * 1-1-1/1-2-1 (X X) → B/A processed last, 1-1-2/1-2-2 and 3-1-2/3-2-2 the SM becoming M, 2-1/2-2 a
 * lone start, 3-1-1/3-2-1 a node joining the one that processes, 4-1/4-2 the slave failed, 4-3/4-4
 * the master failed and the slave takes over, 5-x the failures that write nothing.
 */
export const LABELS = [
  '1-1-1', '1-1-2', '1-2-1', '1-2-2', '2-1', '2-2', '3-1-1', '3-1-2', '3-2-1', '3-2-2',
  '4-1', '4-2', '4-3', '4-4', '5-1', '5-2', '5-3', '5-4', '5-5', '5-6', '5-7', '5-8',
] as const;
export type Label = (typeof LABELS)[number];

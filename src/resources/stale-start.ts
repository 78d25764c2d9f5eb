// The last check before an irreversible start step (adding a service address, spawning the app): the
// caller says whether the decision behind the step still holds (the agent: src/daemon/own-stalls.ts). A
// stop of the agent between this check and the step itself is what only fencing covers.

/** Why the decision behind a start step no longer holds, or undefined while it does. */
export type StaleCheck = () => string | undefined;

/** A start step refused because the decision behind it is older than a stall of the agent. */
export class StaleStartError extends Error {
  override name = 'StaleStartError';
}

/**
 * A start refused because the app's last-active peer, alive, processes it (reports SM or M) and this node
 * is its slave (src/daemon/last-active.ts): a takeover here must give way, not wait for its turn.
 */
export class PeerProcessesError extends StaleStartError {
  override name = 'PeerProcessesError';
}

/** Throws StaleStartError when `stale` says the decision no longer holds. */
export function refuseIfStale(stale: StaleCheck | undefined, what: string): void {
  const why = stale?.();
  if (why) throw new StaleStartError(`${what}: not done, ${why}`);
}

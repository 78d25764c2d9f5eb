// How long this node's last completed failover of each app took, by phase, for the metrics: from the
// agent's own measures, the ones `vigil timeline` reads from its log (src/timeline/catalogue.ts). Detection
// is the peer's silence as membership measured it when it failed the peer, plus the wait until the
// takeover began (the priority write, seed 003); fence, mount and address are the flow runner's timed
// steps (a power fence, the wait for a self-fence, a disk's reservation); app_start is the program's
// start. A failover retried after a failed attempt adds every attempt's steps to their phase. Kept in
// memory: an agent that restarts has no last failover until its next one.
import { performance } from 'node:perf_hooks';

export const FAILOVER_PHASES = ['detection', 'fence', 'mount', 'address', 'app_start', 'total'] as const;
export type FailoverPhase = (typeof FAILOVER_PHASES)[number];

export interface LastFailover {
  tag: string;
  /** The host it was taken from. */
  from: string;
  /** Wall-clock end (ms since 1970): failover-complete. */
  completedAt: number;
  /** Milliseconds per phase; a phase the failover did not go through is absent (detection: no peer failure). */
  phases: Partial<Record<FailoverPhase, number>>;
}

interface Running { from: string; startedAt: number; phases: Partial<Record<FailoverPhase, number>> }

export class FailoverTimes {
  /** performance.now() of each failed peer's last sign of life, as of its failure. */
  private readonly lastHeard = new Map<string, number>();
  private readonly running = new Map<string, Running>();
  private readonly last = new Map<string, LastFailover>();

  constructor(private readonly clock: () => number = () => performance.now(), private readonly wall: () => number = () => Date.now()) {}

  /** Membership failed `peer`, silent for `silentMs`. */
  peerFailed(peer: string, silentMs: number): void {
    this.lastHeard.set(peer, this.clock() - silentMs);
  }

  /** A failover of `tag` from `from` began; `peerFailure`: because that host failed (not an app fault there). */
  started(tag: string, from: string, peerFailure: boolean): void {
    const now = this.clock();
    const heard = peerFailure ? this.lastHeard.get(from) : undefined;
    this.running.set(tag, { from, startedAt: now, phases: heard === undefined ? {} : { detection: now - heard } });
  }

  /** A timed step of the failover under way (none: ignored). */
  step(tag: string, phase: Exclude<FailoverPhase, 'detection' | 'total'>, ms: number): void {
    const r = this.running.get(tag);
    if (r) r.phases[phase] = (r.phases[phase] ?? 0) + ms;
  }

  completed(tag: string): void {
    const r = this.running.get(tag);
    if (!r) return;
    this.running.delete(tag);
    const total = this.clock() - r.startedAt + (r.phases.detection ?? 0);
    this.last.set(tag, { tag, from: r.from, completedAt: this.wall(), phases: { ...r.phases, total } });
  }

  /** The failover gave up or was aborted: no record (the last completed one stays). */
  ended(tag: string): void {
    this.running.delete(tag);
  }

  list(): LastFailover[] {
    return [...this.last.values()];
  }
}

/** The phase of a flow runner's timed step: its log message and resource (resourceName). */
export function stepPhase(message: string, resource: string): Exclude<FailoverPhase, 'detection' | 'total'> | undefined {
  if (message === 'peer powered off' || message === 'peer self-fenced') return 'fence';
  if (message !== 'resource started') return undefined;
  if (resource.startsWith('disk ')) return 'fence';
  if (resource.startsWith('mount ')) return 'mount';
  if (resource.startsWith('ip ')) return 'address';
  return undefined;
}

// Runs the node's power sources and the power policy (src/power/policy.ts) between them: each source's
// events go into decide(), a timer brings the policy back at its next deadline (the on-battery grace,
// DEADTIME), and every decision goes to the agent, which warns, logs, or sends distress and leaves.
// Everything that decides is in the policy; this file keeps the clock and the history for `vigil power status`.
import { performance } from 'node:perf_hooks';

import {
  decide, initialPolicyState, nextDeadline, type PolicyInput, type PolicyState, type PowerDecision, type PowerPolicyConfig,
} from '../power/policy.js';
import type { PowerEvent, PowerSource, PowerSourceStatus } from '../power/source.js';

export interface PowerWatchStatus {
  sources: PowerSourceStatus[];
  /** The policy's view per source: the grace or DEADTIME running, in ms from now. */
  policy: { source: string; state: string | null; commsLost: boolean; graceLeftMs: number | null; deadLeftMs: number | null }[];
  distressed: { source: string; reason: string; agoMs: number } | null;
  /** The newest decisions first, at most 20. */
  decisions: (PowerDecision & { at: string })[];
}

export class PowerWatch {
  private state: PolicyState = initialPolicyState();
  private timer: NodeJS.Timeout | undefined;
  private readonly decisions: (PowerDecision & { at: string })[] = [];
  private readonly listeners = new Map<PowerSource, (e: PowerEvent) => void>();
  private stopped = false;

  constructor(
    private readonly sources: readonly PowerSource[],
    private readonly config: PowerPolicyConfig,
    private readonly onDecision: (d: PowerDecision, event: PowerEvent | undefined) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  start(): void {
    for (const s of this.sources) {
      const listener = (e: PowerEvent) => this.input({ type: 'event', event: e, now: this.clock() }, e);
      this.listeners.set(s, listener);
      s.on('event', listener);
      s.start();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const [s, l] of this.listeners) s.off('event', l);
    await Promise.all(this.sources.map((s) => s.stop().catch(() => {})));
  }

  private input(input: PolicyInput, event: PowerEvent | undefined): void {
    if (this.stopped) return;
    const r = decide(this.config, this.state, input);
    this.state = r.state;
    for (const d of r.decisions) {
      this.decisions.unshift({ ...d, at: new Date().toISOString() });
      if (this.decisions.length > 20) this.decisions.pop();
      this.onDecision(d, event);
    }
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const at = nextDeadline(this.state);
    if (at === undefined || this.stopped) return;
    this.timer = setTimeout(() => this.input({ type: 'tick', now: this.clock() }, undefined), Math.max(0, at - this.clock()));
  }

  status(): PowerWatchStatus {
    const now = this.clock();
    const left = (d: { at: number } | undefined) => (d ? Math.max(0, Math.round(d.at - now)) : null);
    const d = this.state.distressed;
    return {
      sources: this.sources.map((s) => s.status()),
      policy: Object.entries(this.state.sources).map(([source, v]) => ({
        source, state: v.state ?? null, commsLost: v.commsLost, graceLeftMs: left(v.grace), deadLeftMs: left(v.dead),
      })),
      distressed: d ? { source: d.source, reason: d.reason, agoMs: Math.round(now - d.at) } : null,
      decisions: [...this.decisions],
    };
  }
}

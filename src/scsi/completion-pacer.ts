// Paces the settling of native completions so a fast device cannot starve the event loop.
//
// Settling a command's promise runs the caller's continuation, which often sends the next command. When
// the device answers faster than JavaScript handles an answer (any fast target, and always in the TCG
// lab), Node's thread-safe function keeps finding new completions in its queue and delivers them in the
// same loop iteration, up to 1000 in a row: timers and I/O wait behind (measured in the lab: 0.5-1.4 s of
// event-loop lag with 32 commands in flight). So completions settle directly only for `budgetMs` per
// burst; past that they are deferred to setImmediate, which lets timers and I/O run first, and drained
// again `budgetMs` at a time.

export class CompletionPacer {
  private burstStart = -1;
  private readonly deferred: (() => void)[] = [];

  constructor(
    private readonly budgetMs = 1,
    private readonly now: () => number = () => performance.now(),
    private readonly schedule: (fn: () => void) => void = (fn) => setImmediate(fn),
  ) {}

  settle(fn: () => void): void {
    const now = this.now();
    if (this.burstStart < 0) {
      this.burstStart = now;
      this.schedule(this.drain);
    }
    if (this.deferred.length === 0 && now - this.burstStart < this.budgetMs) fn();
    else this.deferred.push(fn);
  }

  /** How many settlements wait for the next turn of the loop. */
  get waiting(): number {
    return this.deferred.length;
  }

  private readonly drain = (): void => {
    const start = this.now();
    while (this.deferred.length > 0 && this.now() - start < this.budgetMs) this.deferred.shift()!();
    if (this.deferred.length > 0) {
      this.burstStart = start;
      this.schedule(this.drain);
    } else {
      this.burstStart = -1;
    }
  };
}

/** One pacer for the process: every path's completions share the one event loop. */
export const completionPacer = new CompletionPacer();

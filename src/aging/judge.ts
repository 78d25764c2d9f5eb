// The judgement of one signal (a node's available memory, an app's RSS, …): is it unstable, and why.
// Two conditions, either of which makes it so:
//   threshold: the value crossed `enter`; it clears only once back past `leave` (hysteresis: a value
//              hovering at the threshold does not flap);
//   trend:     the Theil–Sen slope over the last `windowSamples` samples reaches the signal's limit
//              (exhaustion) within `horizonMs`, and the Mann–Kendall test says the trend is real (|Z| ≥
//              TREND_Z); it clears once the estimate is beyond horizon × TREND_LEAVE, or the trend is gone.
// Neither is acted on at once (seed 000 claim 8): the signal becomes unstable only after the condition
// held for `holdMs` without a break, and stable again only after it stayed clear for `holdMs`.
// Pure: the caller gives each sample its time on a monotonic clock.
import { mannKendallZ, theilSenSlope, timeToLimit, type Point } from './trend.js';

/** A trend-based condition clears only once the estimated time to exhaustion is this many horizons away. */
export const TREND_LEAVE = 1.5;
/** The Mann–Kendall score from which a slope is a trend (p ≈ 0.003 for one window; windows overlap, hence strict). */
export const TREND_Z = 3;
/** Eight samples rising one after another score Z 3.3; seven only 2.9. */
export const MIN_TREND_SAMPLES = 8;

export interface JudgeOptions {
  /** 'rises': worse when higher (load, RSS, descriptors); 'falls': worse when lower (available memory). */
  worse: 'rises' | 'falls';
  windowSamples: number;
  holdMs: number;
  /** Trend judgement: an estimated time to exhaustion within this is a condition. */
  horizonMs: number;
}

export interface Sample {
  /** Monotonic ms. */
  t: number;
  value: number;
  /** The value at which the resource is exhausted (0 available, the descriptor limit); none: no trend judged. */
  limit?: number | undefined;
  /** The threshold band for this sample (it may move with the sample: a fraction of the memory total). */
  enter?: number | undefined;
  leave?: number | undefined;
}

export type Condition = 'threshold' | 'trend';

export interface Judgement {
  state: 'stable' | 'unstable';
  /** Whether the condition holds now (pending: it holds, the hold time not yet over; or clears, likewise). */
  condition: Condition | null;
  /** Monotonic ms since which the current state's condition held (unstable) or the pending one (stable); null: none. */
  since: number | null;
  value: number;
  /** Units per hour; null with too few samples for a trend. */
  slopePerHour: number | null;
  /** The Mann–Kendall score of the window; null with too few samples. A trend counts from |Z| ≥ TREND_Z. */
  trendZ: number | null;
  /** Estimated ms to exhaustion at the current slope; null: not moving towards its limit, or no limit. */
  etaMs: number | null;
  limit: number | null;
  enter: number | null;
  leave: number | null;
  samples: number;
}

export interface Transition {
  to: 'stable' | 'unstable';
  judgement: Judgement;
}

const HOUR_MS = 3_600_000;

export class SignalJudge {
  private readonly window: Point[] = [];
  private state: 'stable' | 'unstable' = 'stable';
  private condition: Condition | null = null;
  /** Since when the condition that would change the state has held without a break; null: it does not. */
  private changingSince: number | null = null;
  /** Since when the current unstable state's condition first held. */
  private unstableSince: number | null = null;
  private last: Judgement | undefined;

  constructor(private readonly o: JudgeOptions) {}

  get judgement(): Judgement | undefined {
    return this.last;
  }

  /** Takes one sample; returns the transition it caused, if any. */
  observe(s: Sample): Transition | undefined {
    this.window.push({ t: s.t, value: s.value });
    if (this.window.length > this.o.windowSamples) this.window.shift();
    // A trend needs half a window (two or three samples would call a start-up's growth a leak), and at
    // least MIN_TREND_SAMPLES: below that not even a perfectly steady rise reaches TREND_Z.
    const enough = this.window.length >= Math.max(MIN_TREND_SAMPLES, Math.ceil(this.o.windowSamples / 2));
    const slope = enough ? theilSenSlope(this.window) : undefined;
    const z = enough ? mannKendallZ(this.window) : undefined;
    // No time to exhaustion from a slope that noise could have drawn.
    const eta = z !== undefined && Math.abs(z) >= TREND_Z ? timeToLimit(s.value, slope, s.limit) : undefined;
    this.condition = this.conditionNow(s, eta);

    let transition: Transition['to'] | undefined;
    const wantsChange = this.state === 'stable' ? this.condition !== null : this.condition === null;
    if (!wantsChange) this.changingSince = null;
    else {
      this.changingSince ??= s.t;
      if (s.t - this.changingSince >= this.o.holdMs) {
        transition = this.state = this.state === 'stable' ? 'unstable' : 'stable';
        this.unstableSince = this.state === 'unstable' ? this.changingSince : null;
        this.changingSince = null;
      }
    }
    this.last = {
      state: this.state, condition: this.condition,
      since: this.state === 'unstable' ? this.unstableSince : this.changingSince,
      value: s.value,
      slopePerHour: slope === undefined ? null : slope * HOUR_MS,
      trendZ: z === undefined ? null : Math.round(z * 100) / 100,
      etaMs: eta ?? null, limit: s.limit ?? null, enter: s.enter ?? null, leave: s.leave ?? null,
      samples: this.window.length,
    };
    return transition && { to: transition, judgement: this.last };
  }

  /** The condition with hysteresis: once held, it takes the `leave` side (not just the `enter` one) to clear. */
  private conditionNow(s: Sample, eta: number | undefined): Condition | null {
    const holding = this.condition;
    const beyond = (bound: number) => (this.o.worse === 'rises' ? s.value >= bound : s.value <= bound);
    if (s.enter !== undefined) {
      const leave = s.leave ?? s.enter;
      // Past enter: on. Held before and not yet back past leave: still on.
      if (beyond(s.enter) || (holding === 'threshold' && !pastLeave(this.o.worse, s.value, leave))) return 'threshold';
    }
    if (eta !== undefined) {
      const bound = holding === 'trend' ? this.o.horizonMs * TREND_LEAVE : this.o.horizonMs;
      if (eta <= bound) return 'trend';
    }
    return null;
  }
}

function pastLeave(worse: 'rises' | 'falls', value: number, leave: number): boolean {
  return worse === 'rises' ? value < leave : value > leave;
}

// Power-fail sources (issue 5 item 5): each watches one UPS (through upsd, an APC smart serial link, or
// contact-closure lines) and turns what it sees into a few events. The policy (policy.ts) decides what an
// event means for the node; a source only reports, and never decides.
//
// A source's power state is one of online < on-battery < low-battery < forced-shutdown, plus whether it can
// talk to the UPS at all. Events are edges: the first state a source learns is reported once (detail.initial),
// then every change; repeating the same state is not an event. Losing the link is reported separately
// (comms-lost / comms-back) and leaves the last known power state as it was: no answer says nothing about
// the mains.
import { EventEmitter } from 'node:events';

export type PowerEventKind = 'online' | 'on-battery' | 'low-battery' | 'forced-shutdown' | 'comms-lost' | 'comms-back';

/** The power half of the event kinds, in order of severity. */
export type PowerState = 'online' | 'on-battery' | 'low-battery' | 'forced-shutdown';
export const POWER_STATES: readonly PowerState[] = ['online', 'on-battery', 'low-battery', 'forced-shutdown'];

export interface PowerEventDetail {
  /** Human-readable, one line: what the UPS said, e.g. `ups.status "OB LB"` or `Q=50 after alert %`. */
  text: string;
  /** The status as the UPS reported it (NUT ups.status, APC status byte in hex), when there is one. */
  raw?: string;
  /** The first state learned after the source started (not a change). */
  initial?: boolean;
  /** The UPS is on battery because it is testing itself (APC: last transfer cause 'S'; NUT: CAL), not a mains failure. */
  selfTest?: boolean;
  /** What made the source look: a poll, or an unsolicited alert (APC `!`, `$`, `%`, `+`). */
  via?: 'poll' | 'alert';
  /** For comms-lost: why the link is considered lost (timeouts, refused, DATA-STALE …). */
  error?: string;
}

export interface PowerEvent {
  kind: PowerEventKind;
  /** The source's configured name. */
  source: string;
  /** Wall-clock time of the event (ms since the epoch). */
  at: number;
  detail: PowerEventDetail;
}

export interface PowerSourceStatus {
  source: string;
  type: 'nut' | 'apc-smart' | 'contact-closure';
  /** True while the source gets answers from the UPS (or upsd). */
  connected: boolean;
  /** The last power state learned, undefined before the first answer. */
  state: PowerState | undefined;
  /** The last status as reported (ups.status, status byte), undefined before the first answer. */
  raw: string | undefined;
  /** The last event emitted. */
  last: PowerEvent | undefined;
  /** The last error seen on the link, kept after recovery for `vigil power status`. */
  lastError: string | undefined;
  /** Counters for diagnosis. */
  polls: number;
  failedPolls: number;
  reconnects: number;
}

export interface PowerSource {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
  status(): PowerSourceStatus;
  on(event: 'event', listener: (e: PowerEvent) => void): this;
  off(event: 'event', listener: (e: PowerEvent) => void): this;
}

/**
 * The edge detector shared by every source: feed it what the UPS says, it emits the events. It keeps the
 * status() fields so the sources only talk protocol.
 */
export class PowerTracker extends EventEmitter {
  private state: PowerState | undefined;
  private raw: string | undefined;
  private connected = false;
  private commsLost = false;
  private last: PowerEvent | undefined;
  private lastError: string | undefined;
  polls = 0;
  failedPolls = 0;
  reconnects = 0;

  constructor(readonly name: string, private readonly type: PowerSourceStatus['type'],
    private readonly clock: () => number = Date.now) {
    super();
  }

  /** An answer from the UPS: emits comms-back if the link had been declared lost, then the power edge if any. */
  observe(state: PowerState, raw: string, detail: Omit<PowerEventDetail, 'raw' | 'initial'>): void {
    this.polls++;
    this.connected = true;
    if (this.commsLost) {
      this.commsLost = false;
      this.emitEvent('comms-back', { text: `answering again (${detail.text})`, raw });
    }
    const initial = this.state === undefined;
    const changed = state !== this.state;
    this.state = state;
    this.raw = raw;
    if (changed) this.emitEvent(state, { ...detail, raw, ...(initial ? { initial: true } : {}) });
  }

  /** A poll (or connection attempt) that got no usable answer; `lost` says the source's threshold is reached. */
  failure(error: string, lost: boolean): void {
    this.failedPolls++;
    this.lastError = error;
    if (lost) {
      this.connected = false;
      if (!this.commsLost) {
        this.commsLost = true;
        this.emitEvent('comms-lost', { text: `no answer from the UPS: ${error}`, error });
      }
    }
  }

  get isCommsLost(): boolean {
    return this.commsLost;
  }

  get current(): PowerState | undefined {
    return this.state;
  }

  status(): PowerSourceStatus {
    return {
      source: this.name, type: this.type, connected: this.connected, state: this.state, raw: this.raw,
      last: this.last, lastError: this.lastError, polls: this.polls, failedPolls: this.failedPolls, reconnects: this.reconnects,
    };
  }

  private emitEvent(kind: PowerEventKind, detail: PowerEventDetail): void {
    const e: PowerEvent = { kind, source: this.name, at: this.clock(), detail };
    this.last = e;
    this.emit('event', e);
  }
}

/** Exponential backoff with a ceiling: initial, 2×, 4× … maxMs. */
/** The pause between the polls of a source's loop, which an alert or stop() cuts short. */
export class PollPause {
  private wakeUp: (() => void) | undefined;

  /** Resolves after `ms`, or at once when wake() is called meanwhile (the timer goes too). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wakeUp = undefined; resolve(); }, ms);
      this.wakeUp = () => { clearTimeout(timer); this.wakeUp = undefined; resolve(); };
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}

export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}

// Contact-closure UPS on a serial port (issue 5 item 5): the UPS closes relays that a cable turns into levels
// on the port's modem input lines (CTS, DCD, RI, DSR); some cables need DTR or RTS raised to power them.
// Which line means what, and at which level, depends on the UPS and its cable: NUT's genericups driver keeps
// a table of known cables (`upstype`), and lets OL, LB and CP override it ("OL=-CTS": on line while CTS is
// low). The same mapping is used here, the table included (GENERICUPS_TYPES), with DSR added.
//
// The native side (native/modem_lines.h) is a thread blocked in TIOCMIWAIT that reports, at each wake, the
// levels and the kernel's per-line edge counters. This file has two parts:
//   - ContactClosureLogic, pure: samples in, events out. A level counts once it has held for debounceMs
//     (contact bounce, a mains flicker); an edge counter that grew while the level stayed the same is a pulse
//     the thread could not see as two levels (it came and went between two wakes): it is counted and
//     reported, it restarts the debounce of a pending change, and it never changes the state by itself.
//   - ContactClosureSource, the PowerSource around a watcher: maps the debounced lines to online /
//     on-battery / low-battery (low battery counts only on battery, as upsmon and the NUT source do: a UPS
//     recharging says OL LB), reopens the port with backoff after an error (EIO: the USB adapter is gone),
//     and sets the cable-power outputs.
//
// Counters differ by driver: ftdi_sio and the other usb-serial drivers count every change of every line;
// the 8250 UART counts RI only on its trailing edge (and raises no interrupt on its leading edge, so a rising
// RI is seen at the next rescan). The logic therefore reads a count only as "something happened between
// two samples", never as an exact number of transitions.
import { EventEmitter } from 'node:events';

import { nativeAddon } from '../native.js';
import { PowerTracker, backoffMs, type PowerEvent, type PowerSource, type PowerSourceStatus, type PowerState } from './source.js';

export type InputLine = 'cts' | 'dcd' | 'ri' | 'dsr';
export const INPUT_LINES: readonly InputLine[] = ['cts', 'dcd', 'ri', 'dsr'];

/** One input line and the level at which its condition holds (on line, low battery). */
export interface LineRule {
  line: InputLine;
  activeHigh: boolean;
}

/** What the cable needs: which line says what, and the levels to hold DTR and RTS at. */
export interface ContactClosureMapping {
  online: LineRule;
  lowBattery?: LineRule;
  cablePower: { dtr: boolean; rts: boolean };
}

const LINE_NAMES: Record<string, InputLine> = { CTS: 'cts', DCD: 'dcd', CD: 'dcd', CAR: 'dcd', RNG: 'ri', RI: 'ri', DSR: 'dsr' };

/** "CTS" (condition while CTS is high) or "-CTS" (while low); also DCD/CD/CAR, RNG/RI, DSR. */
export function parseSignal(spec: string): LineRule {
  const m = /^\s*(-?)\s*([A-Za-z]+)\s*$/.exec(spec);
  const line = m ? LINE_NAMES[m[2]!.toUpperCase()] : undefined;
  if (!m || !line) throw new Error(`"${spec}" is not an input line: expected CTS, DCD, RNG or DSR, with - in front for active low`);
  return { line, activeHigh: m[1] !== '-' };
}

/** "DTR", "RTS", "DTR+RTS" (also "DTR RTS", "DTR,RTS") or "" / "none": the outputs held high; the others low. */
export function parseCablePower(spec: string): { dtr: boolean; rts: boolean } {
  const words = spec.toUpperCase().split(/[\s+,|]+/).filter((w) => w.length > 0 && w !== 'NONE');
  for (const w of words) if (w !== 'DTR' && w !== 'RTS') throw new Error(`"${w}" is not an output line: cable power is DTR, RTS, both or none`);
  return { dtr: words.includes('DTR'), rts: words.includes('RTS') };
}

/**
 * NUT genericups' cable table (drivers/genericups.h, types 0-22): cable power, the on-line and low-battery
 * lines with the level at which they hold, and the shutdown state (the outputs genericups sets, exactly, to
 * turn the UPS off; "break" is a serial break). vigil never drives the shutdown state; it is listed so that
 * nobody configures it as cable power by mistake.
 */
export const GENERICUPS_TYPES: readonly { type: number; cable: string; cp: string; ol: string; lb: string; sd: string }[] = [
  { type: 0, cable: 'UPSONIC LAN Saver 600', cp: 'DTR+RTS', ol: '-CTS', lb: 'DCD', sd: 'RTS' },
  { type: 1, cable: 'APC Back-UPS, 940-0095A/C cable', cp: 'DTR', ol: '-RNG', lb: 'DCD', sd: 'RTS' },
  { type: 2, cable: 'APC Back-UPS, 940-0020B/C cable', cp: 'RTS', ol: '-CTS', lb: 'DCD', sd: 'DTR+RTS' },
  { type: 3, cable: 'PowerTech Comp1000, DTR as cable power', cp: 'DTR', ol: '-CTS', lb: 'DCD', sd: 'DTR+RTS' },
  { type: 4, cable: 'Generic RUPS model', cp: 'RTS', ol: 'CTS', lb: '-DCD', sd: 'none' },
  { type: 5, cable: 'Tripp Lite with Lan2.2 interface, black 73-0844 cable', cp: 'DTR', ol: 'CTS', lb: '-DCD', sd: 'DTR+RTS' },
  { type: 6, cable: 'Best Patriot, INT51 cable', cp: 'DTR', ol: 'CTS', lb: '-DCD', sd: 'RTS' },
  { type: 7, cable: 'CyberPower Power99', cp: 'RTS', ol: 'CTS', lb: '-DCD', sd: 'DTR' },
  { type: 8, cable: 'Nitram Elite 500', cp: 'DTR', ol: 'CTS', lb: '-DCD', sd: 'unknown' },
  { type: 9, cable: 'APC Back-UPS, 940-0023A cable', cp: 'none', ol: '-DCD', lb: 'CTS', sd: 'RTS' },
  { type: 10, cable: 'Victron Lite, crack cable', cp: 'RTS', ol: 'CTS', lb: '-DCD', sd: 'DTR' },
  { type: 11, cable: 'Powerware 3115', cp: 'DTR', ol: '-CTS', lb: '-DCD', sd: 'break' },
  { type: 12, cable: 'APC Back-UPS Office, 940-0119A cable', cp: 'RTS', ol: '-CTS', lb: 'DCD', sd: 'DTR' },
  { type: 13, cable: 'Repoteck RPT-800A, RPT-162A', cp: 'DTR+RTS', ol: 'DCD', lb: '-CTS', sd: 'break' },
  { type: 14, cable: 'Online P-series', cp: 'DTR', ol: 'DCD', lb: '-CTS', sd: 'RTS' },
  { type: 15, cable: 'Powerware 5119', cp: 'DTR', ol: 'CTS', lb: '-DCD', sd: 'break' },
  { type: 16, cable: 'Nitram Elite 2002', cp: 'DTR+RTS', ol: 'CTS', lb: '-DCD', sd: 'unknown' },
  { type: 17, cable: 'PowerKinetics 9001', cp: 'DTR', ol: 'CTS', lb: '-DCD', sd: 'unknown' },
  { type: 18, cable: "TrippLite Omni 450LAN, Martin's cabling", cp: 'DTR', ol: 'CTS', lb: 'DCD', sd: 'none' },
  { type: 19, cable: 'Fideltronik Ares Series', cp: 'DTR', ol: 'CTS', lb: '-DCD', sd: 'RTS' },
  { type: 20, cable: 'Powerware 5119 RM', cp: 'DTR', ol: '-CTS', lb: 'DCD', sd: 'break' },
  { type: 21, cable: 'Generic RUPS 2000, Megatec M2501 cable', cp: 'RTS', ol: 'CTS', lb: '-DCD', sd: 'DTR+RTS' },
  { type: 22, cable: 'Gamatronic UPSs with alarm interface', cp: 'RTS', ol: 'CTS', lb: '-DCD', sd: 'DTR' },
];

/** The mapping of a genericups `upstype`, with genericups' own overrides (OL, LB, CP) applied. */
export function genericupsMapping(type: number, overrides: { OL?: string; LB?: string; CP?: string } = {}): ContactClosureMapping {
  const row = GENERICUPS_TYPES.find((r) => r.type === type);
  if (!row) throw new Error(`unknown genericups upstype ${type}: 0 to ${GENERICUPS_TYPES.length - 1}`);
  return {
    online: parseSignal(overrides.OL ?? row.ol),
    lowBattery: parseSignal(overrides.LB ?? row.lb),
    cablePower: parseCablePower(overrides.CP ?? row.cp),
  };
}

// -------------------------------------------------------------------------------------------------------
// The pure part

export type LineLevels = Record<InputLine, boolean>;
export type LineCounts = Record<InputLine, number>;

/** What the watcher saw at one wake: monotonic milliseconds, levels, and the counters where the driver has them. */
export interface LineSample {
  atMs: number;
  levels: LineLevels;
  counts: LineCounts | null;
  /** The first sample after the port was (re)opened: taken as it is, without debounce. */
  initial?: boolean;
}

export type ContactClosureOutput =
  | { type: 'state'; state: PowerState; raw: string; text: string; initial: boolean; atMs: number }
  /** Edges the thread saw only as counts (the line came back before it looked); `line` stayed at `level`. */
  | { type: 'pulse'; line: InputLine; edges: number; level: boolean; atMs: number; text: string };

interface Tracked {
  stable: boolean;      // the debounced level
  candidate: boolean;   // the level last seen
  since: number;        // when the candidate was last (re)started
}

/** Raw status in NUT's words, from the debounced conditions: "OL", "OB", "OB LB", "OL LB". */
export function rawStatus(online: boolean, lowBattery: boolean): string {
  return `${online ? 'OL' : 'OB'}${lowBattery ? ' LB' : ''}`;
}

export function powerState(online: boolean, lowBattery: boolean): PowerState {
  if (online) return 'online';
  return lowBattery ? 'low-battery' : 'on-battery';
}

const lineLabel = (r: LineRule) => `${r.activeHigh ? '' : '-'}${r.line.toUpperCase()}`;

export class ContactClosureLogic {
  private readonly lines = new Map<InputLine, Tracked>();
  private counts: LineCounts | null = null;
  private reported: string | undefined;
  pulses = 0;
  samples = 0;

  constructor(readonly mapping: ContactClosureMapping, readonly debounceMs: number) {
    if (!(debounceMs >= 0)) throw new RangeError('debounceMs must be 0 or more');
  }

  private get rules(): LineRule[] {
    return this.mapping.lowBattery ? [this.mapping.online, this.mapping.lowBattery] : [this.mapping.online];
  }

  /** Takes one sample; returns what it decided (state changes are also decided by tick()). */
  feed(s: LineSample): ContactClosureOutput[] {
    this.samples++;
    const out: ContactClosureOutput[] = [];
    const fresh = s.initial === true || this.lines.size === 0;
    if (fresh) {
      this.lines.clear();
      for (const r of this.rules) this.lines.set(r.line, { stable: s.levels[r.line], candidate: s.levels[r.line], since: s.atMs });
      this.counts = s.counts;
      this.reported = undefined;
      return this.decide(s.atMs, out, true);
    }
    for (const [line, t] of this.lines) {
      const level = s.levels[line];
      const edges = s.counts && this.counts ? Math.max(0, s.counts[line] - this.counts[line]) : 0;
      if (level !== t.candidate) {
        // An edge; more than one counted means the line bounced on its way: it has held its new level at
        // most since now, which is when the debounce starts either way.
        t.candidate = level;
        t.since = s.atMs;
        if (edges > 1) this.pulse(out, line, edges - 1, level, s.atMs);
      } else if (edges > 0) {
        // Same level as last seen, yet the counter moved: it left and came back between two wakes.
        this.pulse(out, line, edges, level, s.atMs);
        if (t.candidate !== t.stable) t.since = s.atMs;  // a pending change must hold again from now
      }
    }
    if (s.counts) this.counts = s.counts;
    return this.decide(s.atMs, out, false);
  }

  /** Settles the levels that have now held for debounceMs. */
  tick(nowMs: number): ContactClosureOutput[] {
    return this.decide(nowMs, [], false);
  }

  /** When tick() should next run (monotonic ms), or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const t of this.lines.values()) {
      if (t.candidate !== t.stable) next = Math.min(next ?? Infinity, t.since + this.debounceMs);
    }
    return next;
  }

  /** The debounced conditions, undefined before the first sample. */
  conditions(): { online: boolean; lowBattery: boolean } | undefined {
    const ol = this.lines.get(this.mapping.online.line);
    if (!ol) return undefined;
    const lbRule = this.mapping.lowBattery;
    const lb = lbRule ? this.lines.get(lbRule.line) : undefined;
    return {
      online: ol.stable === this.mapping.online.activeHigh,
      lowBattery: lbRule !== undefined && lb !== undefined && lb.stable === lbRule.activeHigh,
    };
  }

  private pulse(out: ContactClosureOutput[], line: InputLine, edges: number, level: boolean, atMs: number): void {
    this.pulses++;
    out.push({ type: 'pulse', line, edges, level, atMs, text: `${line.toUpperCase()} pulsed (${edges} edge${edges === 1 ? '' : 's'} between two looks, back ${level ? 'high' : 'low'})` });
  }

  private decide(nowMs: number, out: ContactClosureOutput[], initial: boolean): ContactClosureOutput[] {
    for (const t of this.lines.values()) {
      if (t.candidate !== t.stable && nowMs - t.since >= this.debounceMs) t.stable = t.candidate;
    }
    const c = this.conditions();
    if (!c) return out;
    const raw = rawStatus(c.online, c.lowBattery);
    if (raw !== this.reported) {
      this.reported = raw;
      const state = powerState(c.online, c.lowBattery);
      const lb = this.mapping.lowBattery;
      const text = `${raw} (on line ${lineLabel(this.mapping.online)} ${c.online ? 'holds' : 'does not hold'}` +
        (lb ? `, low battery ${lineLabel(lb)} ${c.lowBattery ? 'holds' : 'does not hold'}` : '') + ')';
      out.push({ type: 'state', state, raw, text, initial, atMs: nowMs });
    }
    return out;
  }
}

// -------------------------------------------------------------------------------------------------------
// The native watcher and the source around it

/** An event of native/modem_lines.cc's thread. */
export interface ModemLineEvent {
  kind: 'initial' | 'change' | 'rescan' | 'set' | 'error';
  seq: number;
  /** CLOCK_MONOTONIC when the thread woke (process.hrtime.bigint()'s clock). */
  atNs: bigint;
  levels: (LineLevels & { dtr: boolean; rts: boolean }) | null;
  tiocm: number | null;
  counts: LineCounts | null;
  /** Events the bounded queue refused so far (the counts in later events cover what they carried). */
  dropped: number;
  wakes: number;
  /** The driver has no TIOCMIWAIT: the thread polls every rescanMs. */
  polling: boolean;
  setId?: number;
  errno?: number;
  code?: string;
  message?: string;
  syscall?: string;
}

export interface ModemLineWatcherOptions {
  onEvent: (e: ModemLineEvent) => void;
  /** true raises, false lowers right after the open; absent leaves the line as the open left it (raised). */
  dtr?: boolean;
  rts?: boolean;
  /** Periodic re-read of the lines (default 500; 0: none). */
  rescanMs?: number;
  queueSize?: number;
}

export interface ModemLineWatcherHandle {
  setLines(id: number, lines: { dtr?: boolean; rts?: boolean }): void;
  stop(): void;
}

export type ModemLineWatcherFactory = (device: string, options: ModemLineWatcherOptions) => ModemLineWatcherHandle;

/** The native watcher (build/Release/vigil_native.node, ModemLineWatcher). */
export const nativeModemLineWatcher: ModemLineWatcherFactory = (device, options) => {
  const addon = nativeAddon() as unknown as { ModemLineWatcher: new (device: string, options: ModemLineWatcherOptions) => ModemLineWatcherHandle };
  return new addon.ModemLineWatcher(device, options);
};

export interface ContactClosureOptions {
  /** The source's name in events (default `contact-closure:<device>`). */
  name?: string;
  /** The serial port, e.g. /dev/ttyS0 or /dev/serial/by-id/usb-FTDI_…; a pty has no modem lines. */
  device: string;
  mapping: ContactClosureMapping;
  /** How long a level must hold before it counts (default 100). */
  debounceMs?: number;
  /** Periodic re-read of the lines by the thread (default 500). */
  rescanMs?: number;
  /** Reopen backoff after the port failed or vanished (defaults 250 → 5000). */
  backoffMs?: number;
  backoffMaxMs?: number;
}

export interface ContactClosureDeps {
  watcher?: ModemLineWatcherFactory;
  /** Monotonic milliseconds on the watcher's clock (CLOCK_MONOTONIC). */
  now?: () => number;
  wallClock?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface ContactClosureLines {
  open: boolean;
  levels: (LineLevels & { dtr: boolean; rts: boolean }) | undefined;
  counts: LineCounts | undefined;
  pulses: number;
  dropped: number;
  polling: boolean;
  errors: number;
}

const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

export class ContactClosureSource extends EventEmitter implements PowerSource {
  readonly name: string;
  private readonly tracker: PowerTracker;
  private readonly logic: ContactClosureLogic;
  private readonly opts: Required<Omit<ContactClosureOptions, 'name'>>;
  private readonly deps: Required<ContactClosureDeps>;
  private watcher: ModemLineWatcherHandle | undefined;
  private debounceTimer: unknown;
  private reopenTimer: unknown;
  private attempt = 0;
  private running = false;
  private nextSetId = 1;
  private readonly pendingSets = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private lastEvent: ModemLineEvent | undefined;
  private errors = 0;

  constructor(options: ContactClosureOptions, deps: ContactClosureDeps = {}) {
    super();
    this.name = options.name ?? `contact-closure:${options.device}`;
    this.opts = {
      device: options.device, mapping: options.mapping, debounceMs: options.debounceMs ?? 100,
      rescanMs: options.rescanMs ?? 500, backoffMs: options.backoffMs ?? 250, backoffMaxMs: options.backoffMaxMs ?? 5000,
    };
    this.deps = {
      watcher: deps.watcher ?? nativeModemLineWatcher, now: deps.now ?? monotonicMs, wallClock: deps.wallClock ?? Date.now,
      setTimer: deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: deps.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout)),
    };
    this.logic = new ContactClosureLogic(options.mapping, this.opts.debounceMs);
    this.tracker = new PowerTracker(this.name, 'contact-closure', this.deps.wallClock);
    this.tracker.on('event', (e: PowerEvent) => this.emit('event', e));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.clear();
    this.watcher?.stop();
    this.watcher = undefined;
    for (const p of this.pendingSets.values()) p.reject(new Error(`${this.name}: stopped`));
    this.pendingSets.clear();
  }

  status(): PowerSourceStatus {
    return this.tracker.status();
  }

  /** The lines as last read, for `vigil power status` and diagnosis. */
  lines(): ContactClosureLines {
    const e = this.lastEvent;
    return {
      open: this.watcher !== undefined, levels: e?.levels ?? undefined, counts: e?.counts ?? undefined,
      pulses: this.logic.pulses, dropped: e?.dropped ?? 0, polling: e?.polling ?? false, errors: this.errors,
    };
  }

  /** Changes DTR/RTS now (the configured cable power is applied at every open anyway). */
  setLines(lines: { dtr?: boolean; rts?: boolean }): Promise<void> {
    const w = this.watcher;
    if (!w) return Promise.reject(new Error(`${this.name}: the port is not open`));
    const id = this.nextSetId++;
    return new Promise((resolve, reject) => {
      this.pendingSets.set(id, { resolve, reject });
      try {
        w.setLines(id, lines);
      } catch (e) {
        this.pendingSets.delete(id);
        reject(e as Error);
      }
    });
  }

  private open(): void {
    const { dtr, rts } = this.opts.mapping.cablePower;
    try {
      this.watcher = this.deps.watcher(this.opts.device, { dtr, rts, rescanMs: this.opts.rescanMs, onEvent: (e) => this.onEvent(e) });
    } catch (e) {
      this.failed(`cannot watch ${this.opts.device}: ${(e as Error).message}`);
    }
  }

  private onEvent(e: ModemLineEvent): void {
    if (!this.running) return;
    if (e.kind === 'error') {
      this.errors++;
      this.watcher?.stop();  // the thread has ended; this only lets go of the native object
      this.watcher = undefined;
      for (const p of this.pendingSets.values()) p.reject(new Error(`${this.name}: ${e.syscall}: ${e.message}`));
      this.pendingSets.clear();
      this.failed(`${this.opts.device}: ${e.syscall}: ${e.code ?? ''} ${e.message ?? ''}`.trim());
      return;
    }
    this.lastEvent = e;
    if (e.kind === 'set' && e.setId !== undefined) {
      const p = this.pendingSets.get(e.setId);
      this.pendingSets.delete(e.setId);
      if (p) {
        if (e.errno) p.reject(new Error(`${this.name}: setting DTR/RTS: ${e.code} ${e.message}`)); else p.resolve();
      }
    }
    if (!e.levels) return;
    if (e.kind === 'initial') this.attempt = 0;
    const sample: LineSample = { atMs: Number(e.atNs) / 1e6, levels: e.levels, counts: e.counts, initial: e.kind === 'initial' };
    this.apply(this.logic.feed(sample));
  }

  private apply(outputs: ContactClosureOutput[]): void {
    for (const o of outputs) {
      if (o.type === 'pulse') {
        this.emit('pulse', o);
      } else {
        this.tracker.observe(o.state, o.raw, { text: o.text, via: 'alert' });
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.debounceTimer !== undefined) this.deps.clearTimer(this.debounceTimer);
    this.debounceTimer = undefined;
    const deadline = this.logic.nextDeadline();
    if (deadline === undefined || !this.running) return;
    const wait = Math.max(0, deadline - this.deps.now());
    this.debounceTimer = this.deps.setTimer(() => {
      this.debounceTimer = undefined;
      if (this.running) this.apply(this.logic.tick(this.deps.now()));
    }, Math.ceil(wait));
  }

  private failed(error: string): void {
    this.tracker.failure(error, true);
    if (!this.running || this.reopenTimer !== undefined) return;
    const wait = backoffMs(this.attempt++, this.opts.backoffMs, this.opts.backoffMaxMs);
    this.tracker.reconnects++;
    this.reopenTimer = this.deps.setTimer(() => {
      this.reopenTimer = undefined;
      if (this.running) this.open();
    }, wait);
  }

  private clear(): void {
    if (this.debounceTimer !== undefined) this.deps.clearTimer(this.debounceTimer);
    if (this.reopenTimer !== undefined) this.deps.clearTimer(this.reopenTimer);
    this.debounceTimer = this.reopenTimer = undefined;
  }
}

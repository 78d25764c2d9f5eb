// APC smart protocol power source: an APC Smart-UPS (or Back-UPS Pro, Matrix-UPS) on a serial port, through
// the serialport package (deps.md: serialport only for byte protocols; modem lines are the addon's).
//
// The protocol (apcupsd's doc/manual/smartprotocol.rst, src/drivers/apcsmart/smart.c, include/defines.h):
// 2400 bps 8N1; the host sends one character, the UPS answers a line ending in \r\n, or NA.
//  - `Y` enters smart mode and is answered `SM`; a UPS in dumb mode answers nothing else, so the handshake
//    is repeated whenever a command went unanswered (apcupsd's UPSlinkCheck does the same).
//  - `Q` gives the status flags as two hex digits: bit 3 (0x08) on line, bit 4 (0x10) on battery, bit 6 (0x40)
//    battery low (defines.h UPS_online, UPS_onbatt, UPS_battlow). An `SM` answer means the register is not
//    ready yet: asked again (apcupsd retries 5 times).
//  - `G` gives the cause of the last transfer to battery; `S` is a self-test (apcupsd reads it on the change
//    to battery to tell a self-test from a mains failure), reported as detail.selfTest.
//  - Unsolicited single-character alerts, anywhere in the byte stream, even inside an answer: `!` line
//    failure (repeated every 30 s on battery), `$` back on line, `%` battery low, `+` battery no longer low,
//    `*` about to turn the load off (nothing answered after it); `?`, `=`, `#`, `&`, `|` are noted only.
//
// An alert never decides on its own: a byte of line noise can be a `%`. It makes the source poll at once, and
// the status byte decides; a change to low battery (the one that makes the node leave) is read twice in a
// row before it counts. The exception is `*`: "no commands are processed after this character is sent", so
// `*` followed by silence is taken as forced-shutdown, and `*` followed by any proper answer was noise.
// Silence means two commands in a row without a single byte coming back: an answer garbled by noise is not
// silence (the test's random noise once turned a `*` and a garbled answer into a false forced shutdown).
//
// Polls every pollMs (default 1 s: five bytes a second on a line that carries 240; the alerts make the poll a
// backstop, not the detector). An answer has timeoutMs (default 1 s, apcupsd's TIMER_FAST). comms-lost after
// commsLostAfter unanswered polls in a row (default 3; apcupsd waits 20 s, but here it is only a warning).
// A port that cannot be opened, or goes away (a USB adapter unplugged), is reopened with backoff.
import { SerialPort } from 'serialport';

import { PollPause, PowerTracker, backoffMs, type PowerEvent, type PowerSource, type PowerSourceStatus, type PowerState } from './source.js';

export interface ApcSmartOptions {
  name?: string;
  device: string;
  pollMs?: number;
  timeoutMs?: number;
  commsLostAfter?: number;
  backoffMs?: number;
  backoffMaxMs?: number;
}

export const APC_BIT = { CALIBRATION: 0x01, TRIM: 0x02, BOOST: 0x04, ONLINE: 0x08, ON_BATTERY: 0x10, OVERLOAD: 0x20, BATTERY_LOW: 0x40, REPLACE_BATTERY: 0x80 } as const;

/** Alert characters (smartprotocol.rst "Alert messages"). */
export const APC_ALERTS = new Set(['!', '$', '%', '+', '?', '=', '*', '#', '&', '|']);
const ACTED_ON = new Set(['!', '$', '%', '+', '*']);

/** The status byte → power state; undefined when it says neither on line nor on battery, or both. */
export function interpretApcStatus(byte: number): PowerState | undefined {
  const online = (byte & APC_BIT.ONLINE) !== 0;
  const battery = (byte & APC_BIT.ON_BATTERY) !== 0;
  if (online === battery) return undefined;
  if (battery) return (byte & APC_BIT.BATTERY_LOW) !== 0 ? 'low-battery' : 'on-battery';
  return 'online'; // on line with the battery low (recharging) is not critical
}

/** Parses a Q answer: exactly two hex digits. */
export function parseApcStatus(line: string): number | undefined {
  return /^[0-9A-Fa-f]{2}$/.test(line) ? parseInt(line, 16) : undefined;
}

/**
 * Splits the byte stream into alerts and answer lines, the way apcupsd's getline does: an alert character is
 * taken out wherever it appears, \r is dropped, \n ends a line. Bytes outside printable ASCII are noise and
 * dropped; a line longer than maxLine is noise too.
 */
export class ApcLineParser {
  private line = '';
  private overflow = false;
  constructor(private readonly onAlert: (c: string) => void, private readonly onLine: (line: string) => void, private readonly maxLine = 64) {}

  push(data: Buffer): void {
    for (const b of data) {
      const c = String.fromCharCode(b);
      if (APC_ALERTS.has(c)) { this.onAlert(c); continue; }
      if (c === '\r') continue;
      if (c === '\n') {
        const l = this.line;
        const bad = this.overflow;
        this.line = '';
        this.overflow = false;
        if (!bad) this.onLine(l);
        continue;
      }
      if (b < 0x20 || b > 0x7e) { this.overflow = true; continue; } // a garbled line: dropped at its end
      if (this.line.length >= this.maxLine) { this.overflow = true; continue; }
      this.line += c;
    }
  }

  reset(): void {
    this.line = '';
    this.overflow = false;
  }
}

class ApcTimeout extends Error {
  constructor(cmd: string, ms: number, readonly silent: boolean) {
    super(`no answer to ${JSON.stringify(cmd)} within ${ms} ms${silent ? '' : ' (only noise)'}`);
    this.name = 'ApcTimeout';
  }
}

export class ApcSmartSource implements PowerSource {
  readonly name: string;
  private readonly tracker: PowerTracker;
  private readonly o: Required<Omit<ApcSmartOptions, 'name'>>;
  private port: SerialPort | undefined;
  private readonly parser: ApcLineParser;
  private pending: { resolve: (l: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; cmd: string } | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly pause = new PollPause();
  private smart = false;
  private failedInARow = 0;
  private openAttempts = 0;
  private alertWaiting: string | undefined;
  private shutdownAlert = false;
  /** Commands without a byte back since the last `*`. */
  private silentAsks = 0;
  private rxBytes = 0;
  /** Alerts seen, by character, and how many a poll did not confirm. */
  readonly alerts: Record<string, number> = {};
  unconfirmed = 0;
  /** performance.now() of the last alert (latency figures). */
  lastAlertAt = 0;

  constructor(options: ApcSmartOptions, clock: () => number = Date.now) {
    this.o = {
      device: options.device, pollMs: options.pollMs ?? 1000, timeoutMs: options.timeoutMs ?? 1000,
      commsLostAfter: options.commsLostAfter ?? 3, backoffMs: options.backoffMs ?? 500, backoffMaxMs: options.backoffMaxMs ?? 5000,
    };
    this.name = options.name ?? `apc-smart:${options.device}`;
    this.tracker = new PowerTracker(this.name, 'apc-smart', clock);
    this.parser = new ApcLineParser((c) => this.onAlert(c), (l) => this.onLine(l));
  }

  on(event: 'event', listener: (e: PowerEvent) => void): this { this.tracker.on(event, listener); return this; }
  off(event: 'event', listener: (e: PowerEvent) => void): this { this.tracker.off(event, listener); return this; }
  status(): PowerSourceStatus { return this.tracker.status(); }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.pause.wake();
    this.failPending(new Error('stopped'));
    await this.loop;
    await this.closePort();
  }

  private onAlert(c: string): void {
    this.alerts[c] = (this.alerts[c] ?? 0) + 1;
    if (!ACTED_ON.has(c)) return;
    this.lastAlertAt = performance.now();
    if (c === '*') { this.shutdownAlert = true; this.silentAsks = 0; }
    this.alertWaiting = c;
    this.pause.wake();
  }

  private onLine(line: string): void {
    const p = this.pending;
    if (!p) return; // an answer nobody waits for (late, or noise): dropped
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(line);
  }

  private failPending(e: Error): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) { clearTimeout(p.timer); p.reject(e); }
  }

  /** Sends one command character and waits for its line. */
  private ask(cmd: string): Promise<string> {
    const port = this.port;
    if (!port || !port.isOpen) return Promise.reject(new Error('port not open'));
    this.parser.reset();
    const rxBefore = this.rxBytes;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        // A late answer must not be taken for the next command's: throw away what is queued both ways.
        port.flush(() => undefined);
        this.parser.reset();
        const silent = this.rxBytes === rxBefore;
        if (this.shutdownAlert) this.silentAsks = silent ? this.silentAsks + 1 : 0;
        reject(new ApcTimeout(cmd, this.o.timeoutMs, silent));
      }, this.o.timeoutMs);
      this.pending = { resolve, reject, timer, cmd };
      port.write(cmd, (err) => { if (err) this.failPending(err); });
    });
  }

  private openPort(): Promise<void> {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path: this.o.device, baudRate: 2400, dataBits: 8, parity: 'none', stopBits: 1, autoOpen: false, hupcl: false });
      port.on('data', (d: Buffer) => { this.rxBytes += d.length; this.parser.push(d); });
      port.on('error', () => undefined); // surfaced through close / failed commands
      port.on('close', () => {
        if (this.port === port) { this.port = undefined; this.smart = false; this.failPending(new Error('port closed')); this.pause.wake(); }
      });
      port.open((err) => {
        if (err) { reject(err); return; }
        this.port = port;
        resolve();
      });
    });
  }

  private closePort(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    this.smart = false;
    if (!port || !port.isOpen) return Promise.resolve();
    return new Promise((resolve) => port.close(() => resolve()));
  }

  private sleep(ms: number): Promise<void> {
    if (this.alertWaiting) return Promise.resolve();
    return this.pause.sleep(ms);
  }

  private async run(): Promise<void> {
    while (this.running) {
      let waitMs = this.o.pollMs;
      try {
        if (!this.port) {
          this.openAttempts++;
          if (this.openAttempts > 1) this.tracker.reconnects++;
          await this.openPort();
          this.openAttempts = 0;
        }
        if (!this.smart) {
          // Y, and once more if the first was lost in noise (apcupsd's apc_enable sends two).
          let answer = await this.ask('Y').catch((e: unknown) => {
            if (this.shutdownAlert && this.silentAsks >= 2) throw e; // `*` and silence: no second try needed
            return '';
          });
          if (answer !== 'SM') answer = await this.ask('Y');
          if (answer !== 'SM') throw new Error(`Y answered ${JSON.stringify(answer)}, not SM`);
          this.smart = true;
        }
        await this.poll();
      } catch (e) {
        if (!this.running) break;
        const msg = e instanceof Error ? e.message : String(e);
        if (this.shutdownAlert && this.silentAsks >= 2) {
          // `*` and then silence: the UPS is turning the load off.
          this.shutdownAlert = false;
          this.tracker.observe('forced-shutdown', '*', { text: `alert * (about to turn the load off), then ${this.silentAsks} commands without a byte back`, via: 'alert' });
          this.smart = false;
        } else {
          this.smart = false;
          this.failedInARow++;
          this.tracker.failure(msg, this.failedInARow >= this.o.commsLostAfter);
        }
        if (!this.port) waitMs = backoffMs(Math.max(0, this.openAttempts - 1), this.o.backoffMs, this.o.backoffMaxMs);
        else if (this.shutdownAlert) waitMs = 0; // after `*`, find out at once whether the UPS went quiet
        else waitMs = Math.min(this.o.pollMs, backoffMs(Math.max(0, this.failedInARow - 1), this.o.backoffMs, this.o.backoffMaxMs));
      }
      if (!this.running) break;
      await this.sleep(waitMs);
    }
  }

  /** Q until a status byte (an SM answer is retried, as apcupsd does). */
  private async readStatus(): Promise<number> {
    for (let i = 0; ; i++) {
      const line = await this.ask('Q');
      const byte = parseApcStatus(line);
      if (byte !== undefined) return byte;
      if (line !== 'SM' || i >= 4) throw new Error(`Q answered ${JSON.stringify(line)}`);
    }
  }

  private async poll(): Promise<void> {
    const alert = this.alertWaiting;
    this.alertWaiting = undefined;
    const shutdown = this.shutdownAlert;
    let byte = await this.readStatus();
    let state = interpretApcStatus(byte);
    if (state === undefined) throw new Error(`status 0x${hex(byte)} is neither on line nor on battery`);
    const current = this.tracker.current;
    if (state === 'low-battery' && current !== 'low-battery' && current !== 'forced-shutdown') {
      // The one change that makes the node leave: read it twice.
      const again = await this.readStatus();
      if (interpretApcStatus(again) !== state) {
        this.unconfirmed++;
        this.failedInARow = 0;
        return;
      }
      byte = again;
    }
    this.failedInARow = 0;
    if (shutdown) {
      // A UPS processes no command after a real `*`: one that answers Q sent none, this was noise.
      this.shutdownAlert = false;
      this.unconfirmed++;
    }
    if (alert && !alertAgrees(alert, state)) this.unconfirmed++;
    let selfTest = false;
    if (state === 'on-battery' && (current === undefined || current === 'online')) {
      // Why on battery? A self-test (cause S) is not a mains failure.
      const cause = await this.ask('G').catch(() => '');
      selfTest = cause === 'S';
    }
    if (current === 'forced-shutdown' && state !== 'online') state = 'forced-shutdown'; // `*` stands until power is back
    const text = `Q=${hex(byte)}${alert ? ` after alert ${alert}` : ''}${selfTest ? ' (self-test)' : ''}`;
    this.tracker.observe(state, hex(byte), { text, via: alert ? 'alert' : 'poll', ...(selfTest ? { selfTest } : {}) });
  }
}

function hex(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}

function alertAgrees(alert: string, state: PowerState): boolean {
  switch (alert) {
    case '!': return state !== 'online';
    case '$': return state === 'online';
    case '%': return state === 'low-battery';
    case '+': return state !== 'low-battery';
    default: return true;
  }
}

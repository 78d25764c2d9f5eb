#!/usr/bin/env node
// A simulated APC Smart-UPS on a serial port (a pty, in the tests): the part of the APC smart protocol that
// vigil's src/power/apc-smart.ts speaks, as apcupsd's manual (doc/manual/smartprotocol.rst) describes it.
//
//   host → UPS                     UPS → host
//   Y  enter smart mode            SM\r\n      (nothing else is answered before it, as a real UPS in dumb mode)
//   Q  status flags                two hex digits\r\n: bit 3 0x08 on line, bit 4 0x10 on battery,
//                                  bit 6 0x40 battery low (0x08 on line, 0x10 on battery, 0x50 on battery low)
//   G  cause of last transfer      one letter\r\n (O none, L low line voltage, S self-test …)
//   R  turn dumb                   BYE\r\n, then only Y is answered
//   ^A model, B battery voltage, f battery level; anything else NA\r\n
//   unsolicited alerts, single characters without CR/LF: ! on battery (line fail), $ back on line,
//   % battery low, + battery no longer low, * about to turn off the load (no command answered after it)
//
// Scriptable from code (the tests import it) or from stdin when run as a program:
//   node hw-fixtures/apc-sim/apc-sim.mjs /path/to/pty [--pace]
//   then lines: battery | selftest | low | battery-ok | online | shutdown | mute | unmute | dumb | garbage N |
//   corrupt N | status | quit
// --pace (or { pace: true }) sends each byte 1/240 s apart, as 2400 baud 8N1 (10 bits a byte) would: a pty
// has no baud rate and would otherwise deliver at once.
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { SerialPort } from 'serialport';

export const BYTE_MS = 10_000 / 2400; // 4.17 ms per byte at 2400 8N1
export const STATUS = { ONLINE: 0x08, ON_BATTERY: 0x10, BATTERY_LOW: 0x40, REPLACE_BATTERY: 0x80, TRIM: 0x02, BOOST: 0x04, OVERLOAD: 0x20 };

export class ApcSimulator extends EventEmitter {
  /** @param {string} path  @param {{ pace?: boolean, answerDelayMs?: number }} [options] */
  constructor(path, options = {}) {
    super();
    this.path = path;
    this.pace = options.pace ?? false;
    this.answerDelayMs = options.answerDelayMs ?? 0;
    this.status = STATUS.ONLINE;
    this.cause = 'O';
    this.smart = false;
    this.muted = false;
    this.sentLineFail = false;
    this.sentLow = false;
    /** Every command byte received, as characters. */
    this.received = [];
    this.port = undefined;
    this.queue = [];
    this.writing = false;
    /** performance.now() when the last alert's byte left (for latency figures). */
    this.lastAlertAt = 0;
    /** The next this many answers are garbled. */
    this.corruptAnswers = 0;
  }

  open() {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path: this.path, baudRate: 2400, dataBits: 8, parity: 'none', stopBits: 1, autoOpen: false, lock: false });
      port.on('data', (d) => this.onData(d));
      port.on('error', (e) => this.emit('port-error', e));
      port.on('close', () => this.emit('closed'));
      port.open((err) => {
        if (err) reject(err);
        else { this.port = port; resolve(this); }
      });
    });
  }

  close() {
    const port = this.port;
    this.port = undefined;
    this.queue = [];
    if (!port || !port.isOpen) return Promise.resolve();
    return new Promise((resolve) => port.close(() => resolve()));
  }

  /** @param {Buffer} d */
  onData(d) {
    for (const byte of d) {
      const c = String.fromCharCode(byte);
      this.received.push(c);
      this.emit('command', c);
      if (this.muted) continue;
      if (c === 'Y') { this.smart = true; this.reply('SM'); continue; }
      if (!this.smart) continue; // dumb mode: silent until Y
      switch (c) {
        case 'Q': this.reply(this.status.toString(16).toUpperCase().padStart(2, '0')); break;
        case 'G': this.reply(this.cause); break;
        case 'R': this.reply('BYE'); this.smart = false; break;
        case '\x01': this.reply('SIM-UPS 1500'); break;
        case 'B': this.reply(this.status & STATUS.BATTERY_LOW ? '22.10' : '27.87'); break;
        case 'f': this.reply(this.status & STATUS.BATTERY_LOW ? '012.0' : '100.0'); break;
        default: this.reply('NA');
      }
    }
  }

  reply(text) {
    if (this.corruptAnswers > 0) {
      // Line noise over an answer: same length, bytes flipped, the line end intact (the worst case: it parses as a line).
      this.corruptAnswers--;
      text = Buffer.from(text, 'latin1').map((b) => (b ^ 0x5a) | 0x80).toString('latin1');
    }
    if (this.answerDelayMs > 0) setTimeout(() => this.send(`${text}\r\n`), this.answerDelayMs);
    else this.send(`${text}\r\n`);
  }

  /** Writes bytes, one every BYTE_MS when pacing. @param {string | Buffer} data */
  send(data) {
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (!this.port) return;
    if (!this.pace) { this.port.write(buf); return; }
    for (const b of buf) this.queue.push(b);
    if (!this.writing) this.drainPaced();
  }

  drainPaced() {
    const b = this.queue.shift();
    if (b === undefined || !this.port) { this.writing = false; return; }
    this.writing = true;
    this.port.write(Buffer.from([b]));
    setTimeout(() => this.drainPaced(), BYTE_MS);
  }

  alert(c) {
    if (!this.smart || this.muted) return;
    this.send(c);
    this.lastAlertAt = performance.now();
  }

  // --- scripting -------------------------------------------------------------------------------------------

  /** Mains fail: status on battery, transfer cause L (low line voltage), alert `!`. */
  onBattery({ selfTest = false } = {}) {
    this.status = (this.status & ~(STATUS.ONLINE | STATUS.TRIM | STATUS.BOOST)) | STATUS.ON_BATTERY;
    this.cause = selfTest ? 'S' : 'L';
    this.sentLineFail = true;
    this.alert('!');
  }

  /** Battery low while on battery: 0x50, alert `%`. */
  lowBattery() {
    this.status |= STATUS.BATTERY_LOW;
    this.sentLow = true;
    this.alert('%');
  }

  /** Battery recovered above the low mark: alert `+` (only after a `%`). */
  batteryOk() {
    this.status &= ~STATUS.BATTERY_LOW;
    if (this.sentLow) this.alert('+');
    this.sentLow = false;
  }

  /** Mains back: 0x08, alert `$` (only after a `!`, as a real UPS). */
  online() {
    this.status = (this.status & ~(STATUS.ON_BATTERY | STATUS.BATTERY_LOW)) | STATUS.ONLINE;
    if (this.sentLineFail) this.alert('$');
    this.sentLineFail = false;
    this.sentLow = false;
  }

  /** About to turn the load off: alert `*`, then no command is answered. */
  shutdown() {
    this.alert('*');
    this.muted = true;
  }

  /** Stop answering (cable pulled on the UPS side, UPS hung) / answer again. */
  mute(on = true) { this.muted = on; }

  /** Back to dumb mode (as after a UPS power cycle): nothing answered until the next Y. */
  dumb() { this.smart = false; }

  /** Garble the next n answers (noise on the line while the UPS talks). */
  corrupt(n = 1) { this.corruptAnswers += n; }

  /** Raw bytes on the line (noise): random bytes, or those given. @param {number | Buffer} what */
  garbage(what) {
    const buf = typeof what === 'number' ? Buffer.from(Array.from({ length: what }, () => Math.floor(Math.random() * 256))) : what;
    this.send(buf);
    return buf;
  }
}

async function main() {
  const args = process.argv.slice(2);
  const path = args.find((a) => !a.startsWith('--'));
  if (!path) {
    console.error('usage: apc-sim.mjs DEVICE [--pace]   (then commands on stdin: battery selftest low battery-ok online shutdown mute unmute dumb garbage N corrupt N status quit)');
    process.exit(1);
  }
  const sim = new ApcSimulator(path, { pace: args.includes('--pace') });
  await sim.open();
  sim.on('command', (c) => console.log(`< ${JSON.stringify(c)}`));
  console.log(`apc-sim on ${path}: status 0x${sim.status.toString(16)}`);
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, arg] = line.trim().split(/\s+/);
    switch (cmd) {
      case 'battery': sim.onBattery(); break;
      case 'selftest': sim.onBattery({ selfTest: true }); break;
      case 'low': sim.lowBattery(); break;
      case 'battery-ok': sim.batteryOk(); break;
      case 'online': sim.online(); break;
      case 'shutdown': sim.shutdown(); break;
      case 'mute': sim.mute(true); break;
      case 'unmute': sim.mute(false); break;
      case 'dumb': sim.dumb(); break;
      case 'garbage': sim.garbage(Number(arg ?? 16)); break;
      case 'corrupt': sim.corrupt(Number(arg ?? 1)); break;
      case 'quit': await sim.close(); return;
      case 'status': case '': break;
      default: console.log(`unknown command ${cmd}`);
    }
    console.log(`status 0x${sim.status.toString(16).padStart(2, '0')} smart ${sim.smart} muted ${sim.muted}`);
  }
  await sim.close();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => { console.error(e); process.exit(1); });
}

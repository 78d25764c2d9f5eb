// NUT power source: a small client of upsd (the NUT network protocol, TCP 3493, docs/net-protocol.txt in
// networkupstools/nut) that follows one UPS's `ups.status`.
//
// Per connection: optional USERNAME/PASSWORD (each answered OK), then LIST VAR <ups> once (checks the UPS
// exists, gives the first status and the model for the log), then GET VAR <ups> ups.status every pollMs.
// One request at a time: upsd answers in order, and a reply that does not come within timeoutMs fails the
// poll and drops the connection (a late answer could otherwise be taken for the next one's).
//
// Why poll every second and not faster: upsd only relays what its driver last read from the UPS, and drivers
// poll the hardware every 2 s by default (ups.conf pollinterval; upsmon itself polls upsd every 5 s). Below
// 1 s the client's share of the latency (on average half the interval) is already small against the driver's,
// while every node of the cluster multiplies the load on upsd (and on the network cards of UPSes that serve
// SNMP behind it). A power failure gives minutes of battery; the decisive events (LB, FSD) are not shortened
// by polling faster than the UPS is read.
//
// ups.status tokens (NUT's docs/new-drivers.txt): OL on line, OB on battery, LB low battery, FSD forced shutdown
// (added by upsd itself in front of the driver's status), CAL calibrating; CHRG, DISCHRG, RB, BYPASS, TRIM,
// BOOST, OVER, OFF, ALARM … are kept in `raw` but do not change the power state. As upsmon does, low battery
// counts only together with OB (a UPS recharging after an outage says OL LB), and OB LB while calibrating
// (CAL) is not critical. A status without OL or OB (WAIT while the driver starts) is no answer yet.
//
// comms-lost: after `commsLostAfter` failed polls in a row: no connection, a timeout, or an ERR answer
// (DATA-STALE when the driver stopped updating, DRIVER-NOT-CONNECTED when it is gone). Connections are
// retried with exponential backoff (backoffMs … backoffMaxMs); each failed attempt counts as a failed poll.
import { Socket, connect } from 'node:net';

import { PollPause, PowerTracker, backoffMs, type PowerSource, type PowerSourceStatus, type PowerState, type PowerEvent } from './source.js';

export const NUT_DEFAULT_PORT = 3493;

export interface NutOptions {
  /** The source's name in events (default `nut:<ups>@<host>`). */
  name?: string;
  host: string;
  port?: number;
  ups: string;
  user?: string;
  password?: string;
  /** Interval between polls (default 1000). */
  pollMs?: number;
  /** A reply (or the connection) taking longer than this fails the poll (default 2000). */
  timeoutMs?: number;
  /** Failed polls in a row before comms-lost (default 3). */
  commsLostAfter?: number;
  /** Reconnect backoff (defaults 250 → 5000). */
  backoffMs?: number;
  backoffMaxMs?: number;
}

export interface NutStatusInterpretation {
  state: PowerState | undefined;
  selfTest: boolean;
  tokens: string[];
}

/** ups.status → power state; undefined when the status says nothing about the mains (WAIT, empty). */
export function interpretUpsStatus(status: string): NutStatusInterpretation {
  const tokens = status.trim().split(/\s+/).filter((t) => t.length > 0).map((t) => t.toUpperCase());
  const has = (t: string): boolean => tokens.includes(t);
  const selfTest = has('CAL');
  let state: PowerState | undefined;
  if (has('FSD')) state = 'forced-shutdown';
  else if (has('OB') && has('LB') && !selfTest) state = 'low-battery';
  else if (has('OB')) state = 'on-battery';
  else if (has('OL')) state = 'online';
  return { state, selfTest, tokens };
}

/** Splits one upsd reply line into words, honouring "quoted strings" with \" and \\ escapes. */
export function splitNutLine(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= line.length) break;
    let word = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        word += line[i];
        i++;
      }
      i++; // closing quote (or end)
    } else {
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t') word += line[i++];
    }
    words.push(word);
  }
  return words;
}

/** A value as the protocol sends it: in quotes, with \ and " escaped. */
export function quoteNut(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export class NutError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'NutError';
  }
}

interface Pending {
  /** Lines of a LIST until END LIST, or the single reply line. */
  list: boolean;
  lines: string[];
  resolve: (lines: string[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One upsd connection: a line reader and one request at a time. Usable on its own (tests, `vigil power`). */
export class NutConnection {
  private buf = '';
  private pending: Pending | undefined;
  private closed = false;
  private closeError: Error | undefined;

  private constructor(private readonly socket: Socket, private readonly timeoutMs: number) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new NutError('CLOSED', 'upsd closed the connection')));
  }

  static open(host: string, port: number, timeoutMs: number): Promise<NutConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => { socket.destroy(); reject(new NutError('TIMEOUT', `no connection to ${host}:${port} within ${timeoutMs} ms`)); }, timeoutMs);
      socket.once('error', (e) => { clearTimeout(timer); reject(e); });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new NutConnection(socket, timeoutMs));
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends one command; resolves with its reply line, or with the lines of a LIST (between BEGIN and END). */
  request(command: string): Promise<string[]> {
    if (this.closed) return Promise.reject(this.closeError ?? new NutError('CLOSED', 'connection closed'));
    if (this.pending) return Promise.reject(new Error('one request at a time'));
    const list = /^LIST\s/i.test(command);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(new NutError('TIMEOUT', `no answer to ${command.split(' ').slice(0, 2).join(' ')} within ${this.timeoutMs} ms`));
        this.close();
      }, this.timeoutMs);
      this.pending = { list, lines: [], resolve, reject, timer };
      this.socket.write(`${command}\n`);
    });
  }

  async command(command: string): Promise<string> {
    const [line] = await this.request(command);
    return line ?? '';
  }

  close(): void {
    if (!this.closed) this.fail(new NutError('CLOSED', 'connection closed'));
    this.socket.destroy();
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = e;
    const p = this.pending;
    this.pending = undefined;
    if (p) { clearTimeout(p.timer); p.reject(e); }
    this.socket.destroy();
  }

  private onData(d: string): void {
    this.buf += d;
    if (this.buf.length > 1 << 20) { this.fail(new NutError('TOO-LONG', 'upsd sent over 1 MiB without a newline')); return; }
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const p = this.pending;
    if (!p) return; // nothing asked: ignore (upsd sends nothing unsolicited)
    const done = (f: () => void): void => { clearTimeout(p.timer); this.pending = undefined; f(); };
    if (line.startsWith('ERR ')) {
      const [, code = 'UNKNOWN', ...extra] = line.split(' ');
      done(() => p.reject(new NutError(code, `upsd: ERR ${code}${extra.length ? ` ${extra.join(' ')}` : ''}`)));
      return;
    }
    if (!p.list) { done(() => p.resolve([line])); return; }
    if (line.startsWith('BEGIN LIST ')) return;
    if (line.startsWith('END LIST ')) { const lines = p.lines; done(() => p.resolve(lines)); return; }
    p.lines.push(line);
  }
}

export class NutSource implements PowerSource {
  readonly name: string;
  private readonly tracker: PowerTracker;
  private readonly opts: Required<Omit<NutOptions, 'name' | 'user' | 'password'>> & Pick<NutOptions, 'user' | 'password'>;
  private conn: NutConnection | undefined;
  private running = false;
  private failedInARow = 0;
  private connectAttempts = 0;
  private loop: Promise<void> | undefined;
  private readonly pause = new PollPause();
  /** Model and manufacturer from LIST VAR, for the log. */
  info: Record<string, string> = {};

  constructor(options: NutOptions, clock: () => number = Date.now) {
    this.opts = {
      host: options.host, port: options.port ?? NUT_DEFAULT_PORT, ups: options.ups, user: options.user, password: options.password,
      pollMs: options.pollMs ?? 1000, timeoutMs: options.timeoutMs ?? 2000, commsLostAfter: options.commsLostAfter ?? 3,
      backoffMs: options.backoffMs ?? 250, backoffMaxMs: options.backoffMaxMs ?? 5000,
    };
    this.name = options.name ?? `nut:${options.ups}@${options.host}${this.opts.port === NUT_DEFAULT_PORT ? '' : `:${this.opts.port}`}`;
    this.tracker = new PowerTracker(this.name, 'nut', clock);
  }

  on(event: 'event', listener: (e: PowerEvent) => void): this {
    this.tracker.on(event, listener);
    return this;
  }

  off(event: 'event', listener: (e: PowerEvent) => void): this {
    this.tracker.off(event, listener);
    return this;
  }

  status(): PowerSourceStatus {
    return this.tracker.status();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.pause.wake();
    const c = this.conn;
    this.conn = undefined;
    if (c && !c.isClosed) {
      // Be polite when we can (upsd logs a LOGOUT rather than a dropped connection), but never wait long.
      await Promise.race([c.command('LOGOUT').catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
      c.close();
    }
    await this.loop;
  }

  private sleep(ms: number): Promise<void> {
    return this.pause.sleep(ms);
  }

  private async run(): Promise<void> {
    while (this.running) {
      let waitMs = this.opts.pollMs;
      try {
        if (!this.conn || this.conn.isClosed) {
          await this.connect();
        } else {
          const line = await this.conn.command(`GET VAR ${this.opts.ups} ups.status`);
          const w = splitNutLine(line);
          if (w[0] !== 'VAR' || w[2] !== 'ups.status' || w[3] === undefined) throw new NutError('PROTOCOL', `unexpected answer: ${line}`);
          this.apply(w[3]);
        }
      } catch (e) {
        if (!this.running) break;
        this.failedInARow++;
        const msg = e instanceof Error ? e.message : String(e);
        this.tracker.failure(msg, this.failedInARow >= this.opts.commsLostAfter);
        if (!this.conn || this.conn.isClosed) {
          // Not connected: back off (the first retry comes quickly, later ones further apart).
          waitMs = backoffMs(Math.max(0, this.connectAttempts - 1), this.opts.backoffMs, this.opts.backoffMaxMs);
        } else if (e instanceof NutError && (e.code === 'UNKNOWN-UPS' || e.code === 'ACCESS-DENIED')) {
          waitMs = this.opts.backoffMaxMs; // a configuration problem: keep trying, but slowly
        }
      }
      if (!this.running) break;
      await this.sleep(waitMs);
    }
    this.conn?.close();
  }

  private async connect(): Promise<void> {
    this.connectAttempts++;
    if (this.connectAttempts > 1) this.tracker.reconnects++;
    const c = await NutConnection.open(this.opts.host, this.opts.port, this.opts.timeoutMs);
    let status: string;
    try {
      status = await this.greet(c);
    } catch (e) {
      c.close();
      throw e;
    }
    if (!this.running) { c.close(); return; }
    this.conn = c;
    this.connectAttempts = 0;
    this.apply(status); // a status that says nothing yet (WAIT) fails this poll but keeps the connection
  }

  /** Login if configured, then LIST VAR: the first ups.status (and the model, for the log). */
  private async greet(c: NutConnection): Promise<string> {
    if (this.opts.user !== undefined) {
      // Quoted: upsd splits its input like a config line (upsmon sends them bare, which breaks on a space).
      await expectOk(c, `USERNAME ${quoteNut(this.opts.user)}`);
      if (this.opts.password !== undefined) await expectOk(c, `PASSWORD ${quoteNut(this.opts.password)}`);
    }
    let status: string | undefined;
    for (const l of await c.request(`LIST VAR ${this.opts.ups}`)) {
      const w = splitNutLine(l);
      if (w[0] !== 'VAR' || w[2] === undefined || w[3] === undefined) continue;
      if (w[2] === 'ups.status') status = w[3];
      else if (/^(ups|device)\.(mfr|model|serial)$/.test(w[2])) this.info[w[2]] = w[3];
    }
    if (status === undefined) throw new NutError('VAR-NOT-SUPPORTED', `upsd lists no ups.status for ${this.opts.ups}`);
    return status;
  }

  private apply(status: string): void {
    const s = interpretUpsStatus(status);
    if (s.state === undefined) throw new NutError('NO-STATUS', `ups.status "${status}" says nothing about the mains yet`);
    this.failedInARow = 0;
    this.tracker.observe(s.state, status, { text: `ups.status "${status}"`, via: 'poll', ...(s.selfTest ? { selfTest: true } : {}) });
  }
}

async function expectOk(c: NutConnection, command: string): Promise<void> {
  const reply = await c.command(command);
  if (!reply.startsWith('OK')) throw new NutError('PROTOCOL', `${command.split(' ')[0]}: unexpected answer ${reply}`);
}

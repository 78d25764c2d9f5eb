// An RMCP+ (IPMI 2.0 lanplus) session to a remote BMC over UDP: the set-up (Get Channel Authentication
// Capabilities, Open Session, RAKP 1-4, Set Session Privilege Level), requests one at a time with
// retransmission until a deadline, and Close Session. The packets and the cryptography are pure modules
// (rmcp-packet.ts, rmcp-crypto.ts); this file is the I/O and the order of things.
//
// What the client checks, so that a stray, replayed or forged datagram is never taken as an answer: the
// socket is connected (the kernel drops datagrams from any other address); set-up answers must carry the
// message tag and session ID we sent, RAKP 2's code must prove the BMC knows the password and RAKP 4's
// must prove it derived the same keys; every session packet must be encrypted with K2 and carry a valid
// K1 code; a response must match the outstanding request's sequence number, network function and
// command; and a session sequence number is accepted once.
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';

import { completionCodeText, IpmiAuthError, IpmiProtocolError, IpmiTimeoutError, IpmiTransportError } from './errors.js';
import { decodeLanResponse, encodeLanRequest, type IpmiRequest, type IpmiResponse, type IpmiTransport } from './message.js';
import {
  codesEqual, cipherSuite, keyFromSecret, rakp2Code, rakp3Code, rakp4Icv, sessionIntegrityKey, sessionKeys,
  type CipherSuite, type RakpContext,
} from './rmcp-crypto.js';
import {
  decodeOpenSessionResponse, decodePacket, decodeRakp2, decodeRakp3or4, encodeOpenSessionRequest, encodeRakp1,
  encodeRakp3or4, encodeV15, encodeV2, PayloadType, rmcpStatusText, type Decoded, type SessionKeys,
} from './rmcp-packet.js';

export const Privilege = { USER: 2, OPERATOR: 3, ADMINISTRATOR: 4 } as const;

export function privilegeName(level: number): string {
  return ['none', 'callback', 'user', 'operator', 'administrator', 'OEM'][level] ?? `level ${level}`;
}

export interface LanOptions {
  host: string;
  /** UDP port, 623 unless the BMC listens elsewhere. */
  port?: number;
  user: string;
  password: Buffer;
  /** The BMC key (two-key logins); absent: the password's key is used, as the spec says. */
  kg?: Buffer;
  /** 17 (SHA-256) by default; 3 (SHA-1) for BMCs that have no SHA-256. */
  cipherSuite?: number;
  /** The privilege asked for; power control needs operator or administrator. */
  privilege?: number;
  /** The deadline of the session's set-up, and of each request unless it has its own. */
  timeoutMs?: number;
  /** The first retransmission's wait; each next one waits twice as long, up to 4 times this. */
  retransmitMs?: number;
}

const DEFAULT_PORT = 623;
const NAME_ONLY_LOOKUP = 0x10;

interface Waiter {
  accept(d: Decoded): boolean;
}

/** Sleep that a settled waiter cuts short. */
function delay(ms: number): { promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; timer = setTimeout(r, ms); });
  return { promise, cancel: () => { clearTimeout(timer); resolve(); } };
}

export class LanSession implements IpmiTransport {
  private readonly socket: Socket;
  private readonly suite: CipherSuite;
  private readonly opts: Required<Omit<LanOptions, 'kg'>> & { kg?: Buffer };
  private waiter: Waiter | undefined;
  private keys: SessionKeys | undefined;
  private consoleSessionId = 0;
  private bmcSessionId = 0;
  private outboundSequence = 0;
  private rqSeq = randomInt(1, 64);
  /** Session sequence numbers already accepted (replay), and the highest. */
  private readonly seen = new Set<number>();
  private highestSeen = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Datagrams dropped: not an answer to what was asked, malformed, failed integrity, or replayed. */
  dropped = 0;
  /** How many times the last exchange sent its packet (1: no retransmission). */
  private lastSends = 0;
  /** The first retransmission's wait: retransmitMs, doubled for each set-up attempt after the first. */
  private firstWaitMs: number;

  private constructor(socket: Socket, opts: LanOptions) {
    this.socket = socket;
    this.suite = cipherSuite(opts.cipherSuite ?? 17);
    this.opts = {
      port: DEFAULT_PORT, cipherSuite: this.suite.id, privilege: Privilege.ADMINISTRATOR, timeoutMs: 5000, retransmitMs: 500,
      ...opts,
    };
    this.firstWaitMs = this.opts.retransmitMs;
    socket.on('message', (buf) => this.receive(buf));
    socket.on('error', () => { /* a connected UDP socket reports ICMP unreachable here; the deadline decides */ });
  }

  /** Opens a session; rejects with IpmiAuthError (refused), IpmiTimeoutError (no answer) or IpmiProtocolError. */
  static async open(opts: LanOptions): Promise<LanSession> {
    if (opts.user.length > 16) throw new RangeError(`an IPMI user name is at most 16 bytes (this one is ${opts.user.length})`);
    keyFromSecret(opts.password); // the length check, before anything is sent
    const { address, family } = await lookup(opts.host);
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(opts.port ?? DEFAULT_PORT, address, () => { socket.off('error', reject); resolve(); });
    });
    const session = new LanSession(socket, opts);
    try {
      await session.establish();
      return session;
    } catch (e) {
      session.closed = true;
      socket.close();
      throw e;
    }
  }

  get description(): string {
    return `BMC ${this.opts.host}:${this.opts.port}`;
  }

  private receive(buf: Buffer): void {
    let d: Decoded;
    try {
      d = decodePacket(buf, this.keys);
    } catch {
      this.dropped++;
      return;
    }
    if (d.version === '2.0' && this.keys) {
      // Replay: each sequence number of the BMC's once, and none far behind the highest.
      if (d.sessionId !== this.consoleSessionId || this.seen.has(d.sequence) || d.sequence + 64 < this.highestSeen) {
        this.dropped++;
        return;
      }
    }
    if (this.waiter?.accept(d)) {
      if (d.version === '2.0' && this.keys) {
        this.seen.add(d.sequence);
        if (d.sequence > this.highestSeen) this.highestSeen = d.sequence;
        for (const s of this.seen) if (s + 64 < this.highestSeen) this.seen.delete(s);
      }
      return;
    }
    this.dropped++;
  }

  /**
   * Sends what `packet()` builds (anew for each retransmission: a new session sequence number) until
   * `match` takes an answer, or the deadline passes.
   */
  private async exchange<T>(what: string, packet: () => Buffer, match: (d: Decoded) => T | undefined, deadline: number): Promise<T> {
    let result: { value: T } | undefined;
    let wait = delay(0);
    this.waiter = {
      accept: (d) => {
        if (result) return false;
        let value: T | undefined;
        try {
          value = match(d);
        } catch {
          return false; // malformed: dropped like any stray
        }
        if (value === undefined) return false;
        result = { value };
        wait.cancel();
        return true;
      },
    };
    try {
      let interval = this.firstWaitMs;
      this.lastSends = 0;
      while (!result) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        this.socket.send(packet());
        this.lastSends++;
        wait = delay(Math.min(interval, left));
        await wait.promise;
        interval = Math.min(interval * 2, this.firstWaitMs * 4);
      }
    } finally {
      this.waiter = undefined;
    }
    if (!result) throw new IpmiTimeoutError(`${this.description}: no answer to ${what}`);
    return result.value;
  }

  private async establish(): Promise<void> {
    const deadline = Date.now() + this.opts.timeoutMs;
    await this.checkRmcpPlus(deadline);
    // A RAKP 1 sent again (a lost answer) may have made the BMC draw a new random after the one RAKP 2
    // brought: RAKP 3's code then fails at the BMC. That is the network, not the password: once more from
    // Open Session, while time is left.
    // Each attempt waits twice as long before it resends: a BMC slower than the wait is given the time.
    for (;;) {
      const again = await this.handshake(deadline).then(() => false, (e: unknown) => {
        if (e instanceof RakpRetryableError && Date.now() < deadline) return true;
        throw e instanceof RakpRetryableError ? e.cause : e;
      });
      if (!again) break;
      this.firstWaitMs *= 2;
    }
    this.firstWaitMs = this.opts.retransmitMs;
  }

  private async handshake(deadline: number): Promise<void> {
    const suite = this.suite;
    const tag = randomInt(0, 256);
    this.consoleSessionId = randomInt(1, 0x1_0000_0000);
    const open = await this.exchange(
      `Open Session (cipher suite ${suite.id}${suite.id === 17 ? '; a BMC without SHA-256 may not answer it at all: try cipher suite 3' : ''})`,
      () => encodeV2({ payloadType: PayloadType.OPEN_SESSION_REQUEST, sessionId: 0, sequence: 0, payload: encodeOpenSessionRequest({ tag, privilege: this.opts.privilege, consoleSessionId: this.consoleSessionId, suite }) }),
      (d) => (d.version === '2.0' && d.payloadType === PayloadType.OPEN_SESSION_RESPONSE ? tagged(decodeOpenSessionResponse(d.payload), tag, this.consoleSessionId) : undefined),
      deadline,
    );
    if (open.status !== 0) {
      const algorithms = [0x04, 0x05, 0x06, 0x07, 0x10, 0x11].includes(open.status);
      throw new IpmiAuthError(`${this.description} refused the session: ${rmcpStatusText(open.status)}${algorithms ? ` (cipher suite ${suite.id}${suite.id === 17 ? '; a BMC without SHA-256 needs cipher suite 3' : ''})` : ''}`);
    }
    if (open.authAlgorithm !== suite.authAlgorithm || open.integrityAlgorithm !== suite.integrityAlgorithm || open.confidentialityAlgorithm !== suite.confidentialityAlgorithm) {
      throw new IpmiAuthError(`${this.description} answered with other algorithms than cipher suite ${suite.id}'s`);
    }
    this.bmcSessionId = open.bmcSessionId;

    const user = Buffer.from(this.opts.user, 'utf8');
    const ctx: RakpContext = {
      suite, consoleSessionId: this.consoleSessionId, bmcSessionId: this.bmcSessionId, consoleRandom: randomBytes(16),
      bmcRandom: Buffer.alloc(0), bmcGuid: Buffer.alloc(0), role: this.opts.privilege | NAME_ONLY_LOOKUP, user,
    };
    const kuid = keyFromSecret(this.opts.password);
    // RAKP 1 is sent once per attempt of the exchange, with the same random: a BMC that answers a
    // retransmission with a new Rc makes RAKP 2's code or RAKP 4 fail, and the whole set-up is refused.
    const rakp1 = encodeRakp1({ tag, bmcSessionId: this.bmcSessionId, consoleRandom: ctx.consoleRandom, role: ctx.role, user });
    const rakp2 = await this.exchange(
      'RAKP 1',
      () => encodeV2({ payloadType: PayloadType.RAKP1, sessionId: 0, sequence: 0, payload: rakp1 }),
      (d) => (d.version === '2.0' && d.payloadType === PayloadType.RAKP2 ? tagged(decodeRakp2(d.payload), tag, this.consoleSessionId) : undefined),
      deadline,
    );
    if (rakp2.status !== 0) throw new IpmiAuthError(`${this.description} refused user '${this.opts.user}': ${rmcpStatusText(rakp2.status)}`);
    ctx.bmcRandom = rakp2.bmcRandom;
    ctx.bmcGuid = rakp2.bmcGuid;
    if (!codesEqual(rakp2.code, rakp2Code(ctx, kuid))) {
      throw new IpmiAuthError(`${this.description}: wrong password for user '${this.opts.user}' (RAKP 2's code does not match)`);
    }
    const sik = sessionIntegrityKey(ctx, this.opts.kg ? keyFromSecret(this.opts.kg) : kuid);
    const rakp1Sends = this.lastSends;
    const rakp3 = encodeRakp3or4({ tag, status: 0, sessionId: this.bmcSessionId, code: rakp3Code(ctx, kuid) });
    const rakp4 = await this.exchange(
      'RAKP 3',
      () => encodeV2({ payloadType: PayloadType.RAKP3, sessionId: 0, sequence: 0, payload: rakp3 }),
      (d) => (d.version === '2.0' && d.payloadType === PayloadType.RAKP4 ? tagged(decodeRakp3or4(d.payload, 'RAKP 4'), tag, this.consoleSessionId) : undefined),
      deadline,
    );
    if (rakp4.status !== 0) {
      const refused = new IpmiAuthError(`${this.description} refused the session at RAKP 3: ${rmcpStatusText(rakp4.status)}`);
      // RAKP 2's code proved the password: a refused RAKP 3 after a resent RAKP 1 is a stale random.
      if (rakp1Sends > 1) throw new RakpRetryableError(refused);
      throw refused;
    }
    if (!codesEqual(rakp4.code, rakp4Icv(ctx, sik))) {
      throw new IpmiAuthError(`${this.description}: RAKP 4's integrity check value does not match${this.opts.kg ? ' (wrong Kg?)' : ''}`);
    }
    this.keys = { suite, ...sessionKeys(suite, sik) };
    const granted = await this.send({ netfn: 0x06, cmd: 0x3b, data: Buffer.from([this.opts.privilege]), name: 'Set Session Privilege Level' }, deadline);
    // A BMC may grant less than asked (the user's own limit): power control would then fail later, and less clearly.
    const level = (granted.data[0] ?? 0) & 0x0f;
    if (granted.code !== 0 || level < this.opts.privilege) {
      throw new IpmiAuthError(`${this.description} did not grant user '${this.opts.user}' privilege level ${privilegeName(this.opts.privilege)} (${granted.code !== 0 ? completionCodeText(granted.code) : `granted ${privilegeName(level)}`})`);
    }
  }

  /** Get Channel Authentication Capabilities, IPMI 1.5 session-less, asking for the IPMI 2.0 data. */
  private async checkRmcpPlus(deadline: number): Promise<void> {
    const rqSeq = this.nextRqSeq();
    const req: IpmiRequest = { netfn: 0x06, cmd: 0x38, data: Buffer.from([0x8e, this.opts.privilege]), name: 'Get Channel Authentication Capabilities' };
    const res = await this.exchange(req.name, () => encodeV15(encodeLanRequest(req, rqSeq)), (d) => (d.version === '1.5' ? answers(d.message, req, rqSeq) : undefined), deadline);
    if (res.code !== 0) throw new IpmiProtocolError(`${this.description}: ${req.name} answered 0x${res.code.toString(16)}`);
    // data: channel, auth types (bit 7: IPMI 2.0 data follows), flags, extended capabilities (bit 1: IPMI 2.0)
    if (res.data.length < 4 || (res.data[1]! & 0x80) === 0 || (res.data[3]! & 0x02) === 0) {
      throw new IpmiAuthError(`${this.description} does not support IPMI 2.0 (RMCP+) on this channel`);
    }
  }

  private nextRqSeq(): number {
    this.rqSeq = (this.rqSeq % 63) + 1;
    return this.rqSeq;
  }

  private async send(req: IpmiRequest, deadline: number): Promise<IpmiResponse> {
    const keys = this.keys;
    if (!keys) throw new IpmiTransportError(`${this.description}: no session`);
    const rqSeq = this.nextRqSeq();
    const message = encodeLanRequest(req, rqSeq);
    return this.exchange(
      req.name,
      () => {
        this.outboundSequence = (this.outboundSequence + 1) >>> 0 || 1;
        return encodeV2({ payloadType: PayloadType.IPMI, sessionId: this.bmcSessionId, sequence: this.outboundSequence, payload: message }, keys);
      },
      (d) => (d.version === '2.0' && d.payloadType === PayloadType.IPMI ? answers(d.payload, req, rqSeq) : undefined),
      deadline,
    );
  }

  /** One request at a time: a BMC serves a session's requests in order, and a retransmission must not overtake. */
  request(req: IpmiRequest, opts: { timeoutMs?: number } = {}): Promise<IpmiResponse> {
    if (this.closed) return Promise.reject(new IpmiTransportError(`${this.description}: the session is closed`));
    const run = this.queue.then(() => this.send(req, Date.now() + (opts.timeoutMs ?? this.opts.timeoutMs)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Close Session (best effort: a BMC that does not answer ends the session by its own timeout). */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      const id = Buffer.alloc(4);
      id.writeUInt32LE(this.bmcSessionId >>> 0);
      await this.request({ netfn: 0x06, cmd: 0x3c, data: id, name: 'Close Session' }, { timeoutMs: Math.min(1000, this.opts.timeoutMs) });
    } catch {
      // the session ends at the BMC anyway
    } finally {
      this.closed = true;
      this.socket.close();
    }
  }
}

/** A set-up refused for a reason a fresh attempt can mend (see establish). */
class RakpRetryableError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

function tagged<T extends { tag: number; consoleSessionId?: number; sessionId?: number }>(p: T, tag: number, consoleSessionId: number): T | undefined {
  if (p.tag !== tag) return undefined;
  const sid = p.consoleSessionId ?? p.sessionId;
  // A refusal may come before the BMC knew our session ID (Open Session's status); otherwise it must be ours.
  return sid === consoleSessionId || ('status' in p && (p as { status: number }).status !== 0 && sid === 0) ? p : undefined;
}

/** The response to `req` sent with `rqSeq`, or undefined for anything else (a late answer to an earlier request). */
function answers(message: Buffer, req: IpmiRequest, rqSeq: number): IpmiResponse | undefined {
  try {
    const r = decodeLanResponse(message);
    return r.rqSeq === rqSeq && r.netfn === (req.netfn | 1) && r.cmd === req.cmd ? { code: r.code, data: r.data } : undefined;
  } catch {
    return undefined;
  }
}

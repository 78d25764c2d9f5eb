// A small RMCP+ BMC built on vigil's own packet and crypto modules, for what no open BMC here can do:
// cipher suite 17 (ipmi_sim 2.0.33 has no SHA-256). ipmitool, an independent implementation, is its
// client in the tests: a session that ipmitool opens and uses proves both sides of the SHA-256 code.
// It serves Get Channel Authentication Capabilities, the session set-up, Set Session Privilege Level, Get
// Device ID, Get Chassis Status, Chassis Control and Close Session; anything else answers 0xC1.
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

import { decodeLanRequest, encodeLanResponse } from '../../src/ipmi/message.js';
import {
  CIPHER_SUITES, codesEqual, keyFromSecret, rakp2Code, rakp3Code, rakp4Icv, sessionIntegrityKey, sessionKeys,
  type CipherSuite, type RakpContext,
} from '../../src/ipmi/rmcp-crypto.js';
import {
  decodeOpenSessionRequest, decodePacket, decodeRakp1, decodeRakp3or4, encodeOpenSessionResponse, encodeRakp2,
  encodeRakp3or4, encodeV15, encodeV2, PayloadType, type SessionKeys,
} from '../../src/ipmi/rmcp-packet.js';

interface Session {
  ctx: RakpContext;
  tag: number;
  keys?: SessionKeys;
  sequence: number;
}

export class TestBmc {
  readonly port: number;
  power: 'on' | 'off' = 'on';
  /** Chassis Control actions received, in order. */
  readonly actions: string[] = [];
  private readonly sessions = new Map<number, Session>();
  private readonly guid = randomBytes(16);

  private constructor(private readonly socket: Socket, private readonly user: string, private readonly password: string) {
    this.port = socket.address().port;
    socket.on('message', (buf, from) => {
      try {
        this.handle(buf, from);
      } catch {
        // malformed or forged: a BMC drops it
      }
    });
  }

  /** The user's privilege limit: Set Session Privilege Level above it answers 0x81. */
  maxPrivilege = 4;
  /** Answers each RAKP 1 this long after it came (a slow BMC), drawing a new random for each. */
  rakp2DelayMs = 0;

  static async start(user = 'admin', password = 'secret'): Promise<TestBmc> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new TestBmc(socket, user, password);
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }

  private send(buf: Buffer, to: RemoteInfo): void {
    this.socket.send(buf, to.port, to.address);
  }

  private handle(buf: Buffer, from: RemoteInfo): void {
    if (buf.length >= 10 && buf[4] === 0x06 && (buf[5]! & 0x40) !== 0) return this.sessionPacket(buf, from);
    const pre = decodePacket(buf);
    if (pre.version === '1.5') {
      const req = decodeLanRequest(pre.message);
      // Get Channel Authentication Capabilities: channel 1, IPMI 2.0 data follows, RMCP+ supported.
      const data = req.netfn === 0x06 && req.cmd === 0x38 ? Buffer.from([1, 0x80, 0x04, 0x02, 0, 0, 0, 0]) : Buffer.alloc(0);
      this.send(encodeV15(encodeLanResponse(req, data.length ? 0 : 0xc1, data)), from);
      return;
    }
    switch (pre.payloadType) {
      case PayloadType.OPEN_SESSION_REQUEST: return this.openSession(pre.payload, from);
      case PayloadType.RAKP1: return this.rakp1(pre.payload, from);
      case PayloadType.RAKP3: return this.rakp3(pre.payload, from);
      default: break;
    }
  }

  /** A session packet: the header's session ID says whose keys check it. */
  private sessionPacket(buf: Buffer, from: RemoteInfo): void {
    const session = this.sessions.get(buf.readUInt32LE(6));
    if (!session?.keys) return;
    const d = decodePacket(buf, session.keys);
    if (d.version !== '2.0' || d.payloadType !== PayloadType.IPMI) return;
    const req = decodeLanRequest(d.payload);
    const { code, data } = this.command(req.netfn, req.cmd, req.data, session);
    session.sequence++;
    this.send(encodeV2({ payloadType: PayloadType.IPMI, sessionId: session.ctx.consoleSessionId, sequence: session.sequence, payload: encodeLanResponse(req, code, data) }, session.keys), from);
    if (req.netfn === 0x06 && req.cmd === 0x3c && code === 0) this.sessions.delete(session.ctx.bmcSessionId);
  }

  private openSession(payload: Buffer, from: RemoteInfo): void {
    const r = decodeOpenSessionRequest(payload);
    const suite = Object.values(CIPHER_SUITES).find((s) => s.authAlgorithm === r.suite.authAlgorithm && s.integrityAlgorithm === r.suite.integrityAlgorithm && s.confidentialityAlgorithm === r.suite.confidentialityAlgorithm);
    const bmcSessionId = randomInt(1, 0x1_0000_0000);
    const base = { tag: r.tag, privilege: 4, consoleSessionId: r.consoleSessionId, bmcSessionId, authAlgorithm: r.suite.authAlgorithm, integrityAlgorithm: r.suite.integrityAlgorithm, confidentialityAlgorithm: r.suite.confidentialityAlgorithm };
    if (!suite) {
      this.send(encodeV2({ payloadType: PayloadType.OPEN_SESSION_RESPONSE, sessionId: 0, sequence: 0, payload: encodeOpenSessionResponse({ ...base, status: 0x11 }) }), from);
      return;
    }
    this.sessions.set(bmcSessionId, { tag: r.tag, sequence: 0, ctx: newContext(suite, r.consoleSessionId, bmcSessionId, this.guid) });
    this.send(encodeV2({ payloadType: PayloadType.OPEN_SESSION_RESPONSE, sessionId: 0, sequence: 0, payload: encodeOpenSessionResponse({ ...base, status: 0 }) }), from);
  }

  private rakp1(payload: Buffer, from: RemoteInfo): void {
    const r = decodeRakp1(payload);
    const session = this.sessions.get(r.bmcSessionId);
    if (!session) return;
    const ctx = session.ctx;
    ctx.consoleRandom = r.consoleRandom;
    ctx.bmcRandom = randomBytes(16);
    ctx.role = r.role;
    ctx.user = r.user;
    const known = r.user.toString() === this.user;
    const code = known ? rakp2Code(ctx, keyFromSecret(Buffer.from(this.password))) : Buffer.alloc(0);
    const answer = encodeV2({ payloadType: PayloadType.RAKP2, sessionId: 0, sequence: 0, payload: encodeRakp2({ tag: r.tag, status: known ? 0 : 0x0d, consoleSessionId: ctx.consoleSessionId, bmcRandom: ctx.bmcRandom, bmcGuid: ctx.bmcGuid, code }) });
    if (this.rakp2DelayMs > 0) setTimeout(() => this.send(answer, from), this.rakp2DelayMs);
    else this.send(answer, from);
  }

  private rakp3(payload: Buffer, from: RemoteInfo): void {
    const r = decodeRakp3or4(payload, 'RAKP 3');
    const session = this.sessions.get(r.sessionId);
    if (!session) return;
    const ctx = session.ctx;
    const kuid = keyFromSecret(Buffer.from(this.password));
    const ok = r.status === 0 && codesEqual(r.code, rakp3Code(ctx, kuid));
    const sik = sessionIntegrityKey(ctx, kuid);
    if (ok) session.keys = { suite: ctx.suite, ...sessionKeys(ctx.suite, sik) };
    else this.sessions.delete(r.sessionId);
    this.send(encodeV2({ payloadType: PayloadType.RAKP4, sessionId: 0, sequence: 0, payload: encodeRakp3or4({ tag: r.tag, status: ok ? 0 : 0x0f, sessionId: ctx.consoleSessionId, code: ok ? rakp4Icv(ctx, sik) : Buffer.alloc(0) }) }), from);
  }

  private command(netfn: number, cmd: number, data: Buffer, session: Session): { code: number; data: Buffer } {
    const key = `${netfn.toString(16)}/${cmd.toString(16)}`;
    switch (key) {
      case '6/3b': {
        const level = data[0]! & 0x0f || 4;
        return level > this.maxPrivilege ? { code: 0x81, data: Buffer.alloc(0) } : { code: 0, data: Buffer.from([level]) };
      }
      case '6/3c': return { code: data.length >= 4 && data.readUInt32LE(0) === session.ctx.bmcSessionId ? 0 : 0x87, data: Buffer.alloc(0) };
      // Get Device ID: device 0x20, revision 1, firmware 1.02, IPMI 2.0, support bits, manufacturer 0x0a1b2c, product 0x0f02
      case '6/1': return { code: 0, data: Buffer.from([0x20, 0x01, 0x01, 0x02, 0x02, 0x9f, 0x2c, 0x1b, 0x0a, 0x02, 0x0f]) };
      case '0/1': return { code: 0, data: Buffer.from([this.power === 'on' ? 1 : 0, 0, 0, 0]) };
      case '0/2': {
        const action = ['off', 'on', 'cycle', 'reset', 'diag', 'soft'][data[0]!] ?? 'unknown';
        this.actions.push(action);
        if (action === 'off' || action === 'soft') this.power = 'off';
        if (action === 'on') this.power = 'on';
        return { code: 0, data: Buffer.alloc(0) };
      }
      default: return { code: 0xc1, data: Buffer.alloc(0) };
    }
  }
}

function newContext(suite: CipherSuite, consoleSessionId: number, bmcSessionId: number, guid: Buffer): RakpContext {
  return { suite, consoleSessionId, bmcSessionId, consoleRandom: Buffer.alloc(16), bmcRandom: Buffer.alloc(16), bmcGuid: guid, role: 0, user: Buffer.alloc(0) };
}

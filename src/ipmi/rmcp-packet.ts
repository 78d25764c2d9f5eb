// RMCP+ packets (IPMI 2.0 section 13), pure: the RMCP header, the IPMI 1.5 session-less wrapper (used
// once, for Get Channel Authentication Capabilities), the IPMI 2.0 session wrapper with its integrity
// trailer and encrypted payload, and the session set-up payloads (Open Session, RAKP 1-4) in both
// directions: the client sends requests and reads responses, the test BMC the other way round.
import { IpmiProtocolError } from './errors.js';
import { codesEqual, decryptPayload, encryptPayload, integrityCode, type CipherSuite } from './rmcp-crypto.js';

export const PayloadType = {
  IPMI: 0x00,
  OPEN_SESSION_REQUEST: 0x10,
  OPEN_SESSION_RESPONSE: 0x11,
  RAKP1: 0x12,
  RAKP2: 0x13,
  RAKP3: 0x14,
  RAKP4: 0x15,
} as const;

const RMCP_HEADER = Buffer.from([0x06, 0x00, 0xff, 0x07]); // version 1.0, reserved, no RMCP ACK, class IPMI
const AUTHTYPE_NONE = 0x00;
const AUTHTYPE_RMCP_PLUS = 0x06;
const NEXT_HEADER = 0x07;

/** RMCP+ status codes (table 13-15), for the one line an operator reads. */
const STATUS_TEXT: Record<number, string> = {
  0x01: 'insufficient resources to create a session',
  0x02: 'invalid session ID',
  0x03: 'invalid payload type',
  0x04: 'invalid authentication algorithm',
  0x05: 'invalid integrity algorithm',
  0x06: 'no matching authentication payload',
  0x07: 'no matching integrity payload',
  0x08: 'inactive session ID',
  0x09: 'invalid role',
  0x0a: 'unauthorized role or privilege level requested',
  0x0b: 'insufficient resources to create a session at the requested role',
  0x0c: 'invalid name length',
  0x0d: 'unauthorized name (no such user)',
  0x0e: 'unauthorized GUID',
  0x0f: 'invalid integrity check value (wrong password or Kg)',
  0x10: 'invalid confidentiality algorithm',
  0x11: 'no cipher suite match with the proposed security algorithms',
  0x12: 'illegal or unrecognized parameter',
};

export function rmcpStatusText(status: number): string {
  return STATUS_TEXT[status] ?? `RMCP+ status 0x${status.toString(16).padStart(2, '0')}`;
}

/** The keys of an active session: integrity code with K1, AES with K2. */
export interface SessionKeys {
  suite: CipherSuite;
  k1: Buffer;
  k2: Buffer;
}

export interface V2Packet {
  payloadType: number;
  /** The session ID of the receiver (0 before the session exists). */
  sessionId: number;
  sequence: number;
  /** The payload in clear (decrypted when it came encrypted). */
  payload: Buffer;
  encrypted?: boolean;
  authenticated?: boolean;
}

/** The IPMI 1.5 session-less packet (authentication type none, sequence and session 0). */
export function encodeV15(message: Buffer): Buffer {
  const header = Buffer.alloc(10);
  header[0] = AUTHTYPE_NONE;
  header[9] = message.length;
  return Buffer.concat([RMCP_HEADER, header, message]);
}

/**
 * An IPMI 2.0 packet. With keys, the payload is encrypted (AES-CBC-128) and the packet carries its
 * integrity code: every packet of an active session is both, as suites 3 and 17 require.
 */
export function encodeV2(p: V2Packet, keys?: SessionKeys): Buffer {
  const body = keys ? encryptPayload(keys.k2, p.payload) : p.payload;
  const header = Buffer.alloc(12);
  header[0] = AUTHTYPE_RMCP_PLUS;
  header[1] = (p.payloadType & 0x3f) | (keys ? 0xc0 : 0);
  header.writeUInt32LE(p.sessionId >>> 0, 2);
  header.writeUInt32LE(p.sequence >>> 0, 6);
  header.writeUInt16LE(body.length, 10);
  if (!keys) return Buffer.concat([RMCP_HEADER, header, body]);
  // Pad with 0xff so that the authtype byte through the next-header byte is a multiple of 4.
  const padLength = (4 - ((12 + body.length + 2) % 4)) % 4;
  const trailer = Buffer.concat([Buffer.alloc(padLength, 0xff), Buffer.from([padLength, NEXT_HEADER])]);
  const covered = Buffer.concat([header, body, trailer]);
  return Buffer.concat([RMCP_HEADER, covered, integrityCode(keys.suite, keys.k1, covered)]);
}

export type Decoded = { version: '1.5'; message: Buffer } | ({ version: '2.0' } & V2Packet);

/**
 * Any packet the client or test BMC receives. An authenticated packet needs the session's keys and must
 * carry the right integrity code; a packet that claims to be encrypted must also be authenticated (the
 * suites here have no encryption without integrity), and one of an active session must be both.
 */
export function decodePacket(buf: Buffer, keys?: SessionKeys): Decoded {
  if (buf.length < 5 || buf[0] !== 0x06 || buf[3] !== 0x07) throw new IpmiProtocolError('not an RMCP packet of class IPMI');
  const authtype = buf[4]! & 0x0f;
  if (authtype === AUTHTYPE_NONE) {
    if (buf.length < 14) throw new IpmiProtocolError(`IPMI 1.5 packet of ${buf.length} bytes`);
    const length = buf[13]!;
    if (buf.length < 14 + length) throw new IpmiProtocolError('IPMI 1.5 packet shorter than its length');
    return { version: '1.5', message: Buffer.from(buf.subarray(14, 14 + length)) };
  }
  if (authtype !== AUTHTYPE_RMCP_PLUS) throw new IpmiProtocolError(`IPMI 1.5 authentication type ${authtype} is not supported`);
  if (buf.length < 16) throw new IpmiProtocolError(`IPMI 2.0 packet of ${buf.length} bytes`);
  const typeByte = buf[5]!;
  const encrypted = (typeByte & 0x80) !== 0;
  const authenticated = (typeByte & 0x40) !== 0;
  const payloadType = typeByte & 0x3f;
  if (payloadType === 0x02) throw new IpmiProtocolError('OEM payloads are not supported');
  const sessionId = buf.readUInt32LE(6);
  const sequence = buf.readUInt32LE(10);
  const length = buf.readUInt16LE(14);
  if (buf.length < 16 + length) throw new IpmiProtocolError('IPMI 2.0 packet shorter than its payload length');
  let body = buf.subarray(16, 16 + length);
  if (keys && !(encrypted && authenticated)) throw new IpmiProtocolError('a packet of the session that is not both authenticated and encrypted');
  if (authenticated) {
    if (!keys) throw new IpmiProtocolError('an authenticated packet outside a session');
    const icv = keys.suite.icvLength;
    const end = buf.length - icv;
    // pad (0-3 × 0xff), pad length, next header, then the code
    if (end < 16 + length + 2) throw new IpmiProtocolError('IPMI 2.0 packet: no room for its integrity trailer');
    const padLength = buf[end - 2]!;
    if (buf[end - 1] !== NEXT_HEADER || padLength > 3 || 16 + length + padLength + 2 !== end) {
      throw new IpmiProtocolError('IPMI 2.0 packet: malformed integrity trailer');
    }
    if (!codesEqual(integrityCode(keys.suite, keys.k1, buf.subarray(4, end)), buf.subarray(end))) {
      throw new IpmiProtocolError('IPMI 2.0 packet: integrity code does not match');
    }
  }
  if (encrypted) {
    if (!keys) throw new IpmiProtocolError('an encrypted packet outside a session');
    body = decryptPayload(keys.k2, body);
  }
  return { version: '2.0', payloadType, sessionId, sequence, payload: Buffer.from(body), encrypted, authenticated };
}

// ---- Session set-up payloads --------------------------------------------------------------------------

function algorithmRecord(type: number, algorithm: number): Buffer {
  return Buffer.from([type, 0, 0, 8, algorithm, 0, 0, 0]);
}

export interface OpenSessionRequest {
  tag: number;
  /** Requested maximum privilege (4 administrator); 0 asks for the highest the user has. */
  privilege: number;
  consoleSessionId: number;
  suite: Pick<CipherSuite, 'authAlgorithm' | 'integrityAlgorithm' | 'confidentialityAlgorithm'>;
}

export function encodeOpenSessionRequest(r: OpenSessionRequest): Buffer {
  const head = Buffer.alloc(8);
  head[0] = r.tag;
  head[1] = r.privilege;
  head.writeUInt32LE(r.consoleSessionId >>> 0, 4);
  return Buffer.concat([head, algorithmRecord(0, r.suite.authAlgorithm), algorithmRecord(1, r.suite.integrityAlgorithm), algorithmRecord(2, r.suite.confidentialityAlgorithm)]);
}

export function decodeOpenSessionRequest(p: Buffer): OpenSessionRequest {
  if (p.length < 32) throw new IpmiProtocolError(`Open Session Request of ${p.length} bytes`);
  return {
    tag: p[0]!, privilege: p[1]! & 0x0f, consoleSessionId: p.readUInt32LE(4),
    suite: { authAlgorithm: p[12]! & 0x3f, integrityAlgorithm: p[20]! & 0x3f, confidentialityAlgorithm: p[28]! & 0x3f },
  };
}

export interface OpenSessionResponse {
  tag: number;
  status: number;
  privilege: number;
  consoleSessionId: number;
  bmcSessionId: number;
  authAlgorithm: number;
  integrityAlgorithm: number;
  confidentialityAlgorithm: number;
}

export function encodeOpenSessionResponse(r: OpenSessionResponse): Buffer {
  const head = Buffer.alloc(12);
  head[0] = r.tag;
  head[1] = r.status;
  head[2] = r.privilege;
  head.writeUInt32LE(r.consoleSessionId >>> 0, 4);
  head.writeUInt32LE(r.bmcSessionId >>> 0, 8);
  if (r.status !== 0) return head.subarray(0, 8);
  return Buffer.concat([head, algorithmRecord(0, r.authAlgorithm), algorithmRecord(1, r.integrityAlgorithm), algorithmRecord(2, r.confidentialityAlgorithm)]);
}

/** A refusal carries the first 8 bytes, or (ipmi_sim) only the tag and the status: its session ID is then 0. */
export function decodeOpenSessionResponse(p: Buffer): OpenSessionResponse {
  if (p.length < 2) throw new IpmiProtocolError(`Open Session Response of ${p.length} bytes`);
  const status = p[1]!;
  if (status !== 0) return { tag: p[0]!, status, privilege: 0, consoleSessionId: p.length >= 8 ? p.readUInt32LE(4) : 0, bmcSessionId: 0, authAlgorithm: 0, integrityAlgorithm: 0, confidentialityAlgorithm: 0 };
  if (p.length < 36) throw new IpmiProtocolError(`Open Session Response of ${p.length} bytes`);
  return {
    tag: p[0]!, status, privilege: p[2]!, consoleSessionId: p.readUInt32LE(4), bmcSessionId: p.readUInt32LE(8),
    authAlgorithm: p[16]! & 0x3f, integrityAlgorithm: p[24]! & 0x3f, confidentialityAlgorithm: p[32]! & 0x3f,
  };
}

export interface Rakp1 {
  tag: number;
  bmcSessionId: number;
  consoleRandom: Buffer;
  role: number;
  user: Buffer;
}

export function encodeRakp1(r: Rakp1): Buffer {
  if (r.user.length > 16) throw new RangeError(`an IPMI user name is at most 16 bytes (this one is ${r.user.length})`);
  const head = Buffer.alloc(8);
  head[0] = r.tag;
  head.writeUInt32LE(r.bmcSessionId >>> 0, 4);
  return Buffer.concat([head, r.consoleRandom, Buffer.from([r.role, 0, 0, r.user.length]), r.user]);
}

export function decodeRakp1(p: Buffer): Rakp1 {
  if (p.length < 28 || p.length < 28 + p[27]!) throw new IpmiProtocolError(`RAKP 1 of ${p.length} bytes`);
  return { tag: p[0]!, bmcSessionId: p.readUInt32LE(4), consoleRandom: Buffer.from(p.subarray(8, 24)), role: p[24]!, user: Buffer.from(p.subarray(28, 28 + p[27]!)) };
}

export interface Rakp2 {
  tag: number;
  status: number;
  consoleSessionId: number;
  bmcRandom: Buffer;
  bmcGuid: Buffer;
  code: Buffer;
}

export function encodeRakp2(r: Rakp2): Buffer {
  const head = Buffer.alloc(8);
  head[0] = r.tag;
  head[1] = r.status;
  head.writeUInt32LE(r.consoleSessionId >>> 0, 4);
  return r.status !== 0 ? head : Buffer.concat([head, r.bmcRandom, r.bmcGuid, r.code]);
}

export function decodeRakp2(p: Buffer): Rakp2 {
  if (p.length < 2 || (p[1] === 0 && p.length < 8)) throw new IpmiProtocolError(`RAKP 2 of ${p.length} bytes`);
  const base = { tag: p[0]!, status: p[1]!, consoleSessionId: p.length >= 8 ? p.readUInt32LE(4) : 0 };
  if (base.status !== 0) return { ...base, bmcRandom: Buffer.alloc(0), bmcGuid: Buffer.alloc(0), code: Buffer.alloc(0) };
  if (p.length < 40) throw new IpmiProtocolError(`RAKP 2 of ${p.length} bytes`);
  return { ...base, bmcRandom: Buffer.from(p.subarray(8, 24)), bmcGuid: Buffer.from(p.subarray(24, 40)), code: Buffer.from(p.subarray(40)) };
}

export interface Rakp3or4 {
  tag: number;
  status: number;
  /** RAKP 3: the BMC's session ID; RAKP 4: the console's. */
  sessionId: number;
  /** RAKP 3: the key exchange code; RAKP 4: the integrity check value. */
  code: Buffer;
}

export function encodeRakp3or4(r: Rakp3or4): Buffer {
  const head = Buffer.alloc(8);
  head[0] = r.tag;
  head[1] = r.status;
  head.writeUInt32LE(r.sessionId >>> 0, 4);
  return Buffer.concat([head, r.code]);
}

export function decodeRakp3or4(p: Buffer, what: string): Rakp3or4 {
  if (p.length < 2 || (p[1] === 0 && p.length < 8)) throw new IpmiProtocolError(`${what} of ${p.length} bytes`);
  return { tag: p[0]!, status: p[1]!, sessionId: p.length >= 8 ? p.readUInt32LE(4) : 0, code: Buffer.from(p.subarray(8)) };
}

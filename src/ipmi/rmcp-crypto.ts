// RMCP+ cryptography (IPMI 2.0 section 13.28-13.32), pure: the RAKP authentication codes, the session
// integrity key and the keys derived from it, the packet integrity code, and AES-CBC-128 confidentiality.
// Both ends use it: the client (lan-session.ts) and the test BMC that checks it against ipmitool.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { IpmiProtocolError } from './errors.js';

export type HashName = 'sha1' | 'sha256';

/** One cipher suite: the RAKP hash, the integrity code and its length, and whether payloads are encrypted. */
export interface CipherSuite {
  id: number;
  /** RAKP-HMAC-SHA1 (1) or RAKP-HMAC-SHA256 (3). */
  authAlgorithm: number;
  /** HMAC-SHA1-96 (1) or HMAC-SHA256-128 (4). */
  integrityAlgorithm: number;
  /** AES-CBC-128 (1). */
  confidentialityAlgorithm: number;
  hash: HashName;
  /** Bytes of the RAKP 4 integrity check value and of every packet's integrity code (12 or 16). */
  icvLength: number;
}

/**
 * The suites vigil speaks: 3 (SHA-1, what most BMCs and ipmi_sim accept) and 17 (SHA-256). Suite 0 (no
 * authentication) is a known hole, and the MD5 suites are obsolete: neither is offered.
 */
export const CIPHER_SUITES: Readonly<Record<number, CipherSuite>> = {
  3: { id: 3, authAlgorithm: 1, integrityAlgorithm: 1, confidentialityAlgorithm: 1, hash: 'sha1', icvLength: 12 },
  17: { id: 17, authAlgorithm: 3, integrityAlgorithm: 4, confidentialityAlgorithm: 1, hash: 'sha256', icvLength: 16 },
};

export function cipherSuite(id: number): CipherSuite {
  const suite = CIPHER_SUITES[id];
  if (!suite) throw new RangeError(`cipher suite ${id} is not supported (use 3 or 17)`);
  return suite;
}

/** The 20-byte key form of a password or Kg: zero-padded (also for SHA-256, as the spec and ipmitool do). */
export function keyFromSecret(secret: Buffer): Buffer {
  if (secret.length > 20) throw new RangeError(`an IPMI password or Kg is at most 20 bytes (this one is ${secret.length})`);
  const key = Buffer.alloc(20);
  secret.copy(key);
  return key;
}

function hmac(hash: HashName, key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac(hash, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** What both ends know once RAKP 2 has been seen: the inputs of every code below. */
export interface RakpContext {
  suite: CipherSuite;
  /** The remote console's session ID (SIDm) and the managed system's (SIDc). */
  consoleSessionId: number;
  bmcSessionId: number;
  consoleRandom: Buffer; // Rm, 16 bytes
  bmcRandom: Buffer; // Rc, 16 bytes
  bmcGuid: Buffer; // GUIDc, 16 bytes
  /** The whole role byte sent in RAKP 1 (privilege, and 0x10 for a name-only lookup). */
  role: number;
  user: Buffer;
}

function roleAndUser(c: RakpContext): Buffer {
  return Buffer.concat([Buffer.from([c.role, c.user.length]), c.user]);
}

/** RAKP 2's key exchange authentication code, HMAC_Kuid(SIDm ‖ SIDc ‖ Rm ‖ Rc ‖ GUIDc ‖ ROLEm ‖ ULENm ‖ UNAMEm). */
export function rakp2Code(c: RakpContext, kuid: Buffer): Buffer {
  return hmac(c.suite.hash, kuid, u32le(c.consoleSessionId), u32le(c.bmcSessionId), c.consoleRandom, c.bmcRandom, c.bmcGuid, roleAndUser(c));
}

/** RAKP 3's, HMAC_Kuid(Rc ‖ SIDm ‖ ROLEm ‖ ULENm ‖ UNAMEm). */
export function rakp3Code(c: RakpContext, kuid: Buffer): Buffer {
  return hmac(c.suite.hash, kuid, c.bmcRandom, u32le(c.consoleSessionId), roleAndUser(c));
}

/** The session integrity key, HMAC_Kg(Rm ‖ Rc ‖ ROLEm ‖ ULENm ‖ UNAMEm); Kg is Kuid unless the BMC has its own key. */
export function sessionIntegrityKey(c: RakpContext, kg: Buffer): Buffer {
  return hmac(c.suite.hash, kg, c.consoleRandom, c.bmcRandom, roleAndUser(c));
}

/** RAKP 4's integrity check value, HMAC_SIK(Rm ‖ SIDc ‖ GUIDc), truncated to the suite's length. */
export function rakp4Icv(c: RakpContext, sik: Buffer): Buffer {
  return hmac(c.suite.hash, sik, c.consoleRandom, u32le(c.bmcSessionId), c.bmcGuid).subarray(0, c.suite.icvLength);
}

/** K1 (integrity) and K2 (confidentiality; its first 16 bytes are the AES key): HMAC_SIK of 20 × 0x01 / 0x02. */
export function sessionKeys(suite: CipherSuite, sik: Buffer): { k1: Buffer; k2: Buffer } {
  return { k1: hmac(suite.hash, sik, Buffer.alloc(20, 1)), k2: hmac(suite.hash, sik, Buffer.alloc(20, 2)) };
}

/** A packet's integrity code: HMAC_K1 over the session header through the next-header byte, truncated. */
export function integrityCode(suite: CipherSuite, k1: Buffer, covered: Buffer): Buffer {
  return hmac(suite.hash, k1, covered).subarray(0, suite.icvLength);
}

/** Compares codes in constant time (a code is a secret's witness: no early exit on the first wrong byte). */
export function codesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** AES-CBC-128 with a fresh IV: IV ‖ E(payload ‖ 01 02 … ‖ pad length), a whole number of blocks. */
export function encryptPayload(k2: Buffer, payload: Buffer, iv: Buffer = randomBytes(16)): Buffer {
  const padLength = (16 - ((payload.length + 1) % 16)) % 16;
  const pad = Buffer.alloc(padLength + 1);
  for (let i = 0; i < padLength; i++) pad[i] = i + 1;
  pad[padLength] = padLength;
  const cipher = createCipheriv('aes-128-cbc', k2.subarray(0, 16), iv).setAutoPadding(false);
  return Buffer.concat([iv, cipher.update(Buffer.concat([payload, pad])), cipher.final()]);
}

/** The inverse; a payload whose length or confidentiality pad is wrong is refused, not guessed at. */
export function decryptPayload(k2: Buffer, data: Buffer): Buffer {
  if (data.length < 32 || data.length % 16 !== 0) throw new IpmiProtocolError(`encrypted payload of ${data.length} bytes (IV and whole blocks expected)`);
  const decipher = createDecipheriv('aes-128-cbc', k2.subarray(0, 16), data.subarray(0, 16)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]);
  const padLength = plain[plain.length - 1]!;
  if (padLength > 15) throw new IpmiProtocolError(`encrypted payload: pad length ${padLength}`);
  const end = plain.length - 1 - padLength;
  for (let i = 0; i < padLength; i++) {
    if (plain[end + i] !== i + 1) throw new IpmiProtocolError('encrypted payload: malformed confidentiality pad');
  }
  return plain.subarray(0, end);
}

// Persistent reservations (SPC-6 5.14, 6.16, 6.17): reservation keys, types, service actions and the
// parsers of the four PERSISTENT RESERVE IN responses. Pure: bytes in, objects out.
import { MalformedResponseError } from './errors.js';

/** The six reservation types, by the short names the CLI and JSON use. */
export type PrType = 'we' | 'ea' | 'wero' | 'earo' | 'wear' | 'eaar';

const TYPE_CODES: Record<PrType, number> = { we: 1, ea: 3, wero: 5, earo: 6, wear: 7, eaar: 8 };
const TYPE_NAMES: Record<PrType, string> = {
  we: 'Write Exclusive',
  ea: 'Exclusive Access',
  wero: 'Write Exclusive, registrants only',
  earo: 'Exclusive Access, registrants only',
  wear: 'Write Exclusive, all registrants',
  eaar: 'Exclusive Access, all registrants',
};
export const PR_TYPES = Object.keys(TYPE_CODES) as PrType[];

export function prTypeCode(type: PrType): number {
  return TYPE_CODES[type];
}

/** The short name of a TYPE field value, or undefined for obsolete and reserved codes. */
export function prTypeFromCode(code: number): PrType | undefined {
  return PR_TYPES.find((t) => TYPE_CODES[t] === code);
}

export function prTypeName(type: PrType): string {
  return TYPE_NAMES[type];
}

export function parsePrType(text: string): PrType {
  const t = text.toLowerCase();
  if ((PR_TYPES as string[]).includes(t)) return t as PrType;
  throw new RangeError(`bad reservation type "${text}": one of ${PR_TYPES.join(', ')}`);
}

// Reservation keys are 8 bytes; bigint keeps all 64 bits.
const MAX_KEY = (1n << 64n) - 1n;

/**
 * A reservation key as typed by a person: hex digits, with or without 0x, 1 to 16 of them. Hex always,
 * as sg_persist reads keys, so "10" is 0x10 everywhere in vigil.
 */
export function parseKey(text: string): bigint {
  const m = /^(?:0x)?([0-9a-f]{1,16})$/i.exec(text.trim());
  if (!m) throw new RangeError(`bad reservation key "${text}": 1 to 16 hex digits, e.g. 0x1a2b`);
  return BigInt(`0x${m[1]}`);
}

export function formatKey(key: bigint): string {
  return `0x${key.toString(16)}`;
}

export function keyToBytes(key: bigint, into: Buffer, offset: number): void {
  if (key < 0n || key > MAX_KEY) throw new RangeError(`reservation key ${key} does not fit in 8 bytes`);
  into.writeBigUInt64BE(key, offset);
}

/** The 24-byte basic PERSISTENT RESERVE OUT parameter list. */
export interface PrOutParameters {
  key: bigint;
  /** Service action reservation key: the new key (REGISTER) or the victim (PREEMPT). */
  serviceActionKey?: bigint;
  /** Activate persist through power loss (REGISTER only). */
  aptpl?: boolean;
  /** Register on every target port (REGISTER only, if the unit supports it). */
  allTargetPorts?: boolean;
}

export function prOutParameterList(p: PrOutParameters): Buffer {
  const b = Buffer.alloc(24);
  keyToBytes(p.key, b, 0);
  keyToBytes(p.serviceActionKey ?? 0n, b, 8);
  b[20] = (p.allTargetPorts ? 0x04 : 0) | (p.aptpl ? 0x01 : 0);
  return b;
}

function need(buf: Buffer, n: number, what: string): void {
  if (buf.length < n) throw new MalformedResponseError(`${what}: ${buf.length} bytes, need at least ${n}`);
}

export interface PrKeys {
  generation: number;
  keys: bigint[];
  /** true when the device had more keys than the allocation length let through */
  truncated: boolean;
}

export function parseReadKeys(buf: Buffer): PrKeys {
  need(buf, 8, 'READ KEYS response');
  const generation = buf.readUInt32BE(0);
  const length = buf.readUInt32BE(4);
  const avail = Math.min(length, buf.length - 8);
  const keys: bigint[] = [];
  for (let off = 8; off + 8 <= 8 + avail; off += 8) keys.push(buf.readBigUInt64BE(off));
  return { generation, keys, truncated: length > buf.length - 8 };
}

export interface PrReservation {
  key: bigint;
  /** undefined when the device reports an obsolete or reserved type code */
  type: PrType | undefined;
  typeCode: number;
  scope: 'lu' | 'element' | `0x${string}`;
}

export interface PrReservationStatus {
  generation: number;
  reservation: PrReservation | null;
}

function scopeName(scope: number): PrReservation['scope'] {
  return scope === 0 ? 'lu' : scope === 2 ? 'element' : `0x${scope.toString(16)}`;
}

export function parseReadReservation(buf: Buffer): PrReservationStatus {
  need(buf, 8, 'READ RESERVATION response');
  const generation = buf.readUInt32BE(0);
  const length = buf.readUInt32BE(4);
  if (length === 0) return { generation, reservation: null };
  need(buf, 24, 'READ RESERVATION response with a reservation');
  const typeCode = buf[21]! & 0x0f;
  return {
    generation,
    reservation: { key: buf.readBigUInt64BE(8), type: prTypeFromCode(typeCode), typeCode, scope: scopeName(buf[21]! >> 4) },
  };
}

export interface PrCapabilities {
  replaceLostReservation: boolean;
  compatibleReservationHandling: boolean;
  specifyInitiatorPorts: boolean;
  allTargetPorts: boolean;
  persistThroughPowerLossCapable: boolean;
  persistThroughPowerLossActive: boolean;
  /** ALLOW COMMANDS field (what a reservation lets through, SPC-6 table 243) */
  allowCommands: number;
  /** Types the unit supports; null when it says its type mask is not valid */
  types: PrType[] | null;
}

export function parseReportCapabilities(buf: Buffer): PrCapabilities {
  need(buf, 8, 'REPORT CAPABILITIES response');
  const b2 = buf[2]!;
  const b3 = buf[3]!;
  const mask = buf.readUInt16BE(4);
  // Type mask bits (SPC-6 table 244): byte 4 bit 7 WEAR, 6 EARO, 5 WERO, 3 EA, 1 WE; byte 5 bit 0 EAAR.
  const bits: [PrType, number][] = [['wear', 0x8000], ['earo', 0x4000], ['wero', 0x2000], ['ea', 0x0800], ['we', 0x0200], ['eaar', 0x0001]];
  return {
    replaceLostReservation: (b2 & 0x80) !== 0,
    compatibleReservationHandling: (b2 & 0x10) !== 0,
    specifyInitiatorPorts: (b2 & 0x08) !== 0,
    allTargetPorts: (b2 & 0x04) !== 0,
    persistThroughPowerLossCapable: (b2 & 0x01) !== 0,
    persistThroughPowerLossActive: (b3 & 0x01) !== 0,
    allowCommands: (b3 >> 4) & 0x07,
    types: b3 & 0x80 ? PR_TYPES.filter((t) => bits.some(([bt, bit]) => bt === t && (mask & bit) !== 0)) : null,
  };
}

/** An initiator port as its TransportID names it (SPC-6 7.6.4). */
export interface TransportId {
  protocol: 'fc' | 'sas' | 'iscsi' | 'srp' | 'sop' | `0x${string}`;
  /** "naa.…" (SAS/FC port names), the iSCSI name (",i,0x" and the ISID when present), or hex */
  name: string;
}

export function parseTransportId(b: Buffer): TransportId {
  const proto = (b[0] ?? 0) & 0x0f;
  const hex = (x: Buffer) => x.toString('hex');
  switch (proto) {
    case 0x0: return { protocol: 'fc', name: `naa.${hex(b.subarray(8, 16))}` };
    case 0x6: return { protocol: 'sas', name: `naa.${hex(b.subarray(4, 12))}` };
    case 0x4: return { protocol: 'srp', name: hex(b.subarray(8, 24)) };
    case 0x5: {
      const len = b.length >= 4 ? b.readUInt16BE(2) : 0;
      const text = b.subarray(4, 4 + len).toString('latin1').replace(/\0+$/, '');
      return { protocol: 'iscsi', name: text };
    }
    default: return { protocol: `0x${proto.toString(16)}`, name: hex(b) };
  }
}

export interface PrRegistrant {
  key: bigint;
  holder: boolean;
  allTargetPorts: boolean;
  /** set on the holder's entry (and every entry of an all-registrants reservation) */
  type: PrType | undefined;
  scope: PrReservation['scope'];
  relativeTargetPort: number;
  transportId: TransportId | null;
}

export interface PrFullStatus {
  generation: number;
  registrants: PrRegistrant[];
  truncated: boolean;
}

export function parseReadFullStatus(buf: Buffer): PrFullStatus {
  need(buf, 8, 'READ FULL STATUS response');
  const generation = buf.readUInt32BE(0);
  const length = buf.readUInt32BE(4);
  const end = Math.min(buf.length, 8 + length);
  const registrants: PrRegistrant[] = [];
  let off = 8;
  while (off + 24 <= end) {
    const tidLen = buf.readUInt32BE(off + 20);
    const tid = buf.subarray(off + 24, Math.min(end, off + 24 + tidLen));
    const holder = (buf[off + 12]! & 0x01) !== 0;
    registrants.push({
      key: buf.readBigUInt64BE(off),
      holder,
      allTargetPorts: (buf[off + 12]! & 0x02) !== 0,
      type: holder ? prTypeFromCode(buf[off + 13]! & 0x0f) : undefined,
      scope: scopeName(buf[off + 13]! >> 4),
      relativeTargetPort: buf.readUInt16BE(off + 18),
      transportId: tid.length > 0 ? parseTransportId(tid) : null,
    });
    off += 24 + tidLen;
  }
  return { generation, registrants, truncated: 8 + length > buf.length };
}

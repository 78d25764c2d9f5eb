// The one sense decoder: fixed (0x70/0x71) and descriptor (0x72/0x73) formats, SPC-6 4.4.
// Never throws: a short or odd buffer decodes to what it holds, with format "unknown" when the response
// code is not one of the four, so a field engineer still sees the raw bytes.
import { ascText } from './asc-table.js';

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
  COMPLETED: 0xf,
} as const;

const SENSE_KEY_NAMES = [
  'NO SENSE', 'RECOVERED ERROR', 'NOT READY', 'MEDIUM ERROR', 'HARDWARE ERROR', 'ILLEGAL REQUEST',
  'UNIT ATTENTION', 'DATA PROTECT', 'BLANK CHECK', 'VENDOR SPECIFIC', 'COPY ABORTED', 'ABORTED COMMAND',
  'RESERVED', 'VOLUME OVERFLOW', 'MISCOMPARE', 'COMPLETED',
] as const;

export function senseKeyName(key: number): string {
  return SENSE_KEY_NAMES[key & 0xf] ?? 'RESERVED';
}

/** Where in the CDB or parameter list an ILLEGAL REQUEST points (sense-key specific field pointer). */
export interface FieldPointer {
  in: 'cdb' | 'parameter list';
  byte: number;
  bit?: number;
}

export interface Sense {
  format: 'fixed' | 'descriptor' | 'unknown';
  responseCode: number;
  /** false for deferred errors (0x71, 0x73): they belong to an earlier command */
  current: boolean;
  key: number;
  keyName: string;
  asc: number;
  ascq: number;
  /** "06/2a/05": key/ASC/ASCQ in hex, as field engineers quote it */
  code: string;
  text: string;
  /** The INFORMATION field when marked valid (often an LBA) */
  information?: bigint;
  commandSpecific?: bigint;
  fieldPointer?: FieldPointer;
  /** NOT READY / NO SENSE progress indication, 0..1 */
  progress?: number;
  filemark?: boolean;
  eom?: boolean;
  ili?: boolean;
  fru?: number;
  /** Descriptor-format descriptors vigil does not interpret, kept as they came */
  otherDescriptors?: { type: number; bytes: Buffer }[];
  raw: Buffer;
}

export function decodeSense(raw: Buffer): Sense {
  const responseCode = raw.length > 0 ? raw[0]! & 0x7f : 0;
  const base = { responseCode, raw };
  if (responseCode === 0x70 || responseCode === 0x71) return decodeFixed(raw, base);
  if (responseCode === 0x72 || responseCode === 0x73) return decodeDescriptor(raw, base);
  return finish({ ...base, format: 'unknown', current: true, key: 0, asc: 0, ascq: 0 });
}

type Partial0 = Omit<Sense, 'keyName' | 'code' | 'text'>;

function finish(s: Partial0): Sense {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return { ...s, keyName: senseKeyName(s.key), code: `${h(s.key)}/${h(s.asc)}/${h(s.ascq)}`, text: ascText(s.asc, s.ascq) };
}

function decodeFixed(raw: Buffer, base: { responseCode: number; raw: Buffer }): Sense {
  const at = (i: number) => raw[i] ?? 0;
  // Additional sense length says how much follows byte 7; trust it only up to what arrived.
  const end = Math.min(raw.length, 8 + at(7));
  const s: Partial0 = {
    ...base,
    format: 'fixed',
    current: base.responseCode === 0x70,
    key: at(2) & 0x0f,
    asc: end > 12 ? at(12) : 0,
    ascq: end > 13 ? at(13) : 0,
  };
  if (at(2) & 0x80) s.filemark = true;
  if (at(2) & 0x40) s.eom = true;
  if (at(2) & 0x20) s.ili = true;
  if (at(0) & 0x80 && raw.length >= 7) s.information = BigInt(raw.readUInt32BE(3));
  if (end >= 12) {
    const cs = raw.readUInt32BE(8);
    if (cs !== 0) s.commandSpecific = BigInt(cs);
  }
  if (end > 14 && at(14) !== 0) s.fru = at(14);
  if (end >= 18 && at(15) & 0x80) senseKeySpecific(s, raw.subarray(15, 18));
  return finish(s);
}

function decodeDescriptor(raw: Buffer, base: { responseCode: number; raw: Buffer }): Sense {
  const at = (i: number) => raw[i] ?? 0;
  const s: Partial0 = {
    ...base,
    format: 'descriptor',
    current: base.responseCode === 0x72,
    key: at(1) & 0x0f,
    asc: at(2),
    ascq: at(3),
  };
  const end = Math.min(raw.length, 8 + at(7));
  for (let off = 8; off + 2 <= end; ) {
    const type = at(off);
    const len = at(off + 1);
    const d = raw.subarray(off, Math.min(end, off + 2 + len));
    off += 2 + len;
    switch (type) {
      case 0x00: // information
        if (d.length >= 12 && (d[2]! & 0x80) !== 0) s.information = d.readBigUInt64BE(4);
        break;
      case 0x01: // command-specific information
        if (d.length >= 12) s.commandSpecific = d.readBigUInt64BE(4);
        break;
      case 0x02: // sense key specific
        if (d.length >= 7 && (d[4]! & 0x80) !== 0) senseKeySpecific(s, d.subarray(4, 7));
        break;
      case 0x03: // field replaceable unit
        if (d.length >= 4 && d[3] !== 0) s.fru = d[3];
        break;
      case 0x04: // stream commands
        if (d.length >= 4) {
          if (d[3]! & 0x80) s.filemark = true;
          if (d[3]! & 0x40) s.eom = true;
          if (d[3]! & 0x20) s.ili = true;
        }
        break;
      case 0x05: // block commands
        if (d.length >= 4 && d[3]! & 0x20) s.ili = true;
        break;
      default:
        (s.otherDescriptors ??= []).push({ type, bytes: Buffer.from(d) });
    }
  }
  return finish(s);
}

// The three sense-key specific bytes (SKSV already checked): their meaning depends on the sense key.
function senseKeySpecific(s: Partial0, b: Buffer): void {
  const value = (b[1]! << 8) | b[2]!;
  if (s.key === SenseKey.ILLEGAL_REQUEST) {
    const fp: FieldPointer = { in: b[0]! & 0x40 ? 'cdb' : 'parameter list', byte: value };
    if (b[0]! & 0x08) fp.bit = b[0]! & 0x07;
    s.fieldPointer = fp;
  } else if (s.key === SenseKey.NOT_READY || s.key === SenseKey.NO_SENSE) {
    s.progress = value / 65536;
  }
}

/** One line for people: "UNIT ATTENTION: Registrations preempted (06/2a/05)". */
export function describeSense(s: Sense): string {
  if (s.format === 'unknown') return `unrecognised sense data (response code 0x${s.responseCode.toString(16)})`;
  let line = `${s.keyName}: ${s.text} (${s.code})`;
  if (!s.current) line = `deferred error: ${line}`;
  if (s.fieldPointer) {
    const fp = s.fieldPointer;
    line += `, field in ${fp.in} byte ${fp.byte}${fp.bit !== undefined ? ` bit ${fp.bit}` : ''}`;
  }
  if (s.information !== undefined) line += `, information 0x${s.information.toString(16)}`;
  if (s.progress !== undefined) line += `, ${(s.progress * 100).toFixed(1)}% done`;
  return line;
}

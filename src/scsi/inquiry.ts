// INQUIRY responses (SPC-6 6.7 and 7.7): standard data and the VPD pages vigil reads to know which
// logical unit a path leads to: 0x00 (supported pages), 0x80 (unit serial number), 0x83 (device
// identification).
import { MalformedResponseError } from './errors.js';

export const VpdPage = { SUPPORTED_PAGES: 0x00, UNIT_SERIAL_NUMBER: 0x80, DEVICE_IDENTIFICATION: 0x83 } as const;

const DEVICE_TYPES: Record<number, string> = {
  0x00: 'disk', 0x01: 'tape', 0x02: 'printer', 0x03: 'processor', 0x04: 'write-once', 0x05: 'cd/dvd',
  0x07: 'optical memory', 0x08: 'media changer', 0x0c: 'storage array controller', 0x0d: 'enclosure services',
  0x0e: 'simplified disk', 0x0f: 'optical card', 0x11: 'object storage', 0x12: 'automation/drive interface',
  0x14: 'zoned block', 0x1e: 'well known logical unit', 0x1f: 'unknown or no device type',
};

const VERSIONS: Record<number, string> = { 0: 'none', 3: 'SPC', 4: 'SPC-2', 5: 'SPC-3', 6: 'SPC-4', 7: 'SPC-5' };

export interface StandardInquiry {
  /** 0: a unit is connected; 1: the target supports one here but none is connected; 3: no unit here */
  qualifier: number;
  deviceType: number;
  deviceTypeName: string;
  removable: boolean;
  version: number;
  versionName: string;
  responseDataFormat: number;
  /** ALUA support: 0 none, 1 implicit, 2 explicit, 3 both */
  tpgs: number;
  protect: boolean;
  multiPort: boolean;
  commandQueueing: boolean;
  vendor: string;
  product: string;
  revision: string;
}

function ascii(buf: Buffer, from: number, to: number): string {
  return buf.subarray(from, Math.min(to, buf.length)).toString('latin1').replace(/\0/g, ' ').trim();
}

export function parseStandardInquiry(buf: Buffer): StandardInquiry {
  if (buf.length < 5) throw new MalformedResponseError(`standard INQUIRY response: ${buf.length} bytes, need at least 5`);
  const deviceType = buf[0]! & 0x1f;
  const version = buf[2]!;
  return {
    qualifier: buf[0]! >> 5,
    deviceType,
    deviceTypeName: DEVICE_TYPES[deviceType] ?? `type 0x${deviceType.toString(16)}`,
    removable: (buf[1]! & 0x80) !== 0,
    version,
    versionName: VERSIONS[version] ?? `0x${version.toString(16)}`,
    responseDataFormat: buf[3]! & 0x0f,
    tpgs: ((buf[5] ?? 0) >> 4) & 0x03,
    protect: ((buf[5] ?? 0) & 0x01) !== 0,
    multiPort: ((buf[6] ?? 0) & 0x10) !== 0,
    commandQueueing: ((buf[7] ?? 0) & 0x02) !== 0,
    vendor: ascii(buf, 8, 16),
    product: ascii(buf, 16, 32),
    revision: ascii(buf, 32, 36),
  };
}

/** Checks a VPD page header and returns its payload (the bytes after the 4-byte header). */
function vpdPayload(buf: Buffer, page: number): Buffer {
  if (buf.length < 4) throw new MalformedResponseError(`VPD page 0x${page.toString(16)}: ${buf.length} bytes, need at least 4`);
  if (buf[1] !== page) {
    throw new MalformedResponseError(`asked for VPD page 0x${page.toString(16)}, got page 0x${buf[1]!.toString(16)}`);
  }
  const length = buf.readUInt16BE(2);
  return buf.subarray(4, Math.min(buf.length, 4 + length));
}

/** The page length a VPD response announces, to ask again with room for all of it. */
export function vpdLength(buf: Buffer): number {
  return buf.length >= 4 ? 4 + buf.readUInt16BE(2) : 0;
}

export function parseSupportedPages(buf: Buffer): number[] {
  return [...vpdPayload(buf, VpdPage.SUPPORTED_PAGES)];
}

export function parseUnitSerialNumber(buf: Buffer): string {
  return ascii(vpdPayload(buf, VpdPage.UNIT_SERIAL_NUMBER), 0, Infinity);
}

export type DesignatorType =
  | 'vendor' | 't10' | 'eui64' | 'naa' | 'relative-port' | 'port-group' | 'lu-group' | 'md5'
  | 'scsi-name' | 'protocol-port' | 'uuid' | 'reserved';
const DESIGNATOR_TYPES: DesignatorType[] = [
  'vendor', 't10', 'eui64', 'naa', 'relative-port', 'port-group', 'lu-group', 'md5', 'scsi-name', 'protocol-port', 'uuid',
];
export type Association = 'lu' | 'port' | 'target' | 'reserved';
const ASSOCIATIONS: Association[] = ['lu', 'port', 'target', 'reserved'];

export interface Designator {
  type: DesignatorType;
  association: Association;
  codeSet: 'binary' | 'ascii' | 'utf8' | 'reserved';
  protocol: number | null;
  /** Canonical text: "naa.6001405…", "eui.…", "t10.LIO-ORG …", the SCSI name, "uuid.…", or the port number */
  value: string;
  raw: Buffer;
}

function designatorValue(type: DesignatorType, codeSet: Designator['codeSet'], d: Buffer): string {
  const hex = d.toString('hex');
  switch (type) {
    case 'naa': return `naa.${hex}`;
    case 'eui64': return `eui.${hex}`;
    case 't10': return `t10.${d.toString('latin1').replace(/\0/g, ' ').trim()}`;
    case 'scsi-name': return d.toString('utf8').replace(/\0+$/, '');
    case 'relative-port':
    case 'port-group':
      return String(d.length >= 4 ? d.readUInt16BE(2) : 0);
    case 'lu-group': return String(d.length >= 4 ? d.readUInt16BE(2) : 0);
    case 'uuid': return `uuid.${d.subarray(2).toString('hex')}`;
    default: return codeSet === 'ascii' || codeSet === 'utf8' ? d.toString('utf8').trim() : hex;
  }
}

export function parseDeviceIdentification(buf: Buffer): Designator[] {
  const payload = vpdPayload(buf, VpdPage.DEVICE_IDENTIFICATION);
  const out: Designator[] = [];
  for (let off = 0; off + 4 <= payload.length; ) {
    const b0 = payload[off]!;
    const b1 = payload[off + 1]!;
    const len = payload[off + 3]!;
    if (off + 4 + len > payload.length) {
      throw new MalformedResponseError(`VPD 0x83: designator at offset ${off + 4} runs past the page end`);
    }
    const data = payload.subarray(off + 4, off + 4 + len);
    const codeSetCode = b0 & 0x0f;
    const codeSet = codeSetCode === 1 ? 'binary' : codeSetCode === 2 ? 'ascii' : codeSetCode === 3 ? 'utf8' : 'reserved';
    const type = DESIGNATOR_TYPES[b1 & 0x0f] ?? 'reserved';
    out.push({
      type,
      association: ASSOCIATIONS[(b1 >> 4) & 0x03]!,
      codeSet,
      protocol: b1 & 0x80 ? b0 >> 4 : null, // PIV: the protocol identifier is valid
      value: designatorValue(type, codeSet, data),
      raw: Buffer.from(data),
    });
    off += 4 + len;
  }
  return out;
}

// The designators that name a logical unit, best first: NAA and EUI-64 are world-wide unique by
// construction; a SCSI name string usually is; T10 vendor ID is unique only as far as the vendor keeps it.
const IDENTITY_PREFERENCE: DesignatorType[] = ['naa', 'eui64', 'uuid', 'scsi-name', 't10'];

/**
 * The identity of the logical unit behind a path: its best logical-unit designator in canonical text
 * (e.g. "naa.60014055ca1ab1e00000001000000000"), the same string Linux shows in sysfs `wwid` for NAA and
 * EUI-64. Undefined when the unit offers no logical-unit designator.
 */
export function unitIdentity(designators: Designator[]): string | undefined {
  for (const type of IDENTITY_PREFERENCE) {
    const d = designators.find((x) => x.association === 'lu' && x.type === type);
    if (d) return d.value;
  }
  return undefined;
}

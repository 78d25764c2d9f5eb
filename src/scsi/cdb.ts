// Command descriptor blocks: the bytes of every command vigil sends (SPC-6, SBC-5). Pure builders; the
// control byte is always 0 (no NACA, no linking).

export const PrInAction = {
  READ_KEYS: 0x00,
  READ_RESERVATION: 0x01,
  REPORT_CAPABILITIES: 0x02,
  READ_FULL_STATUS: 0x03,
} as const;

export const PrOutAction = {
  REGISTER: 0x00,
  RESERVE: 0x01,
  RELEASE: 0x02,
  CLEAR: 0x03,
  PREEMPT: 0x04,
  PREEMPT_AND_ABORT: 0x05,
  REGISTER_AND_IGNORE_EXISTING_KEY: 0x06,
  REGISTER_AND_MOVE: 0x07,
} as const;

export const PR_IN_ACTION_NAMES = ['READ KEYS', 'READ RESERVATION', 'REPORT CAPABILITIES', 'READ FULL STATUS'];
export const PR_OUT_ACTION_NAMES = [
  'REGISTER', 'RESERVE', 'RELEASE', 'CLEAR', 'PREEMPT', 'PREEMPT AND ABORT',
  'REGISTER AND IGNORE EXISTING KEY', 'REGISTER AND MOVE',
];

export const Opcode = {
  TEST_UNIT_READY: 0x00,
  INQUIRY: 0x12,
  RESERVE_6: 0x16,
  RELEASE_6: 0x17,
  READ_CAPACITY_10: 0x25,
  RESERVE_10: 0x56,
  RELEASE_10: 0x57,
  PERSISTENT_RESERVE_IN: 0x5e,
  PERSISTENT_RESERVE_OUT: 0x5f,
  READ_16: 0x88,
  WRITE_16: 0x8a,
  SERVICE_ACTION_IN_16: 0x9e,
} as const;

const READ_CAPACITY_16_ACTION = 0x10;

function u16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${what} must be 0..65535, got ${n}`);
  return n;
}

function u32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} must be 0..4294967295, got ${n}`);
  return n;
}

export function testUnitReady(): Buffer {
  return Buffer.alloc(6);
}

/** INQUIRY: the standard data, or the VPD page `page` when given. */
export function inquiry(allocationLength: number, page?: number): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = Opcode.INQUIRY;
  if (page !== undefined) {
    if (!Number.isInteger(page) || page < 0 || page > 0xff) throw new RangeError(`VPD page must be 0..255, got ${page}`);
    cdb[1] = 0x01; // EVPD
    cdb[2] = page;
  }
  cdb.writeUInt16BE(u16(allocationLength, 'INQUIRY allocation length'), 3);
  return cdb;
}

export function readCapacity10(): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = Opcode.READ_CAPACITY_10;
  return cdb;
}

export function readCapacity16(allocationLength = 32): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = Opcode.SERVICE_ACTION_IN_16;
  cdb[1] = READ_CAPACITY_16_ACTION;
  cdb.writeUInt32BE(u32(allocationLength, 'READ CAPACITY(16) allocation length'), 10);
  return cdb;
}

/** SCSI-2 RESERVE(6) / RELEASE(6) of the whole unit (no third party, no extents). */
export function reserve6(): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = Opcode.RESERVE_6;
  return cdb;
}

export function release6(): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = Opcode.RELEASE_6;
  return cdb;
}

export function reserve10(): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = Opcode.RESERVE_10;
  return cdb;
}

export function release10(): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = Opcode.RELEASE_10;
  return cdb;
}

export function persistentReserveIn(serviceAction: number, allocationLength: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = Opcode.PERSISTENT_RESERVE_IN;
  cdb[1] = serviceAction & 0x1f;
  cdb.writeUInt16BE(u16(allocationLength, 'PERSISTENT RESERVE IN allocation length'), 7);
  return cdb;
}

/**
 * PERSISTENT RESERVE OUT with the basic 24-byte parameter list. `typeCode` is the TYPE field (0 where the
 * service action ignores it); scope is always LU_SCOPE, the only scope SPC-6 still defines.
 */
export function persistentReserveOut(serviceAction: number, typeCode = 0, parameterListLength = 24): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = Opcode.PERSISTENT_RESERVE_OUT;
  cdb[1] = serviceAction & 0x1f;
  cdb[2] = typeCode & 0x0f; // scope 0 (LU) in the high nibble
  cdb.writeUInt32BE(u32(parameterListLength, 'parameter list length'), 5);
  return cdb;
}

export interface ReadWriteOptions {
  /** Force unit access: bypass the volatile cache (WRITE: on stable media before GOOD). */
  fua?: boolean;
}

function readWrite16(opcode: number, lba: bigint, blocks: number, opts: ReadWriteOptions): Buffer {
  if (lba < 0n || lba > 0xffffffffffffffffn) throw new RangeError(`LBA ${lba} does not fit in 64 bits`);
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb[1] = opts.fua ? 0x08 : 0;
  cdb.writeBigUInt64BE(lba, 2);
  cdb.writeUInt32BE(u32(blocks, 'transfer length'), 10);
  return cdb;
}

export function read16(lba: bigint, blocks: number, opts: ReadWriteOptions = {}): Buffer {
  return readWrite16(Opcode.READ_16, lba, blocks, opts);
}

export function write16(lba: bigint, blocks: number, opts: ReadWriteOptions = {}): Buffer {
  return readWrite16(Opcode.WRITE_16, lba, blocks, opts);
}

const NAMES: ReadonlyMap<number, string> = new Map([
  [Opcode.TEST_UNIT_READY, 'TEST UNIT READY'],
  [Opcode.INQUIRY, 'INQUIRY'],
  [Opcode.RESERVE_6, 'RESERVE(6)'],
  [Opcode.RELEASE_6, 'RELEASE(6)'],
  [Opcode.READ_CAPACITY_10, 'READ CAPACITY(10)'],
  [Opcode.RESERVE_10, 'RESERVE(10)'],
  [Opcode.RELEASE_10, 'RELEASE(10)'],
  [Opcode.READ_16, 'READ(16)'],
  [Opcode.WRITE_16, 'WRITE(16)'],
  [0x03, 'REQUEST SENSE'],
  [0x08, 'READ(6)'],
  [0x0a, 'WRITE(6)'],
  [0x1a, 'MODE SENSE(6)'],
  [0x28, 'READ(10)'],
  [0x2a, 'WRITE(10)'],
  [0x35, 'SYNCHRONIZE CACHE(10)'],
  [0x5a, 'MODE SENSE(10)'],
  [0xa0, 'REPORT LUNS'],
]);

/** "PERSISTENT RESERVE OUT (PREEMPT AND ABORT)", "INQUIRY (VPD 0x83)", ... for messages and logs. */
export function commandName(cdb: Buffer): string {
  if (cdb.length === 0) return 'empty CDB';
  const op = cdb[0]!;
  const sa = (cdb[1] ?? 0) & 0x1f;
  if (op === Opcode.PERSISTENT_RESERVE_IN) return `PERSISTENT RESERVE IN (${PR_IN_ACTION_NAMES[sa] ?? `0x${sa.toString(16)}`})`;
  if (op === Opcode.PERSISTENT_RESERVE_OUT) return `PERSISTENT RESERVE OUT (${PR_OUT_ACTION_NAMES[sa] ?? `0x${sa.toString(16)}`})`;
  if (op === Opcode.SERVICE_ACTION_IN_16 && sa === READ_CAPACITY_16_ACTION) return 'READ CAPACITY(16)';
  if (op === Opcode.INQUIRY && (cdb[1]! & 1) === 1) return `INQUIRY (VPD 0x${cdb[2]!.toString(16).padStart(2, '0')})`;
  return NAMES.get(op) ?? `opcode 0x${op.toString(16).padStart(2, '0')}`;
}

/** Parses "12 00 00 00 24 00", "120000002400" or "0x12,0x00,...": hex digits, any separators. */
export function parseCdbHex(text: string): Buffer {
  const digits = text.replace(/0x/gi, '').replace(/[\s,:.-]/g, '');
  if (!/^[0-9a-f]*$/i.test(digits) || digits.length % 2 !== 0) {
    throw new RangeError(`bad CDB "${text}": an even number of hex digits, e.g. "12 00 00 00 24 00"`);
  }
  const cdb = Buffer.from(digits, 'hex');
  if (cdb.length < 6 || cdb.length > 32) throw new RangeError(`bad CDB "${text}": ${cdb.length} bytes, a CDB is 6 to 32`);
  return cdb;
}

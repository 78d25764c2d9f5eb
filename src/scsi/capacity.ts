// READ CAPACITY(10) and (16) responses (SBC-5 5.20, 5.21).
import { MalformedResponseError } from './errors.js';

export interface Capacity {
  /** The last addressable block; blocks = lastLba + 1. */
  lastLba: bigint;
  blocks: bigint;
  blockSize: number;
  bytes: bigint;
  /** From (16) only: */
  protection?: { enabled: boolean; type: number };
  physicalBlockExponent?: number;
  thinProvisioned?: boolean;
  /** Unmapped blocks read back as zeros. */
  unmappedReadsZero?: boolean;
  lowestAlignedLba?: number;
}

function capacity(lastLba: bigint, blockSize: number): Capacity {
  const blocks = lastLba + 1n;
  return { lastLba, blocks, blockSize, bytes: blocks * BigInt(blockSize) };
}

export function parseReadCapacity10(buf: Buffer): Capacity {
  if (buf.length < 8) throw new MalformedResponseError(`READ CAPACITY(10) response: ${buf.length} bytes, need 8`);
  return capacity(BigInt(buf.readUInt32BE(0)), buf.readUInt32BE(4));
}

/** READ CAPACITY(10) says this when the unit is too big for 32 bits: ask (16). */
export function needsReadCapacity16(c: Capacity): boolean {
  return c.lastLba === 0xffffffffn;
}

export function parseReadCapacity16(buf: Buffer): Capacity {
  if (buf.length < 12) throw new MalformedResponseError(`READ CAPACITY(16) response: ${buf.length} bytes, need at least 12`);
  const c = capacity(buf.readBigUInt64BE(0), buf.readUInt32BE(8));
  if (buf.length >= 16) {
    const b12 = buf[12]!;
    c.protection = { enabled: (b12 & 0x01) !== 0, type: (b12 & 0x01) !== 0 ? ((b12 >> 1) & 0x07) + 1 : 0 };
    c.physicalBlockExponent = buf[13]! & 0x0f;
    c.thinProvisioned = (buf[14]! & 0x80) !== 0;
    c.unmappedReadsZero = (buf[14]! & 0x40) !== 0;
    c.lowestAlignedLba = buf.readUInt16BE(14) & 0x3fff;
  }
  return c;
}

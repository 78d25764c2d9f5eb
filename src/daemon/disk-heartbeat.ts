// The disk heartbeat record (seed 001 D2/D3: the "drive pulse"), pure. Each node owns one block in a small
// area at the end of a shared logical unit and rewrites it every interval with a growing counter; peers
// read the whole area in one READ and count a changed counter as a sign of life on channel disk:<name>.
//
// Why this and not toggling a reservation (the patent's RESERVE/RELEASE pulse): the reservation is the
// ownership arbiter, and toggling it would open a window in which no node owns the disk. A record costs one
// small write and one small read per node per interval, and a node whose registration was preempted cannot
// write it any more (WRITE EXCLUSIVE - REGISTRANTS ONLY), so a fenced node's pulse stops by itself.
//
// Record (big-endian), at the start of the node's block, the rest of the block zero:
//   0  4  magic "VGHB"          16  8  incarnation
//   4  1  version 1             24  8  counter (grows by one per write)
//   5  1  reserved 0            32 32  HMAC-SHA256(cluster key, bytes 0..31)
//   6  2  node id
//   8  4  cluster tag
//  12  4  reserved 0
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Blocks reserved at the end of the unit: one per node, 16 nodes at most, and room to grow. */
export const HEARTBEAT_AREA_BLOCKS = 32;
const MAGIC = Buffer.from('VGHB', 'latin1');
const SIGNED = 32;
export const RECORD_LENGTH = 64;

export interface HeartbeatRecord { node: number; clusterTag: number; incarnation: bigint; counter: bigint }

export function encodeRecord(key: Buffer, r: HeartbeatRecord, blockSize: number): Buffer {
  const b = Buffer.alloc(blockSize);
  MAGIC.copy(b, 0);
  b[4] = 1;
  b.writeUInt16BE(r.node, 6);
  b.writeUInt32BE(r.clusterTag, 8);
  b.writeBigUInt64BE(r.incarnation, 16);
  b.writeBigUInt64BE(r.counter, 24);
  createHmac('sha256', key).update(b.subarray(0, SIGNED)).digest().copy(b, SIGNED);
  return b;
}

/** The record in one block, or undefined when the block holds none that this cluster's key signed. */
export function decodeRecord(key: Buffer, block: Buffer, clusterTag: number): HeartbeatRecord | undefined {
  if (block.length < RECORD_LENGTH || !block.subarray(0, 4).equals(MAGIC) || block[4] !== 1) return undefined;
  const mac = createHmac('sha256', key).update(block.subarray(0, SIGNED)).digest();
  if (!timingSafeEqual(mac, block.subarray(SIGNED, RECORD_LENGTH))) return undefined;
  if (block.readUInt32BE(8) !== clusterTag) return undefined;
  return {
    node: block.readUInt16BE(6), clusterTag, incarnation: block.readBigUInt64BE(16), counter: block.readBigUInt64BE(24),
  };
}

/** The LBA of a node's block: the area is the last HEARTBEAT_AREA_BLOCKS blocks; the slot is the node's index. */
export function slotLba(lastLba: bigint, slot: number): bigint {
  if (slot < 0 || slot >= HEARTBEAT_AREA_BLOCKS) throw new RangeError(`heartbeat slot ${slot} out of 0..${HEARTBEAT_AREA_BLOCKS - 1}`);
  return lastLba - BigInt(HEARTBEAT_AREA_BLOCKS) + 1n + BigInt(slot);
}

/**
 * Remembers the last record seen from each node; `changed` is true when a record shows the node wrote
 * since (a new incarnation or a higher counter): that, not the record's presence, is the sign of life.
 */
export class PulseTracker {
  private readonly last = new Map<number, { incarnation: bigint; counter: bigint }>();

  changed(r: HeartbeatRecord): boolean {
    const prev = this.last.get(r.node);
    const moved = prev === undefined ? false
      : r.incarnation > prev.incarnation || (r.incarnation === prev.incarnation && r.counter > prev.counter);
    if (prev === undefined || moved) this.last.set(r.node, { incarnation: r.incarnation, counter: r.counter });
    return moved;
  }
}

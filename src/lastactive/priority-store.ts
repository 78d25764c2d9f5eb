// The priority record of seed 003 (B.4, B.10 #1 and #5, B.11) on a server's own disk: what this node
// was (M, SM, SL) when it last changed state, as the priority 1/2/3 that the recovery decision compares.
//
// THE FILE: two slots of SLOT_SIZE bytes, written alternately. A write goes to the slot that does not
// hold the newest record, so the newest record is never touched by the write that replaces it: a crash
// or power loss at any moment leaves either the old record (the new slot is torn, its checksum fails)
// or the new one. A read takes the valid slot with the highest sequence number; with no valid slot (or
// no file) the answer is "undeterminable", never a guess (B.10 #5: the node then needs a forced start).
//
// Why 4096-byte slots: each slot is a page of its own and whole physical sectors of its own even on a
// 4Kn disk, so writing back one slot never rewrites the sector or page holding the other. The record
// itself is 96 bytes at the start of its slot; the rest of the slot is zero and not checked.
//
// RECORD (big-endian, unsigned, like the wire format of docs/cluster.md):
//   off len field
//    0   4  magic "VGLP"
//    4   1  version 1
//    5   1  priority: 1 (SM), 2 (M), 3 (SL)
//    6   1  state the node entered with this write: 1 M, 2 SM, 3 SL, 4 X (X only in the initial record)
//    7   1  flags: bit 0 FORCED, this record's 1 was written by a forced start (B.6, B.10 #3); others 0
//    8   8  sequence, >= 1, one more than the newest record before it
//   16   2  node id (this node's id in the config, 1..65535)
//   18   2  peer node id (the other server of the pair; a priority means nothing against another peer)
//   20   1  transition: 0 the initial record, else 1 + index in LABELS (chart.ts) of the edge that wrote it
//   21   1  cluster name length n, 1..32
//   22   2  reserved, 0
//   24  32  cluster name (config `cluster`), n bytes of ASCII, then zeros
//   56   8  reserved, 0
//   64  32  SHA-256 of bytes 0..63
//
// Why SHA-256 and not CRC32C: node:crypto has it, so there is no table or polynomial of our own to get
// wrong; it accepts a damaged record with probability 2^-256 rather than 2^-32; the cost (one hash per
// state change) does not matter. It is a checksum, not a MAC: the file is root's, on the node's own
// disk, and whoever can write it can do worse.
//
// The pure part (encode, decode, choose, plan) works on an image of the file in a Buffer, so the model
// test keeps its stores in memory with the same code; the I/O at the end is open/pread/pwrite/fsync.
import { createHash } from 'node:crypto';
import { lstat, open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { LABELS, type Label, type Priority, type State } from './chart.js';

export const SLOT_SIZE = 4096;
export const SLOT_COUNT = 2;
export const FILE_SIZE = SLOT_SIZE * SLOT_COUNT;
export const RECORD_LENGTH = 96;
const SUMMED = 64;
const MAGIC = Buffer.from('VGLP', 'latin1');
const VERSION = 1;
const FLAG_FORCED = 0x01;
const MAX_CLUSTER_NAME = 32;
const MAX_SEQUENCE = 2n ** 64n - 1n;

const STATE_CODE: Record<State, number> = { M: 1, SM: 2, SL: 3, X: 4 };
const CODE_STATE: Record<number, State> = { 1: 'M', 2: 'SM', 3: 'SL', 4: 'X' };

/** Whose record this is: a record for another cluster, node or peer is an error, not a priority. */
export interface StoreIdentity { cluster: string; node: number; peer: number }

/** What a write says; the sequence and identity are the store's business. */
export interface RecordContent {
  priority: Priority;
  state: State;
  /** The chart edge that wrote it; 'init' for the record written before automatic operation starts. */
  transition: Label | 'init';
  forced: boolean;
}

export interface PriorityRecord extends RecordContent, StoreIdentity { sequence: bigint }

export function encodeRecord(r: PriorityRecord): Buffer {
  const name = Buffer.from(r.cluster, 'latin1');
  if (!/^[\x21-\x7e]{1,32}$/.test(r.cluster)) throw new RangeError(`cluster name must be 1 to ${MAX_CLUSTER_NAME} printable ASCII characters: ${JSON.stringify(r.cluster)}`);
  for (const [what, id] of [['node', r.node], ['peer', r.peer]] as const) {
    if (!Number.isInteger(id) || id < 1 || id > 65535) throw new RangeError(`${what} id must be 1..65535, got ${id}`);
  }
  if (r.node === r.peer) throw new RangeError(`node and peer are the same id ${r.node}`);
  if (r.sequence < 1n || r.sequence > MAX_SEQUENCE) throw new RangeError(`sequence must be 1..2^64-1, got ${r.sequence}`);
  if (![1, 2, 3].includes(r.priority)) throw new RangeError(`priority must be 1, 2 or 3, got ${r.priority}`);
  if (r.forced && r.priority !== 1) throw new RangeError('only a priority of 1 can come from a forced start');
  const b = Buffer.alloc(RECORD_LENGTH);
  MAGIC.copy(b, 0);
  b[4] = VERSION;
  b[5] = r.priority;
  b[6] = STATE_CODE[r.state];
  b[7] = r.forced ? FLAG_FORCED : 0;
  b.writeBigUInt64BE(r.sequence, 8);
  b.writeUInt16BE(r.node, 16);
  b.writeUInt16BE(r.peer, 18);
  b[20] = r.transition === 'init' ? 0 : LABELS.indexOf(r.transition) + 1;
  b[21] = name.length;
  name.copy(b, 24);
  createHash('sha256').update(b.subarray(0, SUMMED)).digest().copy(b, SUMMED);
  return b;
}

export type SlotReading =
  | { ok: true; record: PriorityRecord }
  | { ok: false; why: 'short' | 'empty' | 'magic' | 'version' | 'checksum' | 'field' };

/** One slot's bytes (at least RECORD_LENGTH of them) as a record, or why they are not one. */
export function decodeSlot(slot: Buffer): SlotReading {
  if (slot.length < RECORD_LENGTH) return { ok: false, why: 'short' };
  const rec = slot.subarray(0, RECORD_LENGTH);
  if (rec.every((x) => x === 0)) return { ok: false, why: 'empty' };
  if (!rec.subarray(0, 4).equals(MAGIC)) return { ok: false, why: 'magic' };
  if (rec[4] !== VERSION) return { ok: false, why: 'version' };
  const sum = createHash('sha256').update(rec.subarray(0, SUMMED)).digest();
  if (!sum.equals(rec.subarray(SUMMED, RECORD_LENGTH))) return { ok: false, why: 'checksum' };
  // A record with a good checksum and an impossible field was written by a newer or broken vigil: it
  // is no more trustworthy than a torn one.
  const priority = rec[5]!;
  const state = CODE_STATE[rec[6]!];
  const flags = rec[7]!;
  const code = rec[20]!;
  const n = rec[21]!;
  const sequence = rec.readBigUInt64BE(8);
  const node = rec.readUInt16BE(16);
  const peer = rec.readUInt16BE(18);
  const cluster = rec.subarray(24, 24 + n).toString('latin1');
  const transition: Label | 'init' | undefined = code === 0 ? 'init' : LABELS[code - 1];
  const forced = (flags & FLAG_FORCED) !== 0;
  if (
    (priority !== 1 && priority !== 2 && priority !== 3) || state === undefined || (flags & ~FLAG_FORCED) !== 0 ||
    transition === undefined || n < 1 || n > MAX_CLUSTER_NAME || !/^[\x21-\x7e]+$/.test(cluster) ||
    sequence === 0n || node === 0 || peer === 0 || (forced && priority !== 1)
  ) {
    return { ok: false, why: 'field' };
  }
  return { ok: true, record: { priority, state, transition, forced, sequence, node, peer, cluster } };
}

export class ForeignRecordError extends Error {
  constructor(readonly where: string, readonly found: StoreIdentity, readonly expected: StoreIdentity) {
    super(
      `priority store ${where} holds the record of cluster '${found.cluster}' node ${found.node} (peer ${found.peer}); ` +
      `this is cluster '${expected.cluster}' node ${expected.node} (peer ${expected.peer}). ` +
      'It was copied from another node or the configuration changed: initialise it again (vigil priority init) once you know which node processed last',
    );
    this.name = 'ForeignRecordError';
  }
}

export interface SlotInfo { slot: number; reading: SlotReading }

export type StoreReading =
  | { kind: 'record'; record: PriorityRecord; slot: number; slots: SlotInfo[] }
  | { kind: 'undeterminable'; why: string; slots: SlotInfo[] };

const sameIdentity = (a: StoreIdentity, b: StoreIdentity): boolean => a.cluster === b.cluster && a.node === b.node && a.peer === b.peer;

/**
 * The newest valid record in a file image (undefined: no file). Slots past the end of a short image
 * are invalid ('short'). A valid record for another identity throws ForeignRecordError.
 */
export function chooseRecord(image: Buffer | undefined, identity: StoreIdentity, where = 'image'): StoreReading {
  if (image === undefined) return { kind: 'undeterminable', why: 'no priority record (the file does not exist)', slots: [] };
  const slots: SlotInfo[] = [];
  for (let i = 0; i < SLOT_COUNT; i++) slots.push({ slot: i, reading: decodeSlot(image.subarray(i * SLOT_SIZE, (i + 1) * SLOT_SIZE)) });
  let best: { record: PriorityRecord; slot: number } | undefined;
  for (const { slot, reading } of slots) {
    if (!reading.ok) continue;
    if (!sameIdentity(reading.record, identity)) throw new ForeignRecordError(where, reading.record, identity);
    if (best === undefined || reading.record.sequence > best.record.sequence) best = { record: reading.record, slot };
  }
  if (best === undefined) {
    const detail = slots.map(({ slot, reading }) => `slot ${slot}: ${reading.ok ? 'valid' : reading.why}`).join(', ');
    return { kind: 'undeterminable', why: `no valid priority record (${image.length} bytes; ${detail})`, slots };
  }
  return { kind: 'record', record: best.record, slot: best.slot, slots };
}

export interface PlannedWrite { slot: number; offset: number; bytes: Buffer; record: PriorityRecord }

/**
 * Where and what to write next: the slot not holding the newest record, with the next sequence. On an
 * undeterminable image it starts again at sequence 1 in slot 0: only a caller that may write there
 * (a forced start, a node joining as slave, an operator's init) calls it then.
 */
export function planWrite(current: StoreReading, identity: StoreIdentity, content: RecordContent): PlannedWrite {
  const slot = current.kind === 'record' ? 1 - current.slot : 0;
  const sequence = current.kind === 'record' ? current.record.sequence + 1n : 1n;
  const record: PriorityRecord = { ...identity, ...content, sequence };
  return { slot, offset: slot * SLOT_SIZE, bytes: encodeRecord(record), record };
}

/** A fresh file image holding one record in slot 0 and a zero slot 1. */
export function initialImage(identity: StoreIdentity, content: RecordContent): Buffer {
  const image = Buffer.alloc(FILE_SIZE);
  encodeRecord({ ...identity, ...content, sequence: 1n }).copy(image, 0);
  return image;
}

// ---------------------------------------------------------------------------------------------------
// File I/O. `beforeSyscall` is called before each step that changes the disk, so a test can kill the
// writer there (test/support/priority-writer.ts); the daemon passes nothing.

export type WriteStep = 'open' | 'pwrite' | 'fsync' | 'rename' | 'open-dir' | 'fsync-dir';
export interface WriteHooks { beforeSyscall?: (step: WriteStep) => Promise<void> | void }

/** The file's bytes (at most FILE_SIZE), or undefined when it does not exist. */
async function readImage(path: string): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`priority store ${path}: ${(e as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(FILE_SIZE);
    let got = 0;
    while (got < FILE_SIZE) {
      const { bytesRead } = await fh.read(buf, got, FILE_SIZE - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } catch (e) {
    // EIO, EISDIR and the like: the record may be fine and is merely unreadable now; not "undeterminable".
    throw new Error(`priority store ${path}: ${(e as Error).message}`);
  } finally {
    await fh.close();
  }
}

export async function readPriorityStore(path: string, identity: StoreIdentity): Promise<StoreReading> {
  return chooseRecord(await readImage(path), identity, path);
}

/**
 * Writes the next record in place: pwrite of the other slot, then fsync, before returning. Only after
 * it returns may the state the record describes take effect (LastActive's write-ahead). The file's size and
 * name do not change, so the directory needs no fsync. A missing file is an error: creating the store
 * is `initPriorityStore`'s job, done once by an operator who knows which node processed last.
 */
export async function writePriorityRecord(
  path: string, identity: StoreIdentity, content: RecordContent, hooks: WriteHooks = {},
): Promise<PriorityRecord> {
  const image = await readImage(path);
  if (image === undefined) throw new Error(`priority store ${path} does not exist: initialise it first (vigil priority init)`);
  const current = chooseRecord(image, identity, path);
  // Over an undeterminable store only what claims nothing may be written: a 3 (joining as slave) or a
  // forced start's 1, which the operator asked for knowing the record was lost.
  if (current.kind === 'undeterminable' && content.priority !== 3 && !content.forced) {
    throw new Error(`priority store ${path}: ${current.why}; refusing to write priority ${content.priority} over it without a forced start`);
  }
  const plan = planWrite(current, identity, content);
  await hooks.beforeSyscall?.('open');
  const fh = await open(path, 'r+');
  try {
    await hooks.beforeSyscall?.('pwrite');
    const { bytesWritten } = await fh.write(plan.bytes, 0, plan.bytes.length, plan.offset);
    if (bytesWritten !== plan.bytes.length) throw new Error(`priority store ${path}: short write (${bytesWritten} of ${plan.bytes.length} bytes)`);
    await hooks.beforeSyscall?.('fsync');
    await fh.sync();
  } finally {
    await fh.close();
  }
  return plan.record;
}

/**
 * Creates the store with its first record (the initial 2 or 3, B.4): a temporary file beside it,
 * written and fsynced, renamed over the name, then the directory fsynced, so the name never points at
 * a half-written file. An existing store is replaced only with `replace` (re-initialising an
 * undeterminable or foreign one is an operator's decision, not the daemon's).
 */
export async function initPriorityStore(
  path: string, identity: StoreIdentity, content: RecordContent, opts: { replace?: boolean } & WriteHooks = {},
): Promise<PriorityRecord> {
  if (!opts.replace) {
    const exists = await lstat(path).then(() => true, (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    });
    if (exists) throw new Error(`priority store ${path} already exists; re-initialising it replaces what this node knows of the last processor`);
  }
  const image = initialImage(identity, content);
  const tmp = join(dirname(path), `.${basename(path)}.tmp`);
  await opts.beforeSyscall?.('open');
  const fh = await open(tmp, 'w', 0o600); // a leftover from a crashed init is simply overwritten
  try {
    await opts.beforeSyscall?.('pwrite');
    const { bytesWritten } = await fh.write(image, 0, image.length, 0);
    if (bytesWritten !== image.length) throw new Error(`priority store ${tmp}: short write (${bytesWritten} of ${image.length} bytes)`);
    await opts.beforeSyscall?.('fsync');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await opts.beforeSyscall?.('rename');
  await rename(tmp, path);
  await opts.beforeSyscall?.('open-dir');
  const dir = await open(dirname(path), 'r');
  try {
    await opts.beforeSyscall?.('fsync-dir');
    await dir.sync();
  } finally {
    await dir.close();
  }
  return { ...identity, ...content, sequence: 1n };
}

// The lab campaign's record checks (test/nemesis/lab/records.ts) on records built here byte for byte as
// writer.c builds them: each check fires on the file that breaks it, and on nothing else.
import t from 'tap';

import { checkRecords, parseAckLog, parseRecords, RECORD, type Instance } from '../nemesis/lab/records.js';

function fnv1a(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) h = BigInt.asUintN(64, (h ^ BigInt(x)) * 0x100000001b3n);
  return h;
}

/** One record as writer.c's fill() makes it. */
function rec(node: string, epoch: number, instance: bigint, seq: number, beganMs = 1_000_000): Buffer {
  const b = Buffer.alloc(RECORD);
  b.write('VGREC001', 0);
  b.write(node, 8);
  b.writeBigUInt64LE(BigInt(epoch), 24);
  b.writeBigUInt64LE(BigInt(seq), 32);
  b.writeBigUInt64LE(instance, 40);
  b.writeBigUInt64LE(BigInt(beganMs) * 1_000_000n, 48);
  let x = BigInt.asUintN(64, instance ^ BigInt.asUintN(64, BigInt(seq) * 0x9e3779b97f4a7c15n) ^ 1n);
  for (let off = 56; off < RECORD - 8; off += 8) {
    x = BigInt.asUintN(64, x ^ (x << 13n));
    x ^= x >> 7n;
    x = BigInt.asUintN(64, x ^ (x << 17n));
    b.writeBigUInt64LE(x, off);
  }
  b.writeBigUInt64LE(fnv1a(b.subarray(0, RECORD - 8)), RECORD - 8);
  return b;
}

const A = 0xaaaan;
const B = 0xbbbbn;
const hex = (i: bigint) => i.toString(16).padStart(16, '0');
function inst(node: string, instance: bigint, epoch: number, seqs: number[]): Instance {
  return { node, instance: hex(instance), epoch: BigInt(epoch), pid: 1, startedMs: 0, acks: seqs.map((s) => ({ seq: BigInt(s), epoch: BigInt(epoch), beganMs: 0, ackMs: 0 })), errors: [] };
}
const invs = (file: Buffer, instances: Instance[] = []) => checkRecords(file, instances).map((v) => v.inv);

t.test('a clean failover: a then b, every acknowledged record there', async (t) => {
  const file = Buffer.concat([rec('a', 5, A, 1), rec('a', 5, A, 2), rec('b', 9, B, 1), rec('b', 9, B, 2)]);
  t.same(checkRecords(file, [inst('a', A, 5, [1, 2]), inst('b', B, 9, [1])]), []);
  const { records } = parseRecords(file);
  t.match(records[2], { node: 'b', epoch: 9n, seq: 1n, instance: hex(B) });
});

t.test('a stale writer: a record of a after b took over with a higher epoch', async (t) => {
  t.same(invs(Buffer.concat([rec('a', 5, A, 1), rec('b', 9, B, 1), rec('a', 5, A, 2)])), ['INV-REC-STALE']);
  t.same(invs(Buffer.concat([rec('a', 9, A, 1), rec('a', 5, B, 1)])), ['INV-REC-ORDER'], 'the same node going back: order');
});

t.test('one epoch, two nodes; two writers interleaved', async (t) => {
  t.same(invs(Buffer.concat([rec('a', 5, A, 1), rec('b', 5, B, 1)])), ['INV-REC-EPOCH']);
  const C = 0xccccn;
  t.same(invs(Buffer.concat([rec('a', 5, A, 1), rec('a', 5, C, 1), rec('a', 5, A, 2)])), ['INV-REC-EPOCH']);
  t.same(invs(Buffer.concat([rec('a', 5, A, 1), rec('a', 5, C, 1), rec('a', 5, C, 2)])), [], 'a local restart in one epoch is fine');
});

t.test('acknowledged records lost, duplicated, or with another epoch', async (t) => {
  const file = Buffer.concat([rec('a', 5, A, 1), rec('a', 5, A, 3), rec('a', 5, A, 3)]);
  const v = checkRecords(file, [inst('a', A, 5, [1, 2, 3])]);
  t.match(v.map((x) => x.text), [/1 of 3 acknowledged records .* not in the file: #2/, /#3 is in the file 2 times/, /out of order/]);
  t.same(invs(rec('a', 5, A, 1), [inst('a', A, 6, [1])]), ['INV-REC-ACK']);
});

t.test('torn, foreign or zero blocks, and a file not a whole number of records', async (t) => {
  const torn = Buffer.concat([rec('a', 5, A, 1).subarray(0, 2048), rec('a', 5, A, 2).subarray(2048)]);
  const mixed = rec('a', 5, A, 3);
  mixed.writeBigUInt64LE(4n, 32); // another seq, checksum fixed: the filler gives it away
  mixed.writeBigUInt64LE(fnv1a(mixed.subarray(0, RECORD - 8)), RECORD - 8);
  const { bad } = parseRecords(Buffer.concat([torn, mixed, Buffer.alloc(RECORD), Buffer.from('junk')]));
  t.match(bad, [/not a whole number/, /block 0: bad checksum/, /block 1: filler/, /block 2: zeros/]);
});

t.test('acknowledgement logs', async (t) => {
  const i = parseAckLog('S a 000000000000aaaa 5 42 1000000000\nA 1 5 1000000000 1020000000\nE 2 5 1100000000\nA 3 5 12');
  t.match(i, { node: 'a', instance: hex(A), epoch: 5n, pid: 42, startedMs: 1000 });
  t.equal(i!.acks.length, 1, 'a torn last line acknowledged nothing');
  t.match(i!.errors, [{ seq: 2n, errno: 5, atMs: 1100 }]);
  t.equal(parseAckLog(''), undefined);
});

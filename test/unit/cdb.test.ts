import t from 'tap';

import {
  commandName, inquiry, parseCdbHex, persistentReserveIn, persistentReserveOut, PrInAction, PrOutAction, read16,
  readCapacity10, readCapacity16, release10, release6, reserve10, reserve6, testUnitReady, write16,
} from '../../src/scsi/cdb.js';
import { hex } from '../support/captures.js';

t.test('TEST UNIT READY is six zero bytes', async (t) => {
  t.same(testUnitReady(), hex('00 00 00 00 00 00'));
});

t.test('standard INQUIRY puts the allocation length in bytes 3-4', async (t) => {
  t.same(inquiry(96), hex('12 00 00 00 60 00'));
  t.same(inquiry(0x1234), hex('12 00 00 12 34 00'));
  t.same(inquiry(0xffff), hex('12 00 00 ff ff 00'));
});

t.test('INQUIRY of a VPD page sets EVPD and the page code', async (t) => {
  t.same(inquiry(252, 0x00), hex('12 01 00 00 fc 00'));
  t.same(inquiry(252, 0x80), hex('12 01 80 00 fc 00'));
  t.same(inquiry(252, 0x83), hex('12 01 83 00 fc 00'));
  t.same(inquiry(0x400, 0xb0), hex('12 01 b0 04 00 00'));
});

t.test('INQUIRY rejects a page or allocation length out of range', async (t) => {
  t.throws(() => inquiry(252, 256), RangeError);
  t.throws(() => inquiry(252, -1), RangeError);
  t.throws(() => inquiry(252, 1.5), RangeError);
  t.throws(() => inquiry(70000), RangeError);
  t.throws(() => inquiry(-1), RangeError);
  t.throws(() => inquiry(36.5), RangeError);
});

t.test('READ CAPACITY(10) is opcode 0x25 and nine zero bytes', async (t) => {
  t.same(readCapacity10(), hex('25 00 00 00 00 00 00 00 00 00'));
});

t.test('READ CAPACITY(16) is SERVICE ACTION IN 0x10 with the allocation length in bytes 10-13', async (t) => {
  t.same(readCapacity16(), hex('9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00'), 'defaults to 32 bytes');
  t.same(readCapacity16(0x01020304), hex('9e 10 00 00 00 00 00 00 00 00 01 02 03 04 00 00'));
  t.throws(() => readCapacity16(2 ** 32), RangeError);
  t.throws(() => readCapacity16(-1), RangeError);
});

t.test('SCSI-2 RESERVE and RELEASE carry only their opcodes', async (t) => {
  t.same(reserve6(), hex('16 00 00 00 00 00'));
  t.same(release6(), hex('17 00 00 00 00 00'));
  t.same(reserve10(), hex('56 00 00 00 00 00 00 00 00 00'));
  t.same(release10(), hex('57 00 00 00 00 00 00 00 00 00'));
});

t.test('PERSISTENT RESERVE IN puts the service action in byte 1 and the allocation length in bytes 7-8', async (t) => {
  t.same(persistentReserveIn(PrInAction.READ_KEYS, 8192), hex('5e 00 00 00 00 00 00 20 00 00'));
  t.same(persistentReserveIn(PrInAction.READ_RESERVATION, 8192), hex('5e 01 00 00 00 00 00 20 00 00'));
  t.same(persistentReserveIn(PrInAction.REPORT_CAPABILITIES, 8), hex('5e 02 00 00 00 00 00 00 08 00'));
  t.same(persistentReserveIn(PrInAction.READ_FULL_STATUS, 0xabcd), hex('5e 03 00 00 00 00 00 ab cd 00'));
  t.throws(() => persistentReserveIn(PrInAction.READ_KEYS, 70000), RangeError);
});

t.test('PERSISTENT RESERVE OUT puts action, type and a 24-byte parameter list length in place', async (t) => {
  t.same(persistentReserveOut(PrOutAction.REGISTER), hex('5f 00 00 00 00 00 00 00 18 00'), 'type 0 by default');
  t.same(persistentReserveOut(PrOutAction.RESERVE, 5), hex('5f 01 05 00 00 00 00 00 18 00'));
  t.same(persistentReserveOut(PrOutAction.RELEASE, 5), hex('5f 02 05 00 00 00 00 00 18 00'));
  t.same(persistentReserveOut(PrOutAction.CLEAR), hex('5f 03 00 00 00 00 00 00 18 00'));
  t.same(persistentReserveOut(PrOutAction.PREEMPT, 3), hex('5f 04 03 00 00 00 00 00 18 00'));
  t.same(persistentReserveOut(PrOutAction.PREEMPT_AND_ABORT, 8), hex('5f 05 08 00 00 00 00 00 18 00'));
  t.same(persistentReserveOut(PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY), hex('5f 06 00 00 00 00 00 00 18 00'));
  t.same(persistentReserveOut(PrOutAction.REGISTER, 0, 0x01020304), hex('5f 00 00 00 00 01 02 03 04 00'));
});

t.test('PERSISTENT RESERVE OUT keeps the scope nibble at LU scope', async (t) => {
  t.equal(persistentReserveOut(PrOutAction.RESERVE, 0xf7)[2], 0x07);
});

t.test('READ(16) and WRITE(16) put the 64-bit LBA in bytes 2-9 and the block count in 10-13', async (t) => {
  t.same(read16(0n, 1), hex('88 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00'));
  t.same(write16(0n, 1), hex('8a 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00'));
  t.same(read16(0xfffffff0n, 1), hex('88 00 00 00 00 00 ff ff ff f0 00 00 00 01 00 00'));
  t.same(write16(0x0102030405060708n, 0x0a0b0c0d), hex('8a 00 01 02 03 04 05 06 07 08 0a 0b 0c 0d 00 00'));
  t.same(read16(2n ** 64n - 1n, 0), hex('88 00 ff ff ff ff ff ff ff ff 00 00 00 00 00 00'), 'the largest LBA fits');
});

t.test('FUA sets bit 3 of byte 1', async (t) => {
  t.same(write16(7n, 8, { fua: true }), hex('8a 08 00 00 00 00 00 00 00 07 00 00 00 08 00 00'));
  t.same(read16(7n, 8, { fua: true }), hex('88 08 00 00 00 00 00 00 00 07 00 00 00 08 00 00'));
  t.equal(write16(7n, 8, { fua: false })[1], 0);
});

t.test('READ(16) and WRITE(16) reject an LBA or block count that does not fit', async (t) => {
  t.throws(() => read16(-1n, 1), RangeError);
  t.throws(() => write16(2n ** 64n, 1), RangeError);
  t.throws(() => read16(0n, 2 ** 32), RangeError);
  t.throws(() => write16(0n, -1), RangeError);
});

t.test('commandName names PERSISTENT RESERVE IN service actions', async (t) => {
  t.equal(commandName(persistentReserveIn(PrInAction.READ_KEYS, 8)), 'PERSISTENT RESERVE IN (READ KEYS)');
  t.equal(commandName(persistentReserveIn(PrInAction.READ_RESERVATION, 8)), 'PERSISTENT RESERVE IN (READ RESERVATION)');
  t.equal(commandName(persistentReserveIn(PrInAction.REPORT_CAPABILITIES, 8)), 'PERSISTENT RESERVE IN (REPORT CAPABILITIES)');
  t.equal(commandName(persistentReserveIn(PrInAction.READ_FULL_STATUS, 8)), 'PERSISTENT RESERVE IN (READ FULL STATUS)');
  t.equal(commandName(hex('5e 1f 00 00 00 00 00 00 08 00')), 'PERSISTENT RESERVE IN (0x1f)');
});

t.test('commandName names PERSISTENT RESERVE OUT service actions', async (t) => {
  const names = [
    'REGISTER', 'RESERVE', 'RELEASE', 'CLEAR', 'PREEMPT', 'PREEMPT AND ABORT', 'REGISTER AND IGNORE EXISTING KEY',
    'REGISTER AND MOVE',
  ];
  names.forEach((name, sa) => t.equal(commandName(persistentReserveOut(sa)), `PERSISTENT RESERVE OUT (${name})`));
  t.equal(commandName(hex('5f 08 00 00 00 00 00 00 18 00')), 'PERSISTENT RESERVE OUT (0x8)');
});

t.test('commandName names the other commands vigil sends', async (t) => {
  t.equal(commandName(testUnitReady()), 'TEST UNIT READY');
  t.equal(commandName(inquiry(96)), 'INQUIRY');
  t.equal(commandName(inquiry(252, 0x83)), 'INQUIRY (VPD 0x83)');
  t.equal(commandName(inquiry(252, 0x00)), 'INQUIRY (VPD 0x00)');
  t.equal(commandName(readCapacity10()), 'READ CAPACITY(10)');
  t.equal(commandName(readCapacity16()), 'READ CAPACITY(16)');
  t.equal(commandName(reserve6()), 'RESERVE(6)');
  t.equal(commandName(release6()), 'RELEASE(6)');
  t.equal(commandName(reserve10()), 'RESERVE(10)');
  t.equal(commandName(release10()), 'RELEASE(10)');
  t.equal(commandName(read16(0n, 1)), 'READ(16)');
  t.equal(commandName(write16(0n, 1)), 'WRITE(16)');
  t.equal(commandName(hex('a0 00 00 00 00 00 00 00 00 10 00 00')), 'REPORT LUNS');
});

t.test('commandName falls back to the opcode in hex', async (t) => {
  t.equal(commandName(hex('ff 00 00 00 00 00')), 'opcode 0xff');
  t.equal(commandName(hex('9e 12 00 00 00 00 00 00 00 00 00 00 00 20 00 00')), 'opcode 0x9e', 'GET LBA STATUS is not READ CAPACITY(16)');
});

t.test('parseCdbHex accepts spaced, packed and 0x-prefixed hex', async (t) => {
  const want = hex('12 00 00 00 24 00');
  t.same(parseCdbHex('12 00 00 00 24 00'), want);
  t.same(parseCdbHex('120000002400'), want);
  t.same(parseCdbHex('0x12,0x00,0x00,0x00,0x24,0x00'), want);
  t.same(parseCdbHex('0X12 0X00 0X00 0X00 0X24 0X00'), want);
  t.same(parseCdbHex('12:00:00:00:24:00'), want);
  t.same(parseCdbHex('  12-00-00-00-24-00\n'), want);
  t.same(parseCdbHex('9E 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00'), readCapacity16(), 'upper case');
});

t.test('parseCdbHex gives the bytes the builders make for the captured commands', async (t) => {
  t.same(parseCdbHex('12 01 83 00 fc 00'), inquiry(252, 0x83));
  t.same(parseCdbHex('12 00 00 00 60 00'), inquiry(96));
  t.same(parseCdbHex('25 00 00 00 00 00 00 00 00 00'), readCapacity10());
  t.same(parseCdbHex('9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00'), readCapacity16(32));
  t.same(parseCdbHex('5e 02 00 00 00 00 00 20 00 00'), persistentReserveIn(PrInAction.REPORT_CAPABILITIES, 8192));
  t.same(parseCdbHex('5e 03 00 00 00 00 00 20 00 00'), persistentReserveIn(PrInAction.READ_FULL_STATUS, 8192));
  t.same(parseCdbHex('88 00 00 00 00 00 ff ff ff f0 00 00 00 01 00 00'), read16(0xfffffff0n, 1));
  t.same(parseCdbHex('8a 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00'), write16(0n, 1));
  t.same(parseCdbHex('16 00 00 00 00 00'), reserve6());
  t.same(parseCdbHex('17 00 00 00 00 00'), release6());
  t.same(parseCdbHex('00 00 00 00 00 00'), testUnitReady());
});

t.test('parseCdbHex takes 6 to 32 bytes', async (t) => {
  t.equal(parseCdbHex('00'.repeat(6)).length, 6);
  t.equal(parseCdbHex('00'.repeat(32)).length, 32);
  t.throws(() => parseCdbHex('12 00 00 00 24'), RangeError, 'five bytes');
  t.throws(() => parseCdbHex('00'.repeat(33)), RangeError, '33 bytes');
  t.throws(() => parseCdbHex(''), RangeError, 'nothing');
});

t.test('parseCdbHex rejects an odd number of digits and non-hex text', async (t) => {
  t.throws(() => parseCdbHex('12 00 00 00 24 0'), RangeError);
  t.throws(() => parseCdbHex('1200000024000'), RangeError);
  t.throws(() => parseCdbHex('12 00 00 00 2g 00'), RangeError);
  t.throws(() => parseCdbHex('inquiry'), RangeError);
  t.throws(() => parseCdbHex('12 00 00 00 24 00;'), RangeError);
});

import t from 'tap';

import { needsReadCapacity16, parseReadCapacity10, parseReadCapacity16 } from '../../src/scsi/capacity.js';
import { MalformedResponseError } from '../../src/scsi/errors.js';
import { data, hex } from '../support/captures.js';

t.test('captured READ CAPACITY(10): 131072 blocks of 512 bytes, 64 MiB', async (t) => {
  const c = parseReadCapacity10(data('tcm_loop.capacity10'));
  t.strictSame(c, { lastLba: 0x1ffffn, blocks: 131072n, blockSize: 512, bytes: 64n * 1024n * 1024n });
  t.equal(needsReadCapacity16(c), false);
});

t.test('captured READ CAPACITY(16): the same unit, no protection, no thin provisioning', async (t) => {
  const c = parseReadCapacity16(data('tcm_loop.capacity16'));
  t.strictSame(c, {
    lastLba: 0x1ffffn,
    blocks: 131072n,
    blockSize: 512,
    bytes: 67108864n,
    protection: { enabled: false, type: 0 },
    physicalBlockExponent: 0,
    thinProvisioned: false,
    unmappedReadsZero: false,
    lowestAlignedLba: 0,
  });
});

t.test('READ CAPACITY(16) with type 2 protection, LBPME, LBPRZ, 8 logical blocks per physical', async (t) => {
  const c = parseReadCapacity16(hex([
    '00 00 00 01 00 00 00 00', // last LBA 2^32: too big for (10)
    '00 00 10 00', // 4096-byte blocks
    '03', // P_TYPE 1 (type 2), PROT_EN
    '43', // P_I_EXPONENT 4, logical blocks per physical block exponent 3
    'c0 07', // LBPME, LBPRZ, lowest aligned LBA 7
    '00'.repeat(16),
  ].join(' ')));
  t.equal(c.lastLba, 0x100000000n);
  t.equal(c.blocks, 0x100000001n);
  t.equal(c.blockSize, 4096);
  t.equal(c.bytes, 0x100000001n * 4096n);
  t.strictSame(c.protection, { enabled: true, type: 2 });
  t.equal(c.physicalBlockExponent, 3);
  t.equal(c.thinProvisioned, true);
  t.equal(c.unmappedReadsZero, true);
  t.equal(c.lowestAlignedLba, 7);
});

t.test('READ CAPACITY(16) protection type is P_TYPE + 1 only when PROT_EN is set', async (t) => {
  const at12 = (b12: number) => {
    const b = Buffer.alloc(32);
    b[12] = b12;
    return parseReadCapacity16(b).protection;
  };
  t.strictSame(at12(0x01), { enabled: true, type: 1 });
  t.strictSame(at12(0x05), { enabled: true, type: 3 });
  t.strictSame(at12(0x02), { enabled: false, type: 0 }, 'P_TYPE without PROT_EN means no protection');
});

t.test('READ CAPACITY(16) lowest aligned LBA is 14 bits across bytes 14-15', async (t) => {
  const b = Buffer.alloc(32);
  b[14] = 0xff; // LBPME and LBPRZ set, high bits of the lowest aligned LBA all ones
  b[15] = 0xff;
  t.equal(parseReadCapacity16(b).lowestAlignedLba, 0x3fff);
});

t.test('READ CAPACITY(16) of only 12 bytes gives the size and no extras', async (t) => {
  const c = parseReadCapacity16(hex('00 00 00 00 00 00 00 ff 00 00 02 00'));
  t.strictSame(c, { lastLba: 255n, blocks: 256n, blockSize: 512, bytes: 131072n });
});

t.test('READ CAPACITY(10) returning 0xffffffff asks for READ CAPACITY(16)', async (t) => {
  const c = parseReadCapacity10(hex('ff ff ff ff 00 00 02 00'));
  t.equal(c.lastLba, 0xffffffffn);
  t.equal(needsReadCapacity16(c), true);
  t.equal(needsReadCapacity16(parseReadCapacity10(hex('ff ff ff fe 00 00 02 00'))), false);
});

t.test('short READ CAPACITY responses are malformed', async (t) => {
  t.throws(() => parseReadCapacity10(hex('00 01 ff ff 00 00 02')), MalformedResponseError);
  t.throws(() => parseReadCapacity10(Buffer.alloc(0)), MalformedResponseError);
  t.throws(() => parseReadCapacity16(hex('00 00 00 00 00 01 ff ff 00 00 02')), MalformedResponseError);
  t.throws(() => parseReadCapacity16(data('tcm_loop.capacity10')), MalformedResponseError, 'an 8-byte (10) answer');
});

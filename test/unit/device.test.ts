// ScsiDevice over a scripted transport: the unit attention retry policy, error typing, the CDBs and
// parameter lists it sends, and the follow-up requests it makes (VPD re-read, READ CAPACITY fallback).
import t from 'tap';

import { ScsiDevice } from '../../src/scsi/device.js';
import { IllegalRequestError, ReservationConflictError, UnitAttentionError } from '../../src/scsi/errors.js';
import { CONFLICT, FakeTransport, fixedSense, UA_PREEMPTED, UA_RESET } from '../support/fake-transport.js';

t.test('a unit attention is reported as an event and the command reissued', async (t) => {
  const fake = new FakeTransport([UA_RESET, UA_PREEMPTED, {}]);
  const dev = new ScsiDevice(fake, { unitAttentionRetries: 3 });
  const seen: string[] = [];
  dev.on('unitAttention', (s, cmd) => seen.push(`${cmd} ${s.code} ${s.text}`));
  await dev.testUnitReady();
  t.equal(fake.requests.length, 3, 'sent three times');
  t.same(seen, [
    'TEST UNIT READY 06/29/00 Power on, reset, or bus device reset occurred',
    'TEST UNIT READY 06/2a/05 Registrations preempted',
  ]);
});

t.test('unit attentions beyond the retry budget are thrown', async (t) => {
  const fake = new FakeTransport([UA_RESET, UA_RESET, UA_PREEMPTED]);
  const dev = new ScsiDevice(fake, { unitAttentionRetries: 2 });
  await t.rejects(dev.testUnitReady(), UnitAttentionError);
  t.equal(fake.requests.length, 3);
});

t.test('with no retries the first unit attention is thrown, as sg3_utils reports it', async (t) => {
  const fake = new FakeTransport([UA_PREEMPTED]);
  const dev = new ScsiDevice(fake, { unitAttentionRetries: 0 });
  let events = 0;
  dev.on('unitAttention', () => events++);
  const e = await dev.testUnitReady().catch((x: unknown) => x);
  t.type(e, UnitAttentionError);
  t.equal((e as UnitAttentionError).sense?.code, '06/2a/05');
  t.equal(events, 0, 'nothing reissued, nothing emitted');
});

t.test('other errors are never retried', async (t) => {
  const fake = new FakeTransport([CONFLICT]);
  const dev = new ScsiDevice(fake);
  await t.rejects(dev.prReserve(1n, 'wero'), ReservationConflictError);
  t.equal(fake.requests.length, 1);
});

t.test('PR OUT commands carry the service action, type and parameter list', async (t) => {
  const fake = new FakeTransport([{}, {}, {}, {}, {}, {}, {}, {}]);
  const dev = new ScsiDevice(fake);
  await dev.prRegister(0xabn);
  await dev.prRegister(0xcdn, { ignoreExisting: true, aptpl: true });
  await dev.prRegister(0xefn, { currentKey: 0xabn });
  await dev.prUnregister(0xefn);
  await dev.prReserve(0xabn, 'earo');
  await dev.prRelease(0xabn, 'earo');
  await dev.prClear(0xabn);
  await dev.prPreempt(0x1n, 0x2n, 'eaar', { abort: true });
  const sent = fake.requests.map((r) => ({
    sa: r.cdb[1]! & 0x1f, type: r.cdb[2]! & 0x0f,
    key: r.dataOut!.readBigUInt64BE(0), sark: r.dataOut!.readBigUInt64BE(8), flags: r.dataOut![20],
  }));
  t.same(sent, [
    { sa: 0x00, type: 0, key: 0n, sark: 0xabn, flags: 0 },
    { sa: 0x06, type: 0, key: 0n, sark: 0xcdn, flags: 1 },
    { sa: 0x00, type: 0, key: 0xabn, sark: 0xefn, flags: 0 },
    { sa: 0x00, type: 0, key: 0xefn, sark: 0n, flags: 0 },
    { sa: 0x01, type: 6, key: 0xabn, sark: 0n, flags: 0 },
    { sa: 0x02, type: 6, key: 0xabn, sark: 0n, flags: 0 },
    { sa: 0x03, type: 0, key: 0xabn, sark: 0n, flags: 0 },
    { sa: 0x05, type: 8, key: 0x1n, sark: 0x2n, flags: 0 },
  ]);
  t.ok(fake.requests.every((r) => r.cdb[0] === 0x5f && r.dataOut!.length === 24));
});

t.test('a VPD page longer than the first allocation is read again whole', async (t) => {
  const page = Buffer.alloc(4 + 300);
  page[1] = 0x83;
  page.writeUInt16BE(300, 2);
  const fake = new FakeTransport([
    { data: page.subarray(0, 252) },
    (req) => ({ data: page.subarray(0, req.dataIn) }),
  ]);
  const dev = new ScsiDevice(fake);
  const got = await dev.vpd(0x83);
  t.equal(got.length, 304);
  t.same(fake.requests.map((r) => r.dataIn), [252, 304]);
  t.same(fake.requests.map((r) => r.cdb.readUInt16BE(3)), [252, 304], 'allocation length in the CDB');
});

t.test('READ CAPACITY falls back to (10) when the unit refuses (16)', async (t) => {
  const cap10 = Buffer.from('0001ffff00000200', 'hex');
  const fake = new FakeTransport([{ status: 0x02, sense: fixedSense(0x5, 0x20, 0x00) }, { data: cap10 }]);
  const dev = new ScsiDevice(fake);
  const c = await dev.readCapacity();
  t.equal(c.blocks, 131072n);
  t.same(fake.requests.map((r) => r.cdb[0]), [0x9e, 0x25]);
});

t.test('READ CAPACITY errors other than ILLEGAL REQUEST are not masked by the fallback', async (t) => {
  const dev = new ScsiDevice(new FakeTransport([CONFLICT]));
  await t.rejects(dev.readCapacity(), ReservationConflictError);
});

t.test('write16 refuses data that is not whole blocks, before sending anything', async (t) => {
  const fake = new FakeTransport([]);
  const dev = new ScsiDevice(fake);
  await t.rejects(dev.write16(0n, Buffer.alloc(700), 512), RangeError);
  t.equal(fake.requests.length, 0);
});

t.test('read16 and write16 size the transfer from blocks and block size', async (t) => {
  const fake = new FakeTransport([(req) => ({ data: Buffer.alloc(req.dataIn!) }), {}]);
  const dev = new ScsiDevice(fake);
  t.equal((await dev.read16(5n, 4, 512, { fua: true })).length, 2048);
  await dev.write16(6n, Buffer.alloc(1024), 512);
  const [r, w] = fake.requests;
  t.equal(r!.dataIn, 2048);
  t.equal(r!.cdb[1], 0x08, 'FUA');
  t.equal(r!.cdb.readUInt32BE(10), 4);
  t.equal(w!.cdb.readUInt32BE(10), 2, 'two blocks');
  t.equal(w!.cdb.readBigUInt64BE(2), 6n);
});

t.test('identity() reads VPD 0x83 and picks the logical unit designator', async (t) => {
  const page = Buffer.from('008300180103000860014050000000010114000400000001', 'hex');
  const dev = new ScsiDevice(new FakeTransport([{ data: page }]));
  t.equal(await dev.identity(), 'naa.6001405000000001');
});

t.test('an INQUIRY for an unsupported page is an IllegalRequestError with the field pointer', async (t) => {
  const sense = fixedSense(0x5, 0x24, 0x00);
  sense[15] = 0xc0; // SKSV, C/D = CDB
  sense.writeUInt16BE(2, 16);
  const dev = new ScsiDevice(new FakeTransport([{ status: 0x02, sense }]));
  const e = await dev.vpd(0x99).catch((x: unknown) => x);
  t.type(e, IllegalRequestError);
  t.same((e as IllegalRequestError).sense?.fieldPointer, { in: 'cdb', byte: 2 });
  t.match((e as Error).message, /INQUIRY \(VPD 0x99\): ILLEGAL REQUEST: Invalid field in CDB \(05\/24\/00\), field in cdb byte 2/);
});

t.test('close() closes the transport', async (t) => {
  const fake = new FakeTransport([]);
  new ScsiDevice(fake).close();
  t.ok(fake.closed);
});

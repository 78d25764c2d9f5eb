// Every SCSI command of the library against a real LIO unit (tcm_loop), through sg and sd nodes.
import t from 'tap';

import { lab, open, resetUnit } from '../support/lab.js';

t.before(() => resetUnit(lab.a, lab.b));

t.test('TEST UNIT READY is GOOD on both paths of the shared unit', async (t) => {
  for (const path of [lab.a, lab.b, lab.aSd, lab.bSd]) {
    const dev = await open(path);
    await t.resolves(dev.testUnitReady(), path);
    dev.close();
  }
});

t.test('standard INQUIRY names the LIO fileio backstore', async (t) => {
  const dev = await open(lab.a);
  const q = await dev.inquiry();
  dev.close();
  t.equal(q.vendor, 'LIO-ORG');
  t.equal(q.product, 'FILEIO');
  t.equal(q.deviceTypeName, 'disk');
  t.equal(q.qualifier, 0);
  t.ok(q.version >= 5, `SPC-3 or later (version ${q.version})`);
});

t.test('VPD pages 0x00, 0x80 and 0x83 are read and parsed', async (t) => {
  const dev = await open(lab.a);
  const pages = await dev.supportedVpdPages();
  t.ok(pages.includes(0x80) && pages.includes(0x83), `supported pages ${pages.map((p) => p.toString(16))}`);
  t.equal(await dev.unitSerialNumber(), '5ca1ab1e00000001', 'the serial guest-init gave the backstore');
  const ds = await dev.deviceIdentification();
  t.ok(ds.some((d) => d.type === 'naa' && d.association === 'lu'));
  t.ok(ds.some((d) => d.type === 'relative-port' && d.association === 'port'));
  dev.close();
});

t.test('one identity on every path to the unit, equal to the kernel\'s wwid', async (t) => {
  for (const path of [lab.a, lab.b, lab.aSd, lab.bSd]) {
    const dev = await open(path);
    t.equal(await dev.identity(), lab.sharedId, path);
    dev.close();
  }
  const other = await open(lab.wedgeA);
  t.not(await other.identity(), lab.sharedId, 'another unit has another identity');
  other.close();
});

t.test('READ CAPACITY reports the 64 MiB backstore', async (t) => {
  const dev = await open(lab.b);
  const c = await dev.readCapacity();
  dev.close();
  t.equal(c.blockSize, 512);
  t.equal(c.blocks, 131072n);
  t.equal(c.bytes, 64n * 1024n * 1024n);
});

t.test('a block written with FUA on one path reads back on the other', async (t) => {
  const a = await open(lab.a);
  const b = await open(lab.bSd);
  const block = Buffer.alloc(1024);
  block.write(`vigil lab ${process.pid} ${Date.now()}`);
  for (let i = 64; i < block.length; i++) block[i] = i & 0xff;
  await a.write16(77n, block, 512, { fua: true });
  const back = await b.read16(77n, 2, 512, { fua: true });
  t.same(back, block);
  a.close();
  b.close();
});

t.test('a READ past the end is ILLEGAL REQUEST, LBA out of range', async (t) => {
  const dev = await open(lab.a);
  await t.rejects(dev.read16(1n << 40n, 1, 512), { name: 'IllegalRequestError', sense: { asc: 0x21, ascq: 0x00 } });
  dev.close();
});

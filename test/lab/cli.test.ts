// `vigil scsi …` against real devices: the JSON of every command, its exit code, and a clean exit every
// time (the native threads outlive nothing they should not; see native/sg_device.h on teardown).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { exec, lab, resetUnit, vigil, vigilJson } from '../support/lab.js';

const json = vigilJson;

t.beforeEach(() => resetUnit(lab.a, lab.b));
t.after(() => resetUnit(lab.a, lab.b));

t.test('inquiry, VPD pages and capacity', async (t) => {
  const std = await json('scsi', 'inquiry', lab.a);
  t.match(std, { code: 0, body: { vendor: 'LIO-ORG', product: 'FILEIO', deviceTypeName: 'disk' } });
  t.match(await json('scsi', 'inquiry', lab.a, '--vpd', '0'), { code: 0, body: { page: 0, pages: [0, 0x80, 0x83] } });
  t.match(await json('scsi', 'inquiry', lab.a, '--vpd', '0x80'), { code: 0, body: { serial: '5ca1ab1e00000001' } });
  const id = await json('scsi', 'inquiry', lab.bSd, '--vpd', '0x83');
  t.equal(id.body.identity, lab.sharedId, 'through the sd node too');
  t.ok(id.body.designators.length >= 3);
  t.match(await json('scsi', 'capacity', lab.a), { code: 0, body: { blocks: 131072, blockSize: 512, bytes: 67108864 } });
  const human = await vigil('scsi', 'capacity', lab.a);
  t.match(human.stdout, /^131072 blocks of 512 bytes = 64\.0 MiB \(67108864 bytes\), last LBA 131071/);
  const bad = await json('scsi', 'inquiry', lab.a, '--vpd', '0x99');
  t.equal(bad.code, 5, 'an unsupported page is ILLEGAL REQUEST: exit 5');
  t.match(bad.body, { error: { sense: { code: '05/24/00', text: 'Invalid field in CDB' } } });
});

t.test('persistent reservation commands, JSON shapes and exit codes', async (t) => {
  t.match(await json('scsi', 'pr', 'register', lab.a, '--key', '0xA1'), { code: 0, body: { status: 'GOOD', action: 'register', key: '0xa1' } });
  t.match(await json('scsi', 'pr', 'register', lab.b, '--key', 'b2', '--ignore-existing'), { code: 0, body: { action: 'register-and-ignore-existing-key' } });
  t.same((await json('scsi', 'pr', 'keys', lab.a)).body.keys, ['0xa1', '0xb2']);
  t.equal((await json('scsi', 'pr', 'reserve', lab.a, '--key', 'a1', '--type', 'wero')).code, 0);
  const res = await json('scsi', 'pr', 'reservation', lab.b);
  t.same(res.body.reservation, { key: '0xa1', type: 'wero', scope: 'lu' });
  t.equal(typeof res.body.generation, 'number');
  const st = await json('scsi', 'pr', 'status', lab.b);
  t.match(st.body.registrants, [{ key: '0xa1', holder: true, type: 'wero', transportId: { protocol: 'sas' } }, { key: '0xb2', holder: false }]);
  t.same((await json('scsi', 'pr', 'caps', lab.a)).body.types, ['we', 'ea', 'wero', 'earo', 'wear', 'eaar']);
  t.equal((await json('scsi', 'pr', 'reserve', lab.b, '--key', 'b2', '--type', 'ea')).code, 24, 'conflict: exit 24');
  t.match(await json('scsi', 'pr', 'preempt', lab.b, '--key', 'b2', '--victim', 'a1', '--type', 'ea'), { code: 0, body: { action: 'preempt', victim: '0xa1' } });
  const ua = await json('scsi', 'pr', 'keys', lab.a);
  t.equal(ua.code, 6, 'the preempted path gets the unit attention: exit 6');
  t.match(ua.stderr, /UNIT ATTENTION: Registrations preempted \(06\/2a\/05\)/);
  const retried = await json('scsi', '--retry-ua', '2', 'pr', 'keys', lab.a);
  t.equal(retried.code, 0, '--retry-ua reissues (nothing pending now, so it just works)');
  t.match(await json('scsi', 'pr', 'release', lab.b, '--key', 'b2', '--type', 'ea'), { code: 0, body: { action: 'release' } });
  t.match(await json('scsi', 'pr', 'unregister', lab.b, '--key', 'b2'), { code: 0, body: { action: 'unregister' } });
  t.same((await json('scsi', 'pr', 'keys', lab.a)).body.keys, []);
  await json('scsi', 'pr', 'register', lab.a, '--key', '5');
  t.match(await json('scsi', 'pr', 'register', lab.a, '--key', '6', '--old-key', '5', '--aptpl'), { code: 0 });
  t.match(await json('scsi', 'pr', 'clear', lab.a, '--key', '6'), { code: 0, body: { action: 'clear' } });
});

t.test('PREEMPT AND ABORT from the CLI over iSCSI', async (t) => {
  await resetUnit(lab.iscsiA, lab.iscsiB);
  await vigil('scsi', 'pr', 'register', lab.iscsiA, '--key', '1a');
  await vigil('scsi', 'pr', 'register', lab.iscsiB, '--key', '1b');
  await vigil('scsi', 'pr', 'reserve', lab.iscsiA, '--key', '1a', '--type', 'wero');
  t.match(await json('scsi', 'pr', 'preempt', lab.iscsiB, '--key', '1b', '--victim', '1a', '--type', 'wero', '--abort'),
    { code: 0, body: { action: 'preempt-and-abort' } });
  await resetUnit(lab.iscsiA, lab.iscsiB);
});

t.test('SCSI-2 reserve and release, 6- and 10-byte', async (t) => {
  t.match(await json('scsi', 'reserve', lab.a, '--size', '10'), { code: 0, body: { command: 'RESERVE(10)' } });
  t.same(await json('scsi', 'tur', lab.b), { code: 24, body: { status: 'RESERVATION CONFLICT', sense: null }, stderr: '' });
  t.equal((await vigil('scsi', 'tur', lab.b)).stdout, 'RESERVATION CONFLICT\n');
  t.match(await json('scsi', 'release', lab.a, '--size', '10'), { code: 0, body: { command: 'RELEASE(10)' } });
  t.equal((await vigil('scsi', 'tur', lab.b)).stdout, 'GOOD\n');
});

t.test('raw: data in, data out, and a status without data', async (t) => {
  const inq = await json('scsi', 'raw', lab.a, '--cdb', '12 00 00 00 24 00', '--in', '36');
  t.equal(inq.code, 0);
  t.equal(Buffer.from(inq.body.data, 'hex').subarray(8, 15).toString(), 'LIO-ORG');
  const file = join(await mkdtemp(join(tmpdir(), 'vigil-raw-')), 'block');
  await writeFile(file, Buffer.alloc(512, 0x7e));
  t.match(await json('scsi', 'raw', lab.a, '--cdb', '8a000000000000000100000000010000', '--out', file), { code: 0, body: { status: 'GOOD' } });
  const back = await json('scsi', 'raw', lab.b, '--cdb', '88000000000000000100000000010000', '--in', '512');
  t.equal(back.body.data, '7e'.repeat(512), 'the block written on A reads back on B');
  await vigil('scsi', 'reserve', lab.a);
  t.same(await json('scsi', 'raw', lab.b, '--cdb', '88000000000000000100000000010000', '--in', '512'),
    { code: 24, body: { status: 'RESERVATION CONFLICT', sense: null, resid: 0, data: null }, stderr: '' },
    'a refused READ shows no data: the buffer would be stale');
  await vigil('scsi', 'release', lab.a);
  const badop = await json('scsi', 'raw', lab.a, '--cdb', 'ff 00 00 00 00 00');
  t.match(badop, { code: 9, body: { status: 'CHECK CONDITION', sense: { code: '05/20/00' } } }, 'invalid opcode: exit 9, as sg3_utils');
  t.match((await vigil('scsi', 'raw', lab.a, '--cdb', '12 00 00 00 24 00', '--in', '36')).stdout, /^INQUIRY: GOOD\ndata in: 36 bytes\n0000  00 00 06/);
});

t.test('scan by path and by identity', async (t) => {
  const byPath = await json('scsi', 'scan', lab.a);
  t.equal(byPath.body.identity, lab.sharedId);
  t.same(byPath.body.paths.map((p: { path: string }) => p.path).sort(), [lab.a, lab.b].sort());
  const byId = await json('scsi', 'scan', lab.iscsiId);
  t.same(byId.body.paths.map((p: { path: string }) => p.path).sort(), [lab.iscsiA, lab.iscsiB].sort());
  const none = await json('scsi', 'scan', 'naa.600140500000000000000000000000ff');
  t.equal(none.code, 15, 'no path to that unit');
});

t.test('bench reports count, seconds and per-command time', async (t) => {
  const r = await json('scsi', 'bench', lab.a, '--count', '300', '--depth', '4');
  t.equal(r.code, 0);
  t.match(r.body, { count: 300, depth: 4, failures: 0 });
  t.ok(r.body.perCommandUs > 0 && Math.abs(r.body.perCommandUs - (r.body.seconds * 1e6) / 300) < 1);
});

t.test('the CLI exits cleanly every time it opens, uses and closes a path', async (t) => {
  // Before the teardown fix, about one run in two under TCG ended in SIGABRT as a device thread released
  // its thread-safe function while Node was deleting it.
  const codes: string[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await vigil('scsi', 'tur', i % 2 ? lab.a : lab.bSd);
    codes.push(`${r.code}${r.stderr ? ` ${r.stderr.trim()}` : ''}`);
  }
  t.same(codes, Array(12).fill('0'));
});

t.test('a process that leaves a path open but idle still ends on its own', async (t) => {
  const script = `import { ScsiDevice } from ${JSON.stringify(new URL('../../src/scsi/device.js', import.meta.url).pathname)};
    const d = await ScsiDevice.open(${JSON.stringify(lab.a)}); await d.testUnitReady(); console.log('done');`;
  const r = await exec('timeout', ['60', process.execPath, '--input-type=module', '-e', script]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'done\n');
});

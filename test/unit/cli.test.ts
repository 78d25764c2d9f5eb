// `vigil` as a field engineer meets it without a SCSI device at hand: help, bad input, missing devices,
// the JSON error document, exit codes; and the mapping from error to exit code.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { Exit, exitForError, UsageError } from '../../src/cli/exit-codes.js';
import { hexDump, jsonReplacer, senseJson } from '../../src/cli/output.js';
import { LinkTableError, StaleLinkError } from '../../src/links/table.js';
import {
  CheckConditionError, DeviceOpenError, IllegalRequestError, MalformedResponseError, NotReadyError,
  ReservationConflictError, ScsiStatusError, ScsiTimeoutError, TransportError, UnitAttentionError,
} from '../../src/scsi/errors.js';
import { decodeSense } from '../../src/scsi/sense.js';
import { runCli } from '../support/cli.js';
import { fixedSense } from '../support/fake-transport.js';

const noStack = (s: string) => !/\n\s+at /.test(s);
const TUR = Buffer.alloc(6);

t.test('help names every command group and the exit-code convention', async (t) => {
  const top = await runCli('vigil', ['--help']);
  t.equal(top.code, 0);
  t.match(top.stdout, /scsi \[options\]/);
  t.match(top.stdout, /links \[options\]/);
  t.match(top.stdout, /24 reservation conflict/);
  const pr = await runCli('vigil', ['scsi', 'pr', '--help']);
  for (const c of ['keys', 'reservation', 'status', 'caps', 'register', 'unregister', 'reserve', 'release', 'clear', 'preempt']) {
    t.match(pr.stdout, new RegExp(`\\n  ${c} `), `scsi pr ${c}`);
  }
});

t.test('a bad key is one line and exit 1', async (t) => {
  const r = await runCli('vigil', ['scsi', 'pr', 'register', '/dev/null', '--key', 'zz']);
  t.equal(r.code, 1);
  t.match(r.stderr, /bad reservation key "zz": 1 to 16 hex digits/);
  t.equal(r.stderr.trim().split('\n').length, 1);
});

t.test('a bad type, a missing option and a bad CDB are usage errors', async (t) => {
  const type = await runCli('vigil', ['scsi', 'pr', 'reserve', '/dev/null', '--key', '1', '--type', 'exclusive']);
  t.equal(type.code, 1);
  t.match(type.stderr, /bad reservation type "exclusive": one of we, ea, wero, earo, wear, eaar/);
  const missing = await runCli('vigil', ['scsi', 'pr', 'preempt', '/dev/null', '--key', '1', '--type', 'ea']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /--victim/);
  const cdb = await runCli('vigil', ['scsi', 'raw', '/dev/null', '--cdb', '12 00 0']);
  t.equal(cdb.code, 1);
  t.match(cdb.stderr, /^vigil: bad CDB "12 00 0": an even number of hex digits/);
  t.ok(noStack(cdb.stderr));
  const both = await runCli('vigil', ['scsi', 'raw', '/dev/null', '--cdb', '120000002400', '--in', '36', '--out', '/etc/hostname']);
  t.equal(both.code, 1);
  t.match(both.stderr, /--in and --out do not go together/);
});

t.test('no such device: one line, exit 52 (50 + ENOENT) as sg3_utils, and a JSON error document with --json', async (t) => {
  const r = await runCli('vigil', ['scsi', 'tur', '/dev/sg-none']);
  t.equal(r.code, 52);
  t.equal(r.stderr, 'vigil: /dev/sg-none: no such device (ENOENT)\n');
  const j = await runCli('vigil', ['--json', 'scsi', 'pr', 'keys', '/dev/sg-none']);
  t.equal(j.code, 52);
  t.same(JSON.parse(j.stdout), { error: { name: 'DeviceOpenError', message: '/dev/sg-none: no such device (ENOENT)', code: 'ENOENT' } });
});

t.test('a file that is not a SCSI device: one line, exit 75 (50 + ENOTTY), no stack trace', async (t) => {
  const r = await runCli('vigil', ['scsi', 'inquiry', '/dev/null', '--vpd', '0x83']);
  t.equal(r.code, 75);
  t.match(r.stderr, /^vigil: \/dev\/null: not a SCSI device/);
  t.ok(noStack(r.stderr));
});

t.test('links show: a missing table says how to make one; a good one is listed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-cli-'));
  const none = await runCli('vigil', ['links', 'show', '--file', join(dir, 'none.json')]);
  t.equal(none.code, 15);
  t.match(none.stderr, /no link table here \(make one with: vigil links save --file/);
  const file = join(dir, 'links.json');
  await writeFile(file, JSON.stringify({ version: 1, savedAt: '2026-11-23T00:00:00Z', host: 'h1', entries: [{ identity: 'naa.600140512', paths: ['/dev/sg0', '/dev/sg1'] }] }));
  const ok = await runCli('vigil', ['links', 'show'], { VIGIL_LINKS: file });
  t.equal(ok.code, 0);
  t.match(ok.stdout, /naa\.600140512 {2}\/dev\/sg0 \/dev\/sg1/);
  const j = await runCli('vigil', ['--json', 'links', 'show', '--file', file]);
  t.equal(JSON.parse(j.stdout).entries[0].paths[1], '/dev/sg1');
});

t.test('vigild with a missing configuration says so in one line and exits 1', async (t) => {
  const r = await runCli('vigild', ['--config', '/nonexistent/vigil.yaml']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^vigild: \/nonexistent\/vigil\.yaml: cannot read the configuration: no such file\n$/);
  t.match((await runCli('vigild', ['--version'])).stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('every error class maps to its sg3_utils exit code', async (t) => {
  const sense = (k: number, asc: number, q: number) => decodeSense(fixedSense(k, asc, q));
  const cases: [Error, number][] = [
    [new UsageError('x'), Exit.USAGE],
    [new RangeError('x'), Exit.USAGE],
    [new DeviceOpenError('/dev/x', 2, 'ENOENT', 'open', 'x'), 52],
    [new DeviceOpenError('/dev/x', 13, 'EACCES', 'open', 'x'), 63],
    [new DeviceOpenError('/dev/x', 95, 'EOPNOTSUPP', 'open', 'x'), 50],
    [new ReservationConflictError('/dev/x', TUR, 0x18), 24],
    [new UnitAttentionError('/dev/x', TUR, 2, sense(6, 0x2a, 5)), 6],
    [new NotReadyError('/dev/x', TUR, 2, sense(2, 4, 1)), 2],
    [new IllegalRequestError('/dev/x', TUR, 2, sense(5, 0x24, 0)), 5],
    [new IllegalRequestError('/dev/x', TUR, 2, sense(5, 0x20, 0)), 9],
    [new IllegalRequestError('/dev/x', TUR, 2, sense(5, 0x21, 0)), 22],
    [new CheckConditionError('/dev/x', TUR, 2, sense(3, 0x11, 0)), 3],
    [new CheckConditionError('/dev/x', TUR, 2, sense(7, 0x27, 0)), 7],
    [new CheckConditionError('/dev/x', TUR, 2, sense(0xb, 0x47, 0)), 11],
    [new ScsiStatusError('/dev/x', TUR, 0x08), 26],
    [new ScsiStatusError('/dev/x', TUR, 0x28), 27],
    [new ScsiTimeoutError('/dev/x', TUR, 'x', true), 33],
    [new TransportError('/dev/x', TUR, 'x', { hostStatus: 1 }), 35],
    [new MalformedResponseError('x'), 97],
    [new StaleLinkError('naa.1', []), 4],
    [new LinkTableError('x'), 15],
    [new Error('x'), 99],
  ];
  for (const [e, code] of cases) t.equal(exitForError(e), code, `${e.name}${'sense' in e ? ` ${(e as { sense?: { code: string } }).sense?.code}` : ''}`);
});

t.test('JSON output: exact bigints become numbers, huge ones strings, buffers hex; sense has code and raw', async (t) => {
  t.equal(JSON.stringify({ a: 5n, b: 1n << 60n, c: Buffer.from([1, 2]) }, jsonReplacer), '{"a":5,"b":"1152921504606846976","c":"0102"}');
  const s = senseJson(decodeSense(fixedSense(6, 0x2a, 5)));
  t.match(s, { key: 6, keyName: 'UNIT ATTENTION', asc: 0x2a, ascq: 5, code: '06/2a/05', text: 'Registrations preempted', raw: '700006000000000a000000002a0500000000' });
  t.equal(senseJson(undefined), null);
});

t.test('hex dump: offsets, 16 bytes a line, printable ASCII', async (t) => {
  t.equal(hexDump(Buffer.from('LIO-ORG FILEIO  4.0!')),
    '0000  4c 49 4f 2d 4f 52 47 20 46 49 4c 45 49 4f 20 20  LIO-ORG FILEIO  \n0010  34 2e 30 21                                      4.0!');
});

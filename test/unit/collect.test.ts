// `vigil collect`'s pure parts: the ustar writer (read back by the system tar), the configuration's
// redaction and the scrub of secrets from every file, --since, a log file cut at --since, a priority store
// decoded slot by slot, and one path's reservation state with its keys named by node (a scripted device:
// the SCSI calls themselves are the lab's to test). The whole command, run as a process against a running
// agent, is test/cluster/collect.test.ts.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

import t from 'tap';
import { z } from 'zod';

import { parseSince } from '../../src/cli/collect-command.js';
import { bundleName, collect } from '../../src/collect/bundle.js';
import { pathState } from '../../src/collect/disks.js';
import { logSince } from '../../src/collect/logs.js';
import { REDACTED, redactCommandText, redactConfig, scrub, secretForms } from '../../src/collect/redact.js';
import { describePriorityFile } from '../../src/collect/state.js';
import { tarGz } from '../../src/collect/tar.js';
import { initialImage } from '../../src/lastactive/priority-store.js';
import { ControlServer } from '../../src/control/server.js';
import { ScsiDevice } from '../../src/scsi/device.js';
import { runCli } from '../support/cli.js';
import { CONFLICT, FakeTransport } from '../support/fake-transport.js';

const run = promisify(execFile);

t.test('the archive is a tar.gz the system tar extracts: names past 100 bytes, directories, empty files, modes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-tar-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const long = `top/${'d'.repeat(90)}/${'f'.repeat(95)}.json`;
  const big = Buffer.alloc(1500, 'x');
  const archive = tarGz([
    { name: 'top/', mtime: 1_700_000_000 },
    { name: 'top/a.txt', data: Buffer.from('hello\n'), mtime: 1_700_000_000 },
    { name: 'top/empty', data: Buffer.alloc(0), mtime: 1_700_000_000 },
    { name: long, data: big, mtime: 1_700_000_000 },
  ]);
  await writeFile(join(dir, 'x.tar.gz'), archive);
  const listed = (await run('tar', ['-tvzf', join(dir, 'x.tar.gz')], { env: { ...process.env, TZ: 'UTC' } })).stdout;
  t.match(listed, /^drwx------ 0\/0\s+0 2023-11-14 22:13 top\/$/m, 'the directory, 0700, its time');
  t.match(listed, /^-rw------- 0\/0\s+6 .* top\/a\.txt$/m, 'a file, 0600, its size');
  await run('tar', ['-xzf', join(dir, 'x.tar.gz'), '-C', dir]);
  t.equal(await readFile(join(dir, 'top/a.txt'), 'utf8'), 'hello\n');
  t.equal((await readFile(join(dir, 'top/empty'))).length, 0);
  t.same(await readFile(join(dir, long)), big, 'the long name (prefix + name) and a content past one block');
  t.equal((await stat(join(dir, 'top/a.txt'))).mode & 0o777, 0o600);
  t.throws(() => tarGz([{ name: `${'n'.repeat(200)}`, data: Buffer.alloc(1), mtime: 0 }]), /too long for ustar/);
});

t.test('the bundle is named after the host and the UTC time, with nothing a file name should not hold', async (t) => {
  t.equal(bundleName('node-a.example', new Date('2026-12-07T21:19:50.123Z')), 'vigil-collect-node-a.example-20261207T211950Z');
  t.equal(bundleName('we/ird host', new Date(0)), 'vigil-collect-we_ird_host-19700101T000000Z');
});

t.test('the configuration keeps the paths of secret files and loses every secret value', async (t) => {
  const raw = {
    cluster: 'c1', keyFile: 'cluster.key',
    nodes: [{ name: 'a', reservationKey: '0xabc', bmc: { host: '10.0.0.9', user: 'admin', passwordFile: '/etc/vigil/bmc.pw', kgFile: 'kg' } }],
    power: { sources: [{ kind: 'nut', host: 'ups', ups: 'rack1', user: 'mon', passwordFile: 'nut.pw' }] },
    apps: [{
      tag: 'db',
      command: ['/usr/bin/db', '--password', 'pw-argv-1', '--token=tok-argv-2', 'postgres://u:pw-url-3@db/x', '--port', '5432'],
      env: { DB_PASSWORD: 'pw-env-4', MODE: 'production' },
      attributes: { apiKey: 'key-attr-5', owner: 'ops' },
      monitor: { command: 'check --secret "pw sh 6" && curl -u x http://ops:pw-url-7@h/' },
    }],
    stray: { password: 'pw-stray-8' },
  };
  const r = redactConfig(raw, '/etc/vigil');
  const out = JSON.stringify(r.value);
  for (const s of ['pw-argv-1', 'tok-argv-2', 'pw-url-3', 'pw-env-4', 'production', 'key-attr-5', 'pw sh 6', 'pw-url-7', 'pw-stray-8']) {
    t.notOk(out.includes(s), `${s} is gone`);
  }
  t.same(r.secretFiles, ['/etc/vigil/cluster.key', '/etc/vigil/bmc.pw', '/etc/vigil/kg', '/etc/vigil/nut.pw'], 'every secret file, absolute');
  const v = r.value as typeof raw;
  t.equal(v.keyFile, 'cluster.key', 'keyFile stays a path');
  t.equal(v.nodes[0]!.bmc.passwordFile, '/etc/vigil/bmc.pw');
  t.equal(v.nodes[0]!.reservationKey, '0xabc', 'a reservation key is no secret (every initiator on the SAN reads it)');
  t.same(v.apps[0]!.command, ['/usr/bin/db', '--password', REDACTED, `--token=${REDACTED}`, `postgres://u:${REDACTED}@db/x`, '--port', '5432']);
  t.same(v.apps[0]!.env, { DB_PASSWORD: REDACTED, MODE: REDACTED }, 'every environment value, names kept');
  t.same(v.apps[0]!.attributes, { apiKey: REDACTED, owner: 'ops' });
  t.equal(v.apps[0]!.monitor.command, `check --secret ${REDACTED} && curl -u x http://ops:${REDACTED}@h/`);
  t.same(new Set(r.secrets), new Set(['pw-argv-1', 'tok-argv-2', 'pw-url-3', 'pw-env-4', 'key-attr-5', 'pw sh 6', 'pw-url-7', 'pw-stray-8']),
    'what was taken under a secret name is scrubbed elsewhere; MODE=production is not (it would cut the word out of every log)');
  t.equal(redactCommandText('PGPASSWORD=s3cretvalue psql -h db', []), `PGPASSWORD=${REDACTED} psql -h db`);
});

t.test('a secret is scrubbed from a file in each form it could take there', async (t) => {
  const hex = 'A1b2'.repeat(16);
  const { forms } = secretForms(`${hex}\n`);
  const text = Buffer.from(`key ${hex.toLowerCase()} and ${hex.toUpperCase()} and "${hex}"`);
  const s = scrub(text, forms);
  t.equal(s.data.toString(), `key ${REDACTED} and ${REDACTED} and "${REDACTED}"`);
  t.equal(s.count, 3);
  const binary = Buffer.from([0, 1, 2, 250, 251, 252, 7, 8]);
  const b = scrub(Buffer.concat([Buffer.from('raw:'), binary, Buffer.from(` hex:${binary.toString('hex')} b64:${binary.toString('base64')}`)]), secretForms(binary).forms);
  t.equal(b.data.toString(), `raw:${REDACTED} hex:${REDACTED} b64:${REDACTED}`, 'a binary key: its bytes, hex and base64');
  t.ok(secretForms('abc\n').tooShort, 'a 3-character password is said to be too short to scrub');
  t.equal(secretForms('abc\n').forms.length, 0);
});

t.test('--since: a duration back from now, or a time; anything else is refused', async (t) => {
  const now = new Date('2026-12-07T21:00:00Z');
  t.equal(parseSince('24h', now).toISOString(), '2026-12-06T21:00:00.000Z');
  t.equal(parseSince('90m', now).toISOString(), '2026-12-07T19:30:00.000Z');
  t.equal(parseSince('2d', now).toISOString(), '2026-12-05T21:00:00.000Z');
  t.equal(parseSince('2026-12-07T20:00:00Z', now).toISOString(), '2026-12-07T20:00:00.000Z');
  t.throws(() => parseSince('yesterday', now), /expected a duration/);
  t.throws(() => parseSince('24', now), /expected a duration/);
});

t.test('a log file is cut at --since by its lines\' own times; a line that is not JSON goes with the one before', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.log');
  await writeFile(file, [
    JSON.stringify({ time: 1000, msg: 'old' }), 'old trace', JSON.stringify({ time: 2000, msg: 'new' }), 'new trace', '{"time": 3000, "msg": "cut',
  ].join('\n') + '\n');
  const r = await logSince(file, new Date(2000));
  t.equal(r.text, `${JSON.stringify({ time: 2000, msg: 'new' })}\nnew trace\n{"time": 3000, "msg": "cut\n`);
  t.equal(r.kept, 3);
  t.equal(r.total, 5);
});

t.test('a priority store: both slots decoded, the newest named, a damaged slot said so with its bytes', async (t) => {
  const image = initialImage({ cluster: 'c1', node: 1, peer: 2 }, { priority: 2, state: 'X', transition: 'init', forced: false });
  const d = describePriorityFile(image) as { newestSlot: number; slots: { record?: { priority: number }; invalid?: string; recordHex: string }[] };
  t.equal(d.newestSlot, 0);
  t.equal(d.slots[0]!.record?.priority, 2);
  t.equal(d.slots[1]!.invalid, 'empty');
  image[5] = image[5]! ^ 0x01; // the priority byte of slot 0: its checksum no longer matches
  const damaged = describePriorityFile(image) as typeof d;
  t.equal(damaged.slots[0]!.invalid, 'checksum');
  t.equal(damaged.newestSlot, null, 'no valid slot: no newest');
  t.match(damaged.slots[0]!.recordHex, /^56474c50/, 'the bytes are there to look at');
});

t.test('a path\'s reservation state: TUR, READ KEYS, READ RESERVATION, each key named by its node; a failure is recorded, not thrown', async (t) => {
  const keys = Buffer.alloc(24);
  keys.writeUInt32BE(7, 0);
  keys.writeUInt32BE(16, 4);
  keys.writeBigUInt64BE(0xa1n, 8);
  keys.writeBigUInt64BE(0xdeadn, 16);
  const fake = new FakeTransport([{}, { data: keys }, CONFLICT], '/dev/sg9');
  const s = await pathState('/dev/sg9', async () => new ScsiDevice(fake), { '0xa1': 'a' });
  t.equal(s.testUnitReady, 'GOOD');
  t.same(s.keys, { generation: 7, keys: [{ key: '0xa1', node: 'a' }, { key: '0xdead', node: null }], truncated: false });
  t.match(s.reservation, { error: { name: 'ReservationConflictError' } });
  t.ok(fake.closed, 'the path is closed again');
  const unopened = await pathState('/dev/sg8', async () => { throw Object.assign(new Error('/dev/sg8: no such device'), { code: 'ENOENT' }); }, {});
  t.match(unopened, { path: '/dev/sg8', open: { message: '/dev/sg8: no such device' } });
});

t.test('a configuration that does not load: its file redacted, its problems, the agent asked all the same; one that is not YAML: left out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-collect-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = new ControlServer({ path: join(dir, 'ctl.sock') }).handle('status', z.object({}), () => ({ node: 'x', said: 'tok-in-status-1234' }), 'read');
  await server.start();
  t.teardown(() => server.close());
  await writeFile(join(dir, 'bad.yaml'), 'cluster: c1\nkeyFile: k\nnodes: [{ name: a, id: 1, addresses: {}, bmc: { host: h, user: u, passwordFile: p, password: tok-in-status-1234 } }]\n');
  const out = join(dir, 'b.tar.gz');
  const r = await collect({ configFile: join(dir, 'bad.yaml'), socket: join(dir, 'ctl.sock'), defaultSocket: '/nonexistent', since: new Date(0), logFiles: [], timeoutMs: 2000, out });
  t.equal(r.path, out);
  const x = join(dir, 'x');
  await run('mkdir', [x]);
  await run('tar', ['-xzf', out, '-C', x]);
  const file = (name: string) => readFile(join(x, r.top, name), 'utf8');
  t.match(await file('config/cluster.yaml'), /password: <redacted>/);
  t.match(JSON.parse(await file('config/check.json')), { ok: false, problems: [{ path: 'networks' }, { path: 'nodes' }, { path: 'nodes[0].bmc.password', message: /unknown key/ }] }, 'the problems, as config check gives them');
  t.match(JSON.parse(await file('agent/status.json')), { node: 'x', said: '<redacted>' }, 'the agent asked; a secret of the file scrubbed from its answer');
  t.match(r.items.find((i) => i.item === 'agent: vigil priority show --json'), { state: 'failed' }, 'a method the agent does not know: failed, with its reason');
  t.match(r.items.find((i) => i.item.startsWith('disks')), { state: 'absent', note: /no loaded configuration/ });
  t.match(r.items.find((i) => i.item.startsWith('state')), { state: 'absent' });
  t.same(r.scrubbed, [{ file: 'agent/status.json', count: 1 }]);

  await writeFile(join(dir, 'broken.yaml'), 'cluster: c1\nkey: [unclosed\npassword: tok-never-5678\n');
  const r2 = await collect({ configFile: join(dir, 'broken.yaml'), socket: undefined, defaultSocket: join(dir, 'none.sock'), since: new Date(0), logFiles: [], timeoutMs: 2000, out: join(dir, 'c.tar.gz') });
  t.match(r2.items.find((i) => i.item === 'config: the file, redacted'), { state: 'failed', note: /not valid YAML.*left out/ });
  t.match(r2.items.find((i) => i.item === 'agent: vigil status --json'), { state: 'absent', note: /no vigild is running/ });
  t.notOk(gunzipSync(await readFile(join(dir, 'c.tar.gz'))).includes('tok-never-5678'), 'nothing of the file went in');
  await t.rejects(collect({ configFile: join(dir, 'broken.yaml'), socket: undefined, defaultSocket: '/x', since: new Date(0), logFiles: [], timeoutMs: 2000, out }), /exists; give another --out/);
});

t.test('the command: the path alone on stdout, what is missing on stderr, exit 0', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-collect-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'n.tar.gz');
  const r = await runCli('vigil', ['collect', '--config', join(dir, 'none.yaml'), '--socket', join(dir, 'none.sock'), '--out', out]);
  t.equal(r.code, 0);
  t.equal(r.stdout, `${out}\n`);
  t.match(r.stderr, `vigil collect: absent: config: no configuration at ${join(dir, 'none.yaml')} (give --config FILE)\n`);
  t.equal((await stat(out)).mode & 0o777, 0o600);
});

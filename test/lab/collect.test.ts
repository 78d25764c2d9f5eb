// `vigil collect` on real LIO units: the disks' part of the bundle reads each path's registrations and
// reservation with the same ScsiDevice calls `vigil scsi pr keys` / `pr reservation` make, names each key by
// its node, and takes both paths (the one stored in the link table, the one only the scan finds). Nothing is
// written to the unit: the reservation is the same after the collect.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { lab, open, resetUnit, vigil } from '../support/lab.js';

const KEY_A = 0xa1n;
const KEY_B = 0xb2n;

t.before(() => resetUnit(lab.a, lab.b));
t.after(() => resetUnit(lab.a, lab.b));

t.test('the bundle names both registrations and the holder of the shared unit, on both paths', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-collect-'));
  const a = await open(lab.a, 3);
  const b = await open(lab.b, 3);
  await a.prRegister(KEY_A, { ignoreExisting: true });
  await b.prRegister(KEY_B, { ignoreExisting: true });
  await a.prReserve(KEY_A, 'wero');
  a.close();
  b.close();

  await writeFile(join(dir, 'cluster.key'), `${'5e'.repeat(32)}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'links.json'), JSON.stringify({ version: 1, savedAt: new Date().toISOString(), host: 'lab', entries: [{ identity: lab.sharedId, paths: [lab.a] }] }));
  await writeFile(join(dir, 'cluster.yaml'), [
    'cluster: lab', 'keyFile: cluster.key', `stateDir: ${dir}`, `linkTable: ${join(dir, 'links.json')}`, `control: { socket: ${join(dir, 'ctl.sock')} }`,
    'networks: [{ name: lan, port: 7400 }]',
    'nodes:', '  - { name: a, id: 1, addresses: { lan: 10.0.0.1 }, reservationKey: "0xa1" }', '  - { name: b, id: 2, addresses: { lan: 10.0.0.2 }, reservationKey: "0xb2" }',
    `disks: [{ name: shared0, identity: ${lab.sharedId} }]`, 'apps: []',
  ].join('\n'));

  const out = join(dir, 'bundle.tar.gz');
  const r = await vigil('collect', '--config', join(dir, 'cluster.yaml'), '--out', out);
  t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
  await promisify(execFile)('tar', ['-xzf', out, '-C', dir]);
  const top = (await promisify(execFile)('tar', ['-tzf', out])).stdout.split('\n')[0]!;
  const disk = JSON.parse(await readFile(join(dir, top, 'disks', 'shared0.json'), 'utf8')) as {
    keyOwners: Record<string, string>;
    paths: { path: string; stored: boolean; found: boolean; testUnitReady: unknown; keys: { keys: { key: string; node: string | null }[] }; reservation: { reservation: unknown } }[];
  };
  t.same(disk.keyOwners, { '0xa1': 'a', '0xb2': 'b' });
  t.same(disk.paths.map((p) => p.path).sort(), [lab.a, lab.b].sort(), 'both paths: the stored one and the one the scan found');
  t.match(disk.paths.find((p) => p.path === lab.a), { stored: true, found: true }, 'the stored path, which the scan found too');
  for (const p of disk.paths) {
    t.same(p.keys.keys.sort((x, y) => x.key.localeCompare(y.key)), [{ key: '0xa1', node: 'a' }, { key: '0xb2', node: 'b' }], `${p.path}: both registrations, by node`);
    t.same(p.reservation.reservation, { key: '0xa1', node: 'a', type: 'wero', scope: 'lu' }, `${p.path}: a holds it`);
    t.equal(p.testUnitReady, 'GOOD', `${p.path}: TEST UNIT READY (a registrant may under WERO)`);
  }

  const after = await open(lab.b, 3);
  t.match(await after.prReadReservation(), { reservation: { key: KEY_A, type: 'wero' } }, 'the collect changed nothing on the unit');
  t.same((await after.prReadKeys()).keys.sort(), [KEY_A, KEY_B]);
  after.close();
});

// The stored link table: save/load round trip, clear errors for bad files, the fast path (resolve with one
// INQUIRY per stored path), verification, and the sysfs listing the slow path starts from.
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { groupByIdentity, listScsiNodes, scanPaths, type OpenDevice } from '../../src/links/scan.js';
import {
  loadLinkTable, LinkTableError, resolveLink, saveLinkTable, StaleLinkError, tableFromScan, verifyLinks, type LinkTable,
} from '../../src/links/table.js';
import { ScsiDevice } from '../../src/scsi/device.js';
import { DeviceOpenError } from '../../src/scsi/errors.js';
import { FakeTransport } from '../support/fake-transport.js';

/** VPD 0x83 with one LU-associated NAA designator of 8 bytes. */
function vpd83(naaHex: string): Buffer {
  const d = Buffer.from(naaHex, 'hex');
  return Buffer.concat([Buffer.from([0, 0x83, 0, 4 + d.length, 0x01, 0x03, 0, d.length]), d]);
}

/** An opener over a fake world: path → unit identity (or an errno code for paths that fail to open). */
function world(paths: Record<string, string>): { open: OpenDevice; opened: string[] } {
  const opened: string[] = [];
  const open: OpenDevice = async (path) => {
    opened.push(path);
    const v = paths[path];
    if (v === undefined || v.startsWith('E')) {
      throw new DeviceOpenError(path, 2, v ?? 'ENOENT', 'open', `${v ?? 'ENOENT'}`);
    }
    return new ScsiDevice(new FakeTransport([{ data: vpd83(v) }], path));
  };
  return { open, opened };
}

const U1 = '6001405000000001';
const U2 = '6001405000000002';

function table(entries: LinkTable['entries']): LinkTable {
  return { version: 1, savedAt: '2026-11-23T00:00:00.000Z', host: 'test', entries };
}

t.test('a saved table loads back equal, written atomically', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-links-'));
  const file = join(dir, 'sub', 'links.json');
  const tbl = table([{ identity: `naa.${U1}`, paths: ['/dev/sg0', '/dev/sg1'], vendor: 'LIO-ORG', product: 'FILEIO' }]);
  await saveLinkTable(file, tbl);
  t.same(await loadLinkTable(file), tbl);
  t.same(await readdir(join(dir, 'sub')), ['links.json'], 'no temporary file left beside it');
});

t.test('a bad table file is refused with the file and the field named', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-links-'));
  const f = join(dir, 'links.json');
  await t.rejects(loadLinkTable(join(dir, 'none.json')), { name: 'LinkTableError', message: /no link table here \(make one with: vigil links save/ });
  await writeFile(f, '{"version": 1,');
  await t.rejects(loadLinkTable(f), { message: new RegExp(`^${f}: not valid JSON`) });
  await writeFile(f, JSON.stringify({ version: 1, savedAt: 'x', host: 'h', entries: [{ identity: 'naa.1', paths: ['sg0'] }] }));
  await t.rejects(loadLinkTable(f), { message: new RegExp(`^${f}: field entries\\.0\\.paths\\.0: `) });
  await writeFile(f, JSON.stringify({ version: 2, savedAt: 'x', host: 'h', entries: [] }));
  await t.rejects(loadLinkTable(f), { message: /field version/ });
});

t.test('resolve opens the first stored path that still leads to the unit, with one INQUIRY', async (t) => {
  const { open, opened } = world({ '/dev/sg0': U1, '/dev/sg1': U1 });
  const dev = await resolveLink(table([{ identity: `naa.${U1}`, paths: ['/dev/sg0', '/dev/sg1'] }]), `naa.${U1}`, open);
  t.equal(dev.path, '/dev/sg0');
  t.same(opened, ['/dev/sg0'], 'no other device touched');
  t.equal((dev.transport as FakeTransport).requests.length, 1);
});

t.test('resolve skips a stored path that now leads elsewhere or is gone', async (t) => {
  const { open, opened } = world({ '/dev/sg0': U2, '/dev/sg2': U1 });
  const dev = await resolveLink(table([{ identity: `naa.${U1}`, paths: ['/dev/sg0', '/dev/sg1', '/dev/sg2'] }]), `naa.${U1}`, open);
  t.equal(dev.path, '/dev/sg2');
  t.same(opened, ['/dev/sg0', '/dev/sg1', '/dev/sg2']);
});

t.test('resolve with no good path left says what each path answered', async (t) => {
  const { open } = world({ '/dev/sg0': U2 });
  const e = await resolveLink(table([{ identity: `naa.${U1}`, paths: ['/dev/sg0', '/dev/sg9'] }]), `naa.${U1}`, open).catch((x: unknown) => x);
  t.type(e, StaleLinkError);
  t.match((e as Error).message, new RegExp(`/dev/sg0: now leads to naa.${U2}; /dev/sg9: .*ENOENT.*rescan with: vigil links save`));
});

t.test('resolve of an identity the table does not know is a LinkTableError', async (t) => {
  await t.rejects(resolveLink(table([]), 'naa.ff', world({}).open), LinkTableError);
});

t.test('verify reports each path as ok, moved, missing or error', async (t) => {
  const { open } = world({ '/dev/sg0': U1, '/dev/sg1': U2, '/dev/sg3': 'EACCES' });
  const reports = await verifyLinks(table([
    { identity: `naa.${U1}`, paths: ['/dev/sg0', '/dev/sg1'] },
    { identity: `naa.${U2}`, paths: ['/dev/sg2', '/dev/sg3'] },
  ]), open);
  t.same(reports.map((r) => r.checks.map((c) => c.state)), [['ok', 'moved'], ['missing', 'error']]);
});

t.test('sysfs listing: sg nodes in number order with H:C:T:L, block device and names', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'vigil-sysfs-'));
  const devices = join(root, 'devices');
  const cls = join(root, 'class');
  for (const [sg, hctl, block] of [['sg10', '2:0:1:0', 'sdc'], ['sg2', '0:0:1:0', undefined]] as const) {
    const d = join(devices, hctl);
    await mkdir(join(d, 'block', block ?? 'x'), { recursive: true });
    if (!block) await writeFile(join(d, 'block', 'x'), '').catch(() => {});
    await writeFile(join(d, 'vendor'), 'LIO-ORG \n');
    await writeFile(join(d, 'model'), 'FILEIO          \n');
    await mkdir(join(cls, sg), { recursive: true });
    await symlink(d, join(cls, sg, 'device'));
  }
  const nodes = await listScsiNodes(cls);
  t.same(nodes.map((n) => [n.path, n.hctl, n.vendor, n.product]), [
    ['/dev/sg2', '0:0:1:0', 'LIO-ORG', 'FILEIO'],
    ['/dev/sg10', '2:0:1:0', 'LIO-ORG', 'FILEIO'],
  ]);
  t.equal(nodes[1]!.blockDevice, '/dev/sdc');
  t.same(await listScsiNodes(join(root, 'nope')), [], 'no SCSI layer: no nodes, no error');
});

t.test('scan identifies every node and groups paths by unit', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'vigil-sysfs-'));
  for (const sg of ['sg0', 'sg1', 'sg2', 'sg3']) {
    await mkdir(join(root, 'devs', sg), { recursive: true });
    await mkdir(join(root, 'class', sg), { recursive: true });
    await symlink(join(root, 'devs', sg), join(root, 'class', sg, 'device'));
  }
  const { open } = world({ '/dev/sg0': U1, '/dev/sg1': U2, '/dev/sg2': U1 });
  const paths = await scanPaths({ open, sysfs: join(root, 'class'), concurrency: 2 });
  t.match(paths.find((p) => p.path === '/dev/sg3')?.error, /ENOENT/, 'a failed path is kept with its error');
  const units = groupByIdentity(paths);
  t.same(units.map((u) => [u.identity, u.paths.map((p) => p.path)]), [[`naa.${U1}`, ['/dev/sg0', '/dev/sg2']], [`naa.${U2}`, ['/dev/sg1']]]);
  const tbl = tableFromScan(units);
  t.same(tbl.entries.map((e) => e.paths), [['/dev/sg0', '/dev/sg2'], ['/dev/sg1']]);
  t.equal(tbl.version, 1);
});

t.test('the saved file is JSON a person can read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-links-'));
  const file = join(dir, 'links.json');
  await saveLinkTable(file, table([{ identity: `naa.${U1}`, paths: ['/dev/sg0'] }]));
  const text = await readFile(file, 'utf8');
  t.match(text, /^\{\n  "version": 1,/);
  t.ok(text.endsWith('\n'));
});

// Seed 004 on real devices: the scan groups every path by unit; the stored link table resolves a unit with
// one INQUIRY and notices when a stored path now leads elsewhere or is gone.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { defaultOpener, groupByIdentity, scanPaths } from '../../src/links/scan.js';
import { loadLinkTable, resolveLink, saveLinkTable, StaleLinkError, tableFromScan, verifyLinks } from '../../src/links/table.js';
import { lab, vigil } from '../support/lab.js';

const open = defaultOpener();

t.test('the scan finds both paths of each shared unit', async (t) => {
  const units = groupByIdentity(await scanPaths({ open }));
  const paths = (id: string) => units.find((u) => u.identity === id)?.paths.map((p) => p.path).sort();
  t.same(paths(lab.sharedId), [lab.a, lab.b].sort(), 'tcm_loop unit');
  t.same(paths(lab.iscsiId), [lab.iscsiA, lab.iscsiB].sort(), 'iSCSI unit');
  const shared = units.find((u) => u.identity === lab.sharedId)!;
  t.same(shared.paths.map((p) => p.blockDevice).sort(), [lab.aSd, lab.bSd].sort(), 'with their sd nodes');
  t.ok(shared.paths.every((p) => p.vendor === 'LIO-ORG' && /^\d+:\d+:\d+:\d+$/.test(p.hctl)));
});

t.test('a saved table resolves the unit through its stored path, and verifies', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'vigil-links-')), 'links.json');
  await saveLinkTable(file, tableFromScan(groupByIdentity(await scanPaths({ open }))));
  const table = await loadLinkTable(file);
  const dev = await resolveLink(table, lab.sharedId, open);
  t.ok([lab.a, lab.b].includes(dev.path));
  await t.resolves(dev.testUnitReady(), 'the resolved device is open and usable');
  dev.close();
  const reports = await verifyLinks(table, open);
  t.ok(reports.length >= 3);
  t.ok(reports.every((r) => r.checks.every((c) => c.state === 'ok')), 'every stored path checks out');
});

t.test('a stored path that now leads to another unit is skipped, a vanished one reported', async (t) => {
  const table = {
    version: 1 as const, savedAt: new Date().toISOString(), host: 'lab',
    entries: [{ identity: lab.sharedId, paths: ['/dev/sg250', lab.iscsiA, lab.b] }],
  };
  const dev = await resolveLink(table, lab.sharedId, open);
  t.equal(dev.path, lab.b, 'the first path that still leads to the unit');
  dev.close();
  const [report] = await verifyLinks(table, open);
  t.same(report!.checks.map((c) => c.state), ['missing', 'moved', 'ok']);
  t.match(report!.checks[1], { state: 'moved', found: lab.iscsiId });
  await t.rejects(resolveLink({ ...table, entries: [{ identity: lab.sharedId, paths: ['/dev/sg250', lab.iscsiA] }] }, lab.sharedId, open), StaleLinkError);
});

t.test('vigil links save / show / verify / resolve, and exit 4 for a stale table', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'vigil-links-')), 'links.json');
  const saved = await vigil('--json', 'links', 'save', '--file', file);
  t.equal(saved.code, 0, saved.stderr);
  t.ok(JSON.parse(saved.stdout).table.entries.some((e: { identity: string }) => e.identity === lab.sharedId));
  t.match((await vigil('links', 'show', '--file', file)).stdout, new RegExp(lab.sharedId));
  t.equal((await vigil('links', 'verify', '--file', file)).code, 0);
  const resolved = await vigil('links', 'resolve', lab.iscsiId, '--file', file);
  t.match(resolved.stdout.trim(), new RegExp(`^(${lab.iscsiA}|${lab.iscsiB})$`));
  const only = await vigil('--json', 'links', 'save', '--file', file, '--only', lab.sharedId);
  t.same(JSON.parse(only.stdout).table.entries.map((e: { identity: string }) => e.identity), [lab.sharedId]);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(file, JSON.stringify({ version: 1, savedAt: 'x', host: 'lab', entries: [{ identity: lab.sharedId, paths: [lab.iscsiA] }] }));
  const stale = await vigil('links', 'verify', '--file', file);
  t.equal(stale.code, 4);
  t.match(stale.stdout, /now leads to/);
  const failed = await vigil('links', 'resolve', lab.sharedId, '--file', file);
  t.equal(failed.code, 4);
  t.match(failed.stderr, /no stored path leads to .* rescan with: vigil links save/);
});

// `vigil doctor` against real LIO in the lab guest: a healthy two-node cluster is all OK, then each fault is
// made real in turn and undone — one network cut, a stale link table, a foreign key registered, a stale
// mount, the reservation held by the wrong node, one path of the disk gone — and each becomes exactly the
// check that names it, WARN or FAIL, with no other check FAILing. One cluster start for all of them.
//
// Node a's link table stores two paths to the shared unit: its own nexus and a third tcm_loop nexus made
// here (and removed at the end), which the last fault takes away as a failed HBA would.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { loadConfig } from '../../src/config/load.js';
import { reservationKey } from '../../src/daemon/disks.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import type { DoctorReport } from '../../src/doctor/report.js';
import { packageRoot } from '../../src/util/package-root.js';
import { loadClusterKey } from '../../src/wire/key.js';
import { createCluster, settled, until, type Status, type TestCluster } from '../support/cluster.js';
import { lab, open, prepareSharedUnit } from '../support/lab.js';

// Under TCG the agents' JavaScript runs ~30× slower than on hardware: wider margins than the defaults.
const TIMING = { heartbeatIntervalMs: 200, failAfterMs: 2000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 60_000 };

const CFS = '/sys/kernel/config/target';
const EXTRA_WWN = 'naa.5001405aaaa000fe';
const EXTRA_TPG = `${CFS}/loopback/${EXTRA_WWN}/tpgt_1`;
const EXTRA_LUN = `${EXTRA_TPG}/lun/lun_0`;
const SHARED_BACKSTORE = `${CFS}/core/fileio_0/shared`;

/** Links the shared unit as LUN 0 of the extra tcm_loop target (a path appears); its sg node. */
async function linkExtraPath(): Promise<string> {
  if (!existsSync(EXTRA_TPG)) {
    await mkdir(EXTRA_TPG, { recursive: true });
    await writeFile(`${EXTRA_TPG}/nexus`, 'naa.5001405bbbb000fe\n');
  }
  await mkdir(EXTRA_LUN, { recursive: true });
  await symlink(SHARED_BACKSTORE, `${EXTRA_LUN}/shared`);
  const address = (await readFile(`${EXTRA_TPG}/address`, 'utf8')).trim();
  return until('the extra path\'s sg node', async () => {
    const names = await readdir(`/sys/bus/scsi/devices/${address}:0/scsi_generic`).catch(() => []);
    return names[0] && existsSync(`/dev/${names[0]}`) ? `/dev/${names[0]}` : undefined;
  }, 20_000, 50);
}

/** Unlinks the LUN: tcm_loop removes the SCSI device, as when a path's HBA or cable fails. */
async function unlinkExtraPath(sg: string): Promise<void> {
  if (existsSync(`${EXTRA_LUN}/shared`)) await unlink(`${EXTRA_LUN}/shared`);
  await until(`${sg} gone`, async () => (existsSync(`/sys/class/scsi_generic/${sg.replace('/dev/', '')}`) ? undefined : true), 20_000, 50);
}

async function removeExtraTarget(): Promise<void> {
  if (existsSync(`${EXTRA_LUN}/shared`)) await unlink(`${EXTRA_LUN}/shared`);
  for (const dir of [EXTRA_LUN, EXTRA_TPG, `${CFS}/loopback/${EXTRA_WWN}`]) if (existsSync(dir)) await rmdir(dir);
}

async function writeLinks(c: TestCluster, node: string, paths: string[]): Promise<void> {
  await writeFile(join(c.dir, node, 'links.json'), JSON.stringify({
    version: 1, savedAt: new Date().toISOString(), host: node, entries: [{ identity: lab.sharedId, paths }],
  }));
}

/** `vigil --json doctor` run inside the node's namespaces (its mounts, its addresses), as an operator there would. */
async function doctor(c: TestCluster, node: string): Promise<{ code: number; report: DoctorReport }> {
  const r = await c.rig.exec(node, [process.execPath, join(packageRoot(), 'dist/src/cli/vigil.js'), '--json', 'doctor',
    '--config', join(c.dir, `${node}.yaml`), '--node', node, '--timeout', '20000'], { timeout: 180_000 });
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as DoctorReport };
  } catch {
    throw new Error(`doctor on ${node} printed no report (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
}

/**
 * runDoctor in this process, for the faults on a that need nothing of a's namespaces (this process sees the
 * same devices, control socket and files): under TCG a `vigil` process spends most of its ~15 s loading
 * modules. The CLI itself is run for the healthy cluster and the stale mount (b's mount namespace).
 */
async function doctorHere(c: TestCluster, node: string): Promise<{ code: number | undefined; report: DoctorReport }> {
  return { code: undefined, report: await runDoctor({ config: join(c.dir, `${node}.yaml`), node, agentTimeoutMs: 20_000 }) };
}

const line = (r: DoctorReport, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  return c ? `${c.verdict} ${c.id}: ${c.summary}${c.fix ? ` -> ${c.fix}` : ''}` : `(no check ${id})`;
};
const notOk = (r: DoctorReport) => r.checks.filter((c) => c.verdict !== 'OK').map((c) => `${c.verdict} ${c.id}: ${c.summary}`);

/** The fault's check has `verdict`, no other check FAILs, and the exit code follows the verdict. */
async function expectFault(t: Test, c: TestCluster, node: string, id: string, verdict: 'WARN' | 'FAIL', how: 'cli' | 'here' = 'here'): Promise<void> {
  const began = performance.now();
  const { code, report } = await (how === 'cli' ? doctor(c, node) : doctorHere(c, node));
  t.comment(`doctor on ${node} (${((performance.now() - began) / 1000).toFixed(1)} s): ${line(report, id)}`);
  t.equal(report.checks.find((x) => x.id === id)?.verdict, verdict, `${id} is ${verdict}`);
  t.same(report.checks.filter((x) => x.verdict === 'FAIL' && x.id !== id).map((x) => `${x.id}: ${x.summary}`), [], 'no other check FAILs');
  if (code !== undefined) t.equal(code, verdict === 'FAIL' ? 17 : 0, `exit ${verdict === 'FAIL' ? 17 : 0}`);
  else t.equal(report.verdict, verdict, `the report's verdict is ${verdict}`);
  const others = notOk(report).filter((l) => !l.includes(` ${id}: `));
  if (others.length) t.comment(`  also: ${others.join(' | ')}`);
}

const peerChannel = (s: Status, peer: string, channel: string) => s.peers.find((p) => p.peer === peer)?.channels.find((x) => x.channel === channel)?.state;
interface DiskStatus { disk: string; holder: string | null; registered: string[] }
const disks = (s: Status) => (s as unknown as { disks: DiskStatus[] }).disks;

t.test('doctor: a healthy cluster is all OK, and each fault made real is the one check that names it', async (t) => {
  await prepareSharedUnit();
  t.teardown(removeExtraTarget);
  const extra = await linkExtraPath();
  // The app itself is a sleep: a node process needs seconds to start under TCG, and doctor looks at the
  // app's resources (disk, mount, address), not at what it serves.
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, disk: true, mount: true, command: ['/bin/sleep', '1000000'] }],
    { timing: TIMING, disk: { identity: lab.sharedId, paths: { a: lab.a, b: lab.b }, preemptAndAbort: false } });
  await writeLinks(c, 'a', [lab.a, extra]);
  c.start('a');
  c.start('b');
  await until('web up on a', async () => ((await c.status('a')).apps.find((x) => x.tag === 'web')?.here?.app === 'up' ? true : undefined), 120_000, 500);
  await until('b hears a on the disk', async () => (peerChannel(await c.status('b'), 'a', 'disk:shared0') === 'up' ? true : undefined), 60_000, 500);
  await settled(c, ['a', 'b'], 120_000);

  await t.test('healthy: every check OK, exit 0', async (t) => {
    const began = performance.now();
    const { code, report } = await doctor(c, 'a');
    t.comment(`doctor on a took ${((performance.now() - began) / 1000).toFixed(1)} s`);
    t.same(notOk(report), [], 'nothing but OK');
    t.equal(code, 0);
    t.equal(report.agent, true);
    for (const id of ['config', 'agent', 'disk.shared0.paths', 'disk.shared0.links', 'disk.shared0.ready', 'disk.shared0.pr', 'disk.shared0.reservation',
      'disk.shared0.heartbeat', 'network.lan1', 'network.lan2', 'priority.web', 'power', 'stay-out', 'leftovers.mounts', 'leftovers.addresses']) {
      t.ok(report.checks.some((x) => x.id === id), `checked: ${id}`);
    }
    t.comment(`healthy: ${line(report, 'disk.shared0.pr')}`);
  });

  await t.test('one network cut: WARN network.lan2', async (t) => {
    await c.rig.cut('a', 'lan2');
    await until('a hears b no more on lan2', async () => (peerChannel(await c.status('a'), 'b', 'net:lan2') === 'down' ? true : undefined), 60_000, 250);
    await expectFault(t, c, 'a', 'network.lan2', 'WARN');
    await c.rig.restore('a', 'lan2');
    await until('a hears b on lan2 again', async () => (peerChannel(await c.status('a'), 'b', 'net:lan2') === 'up' ? true : undefined), 60_000, 250);
  });

  await t.test('a stale link table: WARN disk.shared0.links', async (t) => {
    await writeLinks(c, 'a', [lab.wedgeA]); // a path that now leads to another unit
    await expectFault(t, c, 'a', 'disk.shared0.links', 'WARN');
    await writeLinks(c, 'a', [lab.a, extra]);
  });

  await t.test('a foreign key registered: FAIL disk.shared0.pr', async (t) => {
    const stranger = await open(lab.b, 3);
    try {
      await stranger.prRegister(0x57a11e7n, { ignoreExisting: true });
      await expectFault(t, c, 'a', 'disk.shared0.pr', 'FAIL');
      await stranger.prUnregister(0x57a11e7n);
    } finally {
      stranger.close();
    }
  });

  await t.test('a stale mount on the node that does not host the app: FAIL leftovers.mounts', async (t) => {
    const at = join(c.dir, 'stale');
    await c.rig.run('b', ['mkdir', '-p', at]);
    await c.rig.run('b', ['mount', '-t', 'ext4', '-o', 'ro,noload', lab.bSd, at]);
    try {
      await expectFault(t, c, 'b', 'leftovers.mounts', 'FAIL', 'cli');
    } finally {
      await c.rig.run('b', ['umount', at]);
    }
  });

  await t.test('the reservation held by the wrong node: FAIL disk.shared0.reservation', async (t) => {
    // web unloaded: no node should hold the disk; then b's key takes it through the extra nexus, where b's
    // agent cannot give it up (its own nexus is not registered).
    await c.request('a', 'app.unload', { tag: 'web' });
    await until('a gave the disk up', async () => (disks(await c.status('a'))[0]?.registered.length === 0 ? true : undefined), 60_000, 250);
    const config = await loadConfig(join(c.dir, 'a.yaml'));
    const bKey = reservationKey(config, config.nodes.find((n) => n.name === 'b')!, await loadClusterKey(config.keyFile));
    const dev = await open(extra, 3);
    try {
      await dev.prRegister(bKey, { ignoreExisting: true });
      await dev.prReserve(bKey, 'wero');
      await expectFault(t, c, 'a', 'disk.shared0.reservation', 'FAIL');
      await dev.prRelease(bKey, 'wero');
      await dev.prUnregister(bKey);
    } finally {
      dev.close();
    }
  });

  await t.test('one path of the disk gone: WARN disk.shared0.paths', async (t) => {
    const began = performance.now();
    await unlinkExtraPath(extra);
    t.comment(`the path went in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    await expectFault(t, c, 'a', 'disk.shared0.paths', 'WARN');
  });
});

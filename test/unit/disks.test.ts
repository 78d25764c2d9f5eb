// The agent's disks (src/daemon/disks.ts) over a fake SCSI world: a unit whose path appears after vigild
// started (an iSCSI login later) is found when it is needed, through the link table first, and a scan is
// not repeated more often than every 30 s. (In the lab every node sees every path, so a scan there would
// find the other node's nexus: the lab's tables name each node's own path and no lab test scans.)
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { Disks, reservationKey } from '../../src/daemon/disks.js';
import type { LinkTable } from '../../src/links/table.js';
import { ScsiDevice } from '../../src/scsi/device.js';
import { DeviceOpenError } from '../../src/scsi/errors.js';
import { FakeTransport } from '../support/fake-transport.js';

const UNIT = '5001405000000001';
const IDENTITY = `naa.${UNIT}`;

function vpd83(naaHex: string): Buffer {
  const d = Buffer.from(naaHex, 'hex');
  return Buffer.concat([Buffer.from([0, 0x83, 0, 4 + d.length, 0x01, 0x03, 0, d.length]), d]);
}

const log = { info() {}, warn() {}, error() {} };

t.test('a disk whose path appears after the start is found when it is needed: the link table again, a scan at most every 30 s', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-disks-'));
  const linkTable = join(dir, 'links.json');
  const table: LinkTable = { version: 1, savedAt: new Date().toISOString(), host: 'a', entries: [{ identity: IDENTITY, paths: ['/dev/sg-late'] }] };
  await writeFile(linkTable, JSON.stringify(table));
  const config = parseConfig([
    'cluster: unit', `keyFile: ${join(dir, 'key')}`, `stateDir: ${dir}`, `linkTable: ${linkTable}`,
    'networks: [ { name: lan1, port: 7400 } ]',
    'nodes:', '  - { name: a, id: 1, addresses: { lan1: 127.0.1.1 } }', '  - { name: b, id: 2, addresses: { lan1: 127.0.1.2 } }',
    `disks: [ { name: d0, identity: ${IDENTITY}, heartbeat: false } ]`,
  ].join('\n'), 'unit.yaml', { baseDir: dir });
  let present = false;
  const scans: number[] = [];
  const disks = new Disks(config, config.nodes[0]!, Buffer.alloc(32, 7), { isAlive: () => false, onPulse: () => {}, onFenced: () => {} }, log, {
    open: async (path) => {
      if (path !== '/dev/sg-late' || !present) throw new DeviceOpenError(path, 2, 'ENOENT', 'open', 'ENOENT');
      return new ScsiDevice(new FakeTransport([{ data: vpd83(UNIT) }], path));
    },
    scan: async () => { scans.push(Date.now()); return table; },
  });
  t.teardown(() => disks.stop());
  await disks.start();
  t.equal(scans.length, 1, 'at start, the table failing, one scan');
  t.match(await disks.check('d0'), /ENOENT|no working path|\/dev\/sg-late/, 'no path yet: the resource check says why');
  t.equal(scans.length, 1, 'and no second scan within 30 s');
  present = true; // the iSCSI session logs in
  t.equal(await disks.check('d0'), undefined, 'found through the link table when next needed, no restart');
  t.equal(scans.length, 1, 'without a scan');
});

t.test('reservation keys come from the cluster\'s secret: two clusters of the same name on one SAN never share one; every node of a cluster computes the same', async (t) => {
  const config = (name: string) => parseConfig([
    `cluster: ${name}`, 'keyFile: /etc/vigil/key',
    'networks: [ { name: lan1, port: 7400 } ]',
    'nodes:', '  - { name: a, id: 1, addresses: { lan1: 127.0.1.1 } }', '  - { name: b, id: 2, addresses: { lan1: 127.0.1.2 }, reservationKey: "0xabc" }',
  ].join('\n'), 'unit.yaml', { baseDir: '/etc/vigil' });
  const lab = config('lab');
  const [mine, theirs] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
  const a = lab.nodes[0]!;
  t.not(reservationKey(lab, a, mine), reservationKey(config('lab'), a, theirs), 'same name, another cluster key: another reservation key');
  t.equal(reservationKey(lab, a, mine), reservationKey(config('lab'), a, Buffer.from(mine)), 'the same cluster: the same key on every node');
  t.equal(reservationKey(lab, a, mine) & 0xffffn, 1n, 'the node id in the low 16 bits, readable in sg_persist');
  t.not(reservationKey(lab, a, mine), reservationKey(config('lab2'), a, mine), 'and the cluster name still counts');
  t.equal(reservationKey(lab, lab.nodes[1]!, mine), 0xabcn, 'a configured key wins');
});

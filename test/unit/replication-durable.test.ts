// A write the agent acknowledges is on disk first (src/daemon/replication.ts `changed`): the nemesis
// campaign once lost acknowledged attribute writes (INV-ACK, seed 1651355650 under load: agent kills and a
// lossy link), as the answer went out while the replica's save was still queued and the update to the
// peer could be dropped on the way.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { Replication } from '../../src/daemon/replication.js';
import { MINIMAL_CONFIG } from '../support/minimal-config.js';

t.test('changed() resolves once the replica file holds the write: an answer that awaits it survives a kill', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-repl-'));
  const config = parseConfig(MINIMAL_CONFIG, 'c.yaml');
  const sent: unknown[] = [];
  const rep = new Replication({
    config, peers: config.nodes.filter((n) => n.name !== 'x'), log: { info: () => {}, warn: () => {}, error: () => {} }, file: join(dir, 'replica.json'),
    send: (_p, m) => sent.push(m), peerStates: () => [], declaredFailed: () => false, startupGraceLeftMs: () => 0, onAppsChanged: () => {},
  });
  rep.db.upsert({
    tag: 'web', type: 'cluster-capable', command: { argv: ['/bin/true'] }, primary: 'x', backup: 'y', resources: [], autoRecover: false,
    attributes: {}, host: 'x', phase: 'normal', faults: [],
  }, 'x', Date.now());
  await rep.changed(['web']);
  for (let i = 0; i < 20; i++) {
    rep.db.setAttributes('web', { count: i }, 'x', Date.now());
    await rep.changed(['web']);
    const onDisk = JSON.parse(await readFile(join(dir, 'replica.json'), 'utf8')) as unknown;
    t.match(JSON.stringify(onDisk), `"count":${i}`, `write ${i} is on disk when changed() resolves`);
  }
  t.ok(sent.length >= 21, 'and each was sent to the peer');
});

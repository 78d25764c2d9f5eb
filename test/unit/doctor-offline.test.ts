// `vigil doctor` with no vigild running, on real files: the agent check WARNs and each app pair's priority
// record is read from this node's store, with what a lone start would decide (src/lastactive/decision.ts).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { runDoctor } from '../../src/doctor/doctor.js';
import { runCli } from '../support/cli.js';
import { initPriorityStore } from '../../src/lastactive/priority-store.js';

const dir = await mkdtemp(join(tmpdir(), 'vigil-doctor-offline-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await writeFile(join(dir, 'key'), `${'cd'.repeat(32)}\n`, { mode: 0o600 });
const config = join(dir, 'cluster.yaml');
await writeFile(config, [
  'cluster: c1', `keyFile: ${join(dir, 'key')}`, `stateDir: ${join(dir, 'state')}`, `control: { socket: ${join(dir, 'ctl.sock')} }`,
  'networks: [{ name: lan1, port: 7400 }, { name: lan2, port: 7410 }]',
  'nodes:',
  '  - { name: a, id: 1, addresses: { lan1: 192.0.2.1, lan2: 198.51.100.1 } }',
  '  - { name: b, id: 2, addresses: { lan1: 192.0.2.2, lan2: 198.51.100.2 } }',
  `linkTable: ${join(dir, 'links.json')}`,
  'disks: [{ name: shared0, identity: naa.6001405aaaaaaaaaaaaaaaaaaaaaaaaa }]',
  'apps:',
  '  - { tag: web, type: cluster-capable, command: "sleep 100", primary: a, backup: b, resources: [{ disk: shared0 }] }',
  '  - { tag: db, type: cluster-capable, command: "sleep 100", primary: b, backup: a }',
].join('\n'));

t.test('no vigild: agent WARNs; the records say what a lone start would do; a missing record WARNs', async (t) => {
  await mkdir(join(dir, 'state', 'priority'), { recursive: true });
  await initPriorityStore(join(dir, 'state', 'priority', 'web.priority'), { cluster: 'c1', node: 1, peer: 2 }, { priority: 1, state: 'M', transition: '1-1-1', forced: false });
  const r = await runDoctor({ config, node: 'a' });
  t.equal(r.agent, false);
  t.match(r.checks.find((c) => c.id === 'agent'), { verdict: 'WARN', summary: /vigild does not answer/ });
  t.match(r.checks.find((c) => c.id === 'priority.web'), { verdict: 'OK', summary: /^web with b: priority 1 .*; started alone now: / , detail: { priority: 1, missing: false } });
  t.match(r.checks.find((c) => c.id === 'priority.db'), { verdict: 'WARN', detail: { priority: null, missing: true } });
  t.notOk(r.checks.some((c) => c.id.startsWith('network.')), 'no network check without the agent');
});

t.test('a disk no path leads to (no SCSI device here), its stored path gone: FAIL paths, WARN links, nothing more read of it', async (t) => {
  await writeFile(join(dir, 'links.json'), JSON.stringify({
    version: 1, savedAt: new Date().toISOString(), host: 'a', entries: [{ identity: 'naa.6001405aaaaaaaaaaaaaaaaaaaaaaaaa', paths: [join(dir, 'sg-gone')] }],
  }));
  const r = await runDoctor({ config, node: 'a' });
  const v = Object.fromEntries(r.checks.map((c) => [c.id, c.verdict]));
  t.equal(v['disk.shared0.paths'], 'FAIL');
  t.equal(v['disk.shared0.links'], 'WARN');
  t.match(r.checks.find((c) => c.id === 'disk.shared0.links')?.detail, { stored: [{ path: join(dir, 'sg-gone'), state: 'missing' }] });
  t.notOk(r.checks.some((c) => c.id === 'disk.shared0.pr' || c.id === 'disk.shared0.ready'));
  t.equal(r.verdict, 'FAIL');
});

t.test('the CLI: text with each check and its fix, exit 17 on a FAIL; --json the report; a configuration that does not load is the config check', async (t) => {
  const text = await runCli('vigil', ['doctor', '--config', config, '--node', 'a']);
  t.equal(text.code, 17, 'a check FAILs: exit 17');
  t.match(text.stdout, /^vigil doctor: a of cluster c1 \(.*\), vigild not answering\n/);
  t.match(text.stdout, /\nFAIL  disk\.shared0\.paths +no path leads to shared0 .*\n +-> check the HBA/);
  t.match(text.stdout, /\nFAIL: \d+ ok, \d+ warnings?, 1 failed\n$/);
  const json = await runCli('vigil', ['--json', 'doctor', '--config', join(dir, 'none.yaml')]);
  t.equal(json.code, 17);
  t.match(JSON.parse(json.stdout), { version: 1, cluster: null, node: null, agent: false, verdict: 'FAIL', counts: { OK: 0, WARN: 0, FAIL: 1 },
    checks: [{ id: 'config', verdict: 'FAIL', summary: /none\.yaml/, fix: /vigil config check/ }] });
});

// The cluster-aware application API (src/client/cluster-app.ts), used by a real app that vigild starts in
// the namespace rig: it waits in ready() until its node hosts it, resumes from the marker the previous
// host wrote, and on an unload request saves its marker and exits by itself before any signal.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import t from 'tap';

import { packageRoot } from '../../src/util/package-root.js';
import { AWARE_APP, createCluster, until, type TestCluster, settled } from '../support/cluster.js';

const client = pathToFileURL(join(packageRoot(), 'dist/src/client/cluster-app.js')).href;
const APP = AWARE_APP;

async function marker(c: TestCluster, node: string): Promise<string | number | null> {
  return ((await c.request(node, 'marker.get', { tag: 'web' })) as { pointer: string | number | null }).pointer;
}

async function markerIs(c: TestCluster, node: string, re: RegExp): Promise<string> {
  return until(`${node}'s replica of the marker to match ${re}`, async () => {
    const p = await marker(c, node);
    return typeof p === 'string' && re.test(p) ? p : undefined;
  }, 15_000);
}

t.test('a cluster-aware app: ready() on the host, the resume marker carried to the next host, and an unload request before SIGTERM', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, aware: true, command: APP }]);
  c.start('a');
  c.start('b');
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 20_000);
  t.equal(await markerIs(c, 'b', /^a resumed/), 'a resumed from null', 'a found no marker, wrote one, and b has it');

  const unloadAt = performance.now();
  await c.request('a', 'app.unload', { tag: 'web' });
  t.match(await markerIs(c, 'b', /unloaded/), /^a unloaded \(unloaded\)$/, 'the app got the unload request, with its reason, and saved its marker');
  await until('web down on a', async () => ((await c.status('a')).apps[0]?.here?.app === 'down' ? true : undefined));
  const stopMs = performance.now() - unloadAt;
  t.match(c.log('a'), /application exited on its unload request/, 'it exited by itself');
  t.notOk((await c.status('a')).notices.some((n) => n.notice === 'stop-killed'), 'nothing had to be killed');
  t.ok(stopMs < 5000, `stopped in ${stopMs.toFixed(0)} ms, well within the 10 s stop timeout (it did not wait for SIGTERM)`);

  await c.request('a', 'app.load', { tag: 'web' });
  t.equal(await markerIs(c, 'b', /^a resumed from "a unloaded/), 'a resumed from "a unloaded (unloaded)"', 'loaded again, a resumes where it left off');
  await settled(c, ['a', 'b']);
  await c.powerOff('a');
  await until('b serving', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 20_000);
  t.equal(await marker(c, 'b'), 'b resumed from "a resumed from \\"a unloaded (unloaded)\\""', 'after the failover b resumes from a\'s marker');
});

t.test('failback of a cluster-aware app: the primary loads it paused while the backup hosts, and it runs there once HOST is the primary', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, aware: true, autoRecover: true, command: APP }]);
  c.start('a');
  c.start('b');
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 20_000);
  await settled(c, ['a', 'b']);
  await c.powerOff('a');
  await until('b serving', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 20_000);
  await c.powerOn('a');
  c.start('a');
  const paused = await until('a holds web paused, with a process waiting in ready()', async () => {
    const here = (await c.status('a')).apps.find((x) => x.tag === 'web')?.here;
    return here?.app === 'paused' || here?.app === 'up' ? here : undefined;
  }, 20_000);
  t.ok(paused.pid, `the paused copy on a is a process (pid ${paused.pid}), not only a state`);
  await until('web failed back: a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 30_000);
  const web = (await c.status('a')).apps.find((x) => x.tag === 'web');
  t.match(web, { host: 'a', here: { app: 'up' } }, 'HOST is a and it runs there');
  t.ok(web?.here?.pid, 'with a process');
});

t.test('register: a new tag is created from the app\'s own values; a clash of primary is refused with the reason', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', aware: true, command: ['/bin/sleep', '600'] }]);
  c.start('a');
  c.start('b');
  await until('both agents answer', async () => ((await c.status('a').catch(() => undefined)) && (await c.status('b').catch(() => undefined)) ? true : undefined));
  const { ClusterApp } = await import(client) as typeof import('../../src/client/cluster-app.js');
  const app = await ClusterApp.connect({ socket: c.socket('b'), tag: 'report' });
  t.teardown(() => app.close());
  const r = await app.register({ command: { argv: ['/bin/sleep', '600'] }, primary: 'b', backup: 'a', attributes: { owner: 'ops' } });
  t.same(r, { tag: 'report', decision: 'created', host: 'b' });
  await until('a has the new object', async () => ((await c.status('a')).apps.some((x) => x.tag === 'report') ? true : undefined));
  const again = await app.register({ command: { argv: ['/bin/sleep', '600'] }, primary: 'b', backup: 'a' });
  t.equal(again.decision, 'sync-all-then-run', 'registering again on its primary is FIG. 6 step 614');
  const web = await ClusterApp.connect({ socket: c.socket('b'), tag: 'web' });
  t.teardown(() => web.close());
  await t.rejects(web.register({ command: { argv: ['/bin/true'] }, primary: 'b', backup: 'a' }), { code: 'rejected', message: /already registered with primary a, not b/ });
  await t.rejects(ClusterApp.connect({ socket: c.socket('b'), tag: '' }), /no tag/);
  // The stored form's rules (src/config/resource-rules.ts) hold for what a live agent is sent, as for the file.
  const bad = await ClusterApp.connect({ socket: c.socket('b'), tag: 'etc-mounter' });
  t.teardown(() => bad.close());
  await t.rejects(bad.register({ command: { argv: ['/bin/true'] }, primary: 'b', backup: 'a', resources: [{ kind: 'mount', disk: 'shared0', path: '/etc', fstype: 'ext4', options: [] }] }),
    { code: 'rejected', message: /\/etc is a system directory/ }, 'a mount over /etc is refused with the reason');
  t.notOk((await c.status('b')).apps.some((x) => x.tag === 'etc-mounter'), 'and nothing was stored');
});

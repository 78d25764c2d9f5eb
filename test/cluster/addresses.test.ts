// Service addresses never answer from two hosts, as far as the agent can tell (namespace rig):
// - before adding an address, the agent probes for it (ARP duplicate address detection): an address
//   another host answers for is not added until that host lets it go;
// - a node that leaves (distress) removes its addresses before it stops its apps, so its peer can take
//   them over at once instead of after the apps' stop timeouts.
import t from 'tap';

import { createCluster, primaryServing, until, type TestCluster } from '../support/cluster.js';

const hasVip = async (c: TestCluster, node: string) => (await c.rig.exec(node, ['ip', '-o', 'addr', 'show', 'dev', 'svc'])).stdout.includes(`${c.vip()}/24`);

t.test('an address another host answers for is not added until that host lets it go', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: { failbackDwellMs: 1000 } });
  // An impostor on the service network holds the app's address before the cluster starts.
  await c.rig.run('client', ['ip', 'addr', 'add', `${c.vip()}/24`, 'dev', 'svc']);
  c.start('a');
  c.start('b');
  await until('a refuses to add the address', async () => {
    const n = (await c.status('a')).notices.find((x) => x.notice === 'start-failed');
    return n ? n : undefined;
  }, 30_000);
  t.match((await c.status('a')).notices.find((x) => x.notice === 'start-failed')?.message, /answered by another host/, 'the notice says why');
  t.notOk(await hasVip(c, 'a'), 'a did not add it');
  await c.rig.run('client', ['ip', 'addr', 'del', `${c.vip()}/24`, 'dev', 'svc']);
  await until('a serves once the address is free', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 30_000, 200);
  t.pass('a added it on its next attempt');
});

t.test('a node that leaves removes its addresses first, while its app is still stopping', async (t) => {
  // The app takes 3 s to stop after SIGTERM (a database flushing): long after the address must be gone.
  const slow = ['/usr/bin/env', 'node', '-e',
    "process.on('SIGTERM', () => setTimeout(() => process.exit(0), 3000));"
    + "require('net').createServer((s) => { s.on('error', () => {}); s.end(process.env.VIGIL_NODE + '\\n'); }).listen(8080)"];
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, command: slow }], { timing: { failAfterMs: 5000, recoverAfterMs: 1000 } });
  await primaryServing(c);
  const pid = (await c.status('a')).apps[0]?.here?.pid;
  t.ok(pid, 'a runs the app');
  await c.request('a', 'distress.send', { reason: 'hardware-fault' });
  await until('the address is gone from a', async () => (!(await hasVip(c, 'a')) ? true : undefined), 2000, 20);
  t.ok((await c.rig.exec('a', ['kill', '-0', String(pid)])).code === 0, 'while a\'s app is still stopping');
  await until('b serves', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 15_000, 50);
  t.pass('and b took the address over');
});

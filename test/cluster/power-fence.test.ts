// Power fencing of a disk-less app's host, with real agents in network namespaces and a real BMC per node
// (ipmi_sim, on the client's service address) whose "power off" kills every process of that node's
// namespace, as losing power would. Cutting both cluster networks used to run such an app twice (nothing
// arbitrated it); now the survivor powers the other off, confirms it, then takes over. So after a distress
// that left the app running (a fatal signal in the agent).
import t from 'tap';

import { Exit } from '../../src/cli/exit-codes.js';
import { runCli } from '../support/cli.js';
import { nameServer, primaryServing, until, type TestCluster } from '../support/cluster.js';
import { fencedCluster } from '../support/fenced-cluster.js';
import { ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { sh } from '../support/netns.js';

async function alive(c: TestCluster, node: string): Promise<number> {
  return (await sh(['ip', 'netns', 'pids', c.rig.ns(node)])).stdout.split('\n').filter(Boolean).length;
}

if (ipmiSimUnavailable()) {
  t.fail(`ipmi_sim cannot run here: ${ipmiSimUnavailable()}`);
} else {
  t.test('a disk-less app, both cluster networks cut: the backup powers the primary off through its BMC, confirms it, then takes over', async (t) => {
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }]);
    await primaryServing(c);
    await c.rig.cut('a', 'lan1');
    await c.rig.cut('a', 'lan2');
    await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 30_000, 200);
    t.same(await bmcs.a!.actions(), ['power 0'], "a's BMC was told to power off, once");
    t.same(await bmcs.b!.actions(), [], 'nobody fenced b');
    t.equal(await alive(c, 'a'), 0, 'nothing runs on a any more');
    t.match(c.log('b'), /power fence: the node is confirmed off/);
    const order = c.log('b').indexOf('confirmed off') < c.log('b').indexOf('"application started"');
    t.ok(order, 'the fence was confirmed before the app started on b');
  });

  t.test('a BMC that does not answer: no takeover and an alert; once it answers, the fence and the takeover happen', async (t) => {
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }]);
    await primaryServing(c);
    bmcs.a!.freeze();
    await c.rig.cut('a', 'lan1');
    await c.rig.cut('a', 'lan2');
    await until('the fence failure is reported', async () => (c.log('b').includes('fence-failed') ? true : undefined), 30_000, 200);
    t.equal(await c.probe(c.vip()), 'a', 'a still serves: b took nothing over');
    t.ok(!c.log('b').includes('"application started"'), 'b never started x');
    bmcs.a!.thaw();
    await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 30_000, 200);
    t.same(await bmcs.a!.actions(), ['power 0']);
  });

  t.test('the race: each side hosts an app the other takes over; with both networks cut, the lower id survives and serves both', async (t) => {
    // Each app listens on its own address only: both run on a in the end.
    const command = (_mnt: string, vip: string | undefined) => nameServer(vip);
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true, command }, { tag: 'y', primary: 'b', backup: 'a', vip: true, command }]);
    c.start('a');
    c.start('b');
    await until('a serves x and b serves y', async () => ((await c.probe(c.vip(0))) === 'a' && (await c.probe(c.vip(1))) === 'b' ? true : undefined), 60_000, 250);
    await c.rig.cut('a', 'lan1');
    await c.rig.cut('a', 'lan2');
    await until('a serves both', async () => ((await c.probe(c.vip(0))) === 'a' && (await c.probe(c.vip(1))) === 'a' ? true : undefined), 30_000, 200);
    t.same(await bmcs.b!.actions(), ['power 0'], 'a (id 1) powered b off');
    t.same(await bmcs.a!.actions(), [], 'b (id 2) waited, and was off before its delay ended');
    t.equal(await alive(c, 'b'), 0);
  });

  t.test('three nodes: the one cut off (the lowest id) fences nobody; the majority powers it off and takes its app over', async (t) => {
    // x on a (id 1), y on b: cut off, a sees b and c fail, and without the quorum rule it would power them
    // off at once (the lowest id waits for nobody).
    const command = (_mnt: string, vip: string | undefined) => nameServer(vip);
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true, command }, { tag: 'y', primary: 'b', backup: 'a', vip: true, command }], { nodes: ['a', 'b', 'c'] });
    for (const n of ['a', 'b', 'c']) c.start(n);
    await until('a serves x and b serves y', async () => ((await c.probe(c.vip(0))) === 'a' && (await c.probe(c.vip(1))) === 'b' ? true : undefined), 60_000, 250);
    await c.rig.cut('a', 'lan1');
    await c.rig.cut('a', 'lan2');
    await until('b serves both', async () => ((await c.probe(c.vip(0))) === 'b' && (await c.probe(c.vip(1))) === 'b' ? true : undefined), 30_000, 200);
    t.same(await bmcs.a!.actions(), ['power 0'], 'the majority powered a off');
    t.same(await bmcs.b!.actions(), [], 'a did not fence b');
    t.same(await bmcs.c!.actions(), [], 'nor c');
    t.match(c.log('a'), /in a minority of the cluster and fences nobody/);
  });

  t.test('three nodes, two lose power: the lone survivor fences nobody until an operator fences one; then it takes the apps over', async (t) => {
    // y on b (backup a). b and c lose power (no fence: their BMCs still say on). a, alone after quorum, is
    // a minority that must not power the others off: y runs nowhere. An operator who knows b is dead
    // powers it off through its BMC from a (vigil fence b): b is off and stays off by its BMC's word, so a
    // is half of the two nodes left, no minority, and takes y over.
    const command = (_mnt: string, vip: string | undefined) => nameServer(vip);
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'y', primary: 'b', backup: 'a', vip: true, command }], { nodes: ['a', 'b', 'c'] });
    for (const n of ['a', 'b', 'c']) c.start(n);
    await until('b serves y', async () => ((await c.probe(c.vip(0))) === 'b' ? true : undefined), 60_000, 250);
    await c.powerOff('b');
    await c.powerOff('c');
    await until('a refuses to take y over from a minority', async () => (/in a minority of the cluster and fences nobody/.test(c.log('a')) ? true : undefined), 30_000, 200);
    t.match((await c.status('a')).view, { why: /hears 1 of 3 nodes/ });
    t.same(await bmcs.b!.actions(), [], 'a did not power b off');
    const r = await runCli('vigil', ['--json', 'fence', 'b', '--yes', '--socket', c.socket('a')]);
    t.equal(r.code, 0, r.stderr);
    t.match(JSON.parse(r.stdout), { node: 'b', power: 'off', wasAlive: false });
    await until('a serves y', async () => ((await c.probe(c.vip(0))) === 'a' ? true : undefined), 30_000, 200);
    t.match((await c.status('a')).view, { why: /hears 1 of 2 nodes \(1 more powered off by a fence\)/ });
    t.same(await bmcs.b!.actions(), ['power 0'], "only the operator's fence");
    t.same(await bmcs.c!.actions(), [], 'c, hosting nothing, was not fenced');
  });

  t.test('vigil fence NODE: an operator powers a live node off through its BMC; the survivor takes its app over', async (t) => {
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }]);
    await primaryServing(c);
    const refused = await runCli('vigil', ['fence', 'b', '--yes', '--socket', c.socket('b')]);
    t.equal(refused.code, Exit.USAGE, 'a node does not fence itself');
    t.match(refused.stderr, /b is this node/);
    const r = await runCli('vigil', ['--json', 'fence', 'a', '--yes', '--socket', c.socket('b')]);
    t.equal(r.code, 0, r.stderr);
    t.match(JSON.parse(r.stdout), { node: 'a', power: 'off', wasAlive: true });
    t.same(await bmcs.a!.actions(), ['power 0']);
    await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 30_000, 200);
    t.equal(await alive(c, 'a'), 0);
  });

  t.test("a fatal signal in the host's agent (distress) leaves its disk-less app running: the backup powers the host off at once, then takes over", async (t) => {
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }], { debug: true });
    await primaryServing(c);
    await c.request('a', 'debug.crash', { kind: 'segv' });
    await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 30_000, 200);
    t.match((await c.status('b')).notices.find((n) => n.notice === 'peer-distress')?.message, /fatal-signal/);
    t.same(await bmcs.a!.actions(), ['power 0'], "a's BMC was told to power off: its app outlived its agent");
    t.equal(await alive(c, 'a'), 0, 'nothing runs on a any more');
    t.notMatch(c.log('b'), /waiting first/, 'no race delay: a said it was going down');
    const order = c.log('b').indexOf('confirmed off') < c.log('b').indexOf('"application started"');
    t.ok(order, 'the fence was confirmed before the app started on b');
  });

  t.test('an app that faults on a live host moves to its backup without anybody powered off', async (t) => {
    // On a it listens for 3 s, then closes its listener but keeps running: its health probe fails.
    const command = ['/usr/bin/env', 'node', '-e',
      "const s = require('net').createServer((c) => { c.on('error', () => {}); c.end(process.env.VIGIL_NODE + '\\n'); }).listen(8080);"
      + "if (process.env.VIGIL_NODE === 'a') setTimeout(() => s.close(), 3000); setInterval(() => {}, 1000);"];
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true, monitor: true, command }]);
    await primaryServing(c);
    await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 30_000, 200);
    t.same(await bmcs.a!.actions(), [], 'a, alive, was not powered off');
    t.ok((await c.status('b')).notices.some((n) => n.notice === 'host-faulted'), 'b took it over because it faulted on a');
    t.ok(await alive(c, 'a') > 0, 'a runs on');
  });
}


// Power fencing of a disk-less app's host, with real agents in network namespaces and a real BMC per node
// (ipmi_sim, on the client's service address) whose "power off" kills every process of that node's
// namespace, as losing power would. Cutting both cluster networks used to run such an app twice (nothing
// arbitrated it); now the survivor powers the other off, confirms it, then takes over. So after a distress
// that left the app running (a fatal signal in the agent). The first two also scrape the survivor's metrics:
// per channel, the fence's outcome, the failover's phases as its log has them, and every series the sample
// alert rules (hw-fixtures/prometheus/vigil-alerts.yml) read.
import t from 'tap';

import { Exit } from '../../src/cli/exit-codes.js';
import { runCli } from '../support/cli.js';
import { nameServer, primaryServing, until, type TestCluster } from '../support/cluster.js';
import { fencedCluster } from '../support/fenced-cluster.js';
import { ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { declaredMetrics, ruleMetrics, sampleValue, scrape } from '../support/metrics.js';
import { sh } from '../support/netns.js';

/** The `ms` of the first line of `node`'s log with this message (and resource). */
function loggedMs(c: TestCluster, node: string, msg: string, resourcePrefix = ''): number | undefined {
  for (const line of c.log(node).split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { msg?: string; resource?: string; ms?: number };
    if (l.msg === msg && (l.resource ?? '').startsWith(resourcePrefix)) return l.ms;
  }
  return undefined;
}

async function alive(c: TestCluster, node: string): Promise<number> {
  return (await sh(['ip', 'netns', 'pids', c.rig.ns(node)])).stdout.split('\n').filter(Boolean).length;
}

if (ipmiSimUnavailable()) {
  t.fail(`ipmi_sim cannot run here: ${ipmiSimUnavailable()}`);
} else {
  t.test('a disk-less app, both cluster networks cut: the backup powers the primary off through its BMC, confirms it, then takes over', async (t) => {
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }], { metrics: true });
    await primaryServing(c);
    const started = Date.now();
    await c.rig.cut('a', 'lan1');
    // One network cut: the channel is down, the peer alive (the redundancy an alert is about).
    const degraded = await until('b\'s metrics show lan1 to a down', async () => {
      const m = await scrape(c, 'b');
      return sampleValue(m, 'vigil_channel_state{peer="a",channel="net:lan1",state="down"}') === 1 ? m : undefined;
    }, 10_000, 100);
    t.equal(sampleValue(degraded, 'vigil_channel_state{peer="a",channel="net:lan2",state="up"}'), 1, 'lan2 to a is up');
    t.equal(sampleValue(degraded, 'vigil_peer_up{peer="a"}'), 1, 'a is alive');
    t.ok((sampleValue(degraded, 'vigil_channel_rtt_seconds{peer="a",network="lan2"}') ?? -1) > 0, 'the round trip on lan2 is measured');
    await c.rig.cut('a', 'lan2');
    await until('b serves x', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 30_000, 200);
    t.same(await bmcs.a!.actions(), ['power 0'], "a's BMC was told to power off, once");

    // The survivor's metrics after the failover, against its log.
    const m = await until('b reports the failover', async () => {
      const text = await scrape(c, 'b');
      return sampleValue(text, 'vigil_failovers_total') === 1 && sampleValue(text, 'vigil_peer_fenced_off{peer="a"}') === 1 ? text : undefined;
    }, 10_000, 200);
    t.comment(m.split('\n').filter((l) => /^vigil_(peer_|channel_state\{.*state="down"|last_failover|power_fence|app_running|failovers)/.test(l)).join('\n'));
    t.equal(sampleValue(m, 'vigil_peer_state{peer="a",state="failed"}'), 1, 'a failed');
    for (const net of ['lan1', 'lan2']) t.equal(sampleValue(m, `vigil_channel_state{peer="a",channel="net:${net}",state="down"}`), 1, `${net} to a down`);
    t.equal(sampleValue(m, 'vigil_power_fences_total{peer="a",result="off"}'), 1, 'one fence of a, confirmed off');
    t.equal(sampleValue(m, 'vigil_power_fences_total{peer="a",result="failed"}'), 0);
    t.equal(sampleValue(m, 'vigil_power_fence_in_progress{peer="a"}'), 0);
    t.equal(sampleValue(m, 'vigil_app_running{tag="x"}'), 1, 'x runs on b');
    const phase = (p: string) => sampleValue(m, `vigil_last_failover_seconds{tag="x",phase="${p}"}`);
    t.equal(phase('fence'), loggedMs(c, 'b', 'peer powered off')! / 1000, 'fence: the power fence as logged (race delay included)');
    t.ok(phase('fence')! >= 3, 'b, the higher id, waited its 3 s race delay');
    t.equal(phase('address'), loggedMs(c, 'b', 'resource started', 'ip ')! / 1000, 'address: the VIP\'s start as logged');
    t.equal(phase('app_start'), loggedMs(c, 'b', 'application started')! / 1000, 'app_start: the program\'s start as logged');
    t.equal(phase('mount'), undefined, 'no mount in this app');
    t.ok(phase('detection')! >= 0.4, 'detection: at least failAfterMs of silence');
    t.ok(phase('total')! >= phase('detection')! + phase('fence')! + phase('address')! + phase('app_start')!, 'total covers the phases');
    const at = sampleValue(m, 'vigil_last_failover_timestamp_seconds{tag="x"}')! * 1000;
    t.ok(at >= started && at <= Date.now(), 'completed during this test');
    const declared = declaredMetrics(m);
    for (const name of ruleMetrics()) t.ok(declared.has(name), `the alert rules' ${name} is exported`);
    t.same(await bmcs.b!.actions(), [], 'nobody fenced b');
    t.equal(await alive(c, 'a'), 0, 'nothing runs on a any more');
    t.match(c.log('b'), /power fence: the node is confirmed off/);
    const order = c.log('b').indexOf('confirmed off') < c.log('b').indexOf('"application started"');
    t.ok(order, 'the fence was confirmed before the app started on b');
  });

  t.test('a BMC that does not answer: no takeover and an alert; once it answers, the fence and the takeover happen', async (t) => {
    const { c, bmcs } = await fencedCluster(t, [{ tag: 'x', primary: 'a', backup: 'b', vip: true }], { metrics: true });
    await primaryServing(c);
    bmcs.a!.freeze();
    await c.rig.cut('a', 'lan1');
    await c.rig.cut('a', 'lan2');
    await until('the fence failure is reported', async () => (c.log('b').includes('fence-failed') ? true : undefined), 30_000, 200);
    t.equal(await c.probe(c.vip()), 'a', 'a still serves: b took nothing over');
    const m = await scrape(c, 'b');
    t.ok((sampleValue(m, 'vigil_power_fences_total{peer="a",result="failed"}') ?? 0) >= 1, 'the failed fence is counted');
    t.equal(sampleValue(m, 'vigil_power_fences_total{peer="a",result="off"}'), 0);
    t.equal(sampleValue(m, 'vigil_failovers_total'), 0);
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
    // Powered off, and nothing else. Once or twice: ipmi_sim answers Chassis Control only after its hook has
    // killed the node's processes, which under load outlasts the RMCP+ client's retransmit interval, and
    // ipmi_sim carries out the retransmitted request again (fc17 saw two 'power 0'). Off twice is off.
    const actions = await bmcs.a!.actions();
    t.ok(actions.length >= 1 && actions.every((x) => x === 'power 0'), `the majority powered a off (${actions.join(', ')})`);
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


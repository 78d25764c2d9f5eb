// Two vigil agents in the lab guest, each in its own network namespace and on its own tcm_loop nexus to the
// shared logical unit, with an app that owns the disk, mounts its ext4 file system and serves a virtual IP:
// - power loss of the primary: the backup preempts its key, holds the reservation, mounts and serves, and the
//   file system shows both nodes' writes;
// - both networks cut while the disk heartbeat goes on: no failover; the heartbeat wrote nothing on the
//   unit, whose file system covers all of it;
// - the primary frozen (SIGSTOP) long enough to be failed over, then thawed: its writes are refused
//   (RESERVATION CONFLICT) and it stops its copy.
// Each also reads the nodes' metrics: the reservation holder, the failover's phases, the channels, the fence.
import { execFile, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import t from 'tap';

import { firstAnswer, until, type Status, type TestCluster, freezeUntilTakenOver } from '../support/cluster.js';
import { disks, LAB_TIMING, peer, startSharedDiskCluster } from '../support/lab-cluster.js';
import { lab, refusesWrites } from '../support/lab.js';
import { METRICS_LISTEN, sampleValue, scrape } from '../support/metrics.js';

const run = promisify(execFile);
const TIMING = LAB_TIMING;

const host = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag)?.host;


const start = (t: { teardown(fn: () => unknown): void }) => startSharedDiskCluster(t, () => [`metrics: { listen: "${METRICS_LISTEN}" }`]);

/** The shared file system's log, read in the mount namespace of a node's agent. */
/** A scrape of `node` once `series` reads `v` (the disks are read at the scrape, which TCG may make slow). */
async function scrapeWhen(c: TestCluster, node: string, series: string, v: number): Promise<string> {
  return until(`${node}'s metrics: ${series} ${v}`, async () => {
    const m = await scrape(c, node);
    return sampleValue(m, series) === v ? m : undefined;
  }, 60_000, 1000);
}

/** The `ms` of the first line of `node`'s log with this message and resource prefix. */
function loggedMs(c: TestCluster, node: string, msg: string, resourcePrefix: string): number | undefined {
  for (const line of c.log(node).split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { msg?: string; resource?: string; ms?: number };
    if (l.msg === msg && (l.resource ?? '').startsWith(resourcePrefix)) return l.ms;
  }
  return undefined;
}

async function fsLog(agent: ChildProcess, c: TestCluster): Promise<string> {
  const r = await run('nsenter', ['-t', String(agent.pid), '-m', 'cat', `${c.dir}/mnt/log`]);
  return r.stdout;
}

t.test('power loss of the primary: the backup preempts it, mounts the file system and serves', async (t) => {
  const { c, agents } = await start(t);
  const before = disks(await c.status('a'))[0]!;
  t.equal(before.holder, 'a', 'a holds the reservation');
  const mb = await scrapeWhen(c, 'b', 'vigil_disk_reservation_holder{disk="shared0",holder="a"}', 1);
  t.equal(sampleValue(mb, 'vigil_disk_reservation_unexpected{disk="shared0"}'), 0, "b's metrics: a, web's host, holds the disk");
  t.same(before.registered, ['a'], 'only the owner is registered (under WERO every registrant may write)');
  await c.powerOff('a');
  await until('b serves the VIP', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 120_000, 500);
  const sb = await c.status('b');
  t.equal(host(sb, 'web'), 'b');
  const after = disks(sb)[0]!;
  t.equal(after.holder, 'b', 'b holds the reservation');
  t.same(after.registered, ['b'], 'a\'s key was preempted: it is fenced off the disk');
  t.equal(await fsLog(agents.b!, c), 'a\nb\n', 'the file system a wrote to is mounted on b');
  const m = await scrapeWhen(c, 'b', 'vigil_disk_reservation_holder{disk="shared0",holder="b"}', 1);
  t.comment(m.split('\n').filter((l) => /^vigil_(disk_|last_failover_seconds|channel_state\{.*state="down")/.test(l)).join('\n'));
  t.equal(sampleValue(m, 'vigil_disk_reservation_unexpected{disk="shared0"}'), 0, 'b, the new host, holds it');
  t.ok(sampleValue(m, 'vigil_disk_preempts_total{disk="shared0"}')! >= 1, "b preempted a's key");
  for (const net of ['lan1', 'lan2']) t.equal(sampleValue(m, `vigil_channel_state{peer="a",channel="net:${net}",state="down"}`), 1, `${net} to a down`);
  t.equal(sampleValue(m, 'vigil_channel_state{peer="a",channel="disk:shared0",state="idle"}'), 1, 'the disk channel to a idle: b holds the disk, nobody pulses to it');
  const phase = (p: string) => sampleValue(m, `vigil_last_failover_seconds{tag="web",phase="${p}"}`);
  t.equal(phase('fence'), loggedMs(c, 'b', 'resource started', 'disk ')! / 1000, 'fence: taking the disk, as logged');
  t.equal(phase('mount'), loggedMs(c, 'b', 'resource started', 'mount ')! / 1000, 'mount: as logged');
  t.ok(phase('detection')! >= TIMING.failAfterMs / 1000, 'detection: at least failAfterMs of silence');
});

t.test('both networks cut while the disk heartbeat goes on: no failover; the heartbeat wrote no block of the unit, whose file system covers all of it', async (t) => {
  const { c } = await start(t);
  await c.rig.cut('a', 'lan1', 'cable');
  await c.rig.cut('a', 'lan2', 'cable');
  await until('b sees both networks to a down', async () => {
    const p = peer(await c.status('b'), 'a');
    return p?.channels.filter((x) => x.channel.startsWith('net:')).every((x) => x.state === 'down') ? p : undefined;
  }, 60_000, 500);
  await sleep(3 * TIMING.failAfterMs);
  const sb = await c.status('b');
  t.equal(peer(sb, 'a')?.state, 'alive', 'a is alive to b through the disk heartbeat alone');
  t.equal(host(sb, 'web'), 'a', 'no failover');
  t.equal(disks(sb)[0]!.holder, 'a', 'a still holds the reservation');
  t.equal(peer(sb, 'a')?.channels.find((x) => x.channel === 'disk:shared0')?.state, 'up', 'a is heard through its reservation\'s pulses');
  const m = await scrape(c, 'b');
  t.equal(sampleValue(m, 'vigil_channel_state{peer="a",channel="net:lan1",state="down"}'), 1, "b's metrics: lan1 to a down");
  t.equal(sampleValue(m, 'vigil_channel_state{peer="a",channel="disk:shared0",state="up"}'), 1, 'the disk channel up');
  t.equal(sampleValue(m, 'vigil_peer_up{peer="a"}'), 1, 'a up');
  // The heartbeat of an earlier design wrote signed records ("VGHB") into the last blocks of the unit,
  // inside the file system. Nothing of the kind may be on the unit now.
  const unit = await readFile(lab.bSd);
  t.equal(unit.indexOf(Buffer.from('VGHB')), -1, `no heartbeat record anywhere on the ${unit.length >> 20} MiB unit`);
});

t.test('a frozen primary that wakes up finds its writes refused and steps down', async (t) => {
  const { c } = await start(t);
  const notices = await freezeUntilTakenOver(c, 'a', 'b', 'web');
  t.equal(disks(await c.status('b'))[0]!.holder, 'b', 'b preempted a and holds the reservation');
  t.ok(notices.includes('fenced') || notices.includes('split-brain'), `a says why it stopped (${notices.join(', ')})`);
  // Checked after a woke (a unit attention is reported once per nexus, and a must see its own).
  t.ok(await refusesWrites(lab.a), 'a write through a\'s nexus is refused');
  await scrapeWhen(c, 'a', 'vigil_disk_fenced{disk="shared0"}', 1);
  t.pass("a's metrics say it was fenced off the disk");
  t.equal(await firstAnswer(c), 'b', 'the client is served by b, not by the woken a');
});

// Distress (seed 002) in the lab, end to end against real hardware paths: node a's UPS is a relay UPS on the
// modem lines of a serial adapter (the emulated FTDI adapter driven by the guest's ftdi_sio:
// test/support/ftdi-gadget.ts), its app owns the shared unit over iSCSI (where PREEMPT AND ABORT completes;
// it wedges tcm_loop), mounts it and serves a virtual IP. The UPS reports battery low: a sends distress and
// leaves; b fences a's key with PREEMPT AND ABORT, takes the disk, mounts it and serves, long before the
// heartbeat timeout. Power back is a false alarm that keeps a out until `vigil rejoin`.
import { execFile, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import t, { type Test } from 'tap';

import { createCluster, logAndServe, until, settled, type Status, type TestCluster } from '../support/cluster.js';
import { startGadget, type Gadget } from '../support/ftdi-gadget.js';
import { lab, open, resetUnit } from '../support/lab.js';

const run = promisify(execFile);
// TCG margins as in the other lab cluster tests, but a heartbeat timeout far above what a distress takeover
// takes, so that a takeover within it can only be the distress's doing.
const TIMING = { heartbeatIntervalMs: 200, failAfterMs: 8000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 60_000 };

const host = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag)?.host;
const peer = (s: Status, name: string) => s.peers.find((p) => p.peer === name);
interface DiskStatus { disk: string; holder: string | null; registered: string[] }
const disks = (s: Status) => (s as unknown as { disks: DiskStatus[] }).disks;
const outOf = (s: Status) => (s as unknown as { out: { reason: string } | null }).out;

/** The iSCSI unit clean, with an ext4 file system one MiB short of its end (the disk heartbeat area). */
async function prepareIscsiUnit(): Promise<void> {
  await resetUnit(lab.iscsiA, lab.iscsiB);
  const dev = await open(lab.iscsiA);
  const cap = await dev.readCapacity().finally(() => dev.close());
  const [block] = await readdir(`/sys/class/scsi_generic/${basename(lab.iscsiA)}/device/block`);
  await run('mkfs.ext4', ['-q', '-F', '-b', '4096', `/dev/${block!}`, String((cap.bytes - 1024n * 1024n) / 4096n)]);
}

let gadget: Gadget;
t.before(async () => {
  gadget = await startGadget();
});
t.teardown(() => gadget?.quit());

/** a (with its relay UPS on the emulated adapter) and b on the iSCSI unit, a serving and heard on the disk. */
async function start(t: Test): Promise<{ c: TestCluster; agents: Record<string, ChildProcess> }> {
  await prepareIscsiUnit();
  // On line and battery fine: CTS high ("on line", active high), DCD high ("battery low", active low).
  await gadget.command('set cts=1 dcd=1');
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, disk: true, mount: true, command: logAndServe }], {
    timing: TIMING,
    debug: true, // debug.crash
    disk: { identity: lab.iscsiId, paths: { a: lab.iscsiA, b: lab.iscsiB } },
    extra: (node) => (node !== 'a' ? [] : [
      'power:',
      '  sources:',
      `    - { kind: contact-closure, name: relay-ups, device: ${gadget.tty}, lines: { online: CTS, lowBattery: DCD }, polarity: { lowBattery: active-low }, cablePower: [DTR], debounceMs: 50 }`,
    ]),
  });
  const agents: Record<string, ChildProcess> = { a: c.start('a'), b: c.start('b') };
  await until('a serves the VIP', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 120_000, 500);
  await until('b hears a on the disk', async () => {
    const x = peer(await c.status('b'), 'a')?.channels.find((ch) => ch.channel === 'disk:shared0');
    return x?.state === 'up' ? true : undefined;
  }, 60_000, 500);
  await settled(c, ['a', 'b'], 120_000);
  return { c, agents };
}

t.test('battery low on a\'s relay UPS: a sends distress, b fences it by PREEMPT AND ABORT and serves before the heartbeat timeout; a stays out until rejoin', async (t) => {
  const { c, agents } = await start(t);
  const power = (await c.request('a', 'power.status')) as { sources: { source: string; state: string; connected: boolean }[] };
  t.match(power.sources, [{ source: 'relay-ups', state: 'online', connected: true }], 'a watches its UPS: on line');
  t.same(disks(await c.status('b'))[0]!.registered, ['a'], 'a, the owner, is the only registrant');

  await gadget.command('set cts=0 dcd=0');
  const t0 = performance.now();
  const served = await until('b serves the VIP', async () => ((await c.probe(c.vip())) === 'b' ? performance.now() : undefined), 60_000, 100);
  const sb = await c.status('b');
  t.comment(`battery low on the modem lines → b serving the VIP: ${(served - t0).toFixed(0)} ms (TCG guest; heartbeat timeout ${TIMING.failAfterMs} ms)`);
  t.ok(served - t0 < TIMING.failAfterMs, 'served by b before the heartbeat timeout');
  t.equal(sb.notices.filter((n) => n.notice === 'peer-distress').length, 1, 'one distress acted on');
  t.match(sb.notices.find((n) => n.notice === 'peer-distress')?.message, /power-low-battery/, 'it says why');
  t.equal(host(sb, 'web'), 'b');
  const d = disks(sb)[0]!;
  t.equal(d.holder, 'b', 'b holds the reservation');
  t.same(d.registered, ['b'], 'a\'s key is gone');
  t.match(c.log('b'), /"abort":true[^\n]*trespass|PREEMPT AND ABORT/, 'fenced with PREEMPT AND ABORT');
  const fsLog = (await run('nsenter', ['-t', String(agents.b!.pid), '-m', 'cat', `${c.dir}/mnt/log`])).stdout;
  t.equal(fsLog, 'a\nb\n', 'the file system a wrote to is mounted on b');
  t.match(outOf(await c.status('a')), { reason: 'power-low-battery' }, 'a is out: battery low');
  // Timeline from the agents' logs (ms since the edge reached the emulator).
  const at = (node: string, re: RegExp) => {
    const line = c.log(node).split('\n').find((l) => re.test(l));
    return line ? (JSON.parse(line) as { time: number }).time : undefined;
  };
  const wall0 = Math.round(Date.now() - (performance.now() - t0));
  const sent = at('a', /distress sent/);
  const failed = at('b', /"peer-distress"/);
  const complete = at('b', /"failover-complete"/);
  t.comment(`timeline (ms after the edge): a sent ${sent !== undefined ? sent - wall0 : '?'}, b declared a failed ${failed !== undefined ? failed - wall0 : '?'}, b serving ${complete !== undefined ? complete - wall0 : '?'}`);
  const steps = c.log('b').split('\n').filter((l) => /"resource (started|stopped)"|trespass|distress: fencing/.test(l))
    .map((l) => JSON.parse(l) as { time: number; msg: string; resource?: string; ms?: number; done?: string })
    .map((x) => `${x.time - wall0} ms ${x.msg}${x.resource ? ` ${x.resource}` : ''}${x.ms !== undefined ? ` (${x.ms} ms)` : ''}${x.done ? `: ${x.done}` : ''}`);
  t.comment(`b's takeover steps: ${steps.join('; ')}`);

  // Power back: a false alarm. a stays out, b keeps the app.
  await gadget.command('set cts=1 dcd=1');
  await until('a sees its UPS on line again', async () => {
    const p = (await c.request('a', 'power.status')) as { sources: { state: string }[] };
    return p.sources[0]?.state === 'online' ? true : undefined;
  }, 30_000, 200);
  await sleep(2 * TIMING.recoverAfterMs);
  t.match(outOf(await c.status('a')), { reason: 'power-low-battery' }, 'power back: a still stays out');
  t.equal(peer(await c.status('b'), 'a')?.state, 'failed', 'b does not hear a');
  t.equal(host(await c.status('b'), 'web'), 'b', 'web stays on b');
  await c.request('a', 'rejoin');
  await until('b hears a again after rejoin', async () => (peer(await c.status('b'), 'a')?.state === 'alive' ? true : undefined), 60_000, 500);
  t.equal(outOf(await c.status('a')), null, 'a is a member again');
});

t.test('a\'s agent dies of SIGSEGV: its handler\'s distress has b fence a\'s key and take the disk before the heartbeat timeout', async (t) => {
  const { c, agents } = await start(t);
  const crashed = performance.now();
  await c.request('a', 'debug.crash', { kind: 'segv' });
  const took = await until('b hosts web', async () => (host(await c.status('b'), 'web') === 'b' ? performance.now() : undefined), 60_000, 100);
  t.comment(`SIGSEGV in a's agent → b hosting web: ${(took - crashed).toFixed(0)} ms (TCG guest; heartbeat timeout ${TIMING.failAfterMs} ms)`);
  t.ok(took - crashed < TIMING.failAfterMs, 'before the heartbeat timeout');
  const sb = await c.status('b');
  t.match(sb.notices.find((n) => n.notice === 'peer-distress')?.message, /fatal-signal/, 'the distress named the fatal signal');
  const d = disks(sb)[0]!;
  t.equal(d.holder, 'b', 'b holds the reservation');
  t.same(d.registered, ['b'], 'a\'s key is gone: its leftover app cannot write');
  await until('b serves the VIP (its app started and wrote its line)', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 60_000, 200);
  const fsLog = (await run('nsenter', ['-t', String(agents.b!.pid), '-m', 'cat', `${c.dir}/mnt/log`])).stdout;
  t.equal(fsLog, 'a\nb\n', 'the file system a wrote to is mounted on b');
});

// What must not cause a failover, and what must: a 3 s stall of the primary agent's event loop (a long GC,
// a stuck synchronous call) and a CPU saturated by other processes are survived without a false failover,
// because heartbeats come from the native thread and our own stalls are not counted against peers; an
// agent hung longer than its heartbeat lease falls silent, its heartbeat thread drops its service
// addresses, and it is failed over like a dead one.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { packageRoot } from '../../src/util/package-root.js';
import { createCluster, until, type Status, type TestCluster, settled } from '../support/cluster.js';

/** A unix datagram socket at `path`, as systemd's notify socket: the arrival times of WATCHDOG=1. */
async function notifyReceiver(t: { teardown(fn: () => unknown): void }, path: string): Promise<{ watchdog: number[] }> {
  const child = spawn('python3', ['-c', [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    "print('bound', flush=True)",
    'while True:',
    "    print(s.recv(4096).decode().replace('\\n', ' '), flush=True)",
  ].join('\n'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill());
  const watchdog: number[] = [];
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.on('line', (l) => { if (l.includes('WATCHDOG=1')) watchdog.push(performance.now()); });
  return { watchdog };
}

const peer = (s: Status, name: string) => s.peers.find((p) => p.peer === name);
const host = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag)?.host;

async function upAndServing(c: TestCluster): Promise<void> {
  c.start('a');
  c.start('b');
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 15_000);
  await settled(c, ['a', 'b']);
}

function noFailureNotices(s: Status): boolean {
  return !s.notices.some((n) => n.notice === 'primary-failed' || n.notice === 'split-brain');
}

t.test('a 3 s event-loop stall of the primary agent causes no failover on either side', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { debug: true });
  await upAndServing(c);
  await sleep(2500); // so that "alive since" tells an unbroken run from a failure and a recovery
  await c.request('a', 'debug.stall', { ms: 3000 });
  await sleep(3000 + 1500);
  const [sa, sb] = [await c.status('a'), await c.status('b')];
  // forMs is the time in the current state: a failure and recovery (recoverAfterMs 1000) would reset it.
  t.ok(peer(sb, 'a')?.state === 'alive' && peer(sb, 'a')!.forMs > 3000, `b never lost a (alive for ${peer(sb, 'a')?.forMs} ms)`);
  t.ok(peer(sa, 'b')?.state === 'alive' && peer(sa, 'b')!.forMs > 2000,
    `a, waking up, does not count its own stall against b (alive for ${peer(sa, 'b')?.forMs} liveness ms)`);
  t.equal(host(sb, 'web'), 'a', 'HOST is still a');
  t.ok(noFailureNotices(sa) && noFailureNotices(sb), 'no failure or split brain reported');
  t.equal(await c.probe(c.vip()), 'a', 'a still serves');
});

t.test('under the shipped unit\'s watchdog a 3 s stall is far from a kill; a watchdog kill (SIGKILL) restarts the agent, which rejoins instead of staying out', async (t) => {
  const unit = await readFile(join(packageRoot(), 'hw-fixtures/systemd/vigild.service'), 'utf8');
  const watchdogSec = Number(/^WatchdogSec=(\d+)s$/m.exec(unit)?.[1]);
  t.equal(/^WatchdogSignal=(\S+)$/m.exec(unit)?.[1], 'SIGKILL', 'the unit kills with SIGKILL, which no fatal-signal handler turns into distress');
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { debug: true });
  const pings = await notifyReceiver(t, join(c.dir, 'notify'));
  const agent = c.start('a', { env: { NOTIFY_SOCKET: join(c.dir, 'notify'), WATCHDOG_USEC: String(watchdogSec * 1_000_000) } });
  c.start('b');
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 15_000);
  await settled(c, ['a', 'b']);
  const from = performance.now();
  await c.request('a', 'debug.stall', { ms: 3000 });
  await sleep(3000 + 2500);
  // From the last ping before the stall was asked for, to the end.
  const before = pings.watchdog.filter((x) => x < from).at(-1);
  const times = [...(before === undefined ? [] : [before]), ...pings.watchdog.filter((x) => x >= from)];
  const gaps = times.slice(1).map((x, i) => x - times[i]!);
  const longest = Math.max(...gaps);
  t.comment(`WatchdogSec ${watchdogSec} s; pings across the stall ${times.length}, longest gap ${longest.toFixed(0)} ms`);
  t.ok(longest >= 2900, 'the stall did stop the pings');
  t.ok(longest < watchdogSec * 1000 / 2, 'the longest gap is far from WatchdogSec: systemd would not kill a 3 s stall');
  t.notMatch(c.log('a'), /WatchdogSec .* kills a stall/, 'no warning about the unit\'s timings');

  agent.kill('SIGKILL'); // what systemd's watchdog does now
  await new Promise((resolve) => agent.once('exit', resolve));
  c.start('a');
  await until('a rejoins: b hears it again', async () => (peer(await c.status('b'), 'a')?.state === 'alive' ? true : undefined), 20_000);
  const sa = await until('a answers', async () => (await c.status('a').catch(() => undefined)) as (Status & { out: unknown }) | undefined, 20_000);
  t.equal(sa.out, null, 'not out of the cluster: no stay-out record');
});

t.test('an agent hung longer than its lease is failed over like a dead node', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { timing: { agentLeaseMs: 1000 }, debug: true });
  await upAndServing(c);
  await c.request('a', 'debug.stall', { ms: 4000 });
  await until('b declares a failed and takes over', async () => (host(await c.status('b'), 'web') === 'b' ? true : undefined), 4000);
  t.pass('b took over while a was hung');
  await until('a, awake again, stands down', async () => {
    const w = (await c.status('a')).apps.find((x) => x.tag === 'web');
    return w?.host === 'b' && w.here?.app === 'down' ? true : undefined;
  }, 10_000);
  t.pass('a found HOST moved and stopped its copy');
  t.match(c.log('a'), /hung past its lease: the heartbeat thread removed the service addresses/, 'a\'s heartbeat thread had dropped its address, so b could take it');
});

t.test('CPU saturated on the primary by other processes: no false failover', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], { debug: true });
  await upAndServing(c);
  const hogs = [0, 1, 2, 3].map(() => c.rig.spawn('a', [process.execPath, '-e', 'for(;;){}']));
  await sleep(5000);
  for (const h of hogs) h.kill('SIGKILL');
  const [sa, sb] = [await c.status('a'), await c.status('b')];
  t.equal(host(sb, 'web'), 'a', 'HOST is still a');
  t.ok(noFailureNotices(sa) && noFailureNotices(sb), 'no failure reported while four busy loops ran on two CPUs');
});

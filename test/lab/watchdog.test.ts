// Watchdog self-fencing (src/daemon/watchdog.ts, native/watchdog_keeper.cc) against real watchdogs in the
// guest: QEMU's BMC (through /dev/ipmi0), softdog with soft_noboot=1, whose expiry is a kernel message
// instead of a reboot, and QEMU's ib700 card, whose expiry is a QMP event on the host (scripts/lab --ib700). A keeper process that is healthy never trips it, nor does a real agent under load
// (CPU hogs on every vCPU, a flood of control requests); one whose event loop wedges (the keeper thread
// alive, the agent's lease not renewed) or that is stopped (SIGSTOP) does, within lease + timeout; a clean
// stop disarms.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

import t from 'tap';

import { NodeWatchdog } from '../../src/daemon/watchdog.js';
import { disarmWatchdog, getWatchdogTimer } from '../../src/ipmi/commands.js';
import { LocalBmc } from '../../src/ipmi/local.js';
import { createCluster, until, type Status } from '../support/cluster.js';
import { lab } from '../support/lab.js';
import { moduleBeside } from '../support/paths.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function keeper(t: { teardown(fn: () => unknown): void }, args: string[], env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [moduleBeside(import.meta.url, '../support/watchdog-child'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGCONT'); child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the keeper exited ${code} before arming`)));
  });
  return child;
}

/** The QMP messages scripts/lab --ib700 has received so far, oldest first, each after the host's time in ms. */
async function qmpEvents(): Promise<string[]> {
  const dir = `${lab.run}/qmp`;
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  return Promise.all(names.map((n) => readFile(`${dir}/${n}`, 'utf8').then((l) => l.trim())));
}

/** The character device of the watchdog driver whose identity is `identity` (several may be loaded). */
async function watchdogDevice(identity: string): Promise<string> {
  for (const w of await readdir('/sys/class/watchdog')) {
    const id = await readFile(`/sys/class/watchdog/${w}/identity`, 'utf8').catch(() => '');
    if (id.trim() === identity) return `/dev/${w}`;
  }
  throw new Error(`no watchdog device "${identity}" in /sys/class/watchdog`);
}

async function bmcWatchdog() {
  const bmc = await LocalBmc.open({ path: lab.ipmi });
  try {
    return await getWatchdogTimer(bmc);
  } finally {
    await bmc.close();
  }
}

t.afterEach(async () => {
  const bmc = await LocalBmc.open({ path: lab.ipmi });
  await disarmWatchdog(bmc).catch(() => {});
  await bmc.close();
});

// QEMU's BMC runs its watchdog only with an action (with "none" it never starts), so the BMC case is the
// healthy one, armed to reset with a margin a TCG guest's stalls cannot eat (lease 3 s, timeout 10 s):
// it must never fire, and a clean stop must disarm it. The expiries are softdog's (below), whose
// soft_noboot=1 makes them a kernel message; the BMC's expiry is the destructive case, not run here.
t.test('the BMC watchdog: a healthy keeper holds it off past its timeout; a clean stop disarms it', async (t) => {
  const child = await keeper(t, ['ipmi', '10000', 'reset', '3000']);
  // QEMU's BMC leaves Get Watchdog Timer's "running" bit clear: its countdown (0 when stopped) tells.
  const armed = await bmcWatchdog();
  t.ok(armed.presentMs > 0, 'armed at start: counting');
  t.equal(armed.action, 'reset');
  t.equal(armed.initialMs, 10_000);
  await sleep(12_000);
  const still = await bmcWatchdog();
  t.ok(still.presentMs > 5000, `still running after 12 s, tickled: ${still.presentMs} ms left of 10000`);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  const stopped = await bmcWatchdog();
  t.equal(stopped.presentMs, 0, 'disarmed by the clean stop');
  t.equal(stopped.expiredSmsOs, false);
});

// vigild itself, with the BMC's watchdog (10 s, reset) in a two-node cluster serving a disk-less app, for
// three timeouts under load: a CPU hog per vCPU at the agents' priority and a flood of control requests.
// Its lease must never lapse (no tickle withheld) and the BMC's countdown never run out; the agent read
// the countdown back after arming and trusts it; its clean stop disarms it.
t.test('a healthy agent under load: its BMC watchdog is kept, never withheld, and disarmed by its clean stop', async (t) => {
  const TIMING = { heartbeatIntervalMs: 200, failAfterMs: 2000, recoverAfterMs: 2000, failbackDwellMs: 60_000 };
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], {
    timing: TIMING, extra: (node) => (node === 'a' ? ['watchdog: { device: ipmi, timeoutMs: 10000, action: reset }'] : []),
  });
  const a = c.start('a');
  c.start('b');
  await until('a serves the VIP', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 120_000, 500);
  const watchdogOf = async () => (await c.status('a')) as Status & { watchdog: { armed: boolean; resets: boolean; countdown?: { counts: boolean; why: string }; tickles: number; withheld: number; tickleErrors: number } };
  const before = (await watchdogOf()).watchdog;
  t.equal(before.countdown?.counts, true, `the agent read the BMC's countdown back after arming: ${before.countdown?.why}`);
  t.equal(before.resets, true);

  const hogs = [0, 1].map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  t.teardown(() => { for (const h of hogs) h.kill('SIGKILL'); });
  const LOAD_MS = 30_000;
  const end = Date.now() + LOAD_MS;
  let requests = 0;
  let lowest = Infinity;
  const flood = Array.from({ length: 4 }, async () => {
    while (Date.now() < end) {
      await c.status('a').then(() => { requests++; }, () => {});
    }
  });
  const bmc = await LocalBmc.open({ path: lab.ipmi });
  while (Date.now() < end) {
    lowest = Math.min(lowest, (await getWatchdogTimer(bmc)).presentMs);
    await sleep(250);
  }
  await bmc.close();
  await Promise.all(flood);
  for (const h of hogs) h.kill('SIGKILL');
  const after = (await watchdogOf()).watchdog;
  t.comment(`${LOAD_MS / 1000} s under load: ${requests} status requests answered, ${after.tickles - before.tickles} tickles, the countdown never below ${lowest} ms of 10000`);
  t.ok(lowest > 0, 'the countdown never ran out');
  t.equal(after.withheld, 0, 'no tickle withheld: the lease never lapsed');
  t.equal(after.tickleErrors, 0);
  t.ok(after.tickles - before.tickles >= LOAD_MS / 2500 - 2, 'tickled all along (four per timeout)');

  const exited = new Promise((r) => a.once('exit', r));
  a.kill('SIGTERM');
  await exited;
  t.equal((await bmcWatchdog()).presentMs, 0, 'the clean stop disarmed it');
});

t.test('/dev/watchdog (softdog, soft_noboot=1): kept, then the wedged keeper lets it fire (a kernel message, no reboot)', async (t) => {
  await run('modprobe', ['softdog', 'soft_noboot=1', 'soft_margin=3']);
  t.teardown(() => run('rmmod', ['softdog']).catch(() => {}));
  await run('dmesg', ['-C']);
  await keeper(t, [await watchdogDevice('Software Watchdog'), '3000', 'reset', '1000'], { VIGIL_HANG_AFTER_MS: '4000' });
  await sleep(4000);
  t.notMatch((await run('dmesg')).stdout, /softdog: Triggered/, 'kept for 4 s: not fired');
  await sleep(1000 + 3000 + 1500);
  t.match((await run('dmesg')).stdout, /softdog: Triggered/, 'fired once the keeper wedged');
});

t.test('/dev/watchdog (softdog, soft_noboot=1): a stopped keeper (SIGSTOP, its thread too) lets it fire', async (t) => {
  await run('modprobe', ['softdog', 'soft_noboot=1', 'soft_margin=3']);
  t.teardown(() => run('rmmod', ['softdog']).catch(() => {}));
  await run('dmesg', ['-C']);
  const child = await keeper(t, [await watchdogDevice('Software Watchdog'), '3000', 'reset', '1000']);
  await sleep(1000);
  child.kill('SIGSTOP');
  await sleep(3000 + 2000);
  t.match((await run('dmesg')).stdout, /softdog: Triggered/, 'fired');
});


// QEMU's emulated ISA watchdog card (ib700wdt), run with -action watchdog=none: its expiry resets nothing
// and reaches the host as a QMP WATCHDOG event, which scripts/lab --ib700 appends to the run directory's
// qmp/ (a file per message, prefixed with the host's time in ms). A real device's expiry, seen from outside
// the guest, without ending it: kept while the keeper is healthy, fired once its event loop wedges.
t.test('ib700 (an emulated watchdog card, its expiry a QMP event on the host): kept, then fired once the keeper wedges', async (t) => {
  const events = () => qmpEvents().then((lines) => lines.filter((l) => l.includes('"WATCHDOG"')));
  const before = (await events()).length;
  await keeper(t, [lab.ib700, '3000', 'reset', '1000'], { VIGIL_HANG_AFTER_MS: '6000' });
  await sleep(6000);
  t.equal((await events()).length, before, 'kept for 6 s (twice its timeout): no WATCHDOG event');
  await sleep(1000 + 3000 + 3000);
  const fired = (await events()).slice(before);
  t.ok(fired.length >= 1, `fired once the keeper wedged: ${fired[0] ?? 'no event'}`);
  t.match(fired[0] ?? '', /"action": ?"none"/, 'reported, nothing done (-action watchdog=none)');
});

// What the ib700 driver takes of a timeout: 0 to 30 s, kept whole; anything longer is refused (EINVAL) and
// it keeps the one it had. The agent tells peers the timeout the driver runs at, and refuses one shorter
// than configured, disarming the card.
t.test('ib700: the agent tells peers the timeout the driver runs at, and refuses a card that runs shorter than configured', async (t) => {
  const said: string[] = [];
  const log = { info: () => {}, warn: (_: object, m: string) => void said.push(m), error: (_: object, m: string) => void said.push(m) };
  const base = { device: lab.ib700, action: 'reset', vouchTimeout: false } as const;
  const rounded = new NodeWatchdog({ ...base, timeoutMs: 2500 }, 1000, log);
  await rounded.start();
  t.equal(rounded.snapshot()?.timeoutMs, 3000, 'asked 2.5 s, the driver runs 3 s: 3 s is what peers are told');
  t.match(said.join('\n'), /runs it at 3 s, longer than watchdog.timeoutMs 2500/, 'and it says so in the log');
  await rounded.stop();

  const before = (await qmpEvents()).filter((l) => l.includes('"WATCHDOG"')).length;
  const tooLong = new NodeWatchdog({ ...base, timeoutMs: 40_000 }, 1000, log);
  await t.rejects(tooLong.start(), /refused a 40 s timeout \(errno 22\); it runs at 3 s, shorter than watchdog.timeoutMs 40000/);
  await sleep(3000 + 3000);
  t.equal((await qmpEvents()).filter((l) => l.includes('"WATCHDOG"')).length, before, 'refused, the card was disarmed: no WATCHDOG event after twice its timeout');
});

// Watchdog self-fencing (src/daemon/watchdog.ts, native/watchdog_keeper.cc) against real watchdogs in the
// guest: QEMU's BMC (through /dev/ipmi0) with the action "none", whose expiry is read back from the BMC
// (Get Watchdog Timer's expiration flag) while the VM goes on, and softdog with soft_noboot=1, whose expiry
// is a kernel message instead of a reboot. A keeper process that is healthy never trips it; one whose event
// loop wedges (the keeper thread alive, the agent's lease not renewed) or that is stopped (SIGSTOP) does,
// within lease + timeout; a clean stop disarms.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { disarmWatchdog, getWatchdogTimer } from '../../src/ipmi/commands.js';
import { LocalBmc } from '../../src/ipmi/local.js';
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

t.test('the BMC watchdog: a healthy keeper holds it off well past its timeout; a clean stop disarms it', async (t) => {
  const child = await keeper(t, ['ipmi', '3000', 'none', '1000']);
  const armed = await bmcWatchdog();
  t.equal(armed.running, true, 'armed at start');
  t.equal(armed.initialMs, 3000);
  await sleep(8000);
  const still = await bmcWatchdog();
  t.equal(still.running, true, 'still running after 8 s');
  t.equal(still.expiredSmsOs, false, 'never expired');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  const stopped = await bmcWatchdog();
  t.equal(stopped.running, false, 'disarmed by the clean stop');
  t.equal(stopped.expiredSmsOs, false);
});

t.test('the BMC watchdog: a wedged event loop stops the tickles (the thread lives on); it expires within lease + timeout', async (t) => {
  await keeper(t, ['ipmi', '3000', 'none', '1000'], { VIGIL_HANG_AFTER_MS: '1000' });
  await sleep(1000 + 1000 + 3000 + 1500);
  const w = await bmcWatchdog();
  t.equal(w.expiredSmsOs, true, 'expired');
  t.equal(w.running, false);
});

t.test('the BMC watchdog: a stopped agent (SIGSTOP) does not tickle it; it expires', async (t) => {
  const child = await keeper(t, ['ipmi', '3000', 'none', '1000']);
  await sleep(500);
  child.kill('SIGSTOP');
  await sleep(3000 + 1500);
  const w = await bmcWatchdog();
  t.equal(w.expiredSmsOs, true);
});

t.test('/dev/watchdog (softdog, soft_noboot=1): kept, then the wedged keeper lets it fire (a kernel message, no reboot)', async (t) => {
  await run('modprobe', ['softdog', 'soft_noboot=1', 'soft_margin=3']);
  t.teardown(() => run('rmmod', ['softdog']).catch(() => {}));
  await run('dmesg', ['-C']);
  await keeper(t, ['/dev/watchdog', '3000', 'reset', '1000'], { VIGIL_HANG_AFTER_MS: '4000' });
  await sleep(4000);
  t.notMatch((await run('dmesg')).stdout, /softdog: Triggered/, 'kept for 4 s: not fired');
  await sleep(1000 + 3000 + 1500);
  t.match((await run('dmesg')).stdout, /softdog: Triggered/, 'fired once the keeper wedged');
});

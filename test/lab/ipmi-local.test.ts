// The local BMC binding (native/ipmi_device.cc) against a real /dev/ipmi0: the guest kernel's ipmi_si and
// ipmi_devintf in front of QEMU's BMC (ipmi-bmc-sim behind a KCS interface). ipmitool's `open` interface,
// an independent client of the same device, is the reference.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { getChassisStatus, getDeviceId, getWatchdogTimer, resetWatchdogTimer, setWatchdogTimer, disarmWatchdog } from '../../src/ipmi/commands.js';
import { IpmiDeviceError } from '../../src/ipmi/errors.js';
import { LocalBmc } from '../../src/ipmi/local.js';
import { runCli } from '../support/cli.js';
import { lab } from '../support/lab.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('Get Device ID through the addon agrees with ipmitool -I open', async (t) => {
  const bmc = await LocalBmc.open({ path: lab.ipmi });
  t.teardown(() => bmc.close());
  const id = await getDeviceId(bmc);
  const { stdout } = await run('ipmitool', ['-I', 'open', 'mc', 'info']);
  t.match(stdout, new RegExp(`Firmware Revision\\s+: ${id.firmware.replace('.', '\\.')}\\n`), `firmware ${id.firmware}`);
  t.match(stdout, new RegExp(`Manufacturer ID\\s+: ${id.manufacturerId}\\n`));
  t.match(stdout, new RegExp(`IPMI Version\\s+: ${id.ipmiVersion.replace('.', '\\.')}\\n`));
  t.equal((await getChassisStatus(bmc)).power, 'on');
});

t.test('fifty requests in flight at once: every answer matched to its own request, no stray', async (t) => {
  const bmc = await LocalBmc.open({ path: lab.ipmi });
  t.teardown(() => bmc.close());
  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? getDeviceId(bmc) : getChassisStatus(bmc))));
  const ms = performance.now() - started;
  t.ok(answers.every((a, i) => (i % 2 ? 'firmware' in a : 'power' in a)), 'each answer is of its own command');
  t.equal(bmc.strays, 0);
  t.comment(`50 requests in ${ms.toFixed(1)} ms`);
});

// QEMU's BMC runs its watchdog only with an action (with "none" it never starts: do_watchdog_reset), so
// this one is armed to reset, with a long timeout, and disarmed at once: a failure here resets the guest.
// QEMU's BMC does not set Get Watchdog Timer's "running" bit (byte 1 bit 6); its present countdown, 0
// while stopped, says whether it runs.
t.test('the watchdog: armed, it counts down; reset restarts it; disarmed, it stops', async (t) => {
  const bmc = await LocalBmc.open({ path: lab.ipmi });
  t.teardown(async () => { await disarmWatchdog(bmc).catch(() => {}); await bmc.close(); });
  await setWatchdogTimer(bmc, { action: 'reset', timeoutMs: 60_000 });
  await resetWatchdogTimer(bmc);
  const first = await getWatchdogTimer(bmc);
  t.ok(first.presentMs > 0, 'running: counting');
  t.equal(first.action, 'reset');
  t.equal(first.initialMs, 60_000);
  await sleep(1200);
  const later = await getWatchdogTimer(bmc);
  t.ok(later.presentMs < first.presentMs, `counting down: ${first.presentMs} → ${later.presentMs} ms`);
  await resetWatchdogTimer(bmc);
  t.ok((await getWatchdogTimer(bmc)).presentMs > later.presentMs, 'reset restarts the countdown');
  await disarmWatchdog(bmc);
  const off = await getWatchdogTimer(bmc);
  t.equal(off.presentMs, 0, 'stopped');
  t.equal(off.expiredSmsOs, false);
});

t.test('vigil ipmi info and power status, local: the JSON the issue names', async (t) => {
  const info = await runCli('vigil', ['--json', 'ipmi', 'info']);
  t.equal(info.code, 0, info.stderr);
  t.same(Object.keys(JSON.parse(info.stdout) as object).sort(), ['deviceId', 'firmware', 'ipmiVersion', 'manufacturerId', 'productId']);
  const power = await runCli('vigil', ['--json', 'ipmi', 'power', 'status']);
  t.same(JSON.parse(power.stdout), { power: 'on' });
});

t.test('a path that is not an IPMI device: one clear error', async (t) => {
  await t.rejects(LocalBmc.open({ path: '/dev/ipmi9' }), IpmiDeviceError);
  await t.rejects(LocalBmc.open({ path: '/dev/ipmi9' }), { message: /\/dev\/ipmi9: cannot open: no such file/ });
});

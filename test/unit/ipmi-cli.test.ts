// `vigil ipmi` against a real BMC (ipmi_sim): the JSON the issue names, ipmitool's agreement, and one clear
// line with its documented exit code for each kind of bad input.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { Exit } from '../../src/cli/exit-codes.js';
import { runCli } from '../support/cli.js';
import { IpmiSim, ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { freeUdpPorts } from '../support/udp-ports.js';

if (ipmiSimUnavailable()) {
  t.fail(`ipmi_sim cannot run here: ${ipmiSimUnavailable()}`);
} else {
  const sim = await IpmiSim.start();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-ipmi-cli-'));
  t.teardown(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const pw = join(dir, 'password');
  await writeFile(pw, 'secret\n', { mode: 0o600 });
  const remote = (o: { port?: number; file?: string } = {}) => ['--host', '127.0.0.1', '--port', String(o.port ?? sim.port), '--user', 'admin', '--password-file', o.file ?? pw, '--cipher', '3'];

  t.test('info --json: the fields the issue names, as ipmitool reads them', async (t) => {
    const r = await runCli('vigil', ['--json', 'ipmi', 'info', ...remote()]);
    t.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as Record<string, unknown>;
    t.same(Object.keys(info).sort(), ['deviceId', 'firmware', 'ipmiVersion', 'manufacturerId', 'productId']);
    const ref = (await sim.ipmitool(['mc', 'info'])).stdout;
    t.match(ref, new RegExp(`Firmware Revision\\s+: ${String(info.firmware).replace('.', '\\.')}\\n`));
    t.match(ref, new RegExp(`Manufacturer ID\\s+: ${info.manufacturerId}\\n`));
    t.equal(info.ipmiVersion, '2.0');
  });

  t.test('power off, then status: {"power": "off"}, as ipmitool says; on again', async (t) => {
    t.equal((await runCli('vigil', ['ipmi', 'power', 'off', ...remote()])).code, 0);
    const s = await runCli('vigil', ['--json', 'ipmi', 'power', 'status', ...remote()]);
    t.same(JSON.parse(s.stdout), { power: 'off' });
    t.match((await sim.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is off/);
    t.equal((await runCli('vigil', ['ipmi', 'power', 'on', ...remote()])).code, 0);
    t.equal(await sim.power(), 'on');
  });

  t.test('sel: each entry a line, a pre-init time said so, a watchdog expiry named by what it did', async (t) => {
    const r = await runCli('vigil', ['ipmi', 'sel', ...remote()]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /\n0001  pre-init \+\d+ s  Watchdog 2 #129 assertion: hard reset \(data 01 ff ff\)\n/);
    t.match(r.stdout, /\n0002  pre-init \+\d+ s  Watchdog 2 #129 deassertion: hard reset/);
    t.match(r.stdout, /\n0003  pre-init \+\d+ s  sensor type 0x1 #48 assertion \(data 59 50 4b\)/);
    const last = await runCli('vigil', ['--json', 'ipmi', 'sel', '--last', '1', ...remote()]);
    t.match(JSON.parse(last.stdout), { entries: [{ id: 3, sensorType: 1 }] });
  });

  t.test('a wrong password: one line, exit 31, and the chassis untouched', async (t) => {
    const bad = join(dir, 'wrong');
    await writeFile(bad, 'not-it\n', { mode: 0o600 });
    const r = await runCli('vigil', ['ipmi', 'power', 'off', ...remote({ file: bad })]);
    t.equal(r.code, Exit.IPMI_AUTH);
    t.match(r.stderr, /^vigil: BMC 127\.0\.0\.1:\d+: wrong password for user 'admin'/);
    t.equal(r.stderr.trim().split('\n').length, 1);
    t.equal(await sim.power(), 'on');
  });

  t.test('a password file others can read is refused before anything is sent: exit 15', async (t) => {
    const open = join(dir, 'open');
    await writeFile(open, 'secret\n');
    await chmod(open, 0o644);
    const r = await runCli('vigil', ['ipmi', 'info', ...remote({ file: open })]);
    t.equal(r.code, Exit.FILE_ERROR);
    t.match(r.stderr, /mode 0644 lets other users read or write it; chmod 600/);
  });

  t.test('no BMC at the address: a timeout, exit 33', async (t) => {
    const [port] = await freeUdpPorts(1);
    const r = await runCli('vigil', ['ipmi', 'info', ...remote({ port: port! }), '--timeout', '300']);
    t.equal(r.code, Exit.TIMEOUT);
    t.match(r.stderr, /no answer to Get Channel Authentication Capabilities/);
  });

  t.test('usage: a password on the command line is not offered; remote options need --host', async (t) => {
    const r1 = await runCli('vigil', ['ipmi', 'info', '--host', '127.0.0.1', '--user', 'admin']);
    t.equal(r1.code, Exit.USAGE);
    t.match(r1.stderr, /--host needs --password-file/);
    const r2 = await runCli('vigil', ['ipmi', 'info', '--user', 'admin']);
    t.equal(r2.code, Exit.USAGE);
    t.match(r2.stderr, /--user is for a remote BMC: give --host too/);
    const r3 = await runCli('vigil', ['ipmi', 'power', 'sideways', ...remote()]);
    t.equal(r3.code, Exit.USAGE);
  });
}

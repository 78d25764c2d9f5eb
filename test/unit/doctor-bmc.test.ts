// `vigil doctor`'s BMC check against a real BMC (ipmi_sim over RMCP+): a BMC that answers gives its power
// state, a node powered off WARNs, and a BMC that refuses the login WARNs that its node cannot be fenced.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { runDoctor } from '../../src/doctor/doctor.js';
import { IpmiSim, ipmiSimUnavailable } from '../support/ipmi-sim.js';

if (ipmiSimUnavailable()) {
  t.fail(`ipmi_sim cannot run here: ${ipmiSimUnavailable()}`);
} else {
  const sim = await IpmiSim.start();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-doctor-bmc-'));
  t.teardown(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, 'key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'pw'), 'secret\n', { mode: 0o600 });
  await writeFile(join(dir, 'wrong'), 'not-it\n', { mode: 0o600 });
  const config = async (pw: string) => {
    const file = join(dir, `${pw}.yaml`);
    await writeFile(file, [
      'cluster: c1', `keyFile: ${join(dir, 'key')}`, `stateDir: ${join(dir, 'state')}`, `control: { socket: ${join(dir, 'ctl.sock')} }`,
      'networks: [{ name: lan1, port: 7400 }, { name: lan2, port: 7410 }]',
      'nodes:',
      '  - { name: a, id: 1, addresses: { lan1: 192.0.2.1, lan2: 198.51.100.1 } }',
      `  - { name: b, id: 2, addresses: { lan1: 192.0.2.2, lan2: 198.51.100.2 }, bmc: { host: 127.0.0.1, port: ${sim.port}, user: admin, passwordFile: ${join(dir, pw)}, cipherSuite: 3 } }`,
    ].join('\n'));
    return file;
  };
  const bmcCheck = async (pw: string) => (await runDoctor({ config: await config(pw), node: 'a', agentTimeoutMs: 500 })).checks.find((c) => c.id === 'bmc.b');

  t.test('a BMC that answers: OK with its power state', async (t) => {
    t.match(await bmcCheck('pw'), { verdict: 'OK', summary: `b's BMC at 127.0.0.1:${sim.port} answers: power on`, detail: { power: 'on', error: null } });
  });

  t.test('the node powered off: WARN, power it on when it should rejoin', async (t) => {
    await sim.setPower(false);
    t.teardown(() => sim.setPower(true));
    t.match(await bmcCheck('pw'), { verdict: 'WARN', summary: /answers: power off/, fix: /b is off: power it on/ });
  });

  t.test('a BMC that refuses the login: WARN, the node cannot be power-fenced', async (t) => {
    t.match(await bmcCheck('wrong'), { verdict: 'WARN', summary: /b's BMC at 127\.0\.0\.1:\d+ cannot be asked: .*password/, fix: /until it answers, b cannot be power-fenced/ });
  });
}

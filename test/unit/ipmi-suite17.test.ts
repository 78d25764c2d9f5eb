// Cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128). No open BMC here speaks it, so
// interoperability is shown with ipmitool (an independent implementation) as the client of a test BMC built
// on vigil's packet and crypto modules (test/support/test-bmc.ts): if ipmitool opens a session, its
// requests pass the BMC's integrity checks and its answers pass ipmitool's, both directions of the
// SHA-256 code agree with ipmitool's. vigil's own client is then run against the same BMC.
import { spawn } from 'node:child_process';

import t from 'tap';

import { chassisControl, getChassisStatus, getDeviceId } from '../../src/ipmi/commands.js';
import { LanSession } from '../../src/ipmi/lan-session.js';
import { IPMITOOL, ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { TestBmc } from '../support/test-bmc.js';

function ipmitool(port: number, args: string[], cipher = 17, password = 'secret'): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(IPMITOOL, ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-P', password, '-C', String(cipher), '-N', '1', '-R', '1', ...args]);
    let out = '';
    p.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    p.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

if (ipmiSimUnavailable()) {
  t.fail(`ipmitool cannot run here: ${ipmiSimUnavailable()}`);
} else {
  const bmc = await TestBmc.start();
  t.teardown(() => bmc.close());

  for (const cipher of [17, 3]) {
    t.test(`ipmitool opens a suite ${cipher} session with the test BMC and switches its power`, async (t) => {
      bmc.power = 'on';
      const status = await ipmitool(bmc.port, ['chassis', 'power', 'status'], cipher);
      t.equal(status.code, 0, status.out);
      t.match(status.out, /Chassis Power is on/);
      const off = await ipmitool(bmc.port, ['chassis', 'power', 'off'], cipher);
      t.equal(off.code, 0, off.out);
      t.equal(bmc.power, 'off');
      t.match((await ipmitool(bmc.port, ['chassis', 'power', 'status'], cipher)).out, /Chassis Power is off/);
    });
  }

  t.test('ipmitool with the wrong password is refused by the test BMC (the SHA-256 RAKP codes really are checked)', async (t) => {
    const before = bmc.actions.length;
    const r = await ipmitool(bmc.port, ['chassis', 'power', 'on'], 17, 'wrong');
    t.not(r.code, 0, r.out);
    t.equal(bmc.actions.length, before, 'no action reached the chassis');
  });

  t.test("vigil's client speaks suite 17 with the same BMC, and agrees with ipmitool on device ID and power", async (t) => {
    const s = await LanSession.open({ host: '127.0.0.1', port: bmc.port, user: 'admin', password: Buffer.from('secret'), cipherSuite: 17, timeoutMs: 2000 });
    t.teardown(() => s.close());
    bmc.power = 'on';
    const id = await getDeviceId(s);
    const info = (await ipmitool(bmc.port, ['mc', 'info'])).out;
    t.match(info, new RegExp(`Firmware Revision\\s+: ${id.firmware.replace('.', '\\.')}\\n`));
    t.match(info, new RegExp(`Manufacturer ID\\s+: ${id.manufacturerId}\\n`));
    await chassisControl(s, 'off');
    t.equal((await getChassisStatus(s)).power, 'off');
    t.match((await ipmitool(bmc.port, ['chassis', 'power', 'status'])).out, /Chassis Power is off/);
    t.equal(s.dropped, 0);
  });

  t.test('a BMC slower than the retransmission: RAKP 1 resent draws a new random, the set-up starts again with a longer wait, and succeeds', async (t) => {
    bmc.rakp2DelayMs = 150;
    t.teardown(() => { bmc.rakp2DelayMs = 0; });
    const s = await LanSession.open({ host: '127.0.0.1', port: bmc.port, user: 'admin', password: Buffer.from('secret'), cipherSuite: 17, timeoutMs: 5000, retransmitMs: 100 });
    t.teardown(() => s.close());
    t.equal((await getChassisStatus(s)).power, bmc.power);
  });
}

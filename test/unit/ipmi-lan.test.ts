// The RMCP+ client against a real BMC: OpenIPMI's ipmi_sim (suite 3), with ipmitool, an independent
// client, as the reference for what the BMC says.
import t from 'tap';

import { chassisControl, getChassisStatus, getDeviceId, readSel, getSelInfo } from '../../src/ipmi/commands.js';
import { IpmiCompletionError, IpmiTimeoutError } from '../../src/ipmi/errors.js';
import { LanSession, type LanOptions } from '../../src/ipmi/lan-session.js';
import { BMC_PASSWORD, BMC_USER, IpmiSim, ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { freeUdpPorts } from '../support/udp-ports.js';

const unavailable = ipmiSimUnavailable();
if (unavailable) {
  t.fail(`ipmi_sim cannot run here: ${unavailable}`);
} else {
  const sim = await IpmiSim.start({ users: [['viewer', 'lookonly', 'user']] });
  t.teardown(() => sim.stop());
  const options = (o: Partial<LanOptions> = {}): LanOptions => ({
    host: sim.address, port: sim.port, user: BMC_USER, password: Buffer.from(BMC_PASSWORD), cipherSuite: 3, timeoutMs: 2000, retransmitMs: 200, ...o,
  });

  t.test('device ID and chassis power agree with ipmitool, and power off/on reaches the chassis', async (t) => {
    const s = await LanSession.open(options());
    t.teardown(() => s.close());
    const id = await getDeviceId(s);
    const info = (await sim.ipmitool(['mc', 'info'])).stdout;
    t.match(info, new RegExp(`Firmware Revision\\s+: ${id.firmware.replace('.', '\\.')}\\n`), `firmware ${id.firmware}`);
    t.match(info, new RegExp(`Manufacturer ID\\s+: ${id.manufacturerId}\\n`));
    t.match(info, new RegExp(`Product ID\\s+: ${id.productId} `));
    t.match(info, new RegExp(`IPMI Version\\s+: ${id.ipmiVersion.replace('.', '\\.')}\\n`));
    t.equal((await getChassisStatus(s)).power, 'on');
    await chassisControl(s, 'off');
    t.equal(await sim.power(), 'off', 'the chassis hook was told power 0');
    t.equal((await getChassisStatus(s)).power, 'off');
    t.match((await sim.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is off/);
    await chassisControl(s, 'on');
    t.equal((await getChassisStatus(s)).power, 'on');
    t.match((await sim.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is on/);
    t.same(await sim.actions(), ['power 0', 'power 1']);
  });

  t.test('many requests on one session: sequence numbers and request matching hold', async (t) => {
    const s = await LanSession.open(options());
    t.teardown(() => s.close());
    const all = await Promise.all(Array.from({ length: 30 }, () => getChassisStatus(s)));
    t.ok(all.every((c) => c.power === 'on'));
    t.equal(s.dropped, 0, 'no answer was dropped');
  });

  t.test('the SEL: its entry count agrees with ipmitool', async (t) => {
    const s = await LanSession.open(options());
    t.teardown(() => s.close());
    const info = await getSelInfo(s);
    const text = (await sim.ipmitool(['sel', 'info'])).stdout;
    t.match(text, new RegExp(`Entries\\s+: ${info.entries}\\n`));
    t.equal((await readSel(s)).length, info.entries);
  });

  t.test('the SEL: each entry decoded as ipmitool decodes it (id, sensor type and number, direction, a pre-init time)', async (t) => {
    const s = await LanSession.open(options());
    t.teardown(() => s.close());
    const ours = await readSel(s);
    // "   1 |  Pre-Init  |0000014305| Watchdog2 #0x81 | Hard reset | Asserted"
    const theirs = (await sim.ipmitool(['sel', 'list'])).stdout.split('\n').filter((l) => l.includes('|')).map((l) => l.split('|').map((f) => f.trim()));
    t.equal(ours.length, 3, 'the three entries of hw-fixtures/ipmi/bmc.emu');
    t.equal(theirs.length, ours.length);
    const typeName: Record<number, string> = { 0x23: 'Watchdog2', 0x01: 'Temperature' };
    ours.forEach((e, i) => {
      const [id, date, , sensor, , direction] = theirs[i]!;
      t.equal(e.id, parseInt(id!, 16), `entry ${id}: id`);
      t.equal(`${typeName[e.sensorType!]} #0x${e.sensorNumber!.toString(16)}`, sensor, `entry ${id}: sensor`);
      t.equal(e.eventDirection === 'assertion' ? 'Asserted' : 'Deasserted', direction, `entry ${id}: direction`);
      t.equal(date, 'Pre-Init', 'ipmi_sim stamps its entries with its time since start');
      t.ok(e.timestamp !== undefined && e.timestamp <= 0x20000000, 'a pre-init time to us too');
    });
    t.same(ours[0]!.eventData, [0x01, 0xff, 0xff], 'the watchdog 2 offset 1: hard reset');
  });

  t.test('a wrong password is refused with a line that says so, and nothing is done', async (t) => {
    await t.rejects(LanSession.open(options({ password: Buffer.from('not the secret') })), { name: 'IpmiAuthError', message: /wrong password for user 'admin'/ });
  });

  t.test('an unknown user is refused by the BMC', async (t) => {
    await t.rejects(LanSession.open(options({ user: 'nobody' })), { name: 'IpmiAuthError', message: /refused user 'nobody': unauthorized name/ });
  });

  t.test('a user session can read but not switch the power: a command error, not a transport one', async (t) => {
    const s = await LanSession.open(options({ user: 'viewer', password: Buffer.from('lookonly'), privilege: 2 }));
    t.teardown(() => s.close());
    t.equal((await getChassisStatus(s)).power, 'on');
    const err = await chassisControl(s, 'off').then(() => undefined, (e: unknown) => e);
    t.type(err, IpmiCompletionError);
    t.equal((err as IpmiCompletionError).transport, false);
    t.equal(await sim.power(), 'on');
  });

  t.test('no BMC at the address: a timeout within the deadline', async (t) => {
    const [port] = await freeUdpPorts(1);
    const start = Date.now();
    await t.rejects(LanSession.open(options({ port: port!, timeoutMs: 600 })), IpmiTimeoutError);
    const took = Date.now() - start;
    t.ok(took >= 590 && took < 1500, `gave up after ${took} ms`);
  });

  t.test('suite 17 against a BMC without SHA-256: a clear error that names suite 3', async (t) => {
    await t.rejects(LanSession.open(options({ cipherSuite: 17, timeoutMs: 800 })), { name: 'IpmiAuthError', message: /invalid authentication algorithm \(cipher suite 17; a BMC without SHA-256 needs cipher suite 3\)/ });
  });

  t.test('a BMC that hangs mid-session: the request times out; once it answers again, so does the session', async (t) => {
    const s = await LanSession.open(options());
    t.teardown(() => s.close());
    sim.freeze();
    await t.rejects(getChassisStatus(s, 500), IpmiTimeoutError);
    sim.thaw();
    t.equal((await getChassisStatus(s)).power, 'on');
  });
}

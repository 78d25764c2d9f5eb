// SCSI-2 takeover against LIO, two tcm_loop nexuses (servers A and B) to one unit: A reserves with
// RESERVE(6), B's RESERVE conflicts; B resets the logical unit (SG_SCSI_RESET through vigil's device thread)
// and reserves; A's next command gets UNIT ATTENTION 06/29/03 once, then RESERVATION CONFLICT. Also: a
// target reset breaks it too on this kernel, the holder's own RESERVE is GOOD (what the agent's check relies
// on), the takeover loop of src/daemon/scsi2.ts on the real unit, and a reset without CAP_SYS_ADMIN is
// refused with EACCES named.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import t from 'tap';

import { takeOverScsi2 } from '../../src/daemon/scsi2.js';
import type { ScsiDevice } from '../../src/scsi/device.js';
import { ReservationConflictError, TransportError, UnitAttentionError } from '../../src/scsi/errors.js';
import { drainUnitAttentions, lab, open, resetUnit } from '../support/lab.js';

const block = Buffer.alloc(512, 0x5a);

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof ReservationConflictError) return 'conflict';
    if (e instanceof UnitAttentionError) return `unit attention ${e.sense?.code}`;
    throw e;
  }
}

const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;

t.beforeEach(() => resetUnit(lab.a, lab.b));
t.after(() => resetUnit(lab.a, lab.b));

t.test('B breaks A\'s RESERVE(6) with a LUN reset and reserves; A sees 06/29/03 once, then RESERVATION CONFLICT', async (t) => {
  const a = await open(lab.a); // no unit attention retries: A reports exactly what the unit says
  const b = await open(lab.b);
  t.teardown(() => { a.close(); b.close(); });
  await a.reserve6();
  t.equal(await outcome(a.write16(8n, block, 512)), 'ok', 'A holds the unit and writes');
  t.equal(await outcome(b.reserve6()), 'conflict', 'B\'s RESERVE(6) conflicts');

  const timing = await b.reset('lun');
  t.comment(`LOGICAL UNIT RESET through tcm_loop: ioctl ${ms(timing.ioctlUs)} (queue ${ms(timing.waitUs)}, delivery ${ms(timing.deliverUs)})`);
  t.equal(await outcome(b.reserve6()), 'unit attention 06/29/03', 'B\'s own nexus gets the reset unit attention too (not executed)');
  t.equal(await outcome(b.reserve6()), 'ok', 'then B\'s RESERVE(6) is GOOD: the reset released A\'s reservation');
  t.equal(await outcome(b.write16(8n, block, 512)), 'ok', 'B writes');

  const first = await a.write16(8n, block, 512).catch((e: unknown) => e);
  t.type(first, UnitAttentionError, 'A\'s first command after the reset: UNIT ATTENTION');
  const sense = (first as UnitAttentionError).sense!;
  t.equal(sense.code, '06/29/03', 'BUS DEVICE RESET FUNCTION OCCURRED');
  t.comment(`the former holder's sense: ${sense.code} ${sense.text}; raw ${sense.raw.toString('hex')}`);
  t.equal(await outcome(a.write16(8n, block, 512)), 'conflict', 'then its WRITE is refused: RESERVATION CONFLICT');
  t.equal(await outcome(a.read16(8n, 1, 512)), 'conflict', 'and its READ');
  t.equal(await outcome(a.testUnitReady()), 'conflict', 'and its TEST UNIT READY');
  t.equal(await outcome(a.reserve6()), 'conflict', 'and its RESERVE(6): what the agent\'s holder check sees');
});

t.test('a TARGET RESET through tcm_loop releases the reservation too, with the same unit attention', async (t) => {
  const a = await open(lab.a);
  const b = await open(lab.b);
  t.teardown(() => { a.close(); b.close(); });
  await a.reserve6();
  const timing = await b.reset('target');
  t.comment(`TARGET RESET through tcm_loop: ioctl ${ms(timing.ioctlUs)}`);
  t.equal(await outcome(b.reserve6()), 'unit attention 06/29/03');
  t.equal(await outcome(b.reserve6()), 'ok', 'B reserves');
  t.equal(await outcome(a.testUnitReady()), 'unit attention 06/29/03');
  t.equal(await outcome(a.testUnitReady()), 'conflict');
});

t.test('the holder\'s own RESERVE(6) is GOOD and keeps the others out; after a reset nobody followed it takes it back', async (t) => {
  const a = await open(lab.a, 3);
  const b = await open(lab.b, 3);
  t.teardown(() => { a.close(); b.close(); });
  await a.reserve6();
  for (let i = 0; i < 3; i++) await a.reserve6();
  t.equal(await outcome(b.testUnitReady()), 'conflict', 'A still holds it after reserving again');
  const seen: string[] = [];
  a.on('unitAttention', (s, command) => seen.push(`${command}: ${s.code}`));
  await a.reset('lun'); // as the kernel's error handler might, after a timeout
  t.equal(await outcome(b.testUnitReady()), 'ok', 'the reset released it: B has access');
  await a.reserve6();
  t.same(seen, ['RESERVE(6): 06/29/03'], 'A\'s RESERVE met the unit attention, which the retry policy reported');
  t.equal(await outcome(b.testUnitReady()), 'conflict', 'A holds it again');
});

t.test('takeOverScsi2 on the real unit: refused while the holder\'s node is alive, reset and reserved once it failed', async (t) => {
  const a = await open(lab.a, 3);
  const b = await open(lab.b, 3);
  t.teardown(() => { a.close(); b.close(); });
  await a.reserve6();
  await t.rejects(takeOverScsi2(b, { disk: 'shared0', policy: 'lun', others: () => [{ name: 'a', alive: true }] }),
    /disk shared0 is reserved \(SCSI-2\) by another initiator and a is alive: not resetting it/);
  t.equal(await outcome(a.write16(8n, block, 512)), 'ok', 'no reset was sent: A still holds the unit and writes');

  const started = performance.now();
  const r = await takeOverScsi2(b, { disk: 'shared0', policy: 'lun', others: () => [{ name: 'a', alive: false }] });
  t.comment(`takeover: ${r.resets.map((x) => `${x.kind} reset ${x.ms.toFixed(2)} ms`).join(', ')}; RESERVE → reset → RESERVE ${(performance.now() - started).toFixed(1)} ms`);
  t.same(r.resets.map((x) => x.kind), ['lun'], 'one LUN reset');
  t.equal(await outcome(b.write16(8n, block, 512)), 'ok', 'B writes');
  await t.rejects(a.write16(8n, block, 512), ReservationConflictError, 'A\'s write, after its unit attention is reported and retried, conflicts');
});

t.test('reset latency over 20 LUN resets (the ioctl, measured on the device thread)', async (t) => {
  const b = await open(lab.b, 3);
  t.teardown(() => b.close());
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) samples.push((await b.reset('lun')).ioctlUs / 1000);
  samples.sort((x, y) => x - y);
  t.comment(`LUN reset ioctl: min ${samples[0]!.toFixed(2)} ms, median ${samples[10]!.toFixed(2)} ms, max ${samples[19]!.toFixed(2)} ms`);
  t.ok(samples[19]! < 1000, 'each well under a second');
});

t.test('a reset works through the sd node too', async (t) => {
  const a = await open(lab.a);
  const bSd = await open(lab.bSd, 3);
  t.teardown(() => { a.close(); bSd.close(); });
  await a.reserve6();
  await bSd.reset('lun');
  await bSd.reserve6();
  t.equal(await outcome(a.testUnitReady()), 'unit attention 06/29/03');
  t.equal(await outcome(a.testUnitReady()), 'conflict', 'B holds it through its sd node');
  await bSd.release6();
});

const run = promisify(execFile);

t.test('without CAP_SYS_ADMIN the reset is refused, with EACCES named; the path keeps working', async (t) => {
  const device = fileURLToPath(new URL('../../src/scsi/device.js', import.meta.url));
  const script = `
    import { ScsiDevice } from ${JSON.stringify(device)};
    const dev = await ScsiDevice.open(${JSON.stringify(lab.b)});
    const e = await dev.reset('lun').catch((x) => x);
    await dev.testUnitReady();
    console.log(JSON.stringify({ name: e.name, code: e.code, errno: e.errno, message: e.message }));
    dev.close();`;
  const { stdout } = await run('setpriv', ['--inh-caps=-all', '--bounding-set=-sys_admin', '--', process.execPath, '--input-type=module', '-e', script]);
  const e = JSON.parse(stdout) as { name: string; code: string; errno: number; message: string };
  t.match(e, { name: 'TransportError', code: 'EACCES', errno: 13 });
  t.equal(e.message, `${lab.b}: LOGICAL UNIT RESET: SG_SCSI_RESET failed: not permitted (a reset needs CAP_SYS_ADMIN and CAP_SYS_RAWIO) (EACCES)`);
});

t.test('a reset on a closed path is refused without reaching the kernel', async (t) => {
  const b: ScsiDevice = await open(lab.b);
  b.close();
  await t.rejects(b.reset('lun'), TransportError);
  await t.rejects(b.reset('lun'), { code: 'EBADF' });
  const a = await open(lab.a);
  t.equal(await drainUnitAttentions(a), 0, 'nothing was sent: no unit attention on A');
  a.close();
});

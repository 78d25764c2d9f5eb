// Reservations between two I_T nexuses to one real unit (tcm_loop paths A and B): SCSI-2 RESERVE/RELEASE,
// every persistent reservation type, PREEMPT and the unit attention it leaves behind.
import t from 'tap';

import type { ScsiDevice } from '../../src/scsi/device.js';
import { ReservationConflictError, UnitAttentionError } from '../../src/scsi/errors.js';
import type { PrType } from '../../src/scsi/pr.js';
import { lab, open, resetUnit } from '../support/lab.js';

const KEY_A = 0xa1n;
const KEY_B = 0xb2n;
const block = Buffer.alloc(512, 0x5a);

async function outcome(p: Promise<unknown>): Promise<'ok' | 'conflict'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof ReservationConflictError) return 'conflict';
    throw e;
  }
}

async function access(dev: ScsiDevice) {
  return {
    tur: await outcome(dev.testUnitReady()),
    read: await outcome(dev.read16(8n, 1, 512)),
    write: await outcome(dev.write16(8n, block, 512)),
  };
}

t.beforeEach(() => resetUnit(lab.a, lab.b));
t.after(() => resetUnit(lab.a, lab.b));

for (const size of [6, 10] as const) {
  t.test(`SCSI-2 RESERVE(${size}) on A shuts B out until A releases`, async (t) => {
    const a = await open(lab.a);
    const b = await open(lab.b);
    await (size === 6 ? a.reserve6() : a.reserve10());
    t.same(await access(a), { tur: 'ok', read: 'ok', write: 'ok' }, 'the holder keeps full access');
    t.same(await access(b), { tur: 'conflict', read: 'conflict', write: 'conflict' }, 'the other nexus gets RESERVATION CONFLICT');
    t.equal(await outcome(size === 6 ? b.reserve6() : b.reserve10()), 'conflict', 'and cannot reserve');
    await (size === 6 ? b.release6() : b.release10());
    t.equal(await outcome(b.testUnitReady()), 'conflict', 'RELEASE from a non-holder is GOOD but changes nothing');
    await (size === 6 ? a.release6() : a.release10());
    t.same(await access(b), { tur: 'ok', read: 'ok', write: 'ok' }, 'released: B has access again');
    a.close();
    b.close();
  });
}

// What the other nexus may do under each type (SPC-6 table 73); TEST UNIT READY is allowed under all.
const matrix: Record<PrType, { registered: [string, string]; unregistered: [string, string] }> = {
  we: { registered: ['ok', 'conflict'], unregistered: ['ok', 'conflict'] },
  ea: { registered: ['conflict', 'conflict'], unregistered: ['conflict', 'conflict'] },
  wero: { registered: ['ok', 'ok'], unregistered: ['ok', 'conflict'] },
  earo: { registered: ['ok', 'ok'], unregistered: ['conflict', 'conflict'] },
  wear: { registered: ['ok', 'ok'], unregistered: ['ok', 'conflict'] },
  eaar: { registered: ['ok', 'ok'], unregistered: ['conflict', 'conflict'] },
};

for (const [type, expect] of Object.entries(matrix) as [PrType, (typeof matrix)[PrType]][]) {
  t.test(`persistent reservation type ${type}: what the other nexus may do`, async (t) => {
    const a = await open(lab.a);
    // B absorbs the unit attentions these changes raise (e.g. RESERVATIONS RELEASED): not the subject here.
    const b = await open(lab.b, 3);
    await a.prRegister(KEY_A);
    await a.prReserve(KEY_A, type);
    const r = await b.prReadReservation();
    t.equal(r.reservation?.type, type, 'READ RESERVATION from the other path reports the type');
    t.equal(r.reservation?.key, type === 'wear' || type === 'eaar' ? 0n : KEY_A, 'and the holder key (0 for all-registrants types)');
    t.same(await access(a), { tur: 'ok', read: 'ok', write: 'ok' }, 'the holder keeps full access');

    const un = await access(b);
    t.same([un.read, un.write], expect.unregistered, 'unregistered B: read/write');
    t.equal(un.tur, 'ok', 'unregistered B: TEST UNIT READY is allowed');
    await b.prRegister(KEY_B);
    const reg = await access(b);
    t.same([reg.read, reg.write], expect.registered, 'registered B: read/write');
    const allRegistrants = type === 'wear' || type === 'eaar';
    t.equal(await outcome(b.prReserve(KEY_B, type)), allRegistrants ? 'ok' : 'conflict',
      allRegistrants ? 'under an all-registrants type B is a holder too: RESERVE of the same type is GOOD' : 'B cannot take a reservation A holds');

    await a.prRelease(KEY_A, type);
    t.equal((await b.prReadReservation()).reservation, null, 'released by the holder');
    a.close();
    b.close();
  });
}

t.test('registration: register, replace, ignore-existing, unregister, clear', async (t) => {
  const a = await open(lab.a);
  const b = await open(lab.b);
  await a.prRegister(KEY_A);
  await b.prRegister(KEY_B);
  t.same((await a.prReadKeys()).keys.sort(), [KEY_A, KEY_B]);
  await t.rejects(a.prRegister(0x99n), ReservationConflictError, 'REGISTER with the wrong current key conflicts');
  await a.prRegister(0xa2n, { currentKey: KEY_A });
  t.same((await b.prReadKeys()).keys.sort(), [0xa2n, KEY_B], 'REGISTER with the current key replaces it');
  const gen = (await b.prReadKeys()).generation;
  await a.prRegister(0xa3n, { ignoreExisting: true });
  const replaced = await b.prReadKeys();
  t.same(replaced.keys.sort(), [0xa3n, KEY_B], 'REGISTER AND IGNORE EXISTING KEY replaces it blind');
  t.ok(replaced.generation > gen, 'a registration change bumps the generation');
  t.equal((await a.prReadKeys()).generation, replaced.generation, 'both paths see one generation');
  // (LIO on 6.1 does not bump the generation on unregister, against SPC-4: see docs/lab.md.)
  await a.prUnregister(0xa3n);
  t.same((await b.prReadKeys()).keys, [KEY_B], 'unregistered');
  await b.prClear(KEY_B);
  t.same((await a.prReadKeys()).keys, [], 'CLEAR removes every registration');
  a.close();
  b.close();
});

t.test('READ FULL STATUS names each registrant by its initiator port', async (t) => {
  const a = await open(lab.a);
  const b = await open(lab.b);
  await a.prRegister(KEY_A);
  await b.prRegister(KEY_B);
  await a.prReserve(KEY_A, 'wero');
  const s = await b.prReadFullStatus();
  const byKey = new Map(s.registrants.map((r) => [r.key, r]));
  t.equal(byKey.get(KEY_A)?.holder, true);
  t.equal(byKey.get(KEY_A)?.type, 'wero');
  t.equal(byKey.get(KEY_B)?.holder, false);
  t.same(byKey.get(KEY_A)?.transportId, { protocol: 'sas', name: 'naa.5001405bbbb00001' }, 'tcm_loop nexus of path A');
  t.same(byKey.get(KEY_B)?.transportId, { protocol: 'sas', name: 'naa.5001405bbbb00002' }, 'tcm_loop nexus of path B');
  a.close();
  b.close();
});

t.test('REPORT CAPABILITIES lists every type and APTPL registration turns PTPL_A on', async (t) => {
  const a = await open(lab.a);
  const caps = await a.prReportCapabilities();
  t.same([...(caps.types ?? [])].sort(), ['ea', 'eaar', 'earo', 'we', 'wear', 'wero']);
  t.ok(caps.persistThroughPowerLossCapable);
  t.notOk(caps.persistThroughPowerLossActive);
  await a.prRegister(KEY_A, { aptpl: true });
  t.ok((await a.prReportCapabilities()).persistThroughPowerLossActive, 'PTPL_A after REGISTER with APTPL');
  a.close();
});

t.test('PREEMPT takes the reservation; the victim sees "Registrations preempted" once, then conflicts', async (t) => {
  const a = await open(lab.a);
  const b = await open(lab.b);
  await a.prRegister(KEY_A);
  await b.prRegister(KEY_B);
  await a.prReserve(KEY_A, 'wero');
  await b.prPreempt(KEY_B, KEY_A, 'wero');
  const r = await a.prReadReservation().catch((e: unknown) => e);
  t.type(r, UnitAttentionError, 'first command from A: UNIT ATTENTION');
  t.equal((r as UnitAttentionError).sense?.code, '06/2a/05', 'REGISTRATIONS PREEMPTED');
  const now = await a.prReadReservation();
  t.equal(now.reservation?.key, KEY_B, 'then the real answer: B holds it');
  t.same((await a.prReadKeys()).keys, [KEY_B], 'A is no longer registered');
  t.equal(await outcome(a.write16(8n, block, 512)), 'conflict', 'and A may not write');
  a.close();
  b.close();
});

t.test('with the retry policy, the unit attention is reported as an event and the command reissued', async (t) => {
  const a = await open(lab.a, 3);
  const b = await open(lab.b);
  await a.prRegister(KEY_A);
  await b.prRegister(KEY_B);
  await a.prReserve(KEY_A, 'ea');
  await b.prPreempt(KEY_B, KEY_A, 'ea');
  const seen: string[] = [];
  a.on('unitAttention', (sense, command) => seen.push(`${command}: ${sense.code}`));
  await t.rejects(a.read16(8n, 1, 512), ReservationConflictError, 'the READ, reissued, meets the new holder');
  t.same(seen, ['READ(16): 06/2a/05'], 'the owner heard of the preemption');
  a.close();
  b.close();
});

// The same unit through LIO's iSCSI target and open-iscsi under two initiator names: identity, conflicts,
// and PREEMPT AND ABORT, which completes on this fabric (it wedges tcm_loop).
import t from 'tap';

import { ReservationConflictError, UnitAttentionError } from '../../src/scsi/errors.js';
import { lab, open, resetUnit } from '../support/lab.js';

t.before(() => resetUnit(lab.iscsiA, lab.iscsiB));
t.after(() => resetUnit(lab.iscsiA, lab.iscsiB));

t.test('both iSCSI sessions see one unit with the kernel\'s identity', async (t) => {
  for (const p of [lab.iscsiA, lab.iscsiB]) {
    const d = await open(p);
    t.equal(await d.identity(), lab.iscsiId, p);
    d.close();
  }
  t.not(lab.iscsiId, lab.sharedId, 'a different unit from the tcm_loop one');
});

t.test('READ FULL STATUS names the iSCSI initiators', async (t) => {
  const a = await open(lab.iscsiA);
  const b = await open(lab.iscsiB);
  await a.prRegister(0x1an);
  await b.prRegister(0x1bn);
  const s = await a.prReadFullStatus();
  const names = s.registrants.map((r) => `${r.transportId?.protocol} ${r.transportId?.name.split(',')[0]}`).sort();
  t.same(names, ['iscsi iqn.2003-01.org.vigil.lab:server-a', 'iscsi iqn.2003-01.org.vigil.lab:server-b']);
  a.close();
  b.close();
});

t.test('PREEMPT AND ABORT over iSCSI completes; the victim gets the unit attention, then conflicts', async (t) => {
  await resetUnit(lab.iscsiA, lab.iscsiB);
  const a = await open(lab.iscsiA);
  const b = await open(lab.iscsiB);
  await a.prRegister(0x1an);
  await b.prRegister(0x1bn);
  await a.prReserve(0x1an, 'wero');
  await a.write16(0n, Buffer.alloc(512, 1), 512);
  const started = performance.now();
  await b.prPreempt(0x1bn, 0x1an, 'wero', { abort: true });
  t.ok(performance.now() - started < 5000, `completed in ${(performance.now() - started).toFixed(0)} ms`);
  const ua = await a.testUnitReady().catch((e: unknown) => e);
  t.type(ua, UnitAttentionError, 'the victim\'s next command: UNIT ATTENTION');
  t.equal((ua as UnitAttentionError).sense?.code, '06/2a/05');
  await t.rejects(a.write16(0n, Buffer.alloc(512, 2), 512), ReservationConflictError, 'the fenced server cannot write');
  t.equal((await b.prReadReservation()).reservation?.key, 0x1bn);
  a.close();
  b.close();
});

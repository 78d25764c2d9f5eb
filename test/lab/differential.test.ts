// vigil's CLI and sg3_utils (sg_turs, sg_persist), asked the same questions about the same real unit, must
// agree on statuses (exit codes), registered keys, the reservation holder and its type.
import t from 'tap';

import { PR_TYPES, prTypeName } from '../../src/scsi/pr.js';
import { exec, lab, open, resetUnit, vigil, vigilJson } from '../support/lab.js';

interface SgKeys { generation: number; keys: string[] }
interface SgReservation { generation: number; key: string | null; type: string | null }

async function sgKeys(dev: string): Promise<SgKeys> {
  const r = await exec('sg_persist', ['-n', '-k', dev]);
  if (r.code !== 0) throw new Error(`sg_persist -k ${dev}: exit ${r.code} ${r.stderr}`);
  const generation = Number.parseInt(/PR generation=(0x[0-9a-f]+)/i.exec(r.stdout)![1]!, 16);
  const keys = [...r.stdout.matchAll(/^\s+(0x[0-9a-f]+)\s*$/gim)].map((m) => m[1]!.toLowerCase());
  return { generation, keys };
}

async function sgReservation(dev: string): Promise<SgReservation> {
  const r = await exec('sg_persist', ['-n', '-r', dev]);
  if (r.code !== 0) throw new Error(`sg_persist -r ${dev}: exit ${r.code} ${r.stderr}`);
  const generation = Number.parseInt(/PR generation=(0x[0-9a-f]+)/i.exec(r.stdout)![1]!, 16);
  const key = /Key=(0x[0-9a-f]+)/i.exec(r.stdout)?.[1]?.toLowerCase() ?? null;
  const type = /type: (.+)$/m.exec(r.stdout)?.[1]?.trim() ?? null;
  return { generation, key, type };
}

async function sgHolder(dev: string): Promise<string | null> {
  const r = await exec('sg_persist', ['-n', '-s', dev]);
  // Each registrant block starts with "Key=..."; the holder's block says "<< Reservation holder >>".
  const blocks = r.stdout.split(/(?=^\s+Key=)/m);
  const holder = blocks.find((b) => b.includes('Reservation holder'));
  return holder ? /Key=(0x[0-9a-f]+)/i.exec(holder)![1]!.toLowerCase() : null;
}

const json = vigilJson;

t.beforeEach(() => resetUnit(lab.a, lab.b));
t.after(() => resetUnit(lab.a, lab.b));

t.test('a clean unit: GOOD, no keys, no reservation, by both tools', async (t) => {
  t.equal((await exec('sg_turs', [lab.a])).code, 0);
  t.same((await json('scsi', 'tur', lab.a)), { code: 0, body: { status: 'GOOD', sense: null }, stderr: '' });
  const k = await sgKeys(lab.b);
  t.same((await json('scsi', 'pr', 'keys', lab.b)).body, { generation: k.generation, keys: [] });
  const r = await sgReservation(lab.b);
  t.same((await json('scsi', 'pr', 'reservation', lab.b)).body, { generation: r.generation, reservation: null });
  t.equal(r.key, null);
});

t.test('keys, holder and type agree for every reservation type', async (t) => {
  t.equal((await vigil('scsi', 'pr', 'register', lab.a, '--key', '0xa1')).code, 0);
  t.equal((await exec('sg_persist', ['-n', '--out', '--register', '--param-sark=0xb2', lab.b])).code, 0, 'B registers through sg_persist');
  for (const type of PR_TYPES) {
    t.equal((await vigil('scsi', 'pr', 'reserve', lab.a, '--key', 'a1', '--type', type)).code, 0, `reserve ${type}`);
    const sg = await sgReservation(lab.b);
    const ours = (await json('scsi', 'pr', 'reservation', lab.b)).body as { generation: number; reservation: { key: string; type: string } };
    t.equal(sg.type, prTypeName(type), `sg_persist reads ${type} as "${sg.type}"`);
    t.equal(ours.reservation.type, type);
    t.equal(ours.reservation.key, sg.key, `holder key ${sg.key}`);
    t.equal(ours.generation, sg.generation);
    const allRegistrants = type === 'wear' || type === 'eaar';
    const status = (await json('scsi', 'pr', 'status', lab.b)).body as { registrants: { key: string; holder: boolean }[] };
    const ourHolders = status.registrants.filter((r) => r.holder).map((r) => r.key).sort();
    if (!allRegistrants) t.same(ourHolders, [await sgHolder(lab.b)], 'READ FULL STATUS holder');
    else t.same(ourHolders, ['0xa1', '0xb2'], 'every registrant holds an all-registrants reservation');
    t.equal((await vigil('scsi', 'pr', 'release', lab.a, '--key', '0xa1', '--type', type)).code, 0, `release ${type}`);
    await exec('sg_turs', [lab.b]); // consume the RESERVATIONS RELEASED unit attention, if any
  }
  const k = await sgKeys(lab.a);
  t.same((await json('scsi', 'pr', 'keys', lab.a)).body, { generation: k.generation, keys: k.keys });
  t.same(k.keys.sort(), ['0xa1', '0xb2']);
});

t.test('a PR conflict is exit 24 from both', async (t) => {
  await vigil('scsi', 'pr', 'register', lab.a, '--key', '0xa1');
  await vigil('scsi', 'pr', 'register', lab.b, '--key', '0xb2');
  await vigil('scsi', 'pr', 'reserve', lab.a, '--key', '0xa1', '--type', 'ea');
  const ours = await json('scsi', 'pr', 'reserve', lab.b, '--key', '0xb2', '--type', 'ea');
  const theirs = await exec('sg_persist', ['-n', '--out', '--reserve', '--param-rk=0xb2', '--prout-type=3', lab.b]);
  t.equal(theirs.code, 24);
  t.equal(ours.code, 24);
  t.match(ours.body, { error: { name: 'ReservationConflictError', status: 'RESERVATION CONFLICT' } });
  t.equal(ours.stderr.trim().split('\n').length, 1, 'one line on stderr');
});

t.test('a SCSI-2 reservation: TEST UNIT READY from the other path is exit 24 from both', async (t) => {
  t.equal((await vigil('scsi', 'reserve', lab.a)).code, 0);
  t.equal((await exec('sg_turs', [lab.b])).code, 24);
  t.same(await json('scsi', 'tur', lab.b), { code: 24, body: { status: 'RESERVATION CONFLICT', sense: null }, stderr: '' });
  t.equal((await vigil('scsi', 'release', lab.a)).code, 0);
  t.equal((await exec('sg_turs', [lab.b])).code, 0);
});

t.test('the unit attention after a preempt is exit 6 from both', async (t) => {
  const preemptA = async () => {
    const a = await open(lab.a, 3);
    const b = await open(lab.b, 3);
    await a.prRegister(0xa1n, { ignoreExisting: true });
    await b.prRegister(0xb2n, { ignoreExisting: true });
    await b.prPreempt(0xb2n, 0xa1n, 'wero');
    a.close();
    b.close();
  };
  await preemptA();
  const ours = await json('scsi', 'tur', lab.a);
  t.equal(ours.code, 6);
  t.match(ours.body, { status: 'CHECK CONDITION', sense: { key: 6, code: '06/2a/05', text: 'Registrations preempted' } });
  t.equal((await json('scsi', 'tur', lab.a)).code, 0, 'reported once');
  await preemptA();
  const theirs = await exec('sg_turs', [lab.a]);
  t.equal(theirs.code, 6);
  t.match(theirs.stdout + theirs.stderr, /Registrations preempted/);
});

t.test('a device that cannot be used: the same exit code from both', async (t) => {
  for (const dev of ['/dev/sg-none', '/dev/null']) {
    const theirs = await exec('sg_turs', [dev]);
    const ours = await vigil('scsi', 'tur', dev);
    t.equal(ours.code, theirs.code, `${dev}: sg_turs says ${theirs.code}`);
  }
});

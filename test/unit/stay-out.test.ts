// The stay-out record (seed 002 step 508): absent → the node may join; written → out, across restarts;
// unreadable → still out (the file exists only because a distress was sent); the fatal-signal handler's
// record without a time takes the file's; clear → may join.
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { clearStayOut, readStayOut, stayOutFile, writeStayOut, type StayOut } from '../../src/daemon/stay-out.js';

const RECORD: StayOut = { since: '2026-11-24T06:00:00.000Z', reason: 'power-low-battery', source: 'nut:rack1@ups', incarnation: '17', text: 'ups.status "OB LB"' };

async function dir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'vigil-stay-out-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

t.test('no record: the node may join; a written record reads back whole until it is cleared', async (t) => {
  const d = await dir(t);
  t.equal(await readStayOut(d), undefined);
  await writeStayOut(d, RECORD);
  t.same(await readStayOut(d), RECORD);
  await clearStayOut(d);
  t.equal(await readStayOut(d), undefined);
  await clearStayOut(d);
  t.pass('clearing twice is harmless');
});

t.test('a record that cannot be parsed keeps the node out and says why', async (t) => {
  const d = await dir(t);
  for (const bad of ['{"since":', '[]', '{"reason":"x"}', '']) {
    await writeFile(stayOutFile(d), bad);
    const r = await readStayOut(d);
    t.ok(r, `${JSON.stringify(bad)}: still out`);
    t.match(r?.text, /cannot be read.*staying out/, 'the text names the problem');
  }
});

t.test('the signal handler\'s record has no time: the file\'s own modification time is taken', async (t) => {
  const d = await dir(t);
  await writeFile(stayOutFile(d), `${JSON.stringify({ ...RECORD, since: '', reason: 'fatal-signal' })}\n`);
  const when = new Date('2026-11-24T05:00:00.000Z');
  await utimes(stayOutFile(d), when, when);
  t.match(await readStayOut(d), { since: when.toISOString(), reason: 'fatal-signal' });
});

// The priority store (src/lastactive/priority-store.ts): the record layout, choosing between the two
// slots, damage of every kind making a slot invalid and never wrong, and a writer killed before each of
// its syscalls or torn by a power loss at every byte boundary leaving the old record or the new one.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

import t, { type Test } from 'tap';
import ts from 'typescript';

import { LABELS, type Label, type Priority, type State } from '../../src/lastactive/chart.js';
import {
  chooseRecord, decodeSlot, encodeRecord, FILE_SIZE, ForeignRecordError, initialImage, initPriorityStore, planWrite,
  readPriorityStore, RECORD_LENGTH, SLOT_SIZE, writePriorityRecord,
  type PriorityRecord, type RecordContent, type StoreIdentity, type StoreReading, type WriteStep,
} from '../../src/lastactive/priority-store.js';
import { packageRoot } from '../../src/util/package-root.js';

const ID: StoreIdentity = { cluster: 'demo', node: 1, peer: 2 };
const INIT: RecordContent = { priority: 2, state: 'X', transition: 'init', forced: false };

function rec(over: Partial<PriorityRecord> = {}): PriorityRecord {
  return { ...ID, priority: 1, state: 'SM', transition: '4-4', forced: false, sequence: 1n, ...over };
}

/** An image with the given records in slots 0 and 1 (undefined: zeros). */
function image(slot0?: PriorityRecord, slot1?: PriorityRecord): Buffer {
  const b = Buffer.alloc(FILE_SIZE);
  if (slot0) encodeRecord(slot0).copy(b, 0);
  if (slot1) encodeRecord(slot1).copy(b, SLOT_SIZE);
  return b;
}

/** A record as text with its fields in a fixed order, to compare many quickly. */
function canon(r: PriorityRecord): string {
  return [r.cluster, r.node, r.peer, r.sequence, r.priority, r.state, r.transition, r.forced].join('|');
}

function seqOf(r: StoreReading): bigint | 'undeterminable' {
  return r.kind === 'record' ? r.record.sequence : 'undeterminable';
}

// ---- layout and round trip ----

t.test('the record layout is as documented, field by field', async (t) => {
  const r = rec({ priority: 3, state: 'SL', transition: '3-1-1', sequence: 0x0102030405060708n, node: 0x1234, peer: 0xabcd, cluster: 'alpha-1' });
  const b = encodeRecord(r);
  t.equal(b.length, RECORD_LENGTH);
  t.equal(b.subarray(0, 4).toString('latin1'), 'VGLP', 'magic');
  t.equal(b[4], 1, 'version');
  t.equal(b[5], 3, 'priority');
  t.equal(b[6], 3, 'state SL = 3');
  t.equal(b[7], 0, 'flags');
  t.equal(b.subarray(8, 16).toString('hex'), '0102030405060708', 'sequence, big-endian');
  t.equal(b.readUInt16BE(16), 0x1234, 'node id');
  t.equal(b.readUInt16BE(18), 0xabcd, 'peer id');
  t.equal(b[20], LABELS.indexOf('3-1-1') + 1, 'transition code');
  t.equal(b[21], 7, 'cluster name length');
  t.equal(b.subarray(24, 31).toString('latin1'), 'alpha-1');
  t.ok(b.subarray(31, 64).every((x) => x === 0), 'name padding and reserved bytes are zero');
  const { createHash } = await import('node:crypto');
  t.same(b.subarray(64), createHash('sha256').update(b.subarray(0, 64)).digest(), 'SHA-256 of bytes 0..63');
  const forced = encodeRecord(rec({ forced: true, transition: '2-2' }));
  t.equal(forced[7], 1, 'FORCED is bit 0');
  t.equal(forced[6], 2, 'state SM = 2');
});

t.test('encode/decode round trip over every priority, state, transition and flag, and the extreme fields', async (t) => {
  let n = 0;
  for (const priority of [1, 2, 3] as Priority[]) {
    for (const state of ['M', 'SM', 'SL', 'X'] as State[]) {
      for (const transition of ['init', ...LABELS] as Array<Label | 'init'>) {
        for (const forced of priority === 1 ? [false, true] : [false]) {
          const r = rec({ priority, state, transition, forced, sequence: BigInt(n + 1) });
          const d = decodeSlot(encodeRecord(r));
          if (!d.ok || canon(d.record) !== canon(r)) {
            t.fail(`round trip of ${JSON.stringify({ priority, state, transition, forced })}`);
          }
          n++;
        }
      }
    }
  }
  t.ok(n > 300, `${n} combinations`);
  for (const r of [
    rec({ sequence: 2n ** 64n - 1n, node: 65535, peer: 1, cluster: 'x' }),
    rec({ cluster: 'a'.repeat(32), node: 1, peer: 65535 }),
  ]) {
    t.same(decodeSlot(encodeRecord(r)), { ok: true, record: r });
  }
});

t.test('encode refuses what could not be read back', async (t) => {
  t.throws(() => encodeRecord(rec({ cluster: '' })), RangeError);
  t.throws(() => encodeRecord(rec({ cluster: 'a'.repeat(33) })), RangeError);
  t.throws(() => encodeRecord(rec({ node: 0 })), RangeError);
  t.throws(() => encodeRecord(rec({ peer: 65536 })), RangeError);
  t.throws(() => encodeRecord(rec({ peer: 1 })), /same id/);
  t.throws(() => encodeRecord(rec({ sequence: 0n })), RangeError);
  t.throws(() => encodeRecord(rec({ priority: 4 as Priority })), RangeError);
  t.throws(() => encodeRecord(rec({ priority: 2, forced: true })), /forced/);
});

t.test('a record with a good checksum and an impossible field is invalid, not believed', async (t) => {
  const { createHash } = await import('node:crypto');
  const resum = (mutate: (b: Buffer) => void): Buffer => {
    const b = encodeRecord(rec());
    mutate(b);
    createHash('sha256').update(b.subarray(0, 64)).digest().copy(b, 64);
    return b;
  };
  const cases: Array<[string, (b: Buffer) => void]> = [
    ['priority 0', (b) => { b[5] = 0; }], ['priority 4', (b) => { b[5] = 4; }], ['state 5', (b) => { b[6] = 5; }],
    ['unknown flag', (b) => { b[7] = 2; }], ['transition 23', (b) => { b[20] = 23; }], ['name length 0', (b) => { b[21] = 0; }],
    ['name length 33', (b) => { b[21] = 33; }], ['sequence 0', (b) => { b.fill(0, 8, 16); }], ['node 0', (b) => { b.writeUInt16BE(0, 16); }],
    ['peer 0', (b) => { b.writeUInt16BE(0, 18); }], ['forced 2', (b) => { b[5] = 2; b[7] = 1; }], ['name not printable', (b) => { b[24] = 0x20; }],
  ];
  for (const [what, mutate] of cases) t.same(decodeSlot(resum(mutate)), { ok: false, why: 'field' }, what);
  const v2 = encodeRecord(rec());
  v2[4] = 2;
  t.same(decodeSlot(v2), { ok: false, why: 'version' });
});

// ---- choosing ----

t.test('the valid slot with the highest sequence is chosen, whichever slot it is in', async (t) => {
  t.equal(seqOf(chooseRecord(image(rec({ sequence: 10n }), rec({ sequence: 9n })), ID)), 10n);
  t.equal(seqOf(chooseRecord(image(rec({ sequence: 9n }), rec({ sequence: 10n })), ID)), 10n);
  t.equal(seqOf(chooseRecord(image(rec({ sequence: 3n })), ID)), 3n, 'slot 1 empty');
  t.equal(seqOf(chooseRecord(image(undefined, rec({ sequence: 3n })), ID)), 3n, 'slot 0 empty');
});

t.test('writes alternate slots, each to the slot not holding the newest record, with the next sequence', async (t) => {
  let img = initialImage(ID, INIT);
  const contents: RecordContent[] = [
    { priority: 1, state: 'SM', transition: '1-2-1', forced: false },
    { priority: 2, state: 'M', transition: '1-2-2', forced: false },
    { priority: 1, state: 'SM', transition: '4-2', forced: false },
    { priority: 3, state: 'SL', transition: '3-1-1', forced: false },
  ];
  let slot = 0;
  for (const [i, c] of contents.entries()) {
    const cur = chooseRecord(img, ID);
    t.equal(cur.kind === 'record' && cur.slot, slot, `before write ${i}, the newest is in slot ${slot}`);
    const plan = planWrite(cur, ID, c);
    t.equal(plan.slot, 1 - slot, 'the other slot');
    t.equal(plan.record.sequence, BigInt(i + 2));
    img = Buffer.from(img);
    plan.bytes.copy(img, plan.offset);
    const after = chooseRecord(img, ID);
    t.same(after.kind === 'record' ? { ...after.record } : after, plan.record, `write ${i} is read back`);
    slot = plan.slot;
  }
});

t.test('both slots invalid, or no file, is undeterminable, with the reason', async (t) => {
  const none = chooseRecord(undefined, ID);
  t.equal(none.kind, 'undeterminable');
  t.match(none.kind === 'undeterminable' ? none.why : '', /does not exist/);
  const zeros = chooseRecord(Buffer.alloc(FILE_SIZE), ID);
  t.match(zeros.kind === 'undeterminable' ? zeros.why : '', /slot 0: empty, slot 1: empty/);
  const bad = image(rec({ sequence: 4n }), rec({ sequence: 5n }));
  bad.writeUInt8(bad.readUInt8(10) ^ 1, 10);
  bad.writeUInt8(bad.readUInt8(SLOT_SIZE + 70) ^ 1, SLOT_SIZE + 70);
  const both = chooseRecord(bad, ID);
  t.equal(both.kind, 'undeterminable');
  t.match(both.kind === 'undeterminable' ? both.why : '', /slot 0: checksum, slot 1: checksum/);
  const garbage = Buffer.alloc(FILE_SIZE, 0x5a);
  t.match((chooseRecord(garbage, ID) as { why: string }).why, /slot 0: magic, slot 1: magic/);
});

t.test('a record of another cluster, node or peer is an error naming both', async (t) => {
  for (const other of [{ ...ID, cluster: 'prod' }, { ...ID, node: 3 }, { ...ID, peer: 7 }]) {
    const img = image(rec({ ...other, sequence: 2n }));
    let err: unknown;
    try {
      chooseRecord(img, ID, '/var/lib/vigil/priority');
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ForeignRecordError, JSON.stringify(other));
    const msg = (err as Error).message;
    t.match(msg, `cluster '${other.cluster}' node ${other.node} (peer ${other.peer})`, 'names the record found');
    t.match(msg, "this is cluster 'demo' node 1 (peer 2)", 'names this node');
    t.match(msg, '/var/lib/vigil/priority', 'names the file');
  }
  // Even beside a valid record of ours: a foreign record in the file means the file is not what we think.
  t.throws(() => chooseRecord(image(rec({ sequence: 5n }), rec({ sequence: 4n, node: 9, peer: 2 })), ID), ForeignRecordError);
});

// ---- damage ----

t.test('a changed byte anywhere in a slot\'s record makes that slot invalid, and the other one is used', async (t) => {
  const older = rec({ sequence: 6n, priority: 2, state: 'M', transition: '1-2-2' });
  const newer = rec({ sequence: 7n, priority: 1, state: 'SM', transition: '4-2' });
  let checked = 0;
  for (const damaged of [0, 1]) {
    const base = damaged === 0 ? image(newer, older) : image(older, newer);
    for (let i = 0; i < RECORD_LENGTH; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const img = Buffer.from(base);
        img.writeUInt8(img.readUInt8(damaged * SLOT_SIZE + i) ^ x, damaged * SLOT_SIZE + i);
        const r = chooseRecord(img, ID);
        if (r.kind !== 'record' || r.record.sequence !== 6n || r.slot === damaged) {
          t.fail(`slot ${damaged} byte ${i} ^ ${x}: got ${r.kind === 'record' ? `seq ${r.record.sequence}` : r.why}`);
        }
        checked++;
      }
    }
  }
  t.equal(checked, 2 * RECORD_LENGTH * 3, 'the newer slot damaged: the older record; every byte, three patterns, both slots');
  // Past the record, the slot is padding: not checked, so damage there costs nothing.
  const img = image(newer, older);
  img[RECORD_LENGTH + 5] = 0xee;
  t.equal(seqOf(chooseRecord(img, ID)), 7n);
});

t.test('a truncated file keeps whatever whole records it still holds', async (t) => {
  const full = image(rec({ sequence: 7n }), rec({ sequence: 8n }));
  for (let len = 0; len <= FILE_SIZE; len++) {
    const got = seqOf(chooseRecord(full.subarray(0, len), ID));
    const want = len < RECORD_LENGTH ? 'undeterminable' : len < SLOT_SIZE + RECORD_LENGTH ? 7n : 8n;
    if (got !== want) t.fail(`truncated to ${len}: ${got}, expected ${want}`);
  }
  t.pass('every length from 0 to 8192');
});

t.test('a torn write (power loss) at any byte boundary leaves the old record or the new one', async (t) => {
  // The slot being written holds an older valid record (the worst case: not zeros) and the newest is
  // in the other slot. The write's bytes land as a prefix, a suffix, or sectors in any order.
  const newest = rec({ sequence: 41n, priority: 2, state: 'M', transition: '3-2-2' });
  const before = image(rec({ sequence: 40n, priority: 1, state: 'SM', transition: '2-2' }), newest);
  const plan = planWrite(chooseRecord(before, ID), ID, { priority: 1, state: 'SM', transition: '4-2', forced: false });
  t.equal(plan.slot, 0);
  const slotBytes = Buffer.alloc(SLOT_SIZE);
  plan.bytes.copy(slotBytes);
  const boundaries = new Set<number>();
  for (let k = 0; k <= RECORD_LENGTH; k++) boundaries.add(k);
  for (let k = 512; k <= SLOT_SIZE; k += 512) boundaries.add(k);
  const outcomes = new Map<string, number>();
  const check = (img: Buffer, what: string): void => {
    const r = chooseRecord(img, ID);
    const s = seqOf(r);
    if (s !== 41n && s !== 42n) t.fail(`${what}: ${r.kind === 'record' ? `seq ${s}` : r.why}`);
    if (s === 42n) t.same(r.kind === 'record' && r.record, plan.record, `${what}: the new record exactly`);
    outcomes.set(String(s), (outcomes.get(String(s)) ?? 0) + 1);
  };
  for (const k of boundaries) {
    const prefix = Buffer.from(before);
    slotBytes.copy(prefix, plan.offset, 0, k);
    check(prefix, `first ${k} bytes written`);
    const suffix = Buffer.from(before);
    slotBytes.copy(suffix, plan.offset + k, k);
    check(suffix, `bytes from ${k} on written`);
    // The rest of the slot as garbage rather than old bytes (a device that scribbles while power fails).
    const scribbled = Buffer.from(before);
    slotBytes.copy(scribbled, plan.offset, 0, k);
    scribbled.fill(0xa5, plan.offset + k, plan.offset + SLOT_SIZE);
    check(scribbled, `first ${k} bytes written, the rest scribbled`);
  }
  t.ok((outcomes.get('41') ?? 0) > 0 && (outcomes.get('42') ?? 0) > 0, `both outcomes occur: ${JSON.stringify([...outcomes])}`);
});

// ---- files ----

async function tempStore(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-priority-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'priority');
}

t.test('init, write and read through the file', async (t) => {
  const path = await tempStore(t);
  t.equal((await readPriorityStore(path, ID)).kind, 'undeterminable', 'no file yet');
  await initPriorityStore(path, ID, INIT);
  t.equal((await readFile(path)).length, FILE_SIZE);
  const r1 = await readPriorityStore(path, ID);
  t.same(r1.kind === 'record' && r1.record, { ...ID, ...INIT, sequence: 1n });
  const w = await writePriorityRecord(path, ID, { priority: 1, state: 'SM', transition: '1-2-1', forced: false });
  t.equal(w.sequence, 2n);
  const r2 = await readPriorityStore(path, ID);
  t.same(r2.kind === 'record' && [r2.slot, r2.record], [1, w]);
  t.same(await readdir(join(path, '..')), ['priority'], 'no temporary file left');
  await t.rejects(initPriorityStore(path, ID, INIT), /already exists/, 'init never replaces a store by accident');
  await initPriorityStore(path, ID, { ...INIT, priority: 3 }, { replace: true });
  const r3 = await readPriorityStore(path, ID);
  t.same(r3.kind === 'record' && [r3.record.priority, r3.record.sequence], [3, 1n], 'an operator may re-initialise');
});

t.test('writes need the file, and only a 3 or a forced 1 may go over an undeterminable record', async (t) => {
  const path = await tempStore(t);
  await t.rejects(writePriorityRecord(path, ID, { priority: 3, state: 'SL', transition: '3-1-1', forced: false }), /does not exist/);
  await writeFile(path, Buffer.alloc(FILE_SIZE, 0x33));
  await t.rejects(writePriorityRecord(path, ID, { priority: 1, state: 'SM', transition: '2-2', forced: false }), /undeterminable|no valid/);
  await t.rejects(writePriorityRecord(path, ID, { priority: 2, state: 'M', transition: '1-2-2', forced: false }), /without a forced start/);
  const forced = await writePriorityRecord(path, ID, { priority: 1, state: 'SM', transition: '2-2', forced: true });
  t.equal(forced.sequence, 1n, 'starts again at 1, in slot 0');
  const r = await readPriorityStore(path, ID);
  t.same(r.kind === 'record' && [r.slot, r.record.forced], [0, true]);
  const path2 = await tempStore(t);
  await writeFile(path2, Buffer.alloc(100));
  const sl = await writePriorityRecord(path2, ID, { priority: 3, state: 'SL', transition: '3-2-1', forced: false });
  t.equal((await readPriorityStore(path2, ID)).kind === 'record' && sl.priority, 3, 'joining as slave repairs a lost record');
  await truncate(path2, 50);
  t.equal((await readPriorityStore(path2, ID)).kind, 'undeterminable');
});

t.test('a read error other than a missing file is an error, not undeterminable', async (t) => {
  const path = await tempStore(t);
  await mkdir(path);
  await t.rejects(readPriorityStore(path, ID), /^priority store .*priority: .*(EISDIR|illegal operation on a directory)/);
});

// ---- crash injection: a writer killed before each syscall ----

const ROOT = packageRoot(); // the sources are transpiled: the same whether this test runs from them or compiled

/**
 * The writer and the modules it imports, transpiled once to plain JavaScript in a temporary tree with
 * the same layout: a child then starts in tens of milliseconds instead of loading the TypeScript loader
 * for a second or two each time, and there are 19 of them. Transpiling is what the loader does too.
 */
let writerScript: Promise<string> | undefined;
function transpiledWriter(): Promise<string> {
  writerScript ??= (async () => {
    const out = await mkdtemp(join(tmpdir(), 'vigil-priority-writer-'));
    for (const rel of ['src/lastactive/chart.ts', 'src/lastactive/priority-store.ts', 'test/support/priority-writer.ts']) {
      const js = ts.transpileModule(await readFile(join(ROOT, rel), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      await mkdir(dirname(join(out, rel)), { recursive: true });
      await writeFile(join(out, rel.replace(/\.ts$/, '.js')), js);
    }
    await writeFile(join(out, 'package.json'), '{"type": "module"}\n');
    t.teardown(() => rm(out, { recursive: true, force: true }));
    return join(out, 'test/support/priority-writer.js');
  })();
  return writerScript;
}

/**
 * Runs the writer, letting it pass `killAt` steps and killing it (SIGKILL) before the next one; with
 * killAt past the end it completes. Returns the steps it announced.
 */
async function runWriter(mode: 'init' | 'replace' | 'update', path: string, content: RecordContent, killAt: number): Promise<{ steps: WriteStep[]; completed: boolean }> {
  const child = spawn(process.execPath, [await transpiledWriter(), mode, path, JSON.stringify(ID), JSON.stringify(content)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdin.on('error', () => {}); // a write racing the child's exit; the outcome is read from the store
  const steps: WriteStep[] = [];
  let completed = false;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'done') {
      completed = true;
      break;
    }
    const m = /^step (\S+)$/.exec(line);
    if (!m) throw new Error(`writer said ${JSON.stringify(line)}`);
    if (steps.length === killAt) {
      child.kill('SIGKILL');
      break;
    }
    steps.push(m[1] as WriteStep);
    child.stdin.write('\n');
  }
  await exited;
  return { steps, completed };
}

const NEW: RecordContent = { priority: 1, state: 'SM', transition: '4-4', forced: false };
const UPDATE_STEPS: WriteStep[] = ['open', 'pwrite', 'fsync'];
const CREATE_STEPS: WriteStep[] = ['open', 'pwrite', 'fsync', 'rename', 'open-dir', 'fsync-dir'];

/**
 * For each kill point 0..steps.length (the last one: not killed), a fresh store prepared by `prepare`,
 * a writer killed there, and what the store reads afterwards. The kill points run side by side: each
 * writer is a node process of its own.
 */
async function killAtEveryStep(
  t: Test, mode: 'init' | 'replace' | 'update', steps: WriteStep[], content: RecordContent, prepare: (path: string) => Promise<void>,
): Promise<Array<{ steps: WriteStep[]; completed: boolean; got: string }>> {
  return Promise.all(Array.from({ length: steps.length + 1 }, async (_, killAt) => {
    const path = await tempStore(t);
    await prepare(path);
    const run = await runWriter(mode, path, content, killAt);
    const r = await readPriorityStore(path, ID);
    return { ...run, got: r.kind === 'record' ? `seq ${r.record.sequence} priority ${r.record.priority}` : r.why };
  }));
}

const when = (steps: WriteStep[], completed: boolean): string =>
  completed ? 'not killed' : `killed before ${steps.length === 0 ? 'the first step' : `the step after ${steps.join(', ')}`}`;

t.test('a writer killed before each syscall of an update leaves the old record or the new one', async (t) => {
  const runs = await killAtEveryStep(t, 'update', UPDATE_STEPS, NEW, async (path) => {
    await initPriorityStore(path, ID, INIT);
    await writePriorityRecord(path, ID, { priority: 3, state: 'SL', transition: '1-2-1', forced: false }); // seq 2, slot 1
  });
  for (const [killAt, { steps, completed, got }] of runs.entries()) {
    t.same(steps, UPDATE_STEPS.slice(0, killAt), `run ${killAt} passed the steps before its kill point`);
    t.ok(got === 'seq 2 priority 3' || got === 'seq 3 priority 1', `${when(steps, completed)}: ${got}`);
    // Before the pwrite nothing may have changed; once it returned, the new record is the one read.
    if (!steps.includes('pwrite')) t.equal(got, 'seq 2 priority 3', `${when(steps, completed)}: still the old record`);
    if (completed) t.equal(got, 'seq 3 priority 1', 'completed: the new record');
  }
  t.ok(runs.at(-1)!.completed, 'the update has no step beyond open, pwrite, fsync (no rename, no directory change)');
});

t.test('a writer killed before each syscall of a creation leaves no store or the new one, never a torn one', async (t) => {
  const runs = await killAtEveryStep(t, 'init', CREATE_STEPS, INIT, async () => {});
  for (const [killAt, { steps, completed, got }] of runs.entries()) {
    t.same(steps, CREATE_STEPS.slice(0, killAt), `run ${killAt} passed the steps before its kill point`);
    if (steps.includes('rename')) t.equal(got, 'seq 1 priority 2', `${when(steps, completed)}: the new record`);
    else t.match(got, /does not exist/, `${when(steps, completed)}: no store (undeterminable), not a torn one`);
  }
  t.ok(runs.at(-1)!.completed, 'the creation ends with the directory fsync');
});

t.test('a writer killed before each syscall of a re-initialisation leaves the old record or the new one', async (t) => {
  const runs = await killAtEveryStep(t, 'replace', CREATE_STEPS, { ...INIT, priority: 3 }, async (path) => {
    await initPriorityStore(path, ID, INIT);
    await writePriorityRecord(path, ID, { priority: 1, state: 'SM', transition: '1-2-1', forced: false });
  });
  for (const { steps, completed, got } of runs) {
    t.equal(got, steps.includes('rename') ? 'seq 1 priority 3' : 'seq 2 priority 1', when(steps, completed));
  }
  // A temporary file left by a killed init is overwritten by the next one.
  const path = await tempStore(t);
  await runWriter('init', path, INIT, 2);
  t.same((await readdir(join(path, '..'))).sort(), ['.priority.tmp'], 'killed before its fsync: the temporary file is left');
  await initPriorityStore(path, ID, INIT);
  t.same((await readdir(join(path, '..'))).sort(), ['priority'], 'the next init replaced it');
  t.equal((await readPriorityStore(path, ID)).kind, 'record');
});

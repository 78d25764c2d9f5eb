// The replicated cluster database: records and their schemas, versions and newer-wins merge, tombstones,
// markers, digests and the sync plan, and the replica on disk. Seed 001 §6 behaviours 1-7 are named in
// the test titles; 8-12 (FIG. 6) are in flows.test.ts.
import { chmod, mkdtemp, readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { ClusterDb, compareStamps, epochFor, parseSnapshot, parseVersionMap, syncPlan } from '../../src/db/database.js';
import { registrationCheck } from '../../src/db/flows.js';
import {
  type AppEntry, type AppFields, type Marker, RecordError, canonicalJson, contentHash, isTombstone, parseAppEntry, parseAppSpec,
  parseMarker,
} from '../../src/db/object.js';
import { CorruptDatabaseError, loadDatabase, parseDatabase, saveDatabase, serializeDatabase } from '../../src/db/store.js';
import { prng } from '../support/prng.js';

const T0 = 1_700_000_000_000;

function fields(tag: string, more: Partial<AppFields> = {}): AppFields {
  return {
    tag, type: 'cluster-capable', command: { argv: ['/usr/bin/app'] }, primary: 'p', backup: 'b',
    resources: [{ kind: 'disk', disk: 'shared0' }], autoRecover: false, attributes: {}, host: 'p', phase: 'normal', faults: [], ...more,
  };
}

/** Every record of `from` pushed into `to` (one direction of a full sync). */
function push(from: ClusterDb, to: ClusterDb): void {
  to.mergeSnapshot(from.snapshot());
}

function shuffle<T>(list: T[], rand: () => number): T[] {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

t.test('records', async (t) => {
  t.test('a registration spec gets its defaults and is checked', async (t) => {
    const s = parseAppSpec({ tag: 'CA-1', type: 'cluster-aware', command: { argv: ['/opt/a'] }, primary: 'p', backup: 'b' });
    t.same(s.resources, []);
    t.equal(s.autoRecover, false);
    t.same(s.attributes, {});
    t.throws(() => parseAppSpec({ ...s, backup: 'p' }), /backup: the backup must be another node than the primary \(p\)/);
    t.throws(() => parseAppSpec({ ...s, type: 'unclusterable' }), /type: expected cluster-capable or cluster-aware/);
    t.throws(() => parseAppSpec({ ...s, command: { argv: [] } }), /command.argv: expected a program/);
    t.throws(() => parseAppSpec({ ...s, tag: '-x' }), /tag: expected an app tag/);
    t.throws(() => parseAppSpec({ ...s, attributes: { n: Infinity } }), /attributes.n/);
  });

  t.test('an object from the network must be whole and consistent; unknown fields are refused', async (t) => {
    const db = new ClusterDb();
    const o = db.upsert(fields('a'), 'p', T0);
    t.same(parseAppEntry(JSON.parse(JSON.stringify(o))), o);
    t.throws(() => parseAppEntry({ ...o, host: 'c' }), /host: the host must be the primary, the backup or null/);
    t.throws(() => parseAppEntry({ ...o, extra: 1 }), /Unrecognized key/);
    t.throws(() => parseAppEntry({ ...o, faults: ['c'] }), /faults.0: a fault mark must name the primary or the backup/);
    t.throws(() => parseAppEntry({ ...o, faults: ['p', 'p'] }), /faults.1: p is marked twice/);
    const { faults: _f, ...older } = o;
    t.same(parseAppEntry(JSON.parse(JSON.stringify(older))), o, 'a replica written before fault marks existed reads as no marks');
    t.throws(() => parseAppEntry({ ...o, version: -1 }), /version/);
    t.throws(() => parseAppEntry({ tag: 'a', deleted: true, version: 1 }), /bad tombstone/);
    t.ok(isTombstone(parseAppEntry({ tag: 'a', deleted: true, version: 1, updatedBy: 'p', updatedAt: T0 })));
    t.same(parseMarker({ tag: 'a', pointer: 42, seq: 1, writtenBy: 'p' }).pointer, 42);
    t.throws(() => parseMarker({ tag: 'a', pointer: {}, seq: 1, writtenBy: 'p' }), RecordError);
  });

  t.test('resources are checked with the configuration\'s own rules, from an app\'s registration and from a replica alike: vigild acts on them as root', async (t) => {
    const s = parseAppSpec({ tag: 'CA-1', type: 'cluster-aware', command: { argv: ['/opt/a'] }, primary: 'p', backup: 'b' });
    const mount = (path: string, options: string[] = []) => ({ kind: 'mount', disk: 'shared0', path, fstype: 'ext4', options });
    const good = [{ kind: 'disk', disk: 'shared0' }, mount('/srv/db', ['noatime']), { kind: 'ip', address: 'fd00::10', prefixLength: 64, interface: { p: 'eth0' } }];
    t.same(parseAppSpec({ ...s, resources: good }).resources, good, 'the stored forms the configuration produces pass');
    const refused: [unknown, RegExp][] = [
      [mount('/etc'), /resources.0.path: \/etc is a system directory/],
      [mount('/usr/local/x'), /resources.0.path: \/usr\/local\/x is a system directory/],
      [mount('/'), /resources.0.path: \/ is a system directory/],
      [mount('/srv/../etc'), /resources.0.path: expected a plain path .*: \/etc/],
      [mount('srv/db'), /resources.0.path: expected an absolute path/],
      [mount('/srv/db', ['ro,remount']), /resources.0.options.0: expected one mount option per item/],
      [mount('/srv/db', ['-obind']), /resources.0.options.0: expected one mount option per item/],
      [{ ...mount('/srv/db'), fstype: '-t' }, /resources.0.fstype: expected a file system type/],
      [{ kind: 'ip', address: '10.0.0.300', prefixLength: 24, interface: {} }, /resources.0.address: expected an IPv4 or IPv6 address/],
      [{ kind: 'ip', address: '10.0.0.3', prefixLength: 33, interface: {} }, /resources.0.prefixLength: the prefix length is longer/],
      [{ kind: 'ip', address: '10.0.0.3', prefixLength: 24, interface: { p: 'eth0; reboot' } }, /resources.0.interface.p: expected an interface name/],
      [{ kind: 'script', run: 'rm -rf /' }, /resources.0.kind: expected a resource of kind disk, mount or ip/],
      [{ kind: 'disk', disk: 'shared0', extra: 1 }, /resources.0: Unrecognized key/],
    ];
    for (const [resource, why] of refused) t.throws(() => parseAppSpec({ ...s, resources: [resource] }), why, JSON.stringify(resource));
    const db = new ClusterDb();
    t.match(registrationCheck(db, 'CA-1', 'p', { spec: { ...s, resources: [mount('/etc')] } }),
      { kind: 'reject', reason: /\/etc is a system directory/ }, 'app.register is refused with the reason');
    const o = db.upsert(fields('a'), 'p', T0);
    t.throws(() => parseAppEntry({ ...o, resources: [mount('/boot')] }), /resources.0.path: \/boot is a system directory/, 'and so is a replica that carries one');
  });

  t.test('the canonical form ignores key order and undefined members', async (t) => {
    t.equal(canonicalJson({ b: 1, a: [{ y: 2, x: undefined, w: 'z' }] }), '{"a":[{"w":"z","y":2}],"b":1}');
    t.equal(contentHash({ a: 1, b: 2 }), contentHash({ b: 2, a: 1 }));
    t.not(contentHash({ a: 1 }), contentHash({ a: '1' }));
  });

  t.test('a snapshot with a bad record names its place', async (t) => {
    const o = new ClusterDb().upsert(fields('a'), 'p', T0);
    t.throws(() => parseSnapshot({ apps: [o, { ...o, tag: 'b', backup: 'p' }], markers: [] }), /apps\[1\] \(b\): backup: the backup must be another node/);
    t.throws(() => parseSnapshot({ apps: [o, o], markers: [] }), /apps\[1\] \(a\): a second record for the tag/);
    t.throws(() => parseSnapshot([]), /expected \{ apps/);
  });
});

t.test('behaviour 1: a registration creates one complete object, which reaches the backup\'s replica', async (t) => {
  const p = new ClusterDb();
  const b = new ClusterDb();
  const spec = { tag: 'CA-1', type: 'cluster-capable', command: { argv: ['/usr/bin/app', '-d'] }, primary: 'p', backup: 'b', resources: [{ kind: 'disk', disk: 'shared0' }], autoRecover: true };
  const d = registrationCheck(p, 'CA-1', 'p', { spec });
  if (d.kind !== 'create') throw new Error(`expected create, got ${d.kind}`);
  t.equal(d.run, true);
  const o = p.upsert(d.object, 'p', T0);
  t.match(o, {
    tag: 'CA-1', type: 'cluster-capable', command: { argv: ['/usr/bin/app', '-d'] }, host: 'p', primary: 'p', backup: 'b',
    resources: [{ kind: 'disk', disk: 'shared0' }], autoRecover: true, phase: 'normal', version: 1, updatedBy: 'p', updatedAt: T0,
  });
  t.same(p.list().map((x) => x.tag), ['CA-1']);
  t.same(b.merge(o), { applied: true, conflict: false });
  t.same(b.get('CA-1'), o);
  t.equal(b.digest(), p.digest());
});

t.test('behaviour 3: every write reaches every reachable replica; converged replicas hash the same', async (t) => {
  const nodes = [new ClusterDb(), new ClusterDb(), new ClusterDb()] as const;
  const [p, b, c] = nodes;
  const everywhere = (from: ClusterDb) => { for (const n of nodes) if (n !== from) push(from, n); };
  p.upsert(fields('a'), 'p', T0);
  everywhere(p);
  b.update('a', { host: 'b', phase: 'failed-over' }, 'b', T0 + 1); // failover
  everywhere(b);
  p.update('a', { host: null, phase: 'normal' }, 'p', T0 + 2); // unload
  everywhere(p);
  c.update('a', { backup: 'c' }, 'c', T0 + 3); // affiliation change
  everywhere(c);
  for (const n of nodes) t.match(n.get('a'), { host: null, backup: 'c', version: 4 });
  t.equal(p.digest(), b.digest());
  t.equal(b.digest(), c.digest());
  t.same(p.versionMap(), c.versionMap());
  t.equal(serializeDatabase(p), serializeDatabase(c), 'equal replicas give equal files');
});

t.test('behaviour 4: the replica persists across a restart with its pre-crash values', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-db-'));
  const file = join(dir, 'db.json');
  const db = new ClusterDb();
  db.upsert(fields('a', { attributes: { tier: 'gold', weight: 3, on: true } }), 'p', T0);
  db.upsert(fields('b', { host: null }), 'p', T0);
  db.remove('b', 'p', T0 + 1);
  db.writeMarker('a', 'line-17', 'p');
  await saveDatabase(file, db);
  const again = await loadDatabase(file);
  t.same(again.snapshot(), db.snapshot());
  t.equal(again.digest(), db.digest());
  t.match(again.get('a'), { host: 'p', attributes: { tier: 'gold', weight: 3, on: true } });
  t.ok(again.entry('b') && isTombstone(again.entry('b')!), 'the tombstone persists too');
  t.equal(again.marker('a')?.pointer, 'line-17');
  t.equal((await stat(file)).mode & 0o777, 0o600, 'readable by root only: commands may carry secrets');
});

t.test('behaviour 5: when a stale replica rejoins, newer overwrites older and never the reverse', async (t) => {
  const p = new ClusterDb();
  const b = new ClusterDb();
  p.upsert(fields('a'), 'p', T0);
  push(p, b); // FIG. 4B
  const stale = new ClusterDb(p.snapshot()); // P's replica as it was when P failed (4C)
  b.update('a', { host: 'b', phase: 'failed-over' }, 'b', T0 + 10); // 4D
  // 4E: P comes back with host=p; 4F: the sync copies B's object onto P's, in both directions.
  const plan = syncPlan(stale.versionMap(), b.versionMap());
  t.same(plan, { send: { apps: [], markers: [], nodes: [] }, request: { apps: ['a'], markers: [], nodes: [] } });
  t.same(b.merge(stale.get('a')!), { applied: false, conflict: false }, 'B keeps its newer object');
  stale.mergeSnapshot(b.records(plan.request));
  t.equal(stale.get('a')?.host, 'b');
  t.equal(b.get('a')?.host, 'b');
  t.equal(stale.digest(), b.digest());
});

t.test('behaviour 6: additional attributes can be added, changed, removed, and are replicated', async (t) => {
  const p = new ClusterDb();
  const b = new ClusterDb();
  p.upsert(fields('a'), 'p', T0);
  p.setAttributes('a', { owner: 'ops', port: 8080 }, 'p', T0 + 1);
  push(p, b);
  t.same(b.get('a')?.attributes, { owner: 'ops', port: 8080 });
  b.setAttributes('a', { port: 8081, owner: null, tls: true }, 'b', T0 + 2);
  push(b, p);
  t.same(p.get('a')?.attributes, { port: 8081, tls: true });
  t.equal(p.get('a')?.version, 3);
  t.throws(() => p.setAttributes('a', { bad: {} as unknown as string }, 'p', T0), /attributes.bad/);
});

t.test('behaviour 7: the active space of a node lists exactly the objects it hosts', async (t) => {
  const db = new ClusterDb();
  db.upsert(fields('a'), 'p', T0);
  db.upsert(fields('b', { host: 'b' }), 'p', T0);
  db.upsert(fields('c', { primary: 'b', backup: 'p', host: 'b' }), 'b', T0);
  db.upsert(fields('d', { host: null }), 'p', T0);
  db.upsert(fields('e'), 'p', T0);
  db.remove('e', 'p', T0);
  t.same(db.activeSpace('p').map((o) => o.tag), ['a']);
  t.same(db.activeSpace('b').map((o) => o.tag), ['b', 'c']);
});

t.test('versions and writes', async (t) => {
  t.test('a write bumps the version; the same content again is not a write', async (t) => {
    const db = new ClusterDb();
    const a = db.upsert(fields('a'), 'p', T0);
    const digest = db.digest();
    t.equal(db.upsert(fields('a'), 'b', T0 + 5), a, 'unchanged object, same version');
    t.equal(db.update('a', { host: 'p' }, 'p', T0 + 5), a);
    t.equal(db.digest(), digest);
    t.equal(db.update('a', { autoRecover: true }, 'b', T0 + 6).version, 2);
  });

  t.test('ifHost makes a write a check-and-set on HOST', async (t) => {
    const db = new ClusterDb();
    db.upsert(fields('a'), 'p', T0);
    t.throws(() => db.update('a', { host: 'b' }, 'b', T0, { ifHost: null }), /HOST is p, not null; not written/);
    t.equal(db.update('a', { host: 'b' }, 'b', T0, { ifHost: 'p' }).host, 'b');
    t.throws(() => db.update('zz', { host: 'b' }, 'b', T0), /no app "zz"/);
    t.throws(() => db.update('a', { host: 'c' }, 'b', T0), /the host must be the primary, the backup or null/);
    t.equal(db.get('a')?.host, 'b', 'a refused write changes nothing');
  });

  t.test('equal version and writer with different content: the same winner everywhere, reported', async (t) => {
    const base = new ClusterDb();
    base.upsert(fields('a'), 'p', T0);
    const x = new ClusterDb(base.snapshot());
    const y = new ClusterDb(base.snapshot());
    // A node that lost its disk and wrote version 2 twice, differently.
    const ox = x.update('a', { autoRecover: true }, 'p', T0 + 1);
    const oy = y.update('a', { faults: ['b'] }, 'p', T0 + 1);
    t.equal(ox.version, oy.version);
    const rx = x.merge(oy);
    const ry = y.merge(ox);
    t.ok(rx.conflict && ry.conflict, 'both sides see the collision');
    t.not(rx.applied, ry.applied, 'exactly one side takes the other\'s copy');
    t.same(x.get('a'), y.get('a'));
    t.equal(x.digest(), y.digest());
  });

  t.test('the stamp order: epoch, then version, then writer, then content hash', async (t) => {
    t.equal(compareStamps({ epoch: 1, version: 1, by: 'a', hash: '0' }, { epoch: 0, version: 9, by: 'z', hash: 'f' }), 1, 'a newer era beats more writes');
    t.equal(compareStamps({ epoch: 0, version: 2, by: 'a', hash: '0' }, { epoch: 0, version: 1, by: 'z', hash: 'f' }), 1);
    t.equal(compareStamps({ epoch: 0, version: 2, by: 'a', hash: 'f' }, { epoch: 0, version: 2, by: 'b', hash: '0' }), -1);
    t.equal(compareStamps({ epoch: 0, version: 2, by: 'B', hash: '0' }, { epoch: 0, version: 2, by: 'a', hash: '0' }), -1, 'code units, not locale');
    t.equal(compareStamps({ epoch: 0, version: 2, by: 'a', hash: '1' }, { epoch: 0, version: 2, by: 'a', hash: '0' }), 1);
  });
});

t.test('ownership epochs', async (t) => {
  t.test('after a partition, the taker of the disks wins the object however often the fenced side wrote it', async (t) => {
    const p = new ClusterDb();
    p.upsert(fields('web'), 'p', T0);
    const b = new ClusterDb(p.snapshot());
    // b preempted p's key (reservation generation 40 after it) and took web over.
    b.update('web', { phase: 'failing-over' }, 'b', T0 + 1);
    b.update('web', { host: 'b', phase: 'failed-over' }, 'b', T0 + 2, { ifHost: 'p', token: 40 });
    // p, fenced but unaware, wrote the object five times meanwhile.
    for (let i = 0; i < 5; i++) p.setAttributes('web', { round: i }, 'p', T0 + 3 + i);
    t.ok(p.get('web')!.version > b.get('web')!.version, 'p wrote more often');
    p.merge(b.entry('web')!);
    b.merge(p.entry('web')!);
    for (const [name, db] of [['p', p], ['b', b]] as const) t.match(db.get('web'), { host: 'b', phase: 'failed-over' }, `${name}: b's takeover wins`);
    t.equal(p.digest(), b.digest());
  });

  t.test('every change of HOST opens a new era; a disk token raises it above the token\'s era; other writes keep it', async (t) => {
    const db = new ClusterDb();
    const o = db.upsert(fields('web'), 'p', T0);
    t.equal(o.epoch, 0);
    t.equal(db.setAttributes('web', { x: 1 }, 'p', T0).epoch, 0, 'an attribute write keeps the era');
    t.equal(db.update('web', { host: null }, 'p', T0).epoch, 1, 'unload: a new era');
    t.equal(db.update('web', { host: 'p' }, 'p', T0).epoch, 2, 'load: another');
    const taken = db.update('web', {}, 'p', T0, { token: 7 });
    t.equal(taken.epoch, epochFor(2, false, 7), 'the owner took its disks: the token\'s era');
    t.ok(taken.epoch > 2);
    t.equal(db.update('web', { host: 'b' }, 'b', T0, { token: 7 }).epoch, taken.epoch + 1, 'the same token again: one more');
    t.equal(epochFor(5, true, 0), 6);
  });

  t.test('records of replicas written before epochs existed read as epoch 0', async (t) => {
    const db = new ClusterDb();
    const o = db.upsert(fields('web'), 'p', T0);
    const { epoch: _e, ...old } = o;
    t.equal(parseAppEntry(old).epoch, 0);
  });
});

t.test('tombstones', async (t) => {
  t.test('a stale replica cannot resurrect a removed app', async (t) => {
    const p = new ClusterDb();
    p.upsert(fields('a'), 'p', T0);
    p.writeMarker('a', 7, 'p');
    const stale = new ClusterDb(p.snapshot());
    p.update('a', { host: null }, 'p', T0 + 1);
    const stone = p.remove('a', 'p', T0 + 2);
    t.same(stone, { tag: 'a', deleted: true, epoch: 2, version: 3, updatedBy: 'p', updatedAt: T0 + 2, attributes: {}, attributeStamps: {} }, 'unload and removal each open an era');
    t.equal(p.get('a'), undefined);
    t.same(p.list(), []);
    t.equal(p.marker('a')?.pointer, null, 'the marker is cleared with it');
    // The stale replica pushes its old copy, and pulls.
    t.same(p.merge(stale.get('a')!), { applied: false, conflict: false });
    t.equal(p.mergeMarker(stale.marker('a')!).applied, false);
    push(p, stale);
    t.equal(stale.get('a'), undefined);
    t.equal(stale.marker('a')?.pointer, null);
    t.equal(stale.digest(), p.digest());
    t.throws(() => p.remove('a', 'p', T0), /no app "a"/);
  });

  t.test('the tag can be registered again, above its tombstone', async (t) => {
    const p = new ClusterDb();
    p.upsert(fields('a'), 'p', T0);
    p.remove('a', 'p', T0 + 1);
    const b = new ClusterDb(p.snapshot());
    const again = p.upsert(fields('a', { backup: 'c' }), 'p', T0 + 2);
    t.equal(again.version, 3);
    t.equal(b.merge(again).applied, true);
    t.equal(b.get('a')?.backup, 'c');
  });
});

t.test('markers: newer seq wins, whoever wrote it; the seq is the write\'s time, kept growing', async (t) => {
  const p = new ClusterDb();
  const b = new ClusterDb();
  const m1 = p.writeMarker('a', 'L10', 'p', 100);
  const m2 = p.writeMarker('a', 'L20', 'p', 100);
  t.same([m1.seq, m2.seq], [100, 101], 'two writes in one millisecond still grow');
  t.equal(b.mergeMarker(m2).applied, true);
  t.equal(b.mergeMarker(m1).applied, false);
  const m3 = b.writeMarker('a', 'L30', 'b', 50); // after failover, B carries on from P's pointer (its clock behind)
  t.equal(m3.seq, 102);
  p.mergeMarker(m3);
  t.equal(p.marker('a')?.pointer, 'L30');
  t.equal(p.digest(), b.digest());
  // A write on a replica that had not heard of the last ones, made later: it is the one kept.
  const stale = new ClusterDb();
  stale.mergeMarker(m1);
  const late = stale.writeMarker('a', 'L40', 'c', 200);
  p.mergeMarker(late);
  stale.mergeMarker(m3);
  t.equal(p.marker('a')?.pointer, 'L40', 'the later write, though its replica was stale');
  t.equal(stale.marker('a')?.pointer, 'L40');
});

t.test('attributes merge key by key: writes to two attributes on two replicas both survive, also on a replica not synced yet', async (t) => {
  const p = new ClusterDb();
  p.upsert(fields('web', { attributes: { owner: 'ops' } }), 'p', T0);
  const b = new ClusterDb(p.snapshot());
  const stale = new ClusterDb(p.snapshot());
  p.setAttributes('web', { k0: 'from p' }, 'p', T0 + 10);
  b.setAttributes('web', { k1: 'from b' }, 'b', T0 + 11);
  p.update('web', { autoRecover: true }, 'p', T0 + 12); // p also wrote the record more often
  stale.setAttributes('web', { k0: 'later, on a stale replica', owner: null }, 'c', T0 + 20);
  for (const [x, y] of [[p, b], [b, stale], [stale, p], [p, b]] as const) {
    for (const e of x.snapshot().apps) y.merge(e);
    for (const e of y.snapshot().apps) x.merge(e);
  }
  for (const [name, db] of [['p', p], ['b', b], ['stale', stale]] as const) {
    t.same(db.get('web')?.attributes, { k0: 'later, on a stale replica', k1: 'from b' }, `${name}: both keys, the later k0, owner removed`);
    t.equal(db.get('web')?.autoRecover, true, `${name}: the record's other fields from its newest write`);
  }
  t.equal(p.digest(), b.digest());
  t.equal(b.digest(), stale.digest());
});

t.test('fault marks merge node by node: an operator\'s load that clears a mark survives a concurrent write of another field made from a view that still had it', async (t) => {
  // Nemesis lab seed 2044464527: the app faulted on its host (here b, marked), the other node, just
  // restarted, began a takeover and wrote the phase while the host's operator load cleared the mark; both
  // wrote the same version. Taken whole, the taker's record (it won the tie) brought the mark back, the
  // host never started the app, and it ran nowhere.
  const p = new ClusterDb();
  p.upsert(fields('web', { host: 'b' }), 'p', T0);
  p.update('web', { faults: ['b'] }, 'b', T0 + 1);
  const b = new ClusterDb(p.snapshot());
  const cleared = b.update('web', { faults: [] }, 'b', T0 + 10);
  const phase = p.update('web', { phase: 'failing-over' }, 'p', T0 + 11);
  t.equal(cleared.version, phase.version, 'the same version: concurrent');
  t.ok(compareStamps({ epoch: phase.epoch, version: phase.version, by: 'p', hash: '' }, { epoch: cleared.epoch, version: cleared.version, by: 'b', hash: '' }) > 0, 'the taker\'s record wins the tie');
  b.merge(phase);
  p.merge(cleared);
  for (const [name, db] of [['p', p], ['b', b]] as const) t.same(db.get('web')?.faults, [], `${name}: the mark stays cleared`);
  t.equal(p.digest(), b.digest(), 'the replicas agree');
  // A mark set later than a clear elsewhere wins, whatever the records' versions, within one epoch; a
  // record of a later epoch (a takeover) is taken whole.
  const late = b.update('web', { faults: ['b'] }, 'b', T0 + 20);
  p.update('web', { autoRecover: true }, 'p', T0 + 21);
  p.update('web', { command: { argv: ['/usr/bin/app', '-v'] } }, 'p', T0 + 22);
  p.merge(late);
  t.same(p.get('web')?.faults, ['b'], 'b\'s newer mark kept beside p\'s newer record');
  const moved = b.update('web', { host: 'p', faults: [] }, 'b', T0 + 30);
  p.update('web', { faults: ['b'] }, 'p', T0 + 31);
  p.merge(moved);
  t.same(p.get('web')?.faults, [], 'the takeover\'s record, of a later epoch, whole');
});

t.test('merge convergence: the same writes applied in random orders give identical replicas', async (t) => {
  for (const seed of [1, 2, 3, 42, 1234, ...Array.from({ length: 40 }, (_, i) => 5000 + i)]) {
    const rand = prng(seed);
    // Writers on three nodes, each from its own view, some concurrent (same version, different writer).
    const source = [new ClusterDb(), new ClusterDb(), new ClusterDb()];
    const names = ['p', 'b', 'c'];
    const updates: AppEntry[] = [];
    const markers: Marker[] = [];
    for (let i = 0; i < 60; i++) {
      const w = Math.floor(rand() * 3);
      const db = source[w]!;
      const by = names[w]!;
      const tag = `app${Math.floor(rand() * 4)}`;
      const r = rand();
      const cur = db.get(tag);
      if (!cur) updates.push(db.upsert(fields(tag, { attributes: { n: i } }), by, T0 + i));
      else if (r < 0.1) updates.push(db.remove(tag, by, T0 + i));
      else if (r < 0.45) updates.push(db.update(tag, { host: rand() < 0.5 ? 'p' : 'b' }, by, T0 + i));
      else if (r < 0.55) {
        const node = rand() < 0.5 ? 'p' : 'b';
        const faults = cur.faults.includes(node) ? cur.faults.filter((n) => n !== node) : [...cur.faults, node];
        updates.push(db.update(tag, { faults }, by, T0 + Math.floor(rand() * 60)));
      }
      else if (r < 0.8) updates.push(db.setAttributes(tag, { [`k${Math.floor(rand() * 3)}`]: rand() < 0.2 ? null : i }, by, T0 + Math.floor(rand() * 60)));
      else markers.push(db.writeMarker(tag, i, by));
      // Sometimes a writer hears what another wrote before its next write.
      if (rand() < 0.3) {
        const o = Math.floor(rand() * 3);
        source[o]!.mergeSnapshot(source[w]!.snapshot());
      }
    }
    const replicas = [0, 1, 2].map(() => new ClusterDb());
    for (const r of replicas) {
      const ops = shuffle([...updates.map((u) => ({ u })), ...markers.map((m) => ({ m }))], rand);
      for (const op of ops) {
        if ('u' in op) r.merge(op.u);
        else r.mergeMarker(op.m);
      }
    }
    const digests = replicas.map((r) => r.digest());
    t.same(new Set(digests).size, 1, `seed ${seed}: one digest (${digests.join(', ')})`);
    t.same(replicas[0]!.snapshot(), replicas[2]!.snapshot(), `seed ${seed}: identical content`);
  }
});

t.test('sync plan: what to send and what to request, and one round makes two replicas equal', async (t) => {
  const a = new ClusterDb();
  const b = new ClusterDb();
  a.upsert(fields('both'), 'p', T0);
  push(a, b);
  a.update('both', { host: 'b' }, 'p', T0 + 1); // a newer
  a.upsert(fields('only-a'), 'p', T0);
  b.upsert(fields('only-b'), 'b', T0);
  b.writeMarker('both', 5, 'b');
  b.upsert(fields('gone'), 'b', T0);
  a.merge(b.entry('gone')!);
  a.remove('gone', 'p', T0 + 2);
  const plan = syncPlan(a.versionMap(), b.versionMap());
  t.same(plan, { send: { apps: ['both', 'gone', 'only-a'], markers: [], nodes: [] }, request: { apps: ['only-b'], markers: ['both'], nodes: [] } });
  b.mergeSnapshot(a.records(plan.send));
  a.mergeSnapshot(b.records(plan.request));
  t.equal(a.digest(), b.digest());
  t.same(syncPlan(a.versionMap(), b.versionMap()), { send: { apps: [], markers: [], nodes: [] }, request: { apps: [], markers: [], nodes: [] } });
});

t.test('a version map from the network: checked, and a tag named like an Object member is just a tag', async (t) => {
  const a = new ClusterDb();
  a.upsert(fields('constructor'), 'p', T0);
  const wire = parseVersionMap(JSON.parse(JSON.stringify(new ClusterDb().versionMap())));
  t.same(syncPlan(a.versionMap(), wire).send.apps, ['constructor']);
  t.same(syncPlan(wire, a.versionMap()).request.apps, ['constructor']);
  t.throws(() => parseVersionMap({ apps: { a: { version: 1, by: 'p', hash: 'x' } }, markers: {} }), /bad version map: apps.a.hash/);
});

t.test('store', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-store-'));

  t.test('a missing file is an empty database', async (t) => {
    const db = await loadDatabase(join(dir, 'none.json'));
    t.same(db.snapshot(), { apps: [], markers: [] });
  });

  t.test('round trip through the file', async (t) => {
    const file = join(dir, 'rt.json');
    const db = new ClusterDb();
    db.upsert(fields('a', { command: { argv: ['/bin/x'], cwd: '/srv', env: { MODE: 'ha' } } }), 'p', T0);
    db.writeMarker('a', 3, 'p');
    await saveDatabase(file, db);
    const text = await readFile(file, 'utf8');
    t.match(text, /^\{\n "format": "vigil-db",\n "formatVersion": 1,/);
    t.same((await loadDatabase(file)).snapshot(), db.snapshot());
    t.same(parseDatabase(text).snapshot(), db.snapshot());
  });

  t.test('a torn temporary file beside the database does not break the load', async (t) => {
    const sub = await mkdtemp(join(dir, 'torn-'));
    const file = join(sub, 'db.json');
    const db = new ClusterDb();
    db.upsert(fields('a'), 'p', T0);
    await saveDatabase(file, db);
    // A writer killed mid-write leaves its temporary file, half written, beside the real one.
    await writeFile(join(sub, '.db.json.4242.1700000000000.tmp'), serializeDatabase(db).slice(0, 40));
    t.same((await loadDatabase(file)).snapshot(), db.snapshot());
    db.update('a', { host: 'b' }, 'b', T0 + 1);
    await saveDatabase(file, db);
    t.equal((await loadDatabase(file)).get('a')?.host, 'b');
  });

  t.test('a corrupt file is refused, named, and kept aside', async (t) => {
    for (const [name, content, why] of [
      ['trunc.json', serializeDatabase(new ClusterDb()).slice(0, 10), /not JSON/],
      ['empty.json', '', /not JSON/],
      ['other.json', '{"hello": 1}', /not a vigil database/],
      ['future.json', '{"format": "vigil-db", "formatVersion": 2, "apps": [], "markers": []}', /unknown format version/],
      ['badrec.json', '{"format": "vigil-db", "formatVersion": 1, "apps": [{"tag": "a"}], "markers": []}', /apps\[0\] \(a\)/],
    ] as const) {
      const sub = await mkdtemp(join(dir, 'corrupt-'));
      const file = join(sub, name);
      await writeFile(file, content);
      const err = await loadDatabase(file, T0).then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof CorruptDatabaseError, name);
      const e = err as CorruptDatabaseError;
      t.match(e.message, why, `${name}: says what is wrong`);
      t.match(e.message, `the database ${file} is corrupt`);
      t.equal(e.keptAs, `${file}.corrupt-${T0}`);
      t.same(await readdir(sub), [`${name}.corrupt-${T0}`], `${name}: moved aside, not lost`);
      t.equal(await readFile(e.keptAs, 'utf8'), content);
      t.same((await loadDatabase(file)).list(), [], 'the next start begins empty');
    }
  });

  t.test('a file that cannot be read is an error, and is left where it is', async (t) => {
    const sub = await mkdtemp(join(dir, 'unreadable-'));
    await mkdir(join(sub, 'db.json'));
    await t.rejects(loadDatabase(join(sub, 'db.json')), { code: 'EISDIR' });
    t.same(await readdir(sub), ['db.json']);
    if (process.getuid?.() !== 0) {
      const f = join(sub, 'locked.json');
      await writeFile(f, serializeDatabase(new ClusterDb()));
      await chmod(f, 0o000);
      await t.rejects(loadDatabase(f), { code: 'EACCES' });
    }
  });
});

t.test('size limits: a record too large for one replication message, or one app more than the cluster replicates, is refused with the reason', async (t) => {
  const db = new ClusterDb();
  t.throws(() => db.upsert(fields('big', { attributes: { blob: 'x'.repeat(40_000) } }), 'p', T0), /its record would be \d+ characters, more than the 32768/);
  t.equal(db.get('big'), undefined, 'nothing written');
  for (let i = 0; i < 128; i++) db.upsert(fields(`a${i}`), 'p', T0);
  t.throws(() => db.upsert(fields('one-more'), 'p', T0), /holds 128 apps/);
  t.doesNotThrow(() => db.update('a0', { autoRecover: true }, 'p', T0), 'an existing app may still be written');
});

// The available-server list's records in the cluster database (src/db/node-record.ts, database.ts):
// the owner's writes order by seq, an operator's request written on another replica survives the
// owner's next write, and replicas that saw the same writes converge whatever the order.
import t from 'tap';

import { ClusterDb, parseSnapshot, parseVersionMap, syncPlan } from '../../src/db/database.js';
import { pendingRequest, type NodeRecord } from '../../src/db/node-record.js';

const base = (state: NodeRecord['state'] = 'available'): Omit<NodeRecord, 'seq' | 'writtenBy'> => ({ node: 'a', role: 'primary', state, since: 1000 });

/** Carries every record of `from` into `to` through a sync plan, as replication does. */
function sync(from: ClusterDb, to: ClusterDb): void {
  const plan = syncPlan(from.versionMap(), to.versionMap());
  to.mergeSnapshot(from.records(plan.send));
}

t.test('the owner\'s later write wins on every replica; seq stays above the replica\'s even with a clock behind', async (t) => {
  const a = new ClusterDb();
  const first = a.writeNode(base('available'), 'a', 5000);
  const second = a.writeNode(base('duplexing'), 'a', 4000); // the clock stepped back
  t.ok(second.seq > first.seq, `seq ${second.seq} > ${first.seq}`);
  const b = new ClusterDb();
  b.mergeNode(second);
  t.equal(b.mergeNode(first).applied, false, 'the older write does not replace the newer');
  t.equal(b.node('a')?.state, 'duplexing');
});

t.test('an operator\'s request written on another node survives the owner\'s next write made before it heard of it', async (t) => {
  const a = new ClusterDb();
  const b = new ClusterDb();
  b.mergeNode(a.writeNode(base('available'), 'a', 1000));
  b.requestNode('a', { action: 'cancel', by: 'b', at: 1500 });
  a.writeNode(base('duplexing'), 'a', 2000); // a has not heard of the request
  sync(a, b);
  sync(b, a);
  for (const [name, db] of [['a', a], ['b', b]] as const) {
    t.equal(db.node('a')?.state, 'duplexing', `${name}: the owner's state stands`);
    t.equal(db.node('a')?.request?.action, 'cancel', `${name}: the request stands`);
  }
  t.equal(a.digest(), b.digest(), 'the replicas agree');
  t.equal(pendingRequest(a.node('a')!)?.action, 'cancel', 'pending until the owner marks it handled');
  a.writeNode({ ...base('available'), handledRequestAt: 1500 }, 'a', 3000);
  t.equal(pendingRequest(a.node('a')!), undefined, 'handled');
  t.equal(a.node('a')?.request?.action, 'cancel', 'the request is kept (its time orders the next one)');
});

t.test('a request needs the node\'s record; the newer of two requests wins', async (t) => {
  const db = new ClusterDb();
  t.throws(() => db.requestNode('a', { action: 'run', by: 'b', at: 1 }), /a has published no record yet/);
  db.writeNode(base(), 'a', 1000);
  db.requestNode('a', { action: 'postpone', by: 'b', at: 2000, until: 9000 });
  db.requestNode('a', { action: 'run', by: 'c', at: 1900 });
  t.equal(db.node('a')?.request?.action, 'postpone', 'the request at 1900 lost to the one at 2000');
});

t.test('replicas converge whatever the order they merge the same records in', async (t) => {
  const writes: NodeRecord[] = [];
  const owner = new ClusterDb();
  const other = new ClusterDb();
  for (let i = 0; i < 6; i++) {
    writes.push(owner.writeNode({ ...base(i % 2 ? 'rejuvenating' : 'probation'), since: i }, 'a', 1000 + i));
    other.mergeNode(writes[writes.length - 1]!);
    if (i === 2) writes.push(other.requestNode('a', { action: 'cancel', by: 'b', at: 5000 }));
    if (i === 4) writes.push(other.requestNode('a', { action: 'run', by: 'c', at: 4000 }));
  }
  const digests = new Set<number>();
  for (let seed = 1; seed <= 30; seed++) {
    let x = seed;
    const order = [...writes].sort(() => ((x = (x * 1103515245 + 12345) % 2 ** 31) % 3) - 1);
    const db = new ClusterDb();
    for (const w of order) db.mergeNode(w);
    digests.add(db.digest());
  }
  t.equal(digests.size, 1, 'one result for 30 orders');
});

t.test('snapshots and version maps carry node records only when there are some (older agents refuse the key)', async (t) => {
  const db = new ClusterDb();
  t.notOk('nodes' in db.snapshot(), 'no nodes key in an empty snapshot');
  t.notOk('nodes' in db.versionMap(), 'nor in the version map');
  db.writeNode({ ...base(), headroom: { at: 1, cpus: 2, load: 0.5, memTotal: 100, memAvailable: 50, apps: { web: { rss: 10, cpu: 0.1 } } } }, 'a', 1000);
  const snap = JSON.parse(JSON.stringify(db.snapshot())) as unknown;
  const back = new ClusterDb(parseSnapshot(snap));
  t.equal(back.digest(), db.digest(), 'a snapshot with a node record parses back to the same replica');
  t.same(parseVersionMap(JSON.parse(JSON.stringify(db.versionMap()))), db.versionMap());
  t.same(parseSnapshot({ apps: [], markers: [] }), { apps: [], markers: [] }, 'a snapshot from before node records parses');
  t.throws(() => parseSnapshot({ apps: [], markers: [], nodes: [{ node: 'a', state: 'asleep' }] }), /nodes\[0\] \(a\): /, 'a bad node record is named by its place');
  t.throws(() => parseSnapshot({ apps: [], markers: [], nodes: [db.node('a'), db.node('a')] }), /a second record for the node/);
});

t.test('a request is exchanged although its stamp equals the owner\'s copy', async (t) => {
  const a = new ClusterDb();
  const b = new ClusterDb();
  b.mergeNode(a.writeNode(base(), 'a', 1000));
  b.requestNode('a', { action: 'run', by: 'b', at: 1200 });
  const plan = syncPlan(b.versionMap(), a.versionMap());
  t.same(plan.send.nodes, ['a'], 'sent');
  t.same(plan.request.nodes, ['a'], 'and asked for, to merge both');
  sync(b, a);
  t.equal(a.node('a')?.request?.action, 'run');
  t.equal(a.digest(), b.digest());
});

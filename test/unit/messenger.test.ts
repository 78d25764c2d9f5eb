// Agent messages (database replication): a message too large for one datagram arrives whole through its
// fragments; a copy arriving on the second network is dropped as a replay; authenticated garbage (bad JSON,
// bad envelopes, bad fragments) and forged datagrams are counted and dropped, never thrown.
import { randomBytes } from 'node:crypto';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { MAX_PARTIALS_PER_PEER, Messenger, MessageTooLargeError, type Received } from '../../src/daemon/messenger.js';
import { updates } from '../../src/daemon/replication.js';
import { clusterTag, encodeDatagram, MessageType, Stream } from '../../src/wire/datagram.js';
import { prng } from '../support/prng.js';

const KEY = randomBytes(32);
const config = parseConfig(`
cluster: unit
keyFile: k
networks: [ { name: lan1, port: 7400 }, { name: lan2, port: 7410 } ]
nodes:
  - { name: a, id: 1, addresses: { lan1: 127.0.1.1, lan2: 127.0.2.1 } }
  - { name: b, id: 2, addresses: { lan1: 127.0.1.2, lan2: 127.0.2.2 } }
`, 'unit.yaml', { baseDir: '/tmp' });
const [a, b] = config.nodes as [typeof config.nodes[0], typeof config.nodes[0]];

/** Captures what `from` would put on the wire instead of sending it. */
function sender(incarnation = 100n): { m: Messenger; wire: Buffer[] } {
  const m = new Messenger(config, a, KEY, incarnation, () => {});
  const wire: Buffer[] = [];
  (m as unknown as { sockets: { send: (d: Buffer) => void }[] }).sockets.push({ send: (d: Buffer) => wire.push(Buffer.from(d)) });
  return { m, wire };
}

function receiver(): { m: Messenger; got: Received[] } {
  const got: Received[] = [];
  return { m: new Messenger(config, b, KEY, 200n, (r) => got.push(r)), got };
}

t.test('a message larger than a datagram arrives whole; the same bytes again are a replay', async (t) => {
  const { m: out, wire } = sender();
  const entries = Array.from({ length: 40 }, (_, i) => ({ tag: `app-${i}`, blob: 'x'.repeat(100) }));
  out.send(b, { kind: 'update', entries, markers: [] });
  t.ok(wire.length > 1, `sent as ${wire.length} fragments`);
  const { m: into, got } = receiver();
  for (const d of wire) into.receive(d);
  t.equal(got.length, 1, 'delivered once, whole');
  t.same(got[0]?.message, { kind: 'update', entries, markers: [] });
  t.equal(got[0]?.from.name, 'a');
  for (const d of wire) into.receive(d);
  t.equal(got.length, 1, 'the copies from the other network are dropped');
  t.equal(into.dropped.replay, wire.length);
});

t.test('authenticated garbage and forged datagrams are counted and dropped, never thrown', async (t) => {
  const { m: into, got } = receiver();
  const rand = prng(99);
  let seq = 1n;
  const signed = (payload: Buffer, type: number = MessageType.DB_UPDATE) => encodeDatagram(KEY, {
    type: type as MessageType, stream: Stream.AGENT, sender: 1, clusterTag: clusterTag('unit'), incarnation: 5n, sequence: seq++,
  }, payload);
  const payloads = [
    'not json', '[]', 'null', '{"m": 3}', '{"m": {"kind": "update"}}', '{"m": {"kind": "digest", "reply": "yes", "versions": {}}}',
    '{"f": 1, "i": 5, "n": 2, "d": "x"}', '{"f": 1, "i": 0, "n": 1000, "d": "x"}', '{"f": "x"}',
  ];
  for (const p of payloads) t.doesNotThrow(() => into.receive(signed(Buffer.from(p))), p);
  for (let i = 0; i < 2000; i++) {
    const n = Math.floor(rand() * 300);
    const bytes = Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    into.receive(i % 2 ? bytes : signed(bytes));
  }
  into.receive(signed(Buffer.from('{"m": {"kind": "digest", "reply": false, "versions": {"apps": {}, "markers": {}}}}'), MessageType.DB_DIGEST));
  t.equal(got.length, 1, 'only the one well-formed message came through');
  t.ok(Object.values(into.dropped).reduce((x, y) => x + y, 0) >= 2000, `drops: ${JSON.stringify(into.dropped)}`);
});

t.test('distress datagrams (stream 2) are handed over as they came; without a handler they are counted and dropped', async (t) => {
  const header = { type: MessageType.DISTRESS, stream: Stream.DISTRESS, sender: a.id, clusterTag: clusterTag('unit'), incarnation: 100n, sequence: 1n };
  const datagram = encodeDatagram(KEY, header, Buffer.alloc(32, 1));
  const handed: Buffer[] = [];
  const got: Received[] = [];
  const m = new Messenger(config, b, KEY, 200n, (r) => got.push(r), 2000, (buf) => handed.push(buf));
  m.receive(datagram);
  t.equal(handed.length, 1, 'handed to the distress receiver');
  t.equal(handed[0], datagram, 'the bytes as they came');
  t.same(got, [], 'not an agent message');
  const { m: plain } = receiver();
  plain.receive(datagram);
  t.same(plain.dropped, { stream: 1 }, 'no handler: dropped as another stream');
});

t.test('a message over the fragment limit is refused before anything is sent; updates() cuts records into messages that fit', async (t) => {
  const { m, wire } = sender();
  const big = Array.from({ length: 80 }, (_, i) => ({ tag: `t${i}`, note: 'x'.repeat(900) }));
  t.throws(() => m.send(b, { kind: 'update', entries: big, markers: [] }), MessageTooLargeError);
  t.equal(wire.length, 0, 'nothing on the wire');
  const messages = updates({ apps: big as never[], markers: [] });
  t.ok(messages.length >= 2, `${messages.length} messages`);
  t.same(messages.flatMap((x) => x.entries), big, 'every record, once, in order');
  const { m: r, got } = receiver();
  for (const message of messages) m.send(b, message);
  for (const d of wire) r.receive(d);
  t.equal(got.length, messages.length, 'each arrives whole');
  t.same(updates({ apps: [], markers: [] }), [{ kind: 'update', entries: [], markers: [] }], 'nothing to send: one empty update, as before');
  // Node records travel under `nodes`, a key an older agent does not know: only in messages that carry some.
  const nodes = Array.from({ length: 60 }, (_, i) => ({ node: `n${i}`, note: 'y'.repeat(900) }));
  const mixed = updates({ apps: big.slice(0, 3) as never[], markers: [], nodes: nodes as never[] });
  t.ok(mixed.length >= 2, `${mixed.length} messages for 3 apps and 60 node records`);
  t.same(mixed.flatMap((x) => x.nodes ?? []), nodes, 'every node record, once, in order');
  t.notOk('nodes' in updates({ apps: big.slice(0, 3) as never[], markers: [] })[0]!, 'a message without node records has no nodes key');
  for (const message of mixed) t.doesNotThrow(() => m.send(b, message), 'each fits');
});


/** A message that needs several fragments; `mark` tells two of the same size apart. */
const large = (mark: string) => ({ kind: 'update' as const, entries: Array.from({ length: 40 }, (_, i) => ({ tag: `app-${i}`, blob: mark.repeat(100) })), markers: [] });

t.test('fragments of a sender\'s earlier life never complete a message of its new one', async (t) => {
  const { m: before, wire: old } = sender(100n);
  before.send(b, large('o'));
  const { m: after, wire: fresh } = sender(101n);
  after.send(b, large('n'));
  t.equal(old.length, fresh.length, 'the same number of fragments, and both messages are the restarted sender\'s first');
  const { m: into, got } = receiver();
  into.receive(old[0]!);
  for (const d of fresh) into.receive(d);
  t.equal(got.length, 1);
  t.same(got[0]?.message, large('n'), 'the new life\'s message, whole');
});

t.test('a sender\'s incomplete messages are held at most MAX_PARTIALS_PER_PEER at a time: the oldest is dropped first', async (t) => {
  const { m: out, wire } = sender();
  const per: Buffer[][] = [];
  for (let i = 0; i <= MAX_PARTIALS_PER_PEER; i++) {
    const from = wire.length;
    out.send(b, large(String.fromCharCode(97 + i)));
    per.push(wire.slice(from));
  }
  const { m: into, got } = receiver();
  for (const message of per) into.receive(message[0]!); // the first fragment of each only
  t.equal(into.dropped['fragment-evicted'], 1, 'one more than the bound: the oldest went');
  for (const message of per.slice(1)) for (const d of message.slice(1)) into.receive(d);
  t.equal(got.length, MAX_PARTIALS_PER_PEER, 'the others complete');
  t.same(got.map((r) => (r.message as { entries: { blob: string }[] }).entries[0]!.blob[0]), per.slice(1).map((_, i) => String.fromCharCode(98 + i)));
});

t.test('an incomplete message expires after fragmentTimeoutMs on the monotonic clock given to receive', async (t) => {
  const { m: out, wire } = sender();
  out.send(b, large('x'));
  const { m: into, got } = receiver();
  into.receive(wire[0]!, 1000);
  for (const d of wire.slice(1)) into.receive(d, 1000 + 2001);
  t.equal(got.length, 0);
  t.equal(into.dropped['fragment-timeout'], 1);
});

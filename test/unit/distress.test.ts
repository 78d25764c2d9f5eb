// The DISTRESS message, pure: its payload at fixed offsets, the strict decoder, the send-mode policy, the
// deduplicator, the receiver's checks in order (authentic, a distress, a known peer, a current incarnation,
// not a replay, not a repeat), fuzzing, and the options the native sender is armed with from a config.
import { randomBytes } from 'node:crypto';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import {
  clusterTag, decodeDatagram, encodeDatagram, encodeHeartbeat, MessageType, Stream,
} from '../../src/wire/datagram.js';
import {
  checkDistressHeader, decodeDistressPayload, defaultSendMode, DEFAULT_SEND_MODES, DISTRESS_DATAGRAM_LENGTH,
  DISTRESS_PAYLOAD_LENGTH, DISTRESS_REASONS, distressHeader, DistressDeduplicator, DistressReceiver, encodeDistressPayload,
  isActionable, REASON_CODES, reasonCode, reasonOfCode, type DistressPayload,
} from '../../src/wire/distress.js';
import { armedReasonCodes, distressArming, distressOptions, distressPort, distressWarnings } from '../../src/wire/distress-arming.js';
import { mutate } from '../support/datagram-fuzz.js';
import { prng } from '../support/prng.js';

const KEY = randomBytes(32);
const TAG = clusterTag('unit');
const INC = 1_700_000_000_000n;

function payload(o: Partial<DistressPayload> = {}): DistressPayload {
  return {
    reasonCode: REASON_CODES['power-low-battery'], node: 2, incarnation: INC, event: 1n, repeat: 0, repeats: 3,
    armedAtMs: 1_700_000_000_123n, ...o,
  };
}

/** A datagram as the native sender builds it: header sequence = event + repeat. */
function distress(o: Partial<DistressPayload> = {}, key = KEY, tag = TAG): Buffer {
  const p = payload(o);
  return encodeDatagram(key, distressHeader(tag, p), encodeDistressPayload(p));
}

function receiver(o: Partial<ConstructorParameters<typeof DistressReceiver>[0]> = {}): DistressReceiver {
  return new DistressReceiver({ key: KEY, clusterTag: TAG, selfId: 1, peers: [2, 3], ...o });
}

t.test('the payload: 32 bytes at fixed offsets, big-endian, and the datagram is 94 bytes', async (t) => {
  const p = encodeDistressPayload(payload({ reasonCode: 0x0102, node: 0x0304, incarnation: 0x1112131415161718n, event: 0x2122232425262728n, repeat: 1, repeats: 3, armedAtMs: 0x3132333435363738n }));
  t.equal(p.length, DISTRESS_PAYLOAD_LENGTH);
  t.equal(p.toString('hex'), [
    '01', '01', '03', '00', '0102', '0304', '1112131415161718', '2122232425262728', '3132333435363738',
  ].join(''));
  const d = distress({ repeat: 2, event: 10n });
  t.equal(d.length, DISTRESS_DATAGRAM_LENGTH);
  const h = decodeDatagram(KEY, d, TAG);
  t.ok(h.ok);
  if (!h.ok) return;
  t.same({ type: h.header.type, stream: h.header.stream, sequence: h.header.sequence }, { type: MessageType.DISTRESS, stream: Stream.DISTRESS, sequence: 12n });
  const back = decodeDistressPayload(h.payload);
  t.ok(back.ok);
  if (back.ok) {
    t.same(back.payload, payload({ repeat: 2, event: 10n }));
    t.equal(checkDistressHeader(h.header, back.payload), undefined);
  }
});

t.test('the payload decoder is strict and names what is wrong', async (t) => {
  const good = encodeDistressPayload(payload());
  const edit = (f: (b: Buffer) => void) => { const b = Buffer.from(good); f(b); return b; };
  const cases: [string, Uint8Array, string][] = [
    ['short', good.subarray(0, 31), 'payload-length'],
    ['long', Buffer.concat([good, Buffer.alloc(1)]), 'payload-length'],
    ['version 2', edit((b) => { b[0] = 2; }), 'payload-version'],
    ['repeats 0', edit((b) => { b[2] = 0; b[1] = 0; }), 'payload-repeat'],
    ['repeats 17', edit((b) => { b[2] = 17; }), 'payload-repeat'],
    ['repeat = repeats', edit((b) => { b[1] = 3; }), 'payload-repeat'],
    ['reason 0', edit((b) => { b.writeUInt16BE(0, 4); }), 'payload-reason'],
    ['node 0', edit((b) => { b.writeUInt16BE(0, 6); }), 'payload-node'],
    ['incarnation 0', edit((b) => { b.writeBigUInt64BE(0n, 8); }), 'payload-incarnation'],
    ['event 0', edit((b) => { b.writeBigUInt64BE(0n, 16); }), 'payload-event'],
    ['event + repeat past 2^64-1', edit((b) => { b.writeBigUInt64BE(2n ** 64n - 1n, 16); b[1] = 1; }), 'payload-event'],
  ];
  for (const [what, bytes, reason] of cases) t.same(decodeDistressPayload(bytes), { ok: false, reason }, what);
  t.same(decodeDistressPayload('x' as unknown as Uint8Array), { ok: false, reason: 'payload-length' }, 'not bytes');
  // Flag bits are ignored on receipt, like the heartbeat's.
  t.ok(decodeDistressPayload(edit((b) => { b[3] = 0xff; })).ok, 'flags ignored');
  // An unknown reason code is still a distress: the sender is leaving either way.
  const unknown = decodeDistressPayload(edit((b) => { b.writeUInt16BE(999, 4); }));
  t.ok(unknown.ok);
  if (unknown.ok) t.equal(reasonOfCode(unknown.payload.reasonCode), 'unknown');
});

t.test('the encoder refuses what must never be sent', async (t) => {
  for (const [what, o] of [
    ['reason 0', { reasonCode: 0 }], ['reason 65536', { reasonCode: 65536 }], ['node 0', { node: 0 }],
    ['repeats 0', { repeats: 0, repeat: 0 }], ['repeats 17', { repeats: 17 }], ['repeat 3 of 3', { repeat: 3 }],
    ['incarnation 0', { incarnation: 0n }], ['event 0', { event: 0n }], ['armedAtMs -1', { armedAtMs: -1n }],
    ['event overflow', { event: 2n ** 64n - 1n, repeat: 1 }],
  ] as [string, Partial<DistressPayload>][]) {
    t.throws(() => encodeDistressPayload(payload(o)), RangeError, what);
  }
});

t.test('the header must agree with the payload', async (t) => {
  const p = payload({ event: 5n, repeat: 1 });
  const h = distressHeader(TAG, p);
  t.equal(checkDistressHeader(h, p), undefined);
  t.equal(checkDistressHeader({ ...h, sender: 3 }, p), 'payload-mismatch');
  t.equal(checkDistressHeader({ ...h, incarnation: INC + 1n }, p), 'payload-mismatch');
  t.equal(checkDistressHeader({ ...h, sequence: 5n }, p), 'payload-mismatch');
});

t.test('reason codes are distinct and stable; the send mode follows seed 002 (unknown → sync)', async (t) => {
  const codes = DISTRESS_REASONS.map(reasonCode);
  t.equal(new Set(codes).size, codes.length);
  t.same(codes, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'the wire codes never change meaning');
  for (const r of DISTRESS_REASONS) t.equal(reasonOfCode(reasonCode(r)), r);
  t.equal(reasonOfCode(0), 'unknown');
  t.throws(() => reasonCode('nope' as never), RangeError);
  t.equal(defaultSendMode('power-on-battery-grace'), 'async', 'on battery with time left: async');
  t.equal(defaultSendMode('power-low-battery'), 'sync');
  t.equal(defaultSendMode('power-forced-shutdown'), 'sync');
  t.equal(defaultSendMode('hardware-fault'), 'sync', 'hardware fault: sync');
  t.equal(defaultSendMode('fatal-signal'), 'sync');
  t.equal(defaultSendMode('link-down'), 'sync');
  t.equal(defaultSendMode('cosmic-rays'), 'sync', 'an event type not recognised: sync');
  t.equal(defaultSendMode('toString'), 'sync', 'not fooled by Object.prototype');
  t.equal(Object.keys(DEFAULT_SEND_MODES).length, DISTRESS_REASONS.length);
  t.equal(isActionable('operator-test'), false);
  t.equal(isActionable('unknown'), true);
});

t.test('the deduplicator: once per (sender, incarnation, reason, event), newest incarnation only, bounded', async (t) => {
  const d = new DistressDeduplicator(4);
  const k = { sender: 2, incarnation: 10n, reasonCode: 2, event: 1n };
  t.equal(d.first(k), true);
  t.equal(d.first(k), false, 'the same event again');
  t.equal(d.first({ ...k, reasonCode: 3 }), true, 'another reason');
  t.equal(d.first({ ...k, event: 4n }), true, 'another event of the same reason');
  t.equal(d.first({ ...k, sender: 3 }), true, 'another sender');
  t.equal(d.first({ ...k, incarnation: 9n }), false, 'an older incarnation');
  t.equal(d.first({ ...k, incarnation: 11n }), true, 'a newer incarnation starts afresh');
  t.equal(d.first(k), false, 'and the older one is refused from then on');
  const small = new DistressDeduplicator(2);
  for (let e = 1n; e <= 3n; e++) t.equal(small.first({ ...k, event: e }), true);
  t.equal(small.first({ ...k, event: 1n }), true, 'the oldest was forgotten (the replay window still guards it)');
  t.equal(small.first({ ...k, event: 3n }), false);
  t.throws(() => new DistressDeduplicator(0), RangeError);
});

t.test('the receiver accepts a distress once and collapses its repeats', async (t) => {
  const r = receiver();
  const first = r.receive(distress({ repeat: 0 }));
  t.ok(first.ok);
  if (first.ok) {
    t.same(first.distress, {
      sender: 2, incarnation: INC, reason: 'power-low-battery', reasonCode: 2, event: 1n, repeat: 0, repeats: 3,
      armedAtMs: 1_700_000_000_123n, sequence: 1n,
    });
    t.equal(first.actionable, true);
    t.equal(first.first, true, 'the one to fail the sender over on');
  }
  t.same(r.receive(distress({ repeat: 1 })), { ok: false, reason: 'duplicate' }, 'copy 1');
  t.same(r.receive(distress({ repeat: 0 })), { ok: false, reason: 'replay' }, 'copy 0 again (second network)');
  t.same(r.receive(distress({ repeat: 2 })), { ok: false, reason: 'duplicate' }, 'copy 2');
  // Copy 1 of an event whose copy 0 was lost is accepted: any copy will do.
  const second = r.receive(distress({ reasonCode: REASON_CODES['power-forced-shutdown'], event: 4n, repeat: 1 }));
  t.ok(second.ok, 'another event (another reason) from the same incarnation');
  if (second.ok) t.equal(second.first, false, 'but the sender is already failed: log it only');
  t.equal(r.accepted, 2);
  t.same(r.dropped, { duplicate: 2, replay: 1 });
});

t.test('the receiver drops, with a reason: forgeries, strangers, reflections, stale incarnations, other messages', async (t) => {
  const r = receiver({ currentIncarnation: (id) => (id === 3 ? INC + 10n : undefined) });
  const cases: [string, Buffer, string][] = [
    ['another key', distress({}, randomBytes(32)), 'hmac'],
    ['another cluster', distress({}, KEY, clusterTag('other')), 'cluster'],
    ['not ours', Buffer.alloc(DISTRESS_DATAGRAM_LENGTH, 0x41), 'magic'],
    ['unknown node', distress({ node: 9 }), 'unknown-node'],
    ['this node', distress({ node: 1 }), 'self'],
    ['older than the incarnation known from heartbeats', distress({ node: 3, incarnation: INC + 9n }), 'stale-incarnation'],
    ['a heartbeat', encodeDatagram(KEY, { ...distressHeader(TAG, payload()), type: MessageType.HEARTBEAT, stream: Stream.HEARTBEAT_ENGINE }, encodeHeartbeat({
      destination: 1, network: 0, leaseFresh: true, ackSeq: 0n, ackIncarnation: 0n, dbDigest: 0, sentAtMonoUs: 1n, echoSentAtUs: 0n, ackDelayUs: 0,
    })), 'not-distress'],
    ['a distress type on the agent stream', encodeDatagram(KEY, { ...distressHeader(TAG, payload()), stream: Stream.AGENT }, encodeDistressPayload(payload())), 'not-distress'],
    ['a signed payload that disagrees with its header', encodeDatagram(KEY, { ...distressHeader(TAG, payload()), sequence: 2n }, encodeDistressPayload(payload())), 'payload-mismatch'],
    ['a signed payload of the wrong size', encodeDatagram(KEY, distressHeader(TAG, payload()), Buffer.alloc(10)), 'payload-length'],
  ];
  for (const [what, buf, reason] of cases) t.same(r.receive(buf), { ok: false, reason }, what);
  t.equal(r.accepted, 0);
  // A malformed payload did not advance the replay window: the real one with the same sequence is accepted.
  t.ok(r.receive(distress()).ok);
  // An incarnation equal to or newer than the known one is fine.
  t.ok(r.receive(distress({ node: 3, incarnation: INC + 10n })).ok);
  // Once a newer incarnation spoke, the older one is stale (the replay window remembers).
  t.ok(r.receive(distress({ incarnation: INC + 1n })).ok);
  t.same(r.receive(distress({ incarnation: INC, event: 4n })), { ok: false, reason: 'stale-incarnation' });
});

t.test('an operator test is accepted, logged and never acted on; a new incarnation acts again', async (t) => {
  const r = receiver();
  const test = r.receive(distress({ reasonCode: REASON_CODES['operator-test'] }));
  t.ok(test.ok);
  if (test.ok) t.same([test.distress.reason, test.actionable, test.first], ['operator-test', false, false]);
  const real = r.receive(distress({ reasonCode: REASON_CODES['hardware-fault'], event: 4n }));
  t.ok(real.ok && real.first, 'the first actionable one after a test still acts');
  const again = r.receive(distress({ incarnation: INC + 1n, reasonCode: REASON_CODES['hardware-fault'] }));
  t.ok(again.ok && again.first, 'the sender restarted and signals again: acted on');
});

t.test('fuzz: 20,000 random and mutated buffers never throw; only authentic distress from a peer is accepted', async (t) => {
  const rand = prng(0x64697374);
  const int = (n: number) => Math.floor(rand() * n);
  const r = receiver();
  const seeds: Buffer[] = [];
  for (let e = 0; e < 4; e++) for (let rep = 0; rep < 3; rep++) seeds.push(distress({ event: BigInt(1 + e * 3), repeat: rep, reasonCode: 2 + e }));
  const strangers = [distress({ node: 9 }), distress({ node: 1 }), distress({}, randomBytes(32))];
  // The genuine ones first: 4 events accepted, their other copies duplicates.
  let accepted = 0;
  for (const s of seeds) if (r.receive(s).ok) accepted++;
  t.equal(accepted, 4);
  const reasons = new Map<string, number>();
  for (let n = 0; n < 20_000; n++) {
    let b: Buffer;
    const base = seeds[int(seeds.length)]!;
    switch (n % 7) {
      case 0: case 1: case 2: case 3: case 4: // random, header-fronted, byte changes, cut or extended, one bit flipped
        b = mutate(n % 7, base, rand, { keepHeader: 6, payloadBelow: 64, flipFrom: 0, clusterTag: TAG });
        break;
      case 5: // a replay of a genuine datagram
        b = Buffer.from(base);
        break;
      default: // well-formed and signed, but from a stranger, ourselves, or with another key
        b = strangers[int(strangers.length)]!;
        break;
    }
    let res;
    try {
      res = r.receive(b);
    } catch (e) {
      t.fail(`case ${n} threw ${String(e)}: ${b.toString('hex')}`);
      continue;
    }
    if (res.ok) {
      t.fail(`case ${n} accepted: ${b.toString('hex')}`);
      continue;
    }
    reasons.set(res.reason, (reasons.get(res.reason) ?? 0) + 1);
  }
  t.equal(r.accepted, 4, 'nothing accepted beyond the genuine four');
  // (Exact copies of the genuine ones are refused by the replay window before the deduplicator sees them.)
  for (const why of ['hmac', 'replay', 'unknown-node', 'self', 'short', 'length', 'magic']) {
    t.ok((reasons.get(why) ?? 0) > 0, `some dropped as ${why}`);
  }
  t.equal([...reasons.values()].reduce((a, b) => a + b, 0), 20_000);
});

// ---- arming from a config ----

const CONFIG = `
cluster: unit
keyFile: /etc/vigil/cluster.key
networks:
  - { name: lan1, port: 7400 }
  - { name: lan2, port: 7500 }
nodes:
  - { name: a, id: 1, addresses: { lan1: 10.1.0.1, lan2: 10.2.0.1 } }
  - { name: b, id: 2, addresses: { lan1: 10.1.0.2, lan2: 10.2.0.2 } }
  - { name: c, id: 7, addresses: { lan1: 10.1.0.7, lan2: "fd00::7" } }
`;

t.test('the sender is armed from the config: every peer on every network at port + 1, every reason', async (t) => {
  const config = parseConfig(CONFIG, '/etc/vigil/cluster.yaml');
  const self = config.nodes[1]!;
  const o = distressOptions(config, self, KEY, INC, { priority: 50 });
  t.same({ ...o, key: undefined }, {
    key: undefined, clusterTag: clusterTag('unit'), selfId: 2, incarnation: INC, reasons: [1, 2, 3, 4, 5, 6, 7, 8, 9],
    slots: 4, repeats: 3, repeatGapUs: 1000, priority: 50, nice: 0, lockMemory: true,
    networks: [{ bind: '10.1.0.2' }, { bind: '10.2.0.2' }],
    peers: [
      { id: 1, addresses: [{ network: 0, host: '10.1.0.1', port: 7401 }, { network: 1, host: '10.2.0.1', port: 7501 }] },
      { id: 7, addresses: [{ network: 0, host: '10.1.0.7', port: 7401 }, { network: 1, host: 'fd00::7', port: 7501 }] },
    ],
  });
  t.equal(o.key, KEY);
  t.equal(distressPort(7400), 7401);
  t.same(armedReasonCodes(), DISTRESS_REASONS.map(reasonCode));
});

t.test('the config\'s distress: section arms the sender: its defaults, or what the file gives', async (t) => {
  const byDefault = parseConfig(CONFIG, '/etc/vigil/cluster.yaml');
  t.strictSame(distressArming(byDefault.distress), { priority: 20, repeats: 3, repeatGapUs: 1000, lockMemory: true }, 'fatalSignals is the agent\'s, not the sender\'s');
  const config = parseConfig(`${CONFIG}distress: { priority: 0, repeats: 5, repeatGapUs: 250, lockMemory: false, fatalSignals: false }\n`, '/etc/vigil/cluster.yaml');
  t.match(distressOptions(config, config.nodes[0]!, KEY, INC, distressArming(config.distress)), {
    priority: 0, repeats: 5, repeatGapUs: 250, lockMemory: false, nice: 0, slots: 4,
  });
});

t.test('warnings: realtime refused, memory not locked; none when all is as asked or not asked', async (t) => {
  const ok = { priority: 50, realtime: true, schedError: 0, memoryLocked: true, memoryLockError: 0, codeLocked: true, codeLockError: 0 };
  t.same(distressWarnings(ok), []);
  t.same(distressWarnings({ ...ok, priority: 0, realtime: false, memoryLocked: false, codeLocked: false }), [], 'nothing asked');
  const w = distressWarnings({ ...ok, realtime: false, schedError: 1, memoryLocked: false, memoryLockError: 12, codeLocked: false, codeLockError: 12 });
  t.equal(w.length, 3);
  t.match(w[0], /SCHED_FIFO 50 refused \(errno 1\)/);
  t.match(w[1], /memory not locked \(errno 12\)/);
  t.match(w[2], /code pages not locked/);
});

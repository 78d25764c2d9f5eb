// The cluster wire format: datagram codec, heartbeat payload, replay windows, key file, incarnation.
import { createHmac } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import {
  clusterTag, decodeDatagram, decodeHeartbeat, encodeDatagram, encodeHeartbeat, HEADER_LENGTH, HEARTBEAT_PAYLOAD_LENGTH,
  MAC_LENGTH, MAX_DATAGRAM, MAX_PAYLOAD, MessageType, RESERVED_TYPE_CONTROL, Stream,
  type DatagramHeader, type Heartbeat, type RejectReason,
} from '../../src/wire/datagram.js';
import { nextIncarnation, INCARNATION_FILE } from '../../src/wire/incarnation.js';
import { generateClusterKey, KeyFileError, loadClusterKey } from '../../src/wire/key.js';
import { REPLAY_WINDOW, ReplayWindow } from '../../src/wire/replay.js';
import { mutate, MUTATIONS } from '../support/datagram-fuzz.js';
import { prng } from '../support/prng.js';

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const OTHER_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i));
const TAG = clusterTag('demo');

function header(over: Partial<DatagramHeader> = {}): DatagramHeader {
  return {
    type: MessageType.HEARTBEAT, stream: Stream.HEARTBEAT_ENGINE, sender: 1, clusterTag: TAG,
    incarnation: 1_700_000_000_000n, sequence: 1n, ...over,
  };
}

const HEARTBEAT: Heartbeat = {
  destination: 2, network: 1, leaseFresh: true, dbDigest: 0xdeadbeef,
  ackIncarnation: 1_700_000_000_500n, ackSeq: 41n, sentAtMonoUs: 123_456_789n, echoSentAtUs: 987_654_321n, ackDelayUs: 1500,
};

/** A valid datagram altered, then signed again with KEY: the rejection must come from the altered field's own check. */
function resigned(mutate: (b: Buffer) => void, payload = Buffer.alloc(0)): Buffer {
  const b = encodeDatagram(KEY, header(), payload);
  mutate(b);
  const signed = b.subarray(0, b.length - MAC_LENGTH);
  createHmac('sha256', KEY).update(signed).digest().copy(b, signed.length);
  return b;
}

// ---- datagram codec ----

/** KEY = 00 01 .. 1f, cluster "demo", the HEARTBEAT above from node 1, incarnation 1700000000000, sequence 1. */
const GOLDEN =
  '56474c010100' + '0001' + '2a97516c' + '0000018bcfe56800' + '0000000000000001' + '002c' +
  '0002' + '01' + '01' + '0000000000000029' + '0000018bcfe569f4' + 'deadbeef' + '00000000075bcd15' + '000000003ade68b1' + '000005dc' +
  '632506cdde4ef4547cdc17570ac6cee8bb3abff4f0fbf12def0e4b8e252e4a16';

t.test('the layout is as documented, byte by byte (golden vector shared with the C++ side)', async (t) => {
  const b = encodeDatagram(KEY, header(), encodeHeartbeat(HEARTBEAT));
  t.equal(b.length, HEADER_LENGTH + HEARTBEAT_PAYLOAD_LENGTH + MAC_LENGTH);
  t.equal(b.subarray(0, 4).toString('hex'), '56474c01', '"VGL" + version 1');
  t.equal(b[4], 1, 'type');
  t.equal(b[5], 0, 'stream');
  t.equal(b.readUInt16BE(6), 1, 'sender');
  t.equal(b.readUInt32BE(8), TAG, 'cluster tag');
  t.equal(TAG, 0x2a97516c, 'clusterTag("demo") = first 4 bytes of SHA-256("demo")');
  t.equal(b.readBigUInt64BE(12), 1_700_000_000_000n, 'incarnation');
  t.equal(b.readBigUInt64BE(20), 1n, 'sequence');
  t.equal(b.readUInt16BE(28), 44, 'payload length');
  t.equal(
    b.toString('hex'),
    GOLDEN,
    'the whole datagram; docs/cluster.md prints the same bytes',
  );
});

t.test('round trip for every message type and stream', async (t) => {
  for (const type of Object.values(MessageType)) {
    for (const stream of Object.values(Stream)) {
      const payload = type === MessageType.HEARTBEAT
        ? encodeHeartbeat(HEARTBEAT)
        : Buffer.from(JSON.stringify({ type, stream, objects: [{ name: 'db1', version: 7 }] }), 'utf8');
      const h = header({ type, stream, sender: 65535, incarnation: 2n ** 64n - 1n, sequence: 2n ** 63n, clusterTag: 0xffffffff });
      const r = decodeDatagram(KEY, encodeDatagram(KEY, h, payload), 0xffffffff);
      if (!r.ok) {
        t.fail(`type ${type} stream ${stream}: ${r.reason}`);
        continue;
      }
      t.same(r.header, h, `header, type ${type} stream ${stream}`);
      t.same(r.payload, payload, 'payload');
    }
  }
  const empty = decodeDatagram(KEY, encodeDatagram(KEY, header({ type: MessageType.DB_REQUEST }), Buffer.alloc(0)), TAG);
  t.ok(empty.ok && empty.payload.length === 0, 'an empty payload');
  const max = Buffer.alloc(MAX_PAYLOAD, 0x5a);
  const big = encodeDatagram(KEY, header({ type: MessageType.DB_UPDATE }), max);
  t.equal(big.length, MAX_DATAGRAM, 'the largest payload makes the largest datagram');
  const r = decodeDatagram(KEY, big, TAG);
  t.ok(r.ok && r.payload.equals(max));
});

t.test('decode accepts a Uint8Array view into a larger buffer and copies the payload out', async (t) => {
  const b = encodeDatagram(KEY, header({ type: MessageType.DISTRESS, stream: Stream.DISTRESS }), Buffer.from('{"x":1}'));
  const arena = new Uint8Array(b.length + 20);
  arena.set(b, 10);
  const r = decodeDatagram(KEY, arena.subarray(10, 10 + b.length), TAG);
  t.ok(r.ok);
  if (r.ok) {
    arena.fill(0);
    t.equal(r.payload.toString(), '{"x":1}', 'payload survives reuse of the receive buffer');
  }
});

t.test('encode refuses what must never be sent', async (t) => {
  const p = Buffer.alloc(0);
  t.throws(() => encodeDatagram(Buffer.alloc(31), header(), p), RangeError, 'short key');
  t.throws(() => encodeDatagram(KEY, header({ type: RESERVED_TYPE_CONTROL as MessageType }), p), RangeError, 'reserved type');
  t.throws(() => encodeDatagram(KEY, header({ type: 0 as MessageType }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ stream: 3 as Stream }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ sender: 0 }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ sender: 65536 }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ clusterTag: -1 }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ incarnation: 0n }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ sequence: 0n }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header({ sequence: 2n ** 64n }), p), RangeError);
  t.throws(() => encodeDatagram(KEY, header(), Buffer.alloc(MAX_PAYLOAD + 1)), RangeError, 'payload too large');
});

t.test('every reject reason is reachable', async (t) => {
  const good = encodeDatagram(KEY, header(), Buffer.from('abc'));
  const cases: [string, RejectReason, Uint8Array][] = [
    ['empty', 'short', Buffer.alloc(0)],
    ['one byte short of header and MAC', 'short', good.subarray(0, HEADER_LENGTH + MAC_LENGTH - 1)],
    ['not bytes at all', 'short', 'VGL' as unknown as Uint8Array],
    ['over the maximum size', 'length', Buffer.concat([good, Buffer.alloc(MAX_DATAGRAM)])],
    ['payload length says more than present', 'length', resigned((b) => b.writeUInt16BE(4, 28), Buffer.from('abc'))],
    ['payload length says less than present', 'length', resigned((b) => b.writeUInt16BE(2, 28), Buffer.from('abc'))],
    ['truncated by one byte', 'length', good.subarray(0, good.length - 1)],
    ['magic', 'magic', resigned((b) => b.write('XGL', 0, 'latin1'))],
    ['version 2', 'version', resigned((b) => (b[3] = 2))],
    ['type 0', 'type', resigned((b) => (b[4] = 0))],
    ['type CONTROL (reserved)', 'type', resigned((b) => (b[4] = RESERVED_TYPE_CONTROL))],
    ['type 255', 'type', resigned((b) => (b[4] = 255))],
    ['stream 3', 'stream', resigned((b) => (b[5] = 3))],
    ['sender 0', 'sender', resigned((b) => b.writeUInt16BE(0, 6))],
    ['incarnation 0', 'incarnation', resigned((b) => b.writeBigUInt64BE(0n, 12))],
    ['sequence 0', 'sequence', resigned((b) => b.writeBigUInt64BE(0n, 20))],
    ['another cluster', 'cluster', encodeDatagram(KEY, header({ clusterTag: clusterTag('other') }), Buffer.alloc(0))],
    ['wrong key', 'hmac', encodeDatagram(OTHER_KEY, header(), Buffer.alloc(0))],
    ['altered payload', 'hmac', (() => { const b = Buffer.from(good); b[HEADER_LENGTH] = b[HEADER_LENGTH]! ^ 1; return b; })()],
    ['altered MAC', 'hmac', (() => { const b = Buffer.from(good); b[b.length - 1] = b[b.length - 1]! ^ 0x80; return b; })()],
  ];
  for (const [name, reason, buf] of cases) {
    const r = decodeDatagram(KEY, buf, TAG);
    t.same(r, { ok: false, reason }, name);
  }
});

t.test('another cluster is rejected before the HMAC is even computed', async (t) => {
  // Signed with a key we do not have, for a cluster that is not ours: the answer is 'cluster', which
  // the decoder gives only from the check that precedes the HMAC.
  const b = encodeDatagram(OTHER_KEY, header({ clusterTag: clusterTag('other') }), Buffer.from('x'));
  t.same(decodeDatagram(KEY, b, TAG), { ok: false, reason: 'cluster' });
  // And on a correct HMAC, the cluster still decides.
  const c = encodeDatagram(KEY, header({ clusterTag: clusterTag('other') }), Buffer.from('x'));
  t.same(decodeDatagram(KEY, c, TAG), { ok: false, reason: 'cluster' });
  t.ok(decodeDatagram(KEY, c, clusterTag('other')).ok, 'the same bytes are fine for the cluster they belong to');
});

t.test('altering any single byte of a valid datagram is rejected', async (t) => {
  const good = encodeDatagram(KEY, header(), encodeHeartbeat(HEARTBEAT));
  let rejected = 0;
  for (let i = 0; i < good.length; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const b = Buffer.from(good);
      b[i] = b[i]! ^ x;
      const r = decodeDatagram(KEY, b, TAG);
      if (r.ok) t.fail(`byte ${i} ^ 0x${x.toString(16)} accepted`);
      else rejected++;
      if (!r.ok && i >= 8 && i < 12) t.equal(r.reason, 'cluster', `byte ${i} (cluster tag) is caught before the HMAC`);
    }
  }
  t.equal(rejected, good.length * 3);
});

t.test('fuzz: 20,000 random and mutated buffers never throw and never decode', async (t) => {
  const rand = prng(0x76676c01);
  const int = (n: number) => Math.floor(rand() * n);
  const seeds = [
    encodeDatagram(KEY, header(), encodeHeartbeat(HEARTBEAT)),
    encodeDatagram(KEY, header({ type: MessageType.DB_UPDATE, stream: Stream.AGENT }), Buffer.from('{"a":1}')),
    encodeDatagram(KEY, header({ type: MessageType.DB_REQUEST }), Buffer.alloc(0)),
    encodeDatagram(KEY, header({ type: MessageType.DB_DIGEST }), Buffer.alloc(MAX_PAYLOAD, 7)),
  ];
  const reasons = new Map<string, number>();
  let accepted = 0;
  for (let n = 0; n < 20_000; n++) {
    const base = seeds[int(seeds.length)]!;
    const b = mutate(n % MUTATIONS, base, rand, { keepHeader: 4, payloadBelow: 200, flipFrom: HEADER_LENGTH, clusterTag: TAG });
    if (b.equals(base)) continue; // a mutation that changed nothing is not a forgery
    let r;
    try {
      r = decodeDatagram(KEY, b, TAG);
    } catch (e) {
      t.fail(`case ${n} threw ${String(e)}: ${b.toString('hex')}`);
      continue;
    }
    if (r.ok) {
      accepted++;
      t.fail(`case ${n} accepted: ${b.toString('hex')}`);
    } else reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  }
  t.equal(accepted, 0);
  t.ok((reasons.get('hmac') ?? 0) > 1000, 'many reached the HMAC check');
  t.comment(JSON.stringify(Object.fromEntries([...reasons].sort())));
});

// ---- heartbeat payload ----

t.test('heartbeat payload round trip and layout', async (t) => {
  const p = encodeHeartbeat(HEARTBEAT);
  t.equal(p.length, HEARTBEAT_PAYLOAD_LENGTH);
  t.same(decodeHeartbeat(p), { ok: true, heartbeat: HEARTBEAT });
  const zeros: Heartbeat = {
    destination: 65535, network: 255, leaseFresh: false, dbDigest: 0, ackIncarnation: 0n, ackSeq: 0n,
    sentAtMonoUs: 0n, echoSentAtUs: 0n, ackDelayUs: 0xffffffff,
  };
  t.same(decodeHeartbeat(encodeHeartbeat(zeros)), { ok: true, heartbeat: zeros }, 'nothing acknowledged yet');
  const flags = Buffer.from(p);
  flags[3] = 0xfe;
  const r = decodeHeartbeat(flags);
  t.ok(r.ok && !r.heartbeat.leaseFresh, 'reserved flag bits are ignored');
});

t.test('heartbeat payload rejects', async (t) => {
  const p = encodeHeartbeat(HEARTBEAT);
  t.same(decodeHeartbeat(p.subarray(0, 43)), { ok: false, reason: 'length' });
  t.same(decodeHeartbeat(Buffer.concat([p, Buffer.alloc(1)])), { ok: false, reason: 'length' });
  const d0 = Buffer.from(p);
  d0.writeUInt16BE(0, 0);
  t.same(decodeHeartbeat(d0), { ok: false, reason: 'destination' });
  t.throws(() => encodeHeartbeat({ ...HEARTBEAT, destination: 0 }), RangeError);
  t.throws(() => encodeHeartbeat({ ...HEARTBEAT, network: 256 }), RangeError);
  t.throws(() => encodeHeartbeat({ ...HEARTBEAT, dbDigest: 2 ** 32 }), RangeError);
  t.throws(() => encodeHeartbeat({ ...HEARTBEAT, ackDelayUs: -1 }), RangeError);
  t.throws(() => encodeHeartbeat({ ...HEARTBEAT, ackSeq: -1n }), RangeError);
  t.throws(() => encodeHeartbeat({ ...HEARTBEAT, sentAtMonoUs: 2n ** 64n }), RangeError);
});

// ---- replay window ----

t.test('replay: duplicates, reordering within the window, below the window', async (t) => {
  const w = new ReplayWindow([1, 2]);
  const inc = 100n;
  t.equal(w.commit(1, 0, inc, 5n), 'accept', 'first datagram, any sequence');
  t.equal(w.commit(1, 0, inc, 5n), 'replay', 'duplicate');
  t.equal(w.commit(1, 0, inc, 3n), 'accept', 'late but within the window');
  t.equal(w.commit(1, 0, inc, 3n), 'replay', 'accepted once only');
  t.equal(w.commit(1, 0, inc, 4n), 'accept');
  t.equal(w.commit(1, 0, inc, 200n), 'accept', 'a jump ahead');
  t.equal(w.check(1, 0, inc, 200n - BigInt(REPLAY_WINDOW) + 1n), 'accept', 'oldest sequence inside the window');
  t.equal(w.check(1, 0, inc, 200n - BigInt(REPLAY_WINDOW)), 'too-old', 'just below the window');
  t.equal(w.commit(1, 0, inc, 5n), 'too-old', 'seen before the jump, now below the window');
  t.equal(w.commit(1, 0, inc, 150n), 'accept');
  t.equal(w.commit(1, 0, inc, 150n), 'replay');
  t.equal(w.commit(1, 0, inc, 201n), 'accept');
  t.equal(w.commit(1, 0, inc, 150n), 'replay', 'still remembered after the window slid by one');
  t.equal(w.commit(1, 0, inc, 0n), 'too-old', 'sequence 0 never valid');
});

t.test('replay: the window slides exactly; every sequence in it is accepted once', async (t) => {
  const w = new ReplayWindow([7]);
  const rand = prng(42);
  // 2,000 sequences delivered out of order by up to 100 places, each twice.
  const order = Array.from({ length: 2000 }, (_, i) => ({ seq: BigInt(i + 1), at: i + rand() * 100 }));
  order.sort((a, b) => a.at - b.at);
  let accepted = 0;
  for (const { seq } of order) {
    if (w.commit(7, 1, 1n, seq) === 'accept') accepted++;
    t.not(w.commit(7, 1, 1n, seq), 'accept');
  }
  t.equal(accepted, 2000, 'reordering under the window size loses nothing');
});

t.test('replay: check does not change state; commit does', async (t) => {
  const w = new ReplayWindow([1]);
  t.equal(w.check(1, 0, 10n, 1n), 'accept');
  t.equal(w.check(1, 0, 10n, 1n), 'accept', 'check twice: still unseen');
  t.equal(w.incarnationOf(1), undefined);
  t.equal(w.commit(1, 0, 10n, 1n), 'accept');
  t.equal(w.check(1, 0, 10n, 1n), 'replay');
  t.equal(w.incarnationOf(1), 10n);
});

t.test('replay: a new incarnation resets every stream of the sender; an older one is refused', async (t) => {
  const w = new ReplayWindow([1, 2]);
  t.equal(w.commit(1, 0, 10n, 500n), 'accept');
  t.equal(w.commit(1, 1, 10n, 80n), 'accept');
  t.equal(w.commit(2, 0, 10n, 500n), 'accept');
  t.equal(w.commit(1, 0, 11n, 1n), 'accept', 'restarted: sequence starts again at 1');
  t.equal(w.incarnationOf(1), 11n);
  t.equal(w.commit(1, 0, 11n, 1n), 'replay');
  t.equal(w.commit(1, 1, 11n, 1n), 'accept', 'the other streams were reset too');
  t.equal(w.commit(1, 1, 10n, 81n), 'stale-incarnation', 'delayed traffic from the old process');
  t.equal(w.commit(1, 0, 10n, 501n), 'stale-incarnation');
  t.equal(w.commit(2, 0, 10n, 500n), 'replay', 'other senders are unaffected');
  t.equal(w.commit(2, 0, 10n, 501n), 'accept');
});

t.test('replay: streams have separate sequence spaces', async (t) => {
  const w = new ReplayWindow([3]);
  for (const stream of Object.values(Stream)) t.equal(w.commit(3, stream, 1n, 1n), 'accept', `stream ${stream}`);
  t.equal(w.commit(3, 2, 1n, 1n), 'replay');
});

t.test('replay: unknown senders and streams are refused and not tracked', async (t) => {
  const w = new ReplayWindow([1, 2]);
  t.equal(w.commit(3, 0, 1n, 1n), 'unknown-sender');
  t.equal(w.commit(0, 0, 1n, 1n), 'unknown-sender');
  t.equal(w.incarnationOf(3), undefined);
  t.equal(w.commit(1, 3, 1n, 1n), 'unknown-stream');
  t.throws(() => new ReplayWindow([0]), RangeError);
  t.throws(() => new ReplayWindow([65536]), RangeError);
});

// ---- key file ----

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vigil-wire-'));
}

t.test('key: a hex line or raw bytes, mode 0600', async (t) => {
  const dir = await tempDir();
  const hex = join(dir, 'hex.key');
  await writeFile(hex, `${KEY.toString('hex')}\n`, { mode: 0o600 });
  t.same(await loadClusterKey(hex), KEY, 'hex line with newline');
  const long = join(dir, 'long.key');
  await writeFile(long, Buffer.concat([KEY, KEY]).toString('hex').toUpperCase(), { mode: 0o600 });
  t.same(await loadClusterKey(long), Buffer.concat([KEY, KEY]), 'longer, upper case, no newline');
  const raw = join(dir, 'raw.key');
  await writeFile(raw, KEY, { mode: 0o600 }); // contains 0x00..0x1f: binary, not text
  t.same(await loadClusterKey(raw), KEY, 'raw bytes');
  const ro = join(dir, 'ro.key');
  await writeFile(ro, KEY, { mode: 0o400 });
  t.same(await loadClusterKey(ro), KEY, '0400 is fine');
});

t.test('key: refused when missing, short, readable or writable by others, text, or not a file', async (t) => {
  const dir = await tempDir();
  const refuse = async (path: string, match: RegExp, what: string) => {
    await t.rejects(loadClusterKey(path), { name: 'KeyFileError', path, message: match }, what);
    await loadClusterKey(path).catch((e: unknown) => t.ok(e instanceof KeyFileError && e.message.includes(path), 'names the path'));
  };
  await refuse(join(dir, 'absent.key'), /no such file/, 'missing');
  const short = join(dir, 'short.key');
  await writeFile(short, KEY.subarray(0, 31), { mode: 0o600 });
  await refuse(short, /31 bytes; at least 32/, 'raw, 31 bytes');
  const shortHex = join(dir, 'short-hex.key');
  await writeFile(shortHex, `${KEY.toString('hex').slice(0, 62)}\n`, { mode: 0o600 });
  await refuse(shortHex, /62 hex digits; at least 64/, '31 bytes of hex');
  const odd = join(dir, 'odd.key');
  await writeFile(odd, `${KEY.toString('hex')}a\n`, { mode: 0o600 });
  await refuse(odd, /odd number of hex digits/, 'odd hex');
  const pass = join(dir, 'pass.key');
  await writeFile(pass, 'correct horse battery staple, a long passphrase\n', { mode: 0o600 });
  await refuse(pass, /passphrase is not a key/, 'text that is not hex');
  for (const mode of [0o640, 0o604, 0o620, 0o602, 0o660, 0o644]) {
    const f = join(dir, `mode-${mode.toString(8)}.key`);
    await writeFile(f, KEY);
    await chmod(f, mode);
    await refuse(f, new RegExp(`mode 0${mode.toString(8)} lets other users`), `mode 0${mode.toString(8)}`);
  }
  const sub = join(dir, 'a-dir');
  await mkdir(sub, { mode: 0o700 });
  await refuse(sub, /not a regular file/, 'a directory');
});

t.test('key: refused when owned by another user (root only)', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async (t) => {
  const dir = await tempDir();
  const f = join(dir, 'nobody.key');
  await writeFile(f, KEY, { mode: 0o600 });
  await chown(f, 65534, 65534);
  await t.rejects(loadClusterKey(f), { name: 'KeyFileError', message: /owned by uid 65534/ });
});

t.test('key: generate writes 32 random bytes as hex, 0600, and never overwrites', async (t) => {
  const dir = await tempDir();
  const f = join(dir, 'cluster.key');
  const key = await generateClusterKey(f);
  t.equal(key.length, 32);
  t.equal((await stat(f)).mode & 0o777, 0o600);
  t.equal(await readFile(f, 'utf8'), `${key.toString('hex')}\n`);
  t.same(await loadClusterKey(f), key, 'loads back');
  await t.rejects(generateClusterKey(f), { name: 'KeyFileError', message: /already exists/ });
  t.same(await loadClusterKey(f), key, 'the existing key is untouched');
  t.not((await generateClusterKey(join(dir, 'second.key'))).toString('hex'), key.toString('hex'), 'random');
  await t.rejects(generateClusterKey(join(dir, 'no', 'such', 'dir.key')), { name: 'KeyFileError' });
});

// ---- incarnation ----

t.test('incarnation: wall clock at first start, stored, and growing even when the clock goes back', async (t) => {
  const dir = await tempDir();
  const file = join(dir, INCARNATION_FILE);
  t.same(await nextIncarnation(dir, 1_700_000_000_000), { incarnation: 1_700_000_000_000n });
  t.equal(await readFile(file, 'utf8'), '1700000000000\n', 'stored before returning');
  t.same(await nextIncarnation(dir, 1_700_000_000_000), { incarnation: 1_700_000_000_001n }, 'same millisecond');
  t.same(await nextIncarnation(dir, 1_600_000_000_000), { incarnation: 1_700_000_000_002n }, 'clock set back a few years');
  t.same(await nextIncarnation(dir, 0), { incarnation: 1_700_000_000_003n }, 'clock at the epoch');
  t.same(await nextIncarnation(dir, 1_800_000_000_000.7), { incarnation: 1_800_000_000_000n }, 'clock ahead: follow it');
  let prev = 0n;
  const rand = prng(7);
  for (let i = 0; i < 50; i++) {
    const { incarnation } = await nextIncarnation(dir, 1_800_000_000_000 + Math.floor((rand() - 0.5) * 1e6));
    t.ok(incarnation > prev, `start ${i} grew`);
    prev = incarnation;
  }
  await t.rejects(nextIncarnation(dir, -1), RangeError);
  await t.rejects(nextIncarnation(dir, Number.NaN), RangeError);
});

t.test('incarnation: a corrupt file is survived above its mtime, with a warning', async (t) => {
  const dir = await tempDir();
  const file = join(dir, INCARNATION_FILE);
  for (const junk of ['', 'garbage\n', '-5\n', '12 34\n', '99999999999999999999999\n', '18446744073709551616\n']) {
    await writeFile(file, junk);
    const written = new Date(1_900_000_000_000);
    await utimes(file, written, written);
    const r = await nextIncarnation(dir, 1_000);
    t.equal(r.incarnation, 1_900_000_000_001n, `${JSON.stringify(junk)}: above the mtime`);
    t.match(r.warning, /corrupt/);
    t.equal(await readFile(file, 'utf8'), '1900000000001\n', 'repaired');
    t.same(await nextIncarnation(dir, 1_000), { incarnation: 1_900_000_000_002n }, 'and read normally next time');
  }
  const r = await nextIncarnation(dir, 2_000_000_000_000);
  t.equal(r.incarnation, 2_000_000_000_000n, 'the clock wins when it is ahead');
});

t.test('incarnation: errors other than a missing file are not guessed around', async (t) => {
  const dir = await tempDir();
  await t.rejects(nextIncarnation(join(dir, 'absent'), 1), /ENOENT/);
  await mkdir(join(dir, INCARNATION_FILE));
  await t.rejects(nextIncarnation(dir, 1), /incarnation file .*EISDIR/);
  const full = await tempDir();
  await writeFile(join(full, INCARNATION_FILE), '18446744073709551615\n');
  await t.rejects(nextIncarnation(full, 1), /no larger incarnation/);
});

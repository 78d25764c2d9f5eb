// The native heartbeat thread over loopback: two engines hear and acknowledge each other on two networks;
// its bytes are what the TypeScript codec reads and the reverse; forged, replayed, foreign and misdirected
// datagrams are dropped and counted; an agent that stops renewing its lease stops the heartbeats.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { nativeAddon, type HeartbeatEngineOptions, type NativeHeartbeatEngine } from '../../src/native.js';
import {
  clusterTag, decodeDatagram, decodeHeartbeat, encodeDatagram, encodeHeartbeat, MessageType, Stream, type Heartbeat,
} from '../../src/wire/datagram.js';
import { prng } from '../support/prng.js';
import { freeUdpPorts } from '../support/udp-ports.js';

const KEY = randomBytes(32);
const TAG = clusterTag('unit');
const INC_A = 1_700_000_000_000n;
const INC_B = 1_700_000_000_500n;


function engine(o: Partial<HeartbeatEngineOptions> & Pick<HeartbeatEngineOptions, 'networks' | 'peers'>): NativeHeartbeatEngine {
  const e = new (nativeAddon().HeartbeatEngine)({
    key: KEY, clusterTag: TAG, selfId: 1, incarnation: INC_A, intervalMs: 20, leaseMs: 5000, priority: 0, ...o,
  });
  t.teardown(() => e.stop());
  return e;
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A plain UDP socket standing in for a peer: collects what arrives. */
async function listener(port: number): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((r) => socket.bind(port, '127.0.0.1', () => r()));
  t.teardown(() => socket.close());
  return { socket, received };
}

function heartbeat(o: Partial<Heartbeat> = {}): Heartbeat {
  return {
    destination: 1, network: 0, leaseFresh: true, ackSeq: 0n, ackIncarnation: 0n, dbDigest: 7,
    sentAtMonoUs: 1n, echoSentAtUs: 0n, ackDelayUs: 0, ...o,
  };
}

function datagram(o: { sender?: number; incarnation?: bigint; sequence: bigint; key?: Buffer; tag?: number; hb?: Partial<Heartbeat> }): Buffer {
  return encodeDatagram(o.key ?? KEY, {
    type: MessageType.HEARTBEAT, stream: Stream.HEARTBEAT_ENGINE, sender: o.sender ?? 2, clusterTag: o.tag ?? TAG,
    incarnation: o.incarnation ?? INC_B, sequence: o.sequence,
  }, encodeHeartbeat(heartbeat(o.hb)));
}

t.test('two engines hear and acknowledge each other on both networks and carry the database digest', async (t) => {
  const [a0, a1, b0, b1] = await freeUdpPorts(4) as [number, number, number, number];
  const a = engine({
    selfId: 1, incarnation: INC_A,
    networks: [{ bind: '127.0.0.1', port: a0 }, { bind: '127.0.0.1', port: a1 }],
    peers: [{ id: 2, addresses: [{ network: 0, host: '127.0.0.1', port: b0 }, { network: 1, host: '127.0.0.1', port: b1 }] }],
  });
  const b = engine({
    selfId: 2, incarnation: INC_B,
    networks: [{ bind: '127.0.0.1', port: b0 }, { bind: '127.0.0.1', port: b1 }],
    peers: [{ id: 1, addresses: [{ network: 0, host: '127.0.0.1', port: a0 }, { network: 1, host: '127.0.0.1', port: a1 }] }],
  });
  a.setDigest(0xdeadbeef);
  await until('both links heard and acknowledged both ways', () => [a, b].every((e) =>
    e.snapshot().peers[0]!.links.every((l) => l.heardCount > 2 && l.ackedAgoMs >= 0 && l.rttUs >= 0)));
  const sa = a.snapshot();
  const sb = b.snapshot();
  t.equal(sa.peers[0]!.incarnation, INC_B, 'A knows B\'s incarnation');
  t.equal(sb.peers[0]!.incarnation, INC_A, 'B knows A\'s incarnation');
  t.equal(sb.peers[0]!.digest, 0xdeadbeef, 'B sees A\'s database digest');
  t.same(sa.peers[0]!.links.map((l) => l.network), [0, 1]);
  for (const l of sb.peers[0]!.links) {
    t.ok(l.heardAgoMs >= 0 && l.heardAgoMs < 1000, `network ${l.network} heard ${l.heardAgoMs.toFixed(1)} ms ago`);
    t.ok(l.rttUs < 500_000, `network ${l.network} round trip ${l.rttUs} µs`);
    // One host, one monotonic clock: A's send stamp precedes B's arrival time, which precedes this moment.
    const nowUs = Number(process.hrtime.bigint() / 1000n);
    t.ok(l.peerSentMonoUs > 0 && l.peerSentMonoUs <= l.heardMonoUs && l.heardMonoUs <= nowUs,
      `network ${l.network}: sent at ${l.peerSentMonoUs} µs, heard at ${l.heardMonoUs} µs, now ${nowUs} µs (monotonic)`);
  }
  t.equal(Object.values(sa.dropped).reduce((x, y) => x + y, 0), 0, 'nothing dropped between honest peers');
  t.equal(sa.sendErrors, 0);
});

t.test('the TypeScript codec reads what the thread sends', async (t) => {
  const [a0, p0] = await freeUdpPorts(2) as [number, number];
  const peer = await listener(p0);
  const a = engine({ networks: [{ bind: '127.0.0.1', port: a0 }], peers: [{ id: 2, addresses: [{ network: 0, host: '127.0.0.1', port: p0 }] }] });
  a.setDigest(42);
  // The thread sends its first round as it starts, before setDigest: look at the rounds after it.
  await until('four heartbeats', () => peer.received.length >= 4);
  let lastSeq = 1n;
  const later = peer.received.filter((m) => { const d = decodeDatagram(KEY, m, TAG); return d.ok && d.header.sequence > 1n; });
  t.ok(later.length >= 3);
  for (const m of later.slice(0, 3)) {
    const d = decodeDatagram(KEY, m, TAG);
    t.ok(d.ok, 'authentic');
    if (!d.ok) continue;
    t.match(d.header, { type: MessageType.HEARTBEAT, stream: Stream.HEARTBEAT_ENGINE, sender: 1, incarnation: INC_A });
    t.ok(d.header.sequence > lastSeq, 'sequence grows');
    lastSeq = d.header.sequence;
    const hb = decodeHeartbeat(d.payload);
    t.ok(hb.ok);
    if (hb.ok) t.match(hb.heartbeat, { destination: 2, network: 0, leaseFresh: true, dbDigest: 42, ackSeq: 0n });
  }
  t.notOk(decodeDatagram(randomBytes(32), peer.received[0]!, TAG).ok, 'another key does not verify it');
});

t.test('the thread accepts a heartbeat built by the codec once, and drops forged, foreign, replayed and misdirected ones', async (t) => {
  const [a0, a1, p0] = await freeUdpPorts(3) as [number, number, number];
  const peer = await listener(p0);
  const a = engine({
    networks: [{ bind: '127.0.0.1', port: a0 }, { bind: '127.0.0.1', port: a1 }],
    peers: [{ id: 2, addresses: [{ network: 0, host: '127.0.0.1', port: p0 }, { network: 1, host: '127.0.0.1', port: p0 }] }],
  });
  const send = (b: Buffer, port = a0) => new Promise<void>((r) => peer.socket.send(b, port, '127.0.0.1', () => r()));
  const good = datagram({ sequence: 5n });
  await send(good);
  await until('accepted', () => a.snapshot().received === 1);
  t.equal(a.snapshot().peers[0]!.links[0]!.heardCount, 1, 'heard on network 0');
  t.equal(a.snapshot().peers[0]!.links[1]!.heardCount, 0, 'not on network 1');

  const cases: [string, Buffer, keyof ReturnType<NativeHeartbeatEngine['snapshot']>['dropped'], number?][] = [
    ['the same datagram again', good, 'replay'],
    ['signed with another key', datagram({ sequence: 6n, key: randomBytes(32) }), 'hmac'],
    ['one flipped payload bit', Buffer.from(datagram({ sequence: 7n }).map((x, i) => (i === 40 ? x ^ 1 : x))), 'hmac'],
    ['from another cluster', datagram({ sequence: 8n, tag: clusterTag('other') }), 'cluster'],
    ['from a node not configured', datagram({ sequence: 9n, sender: 9 }), 'unknownSender'],
    ['meant for another node', datagram({ sequence: 10n, hb: { destination: 3 } }), 'misdirected'],
    ['claiming network 1 on network 0', datagram({ sequence: 11n, hb: { network: 1 } }), 'misdirected'],
    ['from an older incarnation', datagram({ sequence: 12n, incarnation: INC_B - 1n }), 'staleIncarnation'],
    ['truncated', good.subarray(0, 40), 'short'],
    ['not ours at all', Buffer.from('GET / HTTP/1.0\r\n\r\n'.padEnd(120, ' ')), 'magic'],
  ];
  for (const [what, bytes, reason] of cases) {
    const before = a.snapshot().dropped[reason];
    await send(bytes);
    await until(`${what} dropped`, () => a.snapshot().dropped[reason] === before + 1);
    t.pass(`${what}: dropped as ${reason}`);
  }
  t.equal(a.snapshot().received, 1, 'none of them counted as a sign of life');
  await send(datagram({ sequence: 4n }));
  await until('an older sequence within the window', () => a.snapshot().received === 2);
  t.pass('a late datagram inside the replay window is accepted once');
  await send(datagram({ sequence: 1n, incarnation: INC_B + 1n, hb: { network: 1 } }), a1);
  await until('restarted peer', () => a.snapshot().received === 3);
  t.equal(a.snapshot().peers[0]!.incarnation, INC_B + 1n, 'a higher incarnation is a restart: accepted from sequence 1');
});

t.test('heartbeats stop when the agent stops renewing its lease, and resume when it does', async (t) => {
  const [a0, p0] = await freeUdpPorts(2) as [number, number];
  const peer = await listener(p0);
  const a = engine({ leaseMs: 150, networks: [{ bind: '127.0.0.1', port: a0 }], peers: [{ id: 2, addresses: [{ network: 0, host: '127.0.0.1', port: p0 }] }] });
  await sleep(400);
  const sent = a.snapshot().sent;
  t.ok(sent >= 3 && sent <= 12, `sent ${sent} while the lease was fresh (150 ms at 20 ms)`);
  await sleep(200);
  t.equal(a.snapshot().sent, sent, 'nothing sent after the lease ran out');
  t.ok(a.snapshot().leaseLapsed > 0, 'lapsed rounds are counted');
  const got = peer.received.length;
  a.renewLease();
  await until('heartbeats resume', () => peer.received.length > got);
  t.pass('renewing the lease resumes sending');
});

t.test('a port already taken is a clear error naming the address', async (t) => {
  const [p0] = await freeUdpPorts(1) as [number];
  await listener(p0);
  t.throws(() => engine({ networks: [{ bind: '127.0.0.1', port: p0 }], peers: [] }),
    { code: 'EADDRINUSE', syscall: 'bind', message: new RegExp(`127\\.0\\.0\\.1 port ${p0}`) });
  t.throws(() => engine({ networks: [{ bind: 'not-an-address', port: p0 }], peers: [] }), { syscall: 'getaddrinfo', message: /bad local address/ });
});

t.test('fuzz: thousands of random and mutated datagrams are counted and dropped; the thread keeps working', async (t) => {
  const [a0, p0] = await freeUdpPorts(2) as [number, number];
  const peer = await listener(p0);
  const a = engine({ networks: [{ bind: '127.0.0.1', port: a0 }], peers: [{ id: 2, addresses: [{ network: 0, host: '127.0.0.1', port: p0 }] }] });
  const rand = prng(0x5eed);
  const valid = datagram({ sequence: 1000n });
  const N = 3000;
  for (let i = 0; i < N; i++) {
    let b: Buffer;
    if (i % 3 === 0) {
      b = Buffer.from(Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)));
    } else {
      b = Buffer.from(valid);
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) {
        const j = Math.floor(rand() * b.length);
        b[j] = b[j]! ^ (1 + Math.floor(rand() * 255));
      }
      if (i % 3 === 2) b = b.subarray(0, Math.floor(rand() * b.length));
    }
    await new Promise<void>((r) => peer.socket.send(b, a0, '127.0.0.1', () => r()));
    if (i % 50 === 49) await sleep(2); // paced, so the socket's receive buffer never overflows
  }
  await until('every datagram handled', () => Object.values(a.snapshot().dropped).reduce((x, y) => x + y, 0) + a.snapshot().received >= N - 50, 10_000);
  const s = a.snapshot();
  t.equal(s.received, 0, 'no mutated or random datagram was accepted as a heartbeat');
  t.ok(s.running, 'the thread is still running');
  const before = peer.received.length;
  await until('still sending', () => peer.received.length > before + 2);
  await new Promise<void>((r) => peer.socket.send(valid, a0, '127.0.0.1', () => r()));
  await until('a valid heartbeat is still accepted', () => a.snapshot().received === 1);
  t.comment(`drops by reason: ${JSON.stringify(s.dropped)}`);
});

t.test('a peer that stops hearing us but keeps sending repeats its last ack: that ack is stale, so the link shows no fresh acknowledgement', async (t) => {
  const [a0, p0] = await freeUdpPorts(2) as [number, number];
  const peer = await listener(p0);
  const a = engine({ networks: [{ bind: '127.0.0.1', port: a0 }], peers: [{ id: 2, addresses: [{ network: 0, host: '127.0.0.1', port: p0 }] }] });
  await until('a heartbeat from the engine', () => peer.received.length >= 2);
  const latest = () => {
    const d = decodeDatagram(KEY, peer.received.at(-1)!, TAG);
    if (!d.ok) throw new Error('undecodable heartbeat');
    return d.header.sequence;
  };
  let seq = 0n;
  const send = (ackSeq: bigint) => new Promise<void>((r) => peer.socket.send(
    datagram({ sequence: ++seq, hb: { ackSeq, ackIncarnation: INC_A } }), a0, '127.0.0.1', () => r()));
  await send(latest());
  await until('the ack is taken', () => { const l = a.snapshot().peers[0]!.links[0]!; return l.ackedAgoMs >= 0 && l.ackedAgoMs < 100; });
  const stale = latest();
  // The peer goes on sending (it is heard) but acknowledges nothing newer: our heartbeats no longer reach it.
  const end = Date.now() + 400;
  while (Date.now() < end) {
    await send(stale);
    await sleep(20);
  }
  const link = a.snapshot().peers[0]!.links[0]!;
  t.ok(link.heardAgoMs >= 0 && link.heardAgoMs < 100, `the peer is heard (${link.heardAgoMs.toFixed(0)} ms ago)`);
  t.ok(link.ackedAgoMs >= 350, `but its last fresh acknowledgement is ${link.ackedAgoMs.toFixed(0)} ms old`);
  await send(latest());
  await until('a newer ack counts again', () => a.snapshot().peers[0]!.links[0]!.ackedAgoMs < 100);
});

t.test('setAddresses takes the node\'s service addresses and refuses one that does not parse, naming it', async (t) => {
  const [a0] = await freeUdpPorts(1) as [number];
  const a = engine({ networks: [{ bind: '127.0.0.1', port: a0 }], peers: [] });
  t.doesNotThrow(() => a.setAddresses([{ interface: 'lo', address: '127.0.0.1', prefixLength: 8 }, { interface: 'lo', address: '::1', prefixLength: 128 }]));
  t.throws(() => a.setAddresses([{ interface: 'lo', address: 'not-an-address', prefixLength: 24 }]), { name: 'TypeError', message: /not-an-address: not an IP address/ });
  t.throws(() => a.setAddresses([{ interface: 'nosuchif0', address: '10.0.0.1', prefixLength: 24 }]), /no interface nosuchif0/);
  t.throws(() => a.setAddresses([{ interface: 'lo', address: '10.0.0.1', prefixLength: 33 }]), /bad prefix length/);
  t.equal(a.snapshot().addressDrops, 0, 'nothing removed while the lease is fresh');
});

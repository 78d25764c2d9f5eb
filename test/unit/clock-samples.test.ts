// The agent's 'clock sample' lines, which `vigil timeline` estimates clock offsets from: the sample of each
// peer from its link with the shortest round trip, logged once it is measured, once a minute, and after the
// peer comes back.
import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { CLOCK_SAMPLE_MESSAGE, ClockSampler, clockSamples } from '../../src/daemon/clock-samples.js';
import type { HeartbeatLinkSnapshot, HeartbeatSnapshot } from '../../src/native.js';

const config = parseConfig(`
cluster: c1
keyFile: /etc/vigil/key
networks: [{ name: n1, port: 7400 }, { name: n2, port: 7401 }]
nodes:
  - { name: x, id: 1, addresses: { n1: 192.0.2.1, n2: 198.51.100.1 } }
  - { name: y, id: 2, addresses: { n1: 192.0.2.2, n2: 198.51.100.2 } }
  - { name: z, id: 3, addresses: { n1: 192.0.2.3, n2: 198.51.100.3 } }
`, 'c.yaml', { baseDir: '/etc/vigil' });

const link = (network: number, rttUs: number, heard = true): HeartbeatLinkSnapshot => ({
  network, heardAgoMs: heard ? 30 : -1, heardCount: heard ? 9 : 0, peerSeq: heard ? 17 : 0, ackedAgoMs: 40, rttUs,
  peerSentMonoUs: heard ? 5_000_000 + network : 0, heardMonoUs: heard ? 9_000_000 + network : 0,
});

function snapshot(peers: { id: number; links: HeartbeatLinkSnapshot[] }[]): HeartbeatSnapshot {
  return { peers: peers.map((p) => ({ ...p, incarnation: 1n, digest: 0, flags: 1 })) } as unknown as HeartbeatSnapshot;
}

t.test('a sample per peer, from the link with the shortest measured round trip; none before one is measured', async (t) => {
  const s = clockSamples(snapshot([
    { id: 2, links: [link(0, 900), link(1, 300)] },
    { id: 3, links: [link(0, -1), link(1, 200, false)] },
  ]), config, 12_345_678);
  t.same(s, [{ peer: 'y', network: 'n2', rttUs: 300, monoUs: 12_345_678, heardMonoUs: 9_000_001, peerSentMonoUs: 5_000_001 }]);
});

t.test('logged once measured, not again within a minute, again after it and after the peer comes back', async (t) => {
  const lines: { fields: object; message: string }[] = [];
  const log = { info: (fields: object, message: string) => lines.push({ fields, message }), warn() {}, error() {} };
  const sampler = new ClockSampler(log, config);
  const snap = snapshot([{ id: 2, links: [link(0, 500)] }]);
  sampler.tick(snapshot([{ id: 2, links: [link(0, -1)] }]), 0, 1);
  t.equal(lines.length, 0, 'no round trip yet');
  sampler.tick(snap, 100, 2);
  sampler.tick(snap, 59_000, 3);
  t.same(lines.map((l) => [l.message, (l.fields as { monoUs: number }).monoUs]), [[CLOCK_SAMPLE_MESSAGE, 2]]);
  sampler.tick(snap, 60_100, 4);
  t.equal(lines.length, 2, 'a minute later');
  sampler.peerAlive('y');
  sampler.tick(snap, 60_200, 5);
  t.equal(lines.length, 3, 'right after the peer came back');
});

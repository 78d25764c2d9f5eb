// The receiving side of distress in the agent (DistressLink) against replays: a distress is signed once per
// sender life, so a captured copy stays valid. A copy from an older life than one this node has heard is
// refused (in memory, and across this node's restarts through the stored floor); one from a sender this
// node has not heard since it started is held until the heartbeats say which life is current.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import type { NodeConfig } from '../../src/config/schema.js';
import { DistressLink } from '../../src/daemon/distress-link.js';
import { Notices } from '../../src/daemon/notices.js';
import { PEER_INCARNATIONS_FILE, PeerIncarnations } from '../../src/daemon/peer-incarnations.js';
import { clusterTag, encodeDatagram } from '../../src/wire/datagram.js';
import { distressHeader, encodeDistressPayload, REASON_CODES, type Distress, type DistressPayload } from '../../src/wire/distress.js';

const KEY = randomBytes(32);
const OLD = 1_700_000_000_000n;
const NEW = 1_700_000_050_000n;
const FAIL_AFTER_MS = 400;

const CONFIG = parseConfig(`
cluster: unit
keyFile: /etc/vigil/cluster.key
networks:
  - { name: lan1, port: 7400 }
nodes:
  - { name: a, id: 1, addresses: { lan1: 10.1.0.1 } }
  - { name: b, id: 2, addresses: { lan1: 10.1.0.2 } }
`, '/etc/vigil/cluster.yaml');

const noop = (): void => {};
const QUIET = { info: noop, warn: noop, error: noop, debug: noop };
const quiet = QUIET as never;

/** A distress of b's as its armed sender signs it (header sequence = event + repeat). */
function fromB(incarnation: bigint, event = 1n): Buffer {
  const p: DistressPayload = {
    reasonCode: REASON_CODES['hardware-fault'], node: 2, incarnation, event, repeat: 0, repeats: 3, armedAtMs: 1_700_000_000_123n,
  };
  return encodeDatagram(KEY, distressHeader(clusterTag('unit'), p), encodeDistressPayload(p));
}

/** a's DistressLink; `heard` is what its heartbeat thread knows of b (undefined: not heard since a started). */
function link(o: { heard?: bigint; floor?: bigint } = {}) {
  const state = { heard: o.heard, acted: [] as { node: string; incarnation: bigint }[] };
  const self = CONFIG.nodes[0]!;
  const l = new DistressLink({
    config: CONFIG, self, peers: CONFIG.nodes.filter((n) => n !== self), key: KEY, incarnation: 1n, log: quiet,
    notices: new Notices(quiet),
    currentIncarnation: () => state.heard,
    floor: (node) => (node === 'b' ? o.floor : undefined),
    failAfterMs: FAIL_AFTER_MS,
    onPeerDistress: (node: NodeConfig, d: Distress) => state.acted.push({ node: node.name, incarnation: d.incarnation }),
  });
  return { l, state };
}

t.test('a distress from a peer heard since this agent started is acted on at once', async (t) => {
  const { l, state } = link({ heard: NEW });
  l.receive(fromB(NEW));
  t.same(state.acted, [{ node: 'b', incarnation: NEW }]);
  t.ok(l.isDistressed('b'));
});

t.test('a replayed distress from a peer not heard since this agent started is held, then dropped when its heartbeats come from a newer life', async (t) => {
  const { l, state } = link();
  l.receive(fromB(OLD));
  t.same(state.acted, [], 'not acted on while b has not been heard');
  t.match(l.status(undefined), { held: [{ peer: 'b', incarnation: String(OLD) }] });
  state.heard = NEW;
  l.tick(performance.now());
  l.tick(performance.now() + 10 * FAIL_AFTER_MS);
  t.same(state.acted, [], 'b is alive in a newer life: the distress was a replay');
  t.notOk(l.isDistressed('b'));
  t.match(l.status(undefined), { held: [], dropped: { superseded: 1 } });
});

t.test('a held distress is acted on when the peer\'s heartbeats come from the life that sent it', async (t) => {
  const { l, state } = link();
  l.receive(fromB(NEW));
  l.tick(performance.now());
  t.same(state.acted, []);
  state.heard = NEW;
  l.tick(performance.now());
  t.same(state.acted, [{ node: 'b', incarnation: NEW }]);
});

t.test('a held distress is acted on once its sender stays silent for the failure timeout', async (t) => {
  const { l, state } = link();
  const at = performance.now();
  l.receive(fromB(NEW));
  l.tick(at + FAIL_AFTER_MS / 2);
  t.same(state.acted, [], 'silent for less than the failure timeout: still held');
  l.tick(at + FAIL_AFTER_MS + 50);
  t.same(state.acted, [{ node: 'b', incarnation: NEW }]);
  l.tick(at + 10 * FAIL_AFTER_MS);
  t.equal(state.acted.length, 1, 'acted on once');
});

t.test('a distress older than the floor stored by an earlier life of this agent is refused at once', async (t) => {
  const { l, state } = link({ floor: NEW });
  l.receive(fromB(OLD));
  l.tick(performance.now() + 10 * FAIL_AFTER_MS);
  t.same(state.acted, []);
  t.match(l.status(undefined), { held: [], dropped: { 'stale-incarnation': 1 } });
});

t.test('the floor: the newest incarnation heard per peer survives a restart; a damaged file is set aside with a warning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-floor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const log = { ...QUIET, warn: (_: object, m: string) => warnings.push(m) } as never;
  const first = await PeerIncarnations.load(dir, log);
  t.equal(first.floor('b'), undefined, 'a first start knows no floor');
  first.heard('b', OLD);
  first.heard('b', NEW);
  first.heard('b', OLD);
  first.heard('c', 7n);
  await first.flushed();
  const again = await PeerIncarnations.load(dir, log);
  t.equal(again.floor('b'), NEW, 'only ever raised');
  t.equal(again.floor('c'), 7n);
  t.same(warnings, []);
  await writeFile(join(dir, PEER_INCARNATIONS_FILE), '{"b": "12x"}\n');
  const damaged = await PeerIncarnations.load(dir, log);
  t.equal(damaged.floor('b'), undefined);
  t.match(warnings, [/damaged/]);
  damaged.heard('b', NEW);
  await damaged.flushed();
  t.same(JSON.parse(await readFile(join(dir, PEER_INCARNATIONS_FILE), 'utf8')), { b: String(NEW) });
});

// `vigil status`, `app`, `failback`, `attr`, `db`: the CLI run as a process against a real ControlServer
// on a temporary socket, whose handlers answer as vigild's do (canned, agent-shaped) and record what they
// were sent. Also the pure parts: attribute values, durations, the status and database renderings.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';
import { z } from 'zod';

import { parseAttributeValue } from '../../src/cli/cluster-commands.js';
import { Exit } from '../../src/cli/exit-codes.js';
import { formatDb, formatDuration, formatStatus } from '../../src/cli/status-format.js';
import { ControlError } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { runCli } from '../support/cli.js';
import { runVigilBatch } from '../support/vigil-batch.js';

const noStack = (s: string) => !/\n\s+at /.test(s);

const STATUS = {
  cluster: 'lab',
  node: 'node-a',
  incarnation: '1700000000123',
  uptimeMs: 8_040_000,
  peers: [
    {
      peer: 'node-b', state: 'alive', forMs: 7_990_000,
      channels: [
        { channel: 'net:lan', state: 'up', lastHeardAgeMs: 40, silentMs: 40 },
        { channel: 'net:san', state: 'down', lastHeardAgeMs: 3200, silentMs: 3200 },
        { channel: 'disk:shared0', state: 'up', lastHeardAgeMs: 900, silentMs: 900 },
      ],
      links: [
        { network: 'lan', heardAgoMs: 40, ackedAgoMs: 41, rttUs: 210 },
        { network: 'san', heardAgoMs: 3200, ackedAgoMs: 3300, rttUs: 250 },
      ],
    },
    {
      peer: 'node-c', state: 'failed', forMs: 182_000,
      channels: [{ channel: 'net:lan', state: 'down', lastHeardAgeMs: null, silentMs: 182_000 }],
      links: [{ network: 'lan', heardAgoMs: -1, ackedAgoMs: -1, rttUs: 0 }],
    },
  ],
  heartbeat: {
    sent: 81234, received: 80012, sendErrors: 0, realtime: true, leaseLapsed: 0,
    dropped: { short: 0, magic: 0, type: 0, length: 0, cluster: 0, hmac: 3, unknownSender: 0, replay: 1, staleIncarnation: 0, misdirected: 0 },
  },
  messages: { sent: 120, received: 118, dropped: { replay: 0, unknownSender: 2 } },
  apps: [
    {
      tag: 'db1', type: 'cluster-capable', host: 'node-a', primary: 'node-a', backup: 'node-b', phase: 'normal', faults: [], autoRecover: false, version: 7,
      here: { app: 'up', resources: 'up', pending: null, halted: null, gated: false, pid: 4242 },
      prompt: null,
      resources: ['disk shared0', 'mount /srv/db', 'ip 10.0.0.5/24'],
    },
    {
      tag: 'web', type: 'cluster-aware', host: 'node-a', primary: 'node-b', backup: 'node-a', phase: 'failed-over', faults: ['node-b'], autoRecover: false, version: 3,
      lastActive: { state: 'X', priority: 3, decision: 'waiting: own priority 3 (was slave when the cluster stopped); peer node-b unreachable for 12 s' },
      here: { app: 'down', resources: 'partial', pending: 'stopResources', halted: 'start gave up after 3 attempts (spawn ENOENT)', gated: true, pid: null },
      prompt: 'node-b is operational again: fail web back from node-a to node-b? (approve / deny)',
      resources: [],
    },
    {
      tag: 'idle', type: 'cluster-capable', host: null, primary: 'node-a', backup: 'node-b', phase: 'normal', faults: [], autoRecover: true, version: 2,
      here: { app: 'down', resources: 'down', pending: null, halted: null, gated: false, pid: null }, prompt: null, resources: [],
    },
  ],
  disks: [
    { disk: 'shared0', path: '/dev/sg3', myKey: '0x6c61620001', fenced: false, holder: 'node-a', type: 'wero', registered: ['node-a', 'node-b'] },
    { disk: 'shared1', error: 'no path leads to naa.600140512345' },
  ],
  notices: [
    { at: '2024-05-01T10:00:00.000Z', tag: 'web', notice: 'failover-complete', message: 'web runs on node-a' },
    { at: '2024-05-01T10:05:00.000Z', tag: 'web', notice: 'failback-prompt', message: 'node-b is operational again' },
  ],
};

const DB = {
  apps: [
    { tag: 'db1', type: 'cluster-capable', command: { argv: ['/bin/db'] }, host: 'node-a', primary: 'node-a', backup: 'node-b', resources: [], autoRecover: false, attributes: {}, phase: 'normal', version: 7, updatedBy: 'node-a', updatedAt: 1 },
    { tag: 'gone', deleted: true, version: 4, updatedBy: 'node-b', updatedAt: 2 },
    { tag: 'idle', type: 'cluster-capable', command: { argv: ['/bin/idle'] }, host: null, primary: 'node-a', backup: 'node-b', resources: [], autoRecover: true, attributes: {}, phase: 'normal', version: 12, updatedBy: 'node-b', updatedAt: 3 },
  ],
  markers: [{ tag: 'db1', pointer: null, seq: 1, writtenBy: 'node-a' }],
  digest: 0xdeadbeef,
};

interface Call { method: string; params: unknown }

/** A ControlServer answering as vigild does, on a fresh socket; `calls` records every request. */
async function fakeAgent(t: Test): Promise<{ path: string; calls: Call[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-cluster-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'ctl.sock');
  const server = new ControlServer({ path });
  const calls: Call[] = [];
  const attributes: Record<string, unknown> = { weight: 5, label: 'blue' };
  const existing = (tag: string) => {
    if (tag !== 'db1' && tag !== 'web') throw new ControlError('not_found', `no application ${tag}`);
  };
  const tagParam = z.object({ tag: z.string() });
  const record = <P>(method: string, fn: (p: P) => unknown) => (p: P) => {
    calls.push({ method, params: p });
    return fn(p);
  };
  server
    .handle('status', z.object({}), record('status', () => STATUS))
    .handle('db.show', z.object({}), record('db.show', () => DB))
    .handle('db.sync', z.object({}), record('db.sync', () => ({ digest: 0x0badf00d })))
    .handle('app.load', tagParam, record('app.load', ({ tag }: { tag: string }) => (existing(tag), { tag })))
    .handle('app.unload', tagParam, record('app.unload', ({ tag }: { tag: string }) => (existing(tag), { tag })))
    .handle('failback.approve', tagParam, record('failback.approve', ({ tag }: { tag: string }) => {
      existing(tag);
      if (tag === 'db1') throw new ControlError('wrong_node', 'db1 is hosted on node-a; answer on its backup node-b while it hosts');
      return { tag, answer: 'approve' };
    }))
    .handle('failback.deny', tagParam, record('failback.deny', ({ tag }: { tag: string }) => (existing(tag), { tag, answer: 'deny' })))
    .handle('attr.get', z.object({ tag: z.string(), name: z.string().optional() }), record('attr.get', ({ tag, name }: { tag: string; name?: string }) => {
      existing(tag);
      if (tag === 'web') throw new Error('the database file is unreadable'); // a bug in the agent: internal
      if (name === undefined) return { tag, attributes };
      if (!(name in attributes)) throw new ControlError('not_found', `${tag} has no attribute ${name}`);
      return { tag, name, value: attributes[name] };
    }))
    .handle('attr.set', z.object({ tag: z.string(), name: z.string().regex(/^[a-z]+$/), value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }),
      record('attr.set', ({ tag, name, value }: { tag: string; name: string; value: unknown }) => {
        existing(tag);
        const next = { ...attributes };
        if (value === null) delete next[name];
        else next[name] = value;
        return { tag, attributes: next };
      }));
  server
    .handle('priority.show', z.object({}), record('priority.show', () => ({
      node: 'node-b',
      pairs: [{ tag: 'web', peer: 'node-a', state: 'X', priority: 3, sequence: '4', record: 'priority 3, written by 1-1-1', peerState: null,
        decision: 'waiting: own priority 3 (was slave when the cluster stopped); peer node-a unreachable for 12 s; run vigil force-start on this node if node-a is known to be down' }],
    })))
    .handle('priority.force-start', z.object({ tag: z.string().optional() }), record('priority.force-start', ({ tag }: { tag?: string }) => ({
      node: 'node-b', results: [{ tag: tag ?? 'web', ok: true, reason: 'starting as single master by forced start' }],
    })));
  await server.start();
  t.teardown(() => server.close());
  return { path, calls };
}

t.test('status: the human view names the node, each peer and network, the counters, each app and the prompts', async (t) => {
  const { path, calls } = await fakeAgent(t);
  const r = await runCli('vigil', ['status', '--socket', path]);
  t.equal(r.code, 0, r.stderr);
  t.same(calls, [{ method: 'status', params: {} }]);
  const out = r.stdout;
  t.match(out, /^cluster lab, node node-a, incarnation 1700000000123, up 2h 14m\n/);
  t.match(out, /node-b {2}alive for 2h 13m {3}lan: heard 40 ms ago, rtt 0\.21 ms {3}san DOWN: heard 3\.2 s ago, rtt 0\.25 ms {3}disk:shared0: heard 900 ms ago\n/);
  t.match(out, /node-c {2}FAILED for 3m 2s {3}lan DOWN: never heard\n/);
  t.match(out, /heartbeats: sent 81234, received 80012 \(SCHED_FIFO\)\n {2}dropped: hmac 3, replay 1\n/);
  t.notMatch(out, /send errors|lease lapsed|staleIncarnation/, 'zero counters are left out');
  t.match(out, /messages: sent 120, received 118\n {2}dropped: unknownSender 2\n/);
  t.match(out, /\ndisks\n {2}shared0 {2}\/dev\/sg3 {2}reserved by node-a \(wero\) {2}registered: node-a node-b {2}my key 0x6c61620001\n {2}shared1 {2}ERROR: no path leads to naa\.600140512345\n/);
  t.match(out, /db1 \(cluster-capable\) {2}HOST node-a {2}primary node-a {2}backup node-b {2}phase normal\n {4}here: app up \(pid 4242\), resources up \(disk shared0, mount \/srv\/db, ip 10\.0\.0\.5\/24\)/);
  t.match(out, /web \(cluster-aware\) {2}HOST node-a {2}primary node-b {2}backup node-a {2}phase failed-over/);
  t.match(out, /pending: stopResources/);
  t.match(out, new RegExp(`faulted on node-b: it goes there neither by failover nor by failback until cleared by: vigil app load web --socket ${path} \\(on that node\\)`));
  t.equal(out.match(/faulted on/g)?.length, 1, 'only the app with a fault mark says so');
  t.match(out, /\n {4}last-active: X, priority 3; waiting: own priority 3 \(was slave when the cluster stopped\); peer node-b unreachable for 12 s\n/);
  t.equal(out.match(/last-active:/g)?.length, 1, 'apps without a pair here say nothing of it');
  t.match(out, /\n {4}gated: starts nothing here until its last-active decision \(vigil priority show\)\n/);
  t.equal(out.match(/gated:/g)?.length, 1, 'only the flow waiting for its decision says so');
  t.match(out, new RegExp(`halted: start gave up after 3 attempts \\(spawn ENOENT\\); not started again until: vigil app load web --socket ${path}`));
  t.match(out, /failback: node-b is operational again: fail web back from node-a to node-b\?/);
  t.match(out, new RegExp(`answer: vigil failback approve web --socket ${path} {3}or {3}vigil failback deny web --socket ${path}`));
  t.match(out, /idle \(cluster-capable\) {2}HOST none \(unloaded\).*auto-failback/);
  t.match(out, /notices \(newest last\)\n {2}2024-05-01T10:00:00\.000Z {2}web {2}failover-complete: web runs on node-a\n/);
});

t.test('status --json, and app, failback, attr and db: the method and params sent, the answer printed', async (t) => {
  const { path, calls } = await fakeAgent(t);
  const sets: [string[], unknown][] = [
    [['true'], true], [['false'], false], [['42'], 42], [['-2.5'], -2.5], [['007'], '007'], [['blue'], 'blue'],
    [['true', '--string'], 'true'], [['42', '--string'], '42'], [['--delete'], null],
  ];
  const cases: string[][] = [
    ['--json', 'status'], ['status', '--json'],
    ['app', 'load', 'db1'], ['app', 'unload', 'web'], ['failback', 'approve', 'web'], ['failback', 'deny', 'web'],
    ['attr', 'get', 'db1'], ['attr', 'get', 'db1', 'label'],
    ...sets.map(([rest]) => ['attr', 'set', 'db1', 'weight', ...rest]),
    ['db', 'show'], ['db', 'show', '--json'], ['db', 'sync'],
  ];
  const ran = await runVigilBatch(cases.map((args) => ({ args: [...args, '--socket', path] })));
  ran.forEach((r, i) => t.equal(r.code, 0, `${cases[i]!.join(' ')}: ${r.stderr}`));
  const [jsonA, jsonB, load, unload, approve, deny, attrs, label, ...rest] = ran;
  const setRuns = rest.slice(0, sets.length);
  const [show, showJson, sync] = rest.slice(sets.length);
  const [, , ...calls2] = calls;
  t.same(calls.slice(0, 2), [{ method: 'status', params: {} }, { method: 'status', params: {} }]);
  t.same(JSON.parse(jsonA!.stdout), STATUS, '--json before the command: the agent object as it is');
  t.same(JSON.parse(jsonB!.stdout), STATUS, '--json after it');

  t.same(calls2.slice(0, 6), [
    { method: 'app.load', params: { tag: 'db1' } }, { method: 'app.unload', params: { tag: 'web' } },
    { method: 'failback.approve', params: { tag: 'web' } }, { method: 'failback.deny', params: { tag: 'web' } },
    { method: 'attr.get', params: { tag: 'db1' } }, { method: 'attr.get', params: { tag: 'db1', name: 'label' } },
  ]);
  t.match(load!.stdout, /^db1: load requested/);
  t.match(unload!.stdout, /^web: unload requested/);
  t.match(approve!.stdout, /^web: failback approved/);
  t.match(deny!.stdout, /^web: failback denied/);
  t.equal(attrs!.stdout, 'label = "blue"\nweight = 5\n');
  t.equal(label!.stdout, 'blue\n', 'one value alone, a string as it is');

  t.same(calls2.slice(6, 6 + sets.length), sets.map(([, value]) => ({ method: 'attr.set', params: { tag: 'db1', name: 'weight', value } })));
  t.match(setRuns[0]!.stdout, /^db1: weight = true\n$/);
  t.match(setRuns[4]!.stdout, /^db1: weight = "007"\n$/);
  t.match(setRuns[sets.length - 1]!.stdout, /^db1: weight removed\n$/);

  t.same(calls2.slice(6 + sets.length), [{ method: 'db.show', params: {} }, { method: 'db.show', params: {} }, { method: 'db.sync', params: {} }]);
  t.match(show!.stdout, /^TAG +VERSION +UPDATED-BY +HOST +PHASE\n/);
  t.match(show!.stdout, /\ndb1 +7 +node-a +node-a +normal\n/);
  t.match(show!.stdout, /\ngone +4 +node-b +- +\(deleted\)\n/);
  t.match(show!.stdout, /\nidle +12 +node-b +\(unloaded\) +normal\n/);
  t.match(show!.stdout, /3 objects, 1 marker, digest deadbeef/);
  t.same(JSON.parse(showJson!.stdout), DB);
  t.match(sync!.stdout, /synced.*digest 0badf00d/);
});

t.test('the socket: --socket, else --config, else $VIGIL_SOCKET, else the default; not running: exit 8', async (t) => {
  const { path, calls } = await fakeAgent(t);
  const dir = await mkdtemp(join(tmpdir(), 'vigil-cluster-cli-conf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'cluster.yaml');
  await writeFile(config, `cluster: c1
keyFile: /etc/vigil/key
control: { socket: ${path} }
networks: [{ name: n1, port: 7400 }]
nodes:
  - { name: x, id: 1, addresses: { n1: 192.0.2.1 } }
  - { name: y, id: 2, addresses: { n1: 192.0.2.2 } }
`);
  const none = join(dir, 'none.sock');
  const [env, viaConfig, before, both, badConfig, dflt, ...down] = await runVigilBatch([
    { args: ['app', 'load', 'db1'], env: { VIGIL_SOCKET: path } },
    { args: ['app', 'load', 'db1', '--config', config], env: { VIGIL_SOCKET: none } },
    // The group's options may come before the subcommand too; --socket wins over the environment.
    { args: ['app', '--socket', path, 'unload', 'db1'], env: { VIGIL_SOCKET: none } },
    { args: ['status', '--socket', path, '--config', config] },
    { args: ['status', '--config', join(dir, 'missing.yaml')] },
    { args: ['status'], env: { VIGIL_SOCKET: undefined } },
    ...[['app', 'load', 'db1'], ['db', 'sync'], ['attr', 'set', 'db1', 'a', '1']].map((args) => ({ args: [...args, '--socket', none] })),
  ]);
  t.equal(env!.code, 0, env!.stderr);
  t.equal(viaConfig!.code, 0, viaConfig!.stderr);
  t.equal(before!.code, 0, before!.stderr);
  t.same(calls.map((c) => c.method), ['app.load', 'app.load', 'app.unload']);
  t.equal(both!.code, Exit.USAGE);
  t.equal(both!.stderr, 'vigil: --socket and --config do not go together\n');
  t.equal(badConfig!.code, Exit.FILE_ERROR);
  t.match(badConfig!.stderr, /^vigil: .*missing\.yaml: cannot read the configuration: no such file\n$/);
  if (dflt!.code === Exit.AGENT_UNREACHABLE) t.equal(dflt!.stderr, 'vigil: vigild is not running (no socket at /run/vigil/ctl.sock)\n', 'the default socket');
  else t.pass('a vigild runs on this host; not checking the default path');
  for (const r of down) {
    t.equal(r.code, 8);
    t.equal(r.stderr, `vigil: vigild is not running (no socket at ${none})\n`);
    t.equal(r.stdout, '');
  }
});

t.test('vigild not running, from the real command: one line naming the socket, exit 8, the JSON error document', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-cluster-cli-none-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const sock = join(dir, 'ctl.sock');
  const r = await runCli('vigil', ['--json', 'status', '--socket', sock]);
  t.equal(r.code, Exit.AGENT_UNREACHABLE);
  t.equal(r.code, 8);
  t.equal(r.stderr, `vigil: vigild is not running (no socket at ${sock})\n`);
  t.same(JSON.parse(r.stdout), { error: { name: 'VigildNotRunningError', message: `vigild is not running (no socket at ${sock})`, code: 'ENOENT' } });
});

t.test("the agent's refusals: one line with its message; not_found 16, wrong_node 19, invalid_params 1, internal 99", async (t) => {
  const { path, calls } = await fakeAgent(t);
  const real = await runCli('vigil', ['--json', 'app', 'unload', 'nope', '--socket', path]);
  t.equal(real.code, 16);
  t.equal(real.stderr, 'vigil: no application nope\n');
  t.same(JSON.parse(real.stdout), { error: { name: 'ControlRemoteError', message: 'no application nope', code: 'not_found' } });
  calls.length = 0;

  const cases: [string[], number, RegExp][] = [
    [['app', 'load', 'nope'], Exit.NOT_FOUND, /^vigil: no application nope\n$/],
    [['attr', 'get', 'db1', 'colour'], Exit.NOT_FOUND, /^vigil: db1 has no attribute colour\n$/],
    [['failback', 'approve', 'db1'], Exit.REFUSED, /^vigil: db1 is hosted on node-a; answer on its backup node-b while it hosts\n$/],
    [['attr', 'set', 'db1', 'Bad-Name', 'x'], Exit.USAGE, /^vigil: attr\.set: name: .*\n$/],
    [['attr', 'get', 'web'], Exit.OTHER, /^vigil: unexpected error: the database file is unreadable\n$/],
    // Usage errors found before anything is sent:
    [['attr', 'set', 'db1', 'weight'], Exit.USAGE, /^vigil: a VALUE is needed/],
    [['attr', 'set', 'db1', 'weight', '5', '--delete'], Exit.USAGE, /^vigil: --delete takes no VALUE/],
    [['attr', 'set', 'db1', 'weight', '--delete', '--string'], Exit.USAGE, /^vigil: --string and --delete do not go together/],
  ];
  const ran = await runVigilBatch(cases.map(([args]) => ({ args: [...args, '--socket', path] })));
  cases.forEach(([args, code, stderr], i) => {
    const r = ran[i]!;
    t.equal(r.code, code, args.join(' '));
    t.match(r.stderr, stderr);
    t.ok(noStack(r.stderr));
  });
  t.equal(calls.length, 4, 'the usage errors sent nothing (and invalid_params never reached a handler)');
  t.equal(Exit.NOT_FOUND, 16);
  t.equal(Exit.REFUSED, 19);
});

t.test('attribute values: booleans, decimal numbers, else strings', async (t) => {
  t.equal(parseAttributeValue('true'), true);
  t.equal(parseAttributeValue('false'), false);
  t.equal(parseAttributeValue('True'), 'True');
  t.equal(parseAttributeValue('0'), 0);
  t.equal(parseAttributeValue('-17'), -17);
  t.equal(parseAttributeValue('3.25'), 3.25);
  t.equal(parseAttributeValue('007'), '007', 'leading zeros: an id, not a number');
  t.equal(parseAttributeValue('1e3'), '1e3');
  t.equal(parseAttributeValue('0x10'), '0x10');
  t.equal(parseAttributeValue('12.'), '12.');
  t.equal(parseAttributeValue('9007199254740993'), '9007199254740993', 'beyond 2^53: kept exact as a string');
  t.equal(parseAttributeValue(''), '');
  t.equal(parseAttributeValue('42', true), '42');
  t.equal(parseAttributeValue('true', true), 'true');
});

t.test('durations at a glance', async (t) => {
  t.equal(formatDuration(0), '0 ms');
  t.equal(formatDuration(850), '850 ms');
  t.equal(formatDuration(3200), '3.2 s');
  t.equal(formatDuration(59_999), '59.9 s');
  t.equal(formatDuration(185_000), '3m 5s');
  t.equal(formatDuration(8_040_000), '2h 14m');
  t.equal(formatDuration(100 * 3600_000), '4d 4h');
  t.equal(formatDuration(-1), '?');
});

t.test('formatStatus: drops only when non-zero, and whatever is missing is left out rather than a crash', async (t) => {
  const quiet = formatStatus({
    ...STATUS, heartbeat: { ...STATUS.heartbeat, dropped: { hmac: 0, replay: 0 } }, messages: { sent: 1, received: 1, dropped: { replay: 0 } }, notices: [],
  });
  t.notMatch(quiet, /dropped/);
  t.notMatch(quiet, /notices/);
  t.match(quiet, /answer: vigil failback approve web {3}or {3}vigil failback deny web\n?/);
  const errs = formatStatus({ ...STATUS, heartbeat: { ...STATUS.heartbeat, sendErrors: 2, leaseLapsed: 1 } });
  t.match(errs, /heartbeats: sent 81234, received 80012, send errors 2, lease lapsed 1/);
  for (const odd of [null, {}, { peers: 'x', apps: [null, 3] }, { apps: [{ here: 'x' }] }, []]) {
    t.type(formatStatus(odd), 'string');
  }
  t.match(formatStatus({ cluster: 'c', node: 'n', incarnation: '1', peers: [], apps: [] }), /peers: none configured\napps: none/);
  t.equal(formatDb({ apps: [], markers: [] }), 'no applications in the database\n0 objects, 0 markers');
});

t.test('priority show prints each pair and why it waits; force-start asks first, and without a terminal needs --yes', async (t) => {
  const { path, calls } = await fakeAgent(t);
  const [show, unconfirmed, forced] = await runVigilBatch([
    { args: ['priority', 'show', '--socket', path] },
    { args: ['force-start', 'web', '--socket', path] },
    { args: ['force-start', 'web', '--yes', '--socket', path] },
  ]);
  t.equal(show!.code, 0, show!.stderr);
  t.match(show!.stdout, /^web {2}with node-a {2}state X {2}priority 3 {2}sequence 4 {2}\(priority 3, written by 1-1-1\)\n {2}waiting: own priority 3/);
  t.equal(unconfirmed!.code, 1, 'a usage error: no terminal to confirm on');
  t.match(unconfirmed!.stderr, /give --yes to confirm in a script/);
  t.equal(forced!.code, 0, forced!.stderr);
  t.match(forced!.stdout, /^web: forced start accepted: starting as single master by forced start\n$/);
  t.same(calls.map((c) => c.method), ['priority.show', 'priority.show', 'priority.force-start'], 'nothing forced without the confirmation');
  t.same(calls[2]?.params, { tag: 'web' });
});

// The verdicts of `vigil doctor` (src/doctor/checks.ts) on facts written by hand: each fault gives the one
// check that names it, with what to do; the healthy facts give nothing but OK. The lab test
// (test/lab/doctor.test.ts) makes the same faults real against LIO.
import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { runChecks } from '../../src/doctor/checks.js';
import type { AgentStatus, DiskFacts, DoctorFacts, RecordFact, RegistrantFact } from '../../src/doctor/facts.js';
import type { Check } from '../../src/doctor/report.js';

const CONFIG = parseConfig(`
cluster: c1
keyFile: /etc/vigil/key
linkTable: /var/lib/vigil/links.json
networks: [{ name: lan1, port: 7400 }, { name: lan2, port: 7410 }]
nodes:
  - { name: a, id: 1, addresses: { lan1: 192.0.2.1, lan2: 198.51.100.1 } }
  - { name: b, id: 2, addresses: { lan1: 192.0.2.2, lan2: 198.51.100.2 } }
disks:
  - { name: shared0, identity: naa.6001405aaaaaaaaaaaaaaaaaaaaaaaaa }
apps:
  - tag: web
    type: cluster-capable
    command: "sleep 100"
    primary: a
    backup: b
    resources: [ { disk: shared0 }, { mount: { disk: shared0, path: /srv, fstype: ext4 } }, { ip: { address: 10.0.0.100/24, interface: svc } } ]
`, 'cluster.yaml');

const A_KEY = '0xabc0001';
const reg = (node: string | null, key: string, holder = false): RegistrantFact => ({ key, node, holder, type: holder ? 'wero' : null, transport: null });

function disk(over: Partial<DiskFacts> = {}): DiskFacts {
  return {
    name: 'shared0', identity: 'naa.6001405aaaaaaaaaaaaaaaaaaaaaaaaa', reservation: 'persistent', heartbeat: true, users: ['web'],
    paths: [
      { path: '/dev/sg1', hctl: '1:0:1:0', blockDevice: '/dev/sdb', ready: 'GOOD', readyOk: true },
      { path: '/dev/sg2', hctl: '2:0:1:0', blockDevice: '/dev/sdc', ready: 'GOOD', readyOk: true },
    ],
    stored: [{ path: '/dev/sg1', state: 'ok', detail: 'ok' }, { path: '/dev/sg2', state: 'ok', detail: 'ok' }],
    pr: { path: '/dev/sg1', generation: 7, registrants: [reg('a', A_KEY, true), reg('a', A_KEY, false)] },
    mounts: [{ source: '/dev/sdb', mountPoint: '/srv', fstype: 'ext4' }],
    ...over,
  };
}

function agent(over: Partial<AgentStatus> = {}): AgentStatus {
  const channel = (name: string, state: 'up' | 'down' = 'up') => ({ channel: name, state, lastHeardAgeMs: state === 'up' ? 50 : 5000, silentMs: state === 'up' ? 50 : 5000 });
  return {
    cluster: 'c1', node: 'a', incarnation: '1', uptimeMs: 60_000, messages: { sent: 0, received: 0, dropped: {} }, notices: [], heartbeat: undefined,
    peers: [{
      peer: 'b', state: 'alive', forMs: 60_000,
      channels: [channel('net:lan1'), channel('net:lan2'), { channel: 'disk:shared0', state: 'idle', lastHeardAgeMs: null, silentMs: 0 }],
      links: [{ network: 'lan1', heardAgoMs: 50, ackedAgoMs: 50, rttUs: 300 }, { network: 'lan2', heardAgoMs: 60, ackedAgoMs: 60, rttUs: 310 }],
      clock: { offsetMs: -3, rttMs: 0.3, ageMs: 400 },
    }],
    apps: [{ tag: 'web', type: 'cluster-capable', host: 'a', primary: 'a', backup: 'b', phase: 'running', faults: [], autoRecover: false, version: 3, here: undefined, prompt: null, resources: [] }],
    disks: [{ disk: 'shared0', holder: 'a', holding: true, fenced: false }],
    ...over,
  } as AgentStatus;
}

function healthy(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    configFile: 'cluster.yaml', config: CONFIG, configError: null, self: 'a', selfError: null, keyError: null,
    agent: { status: agent(), pairs: [{ tag: 'web', peer: 'b', state: 'M', priority: 1, sequence: '4', record: 'slot 0', decision: null, peerState: 'SL' }] },
    agentError: null, linkTable: '/var/lib/vigil/links.json', linkTableError: null, scanError: null,
    disks: [disk()], addresses: [{ tag: 'web', address: '10.0.0.100', prefixLength: 24, interface: 'svc', up: true }], stayOut: null, bmcs: [], records: [],
    ...over,
  };
}

const verdicts = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.id, c.verdict]));
const notOk = (checks: Check[]) => checks.filter((c) => c.verdict !== 'OK');
const only = (checks: Check[], id: string) => {
  const bad = notOk(checks);
  return { ids: bad.map((c) => `${c.id} ${c.verdict}`), check: checks.find((c) => c.id === id)! };
};

t.test('healthy facts: every check OK, and every OK has no fix', async (t) => {
  const checks = runChecks(healthy());
  t.same(notOk(checks), []);
  t.same(Object.keys(verdicts(checks)), ['config', 'agent', 'disk.shared0.paths', 'disk.shared0.links', 'disk.shared0.ready', 'disk.shared0.pr',
    'disk.shared0.reservation', 'disk.shared0.heartbeat', 'network.lan1', 'network.lan2', 'clocks', 'priority.web', 'power', 'stay-out', 'leftovers.mounts', 'leftovers.addresses']);
  t.ok(checks.every((c) => c.fix === null));
});

t.test('a configuration that does not load is the only check, FAIL, naming vigil config check', async (t) => {
  const checks = runChecks({ ...healthy(), config: null, configError: 'cluster.yaml:3:1: nodes: expected 2 to 16 nodes' });
  t.same(checks.map((c) => [c.id, c.verdict]), [['config', 'FAIL']]);
  t.match(checks[0]!.fix, /vigil config check cluster\.yaml/);
});

t.test('an unreadable cluster key FAILs the configuration: keys cannot be named', async (t) => {
  t.equal(verdicts(runChecks(healthy({ keyError: 'the cluster key cannot be read: EACCES' }))).config, 'FAIL');
});

t.test('one path gone since the link table was saved: WARN paths, naming it; the table itself still agrees', async (t) => {
  const d = disk({ paths: [disk().paths[0]!], stored: [{ path: '/dev/sg1', state: 'ok', detail: 'ok' }, { path: '/dev/sg2', state: 'missing', detail: 'ENOENT' }] });
  const { ids, check } = only(runChecks(healthy({ disks: [d] })), 'disk.shared0.paths');
  t.same(ids, ['disk.shared0.paths WARN']);
  t.match(check.summary, /gone since the link table was saved: \/dev\/sg2/);
  t.match(check.fix, /vigil links save/);
});

t.test('no path at all: FAIL paths, and nothing more is read of the disk', async (t) => {
  const checks = runChecks(healthy({ disks: [disk({ paths: [], stored: [{ path: '/dev/sg1', state: 'missing', detail: 'ENOENT' }], pr: null, mounts: [] })] }));
  t.equal(verdicts(checks)['disk.shared0.paths'], 'FAIL');
  t.notOk(checks.some((c) => c.id === 'disk.shared0.pr' || c.id === 'disk.shared0.ready'));
});

t.test('a stored path that leads to another unit: WARN links (stale), not paths', async (t) => {
  const d = disk({ stored: [{ path: '/dev/sg5', state: 'moved', detail: 'now leads to naa.600140500000000000000000000000bb' }] });
  const { ids, check } = only(runChecks(healthy({ disks: [d] })), 'disk.shared0.links');
  t.same(ids, ['disk.shared0.links WARN']);
  t.match(check.summary, /stale.*\/dev\/sg5 now leads to naa\.6001405/);
  t.match(check.fix, /vigil links save --file \/var\/lib\/vigil\/links\.json/);
});

t.test('no link table, or no entry for the disk: WARN links', async (t) => {
  t.equal(verdicts(runChecks(healthy({ linkTableError: 'no link table here' })))['disk.shared0.links'], 'WARN');
  t.equal(verdicts(runChecks(healthy({ disks: [disk({ stored: null })] })))['disk.shared0.links'], 'WARN');
});

t.test('TEST UNIT READY: one path failing WARNs, every path failing FAILs; a conflict answers', async (t) => {
  const [p1, p2] = disk().paths as [DiskFacts['paths'][number], DiskFacts['paths'][number]];
  const bad = { ...p2, ready: 'CHECK CONDITION: NOT READY', readyOk: false };
  t.equal(verdicts(runChecks(healthy({ disks: [disk({ paths: [p1, bad] })] })))['disk.shared0.ready'], 'WARN');
  t.equal(verdicts(runChecks(healthy({ disks: [disk({ paths: [{ ...p1, ready: 'x', readyOk: false }, bad] })] })))['disk.shared0.ready'], 'FAIL');
});

t.test('a key of no node registered: FAIL pr, naming the key', async (t) => {
  const d = disk({ pr: { path: '/dev/sg1', generation: 9, registrants: [reg('a', A_KEY, true), reg(null, '0x57a11e7')] } });
  const { ids, check } = only(runChecks(healthy({ disks: [d] })), 'disk.shared0.pr');
  t.same(ids, ['disk.shared0.pr FAIL']);
  t.match(check.summary, /0x57a11e7 belongs to no node of this cluster/);
  t.match(check.fix, /vigil scsi pr unregister DEV --key 0x57a11e7/);
});

t.test('PR state other than vigil keeps it: another type FAILs, a second node registered FAILs, a registration without reservation WARNs', async (t) => {
  const typed = disk({ pr: { path: '/dev/sg1', generation: 1, registrants: [{ ...reg('a', A_KEY, true), type: 'we' }] } });
  t.equal(verdicts(runChecks(healthy({ disks: [typed] })))['disk.shared0.pr'], 'FAIL');
  const two = disk({ pr: { path: '/dev/sg1', generation: 1, registrants: [reg('a', A_KEY, true), reg('b', '0xabc0002')] } });
  t.equal(verdicts(runChecks(healthy({ disks: [two] })))['disk.shared0.pr'], 'FAIL');
  const stray = disk({ pr: { path: '/dev/sg1', generation: 1, registrants: [reg('b', '0xabc0002')] } });
  const checks = runChecks(healthy({ agent: { status: agent({ apps: [{ ...agent().apps[0]!, host: null }], disks: [{ disk: 'shared0', holder: null }] }), pairs: [] }, disks: [{ ...stray, mounts: [] }], addresses: [] }));
  t.equal(verdicts(checks)['disk.shared0.pr'], 'WARN');
});

t.test('the reservation held by the wrong node: FAIL reservation, against the agent\'s view of who should', async (t) => {
  const byB = disk({ pr: { path: '/dev/sg1', generation: 3, registrants: [reg('b', '0xabc0002', true)] } });
  const { check } = only(runChecks(healthy({ disks: [byB] })), 'disk.shared0.reservation');
  t.equal(check.verdict, 'FAIL');
  t.match(check.summary, /held by b, but web is hosted by a/);
  const unloaded = runChecks(healthy({
    agent: { status: agent({ apps: [{ ...agent().apps[0]!, host: null }], disks: [{ disk: 'shared0', holder: 'b' }] }), pairs: [] },
    disks: [{ ...byB, mounts: [] }], addresses: [],
  }));
  const r = unloaded.find((c) => c.id === 'disk.shared0.reservation')!;
  t.equal(r.verdict, 'FAIL');
  t.match(r.summary, /held by b, but no node hosts web: nobody should hold it/);
  const none = disk({ pr: { path: '/dev/sg1', generation: 3, registrants: [] } });
  t.equal(verdicts(runChecks(healthy({ disks: [none] })))['disk.shared0.reservation'], 'FAIL', 'web runs on a unfenced');
});

t.test('without an agent: WARN agent, the agent\'s checks left out, the holder reported without a verdict on who', async (t) => {
  const checks = runChecks(healthy({ agent: null, agentError: 'vigild is not running', disks: [{ ...disk(), mounts: [] }], addresses: [] }));
  t.same(notOk(checks).map((c) => `${c.id} ${c.verdict}`), ['agent WARN']);
  t.notOk(checks.some((c) => c.id.startsWith('network.') || c.id.startsWith('priority.') || c.id.endsWith('.heartbeat')));
  t.match(checks.find((c) => c.id === 'disk.shared0.reservation')!.summary, /held by a \(no agent here/);
});

t.test('a network with a peer silent: WARN that network; a peer silent on every network: FAIL', async (t) => {
  const s = agent();
  const cut = { ...s, peers: [{ ...s.peers[0]!, channels: s.peers[0]!.channels.map((c) => (c.channel === 'net:lan2' ? { ...c, state: 'down' as const, silentMs: 4000 } : c)) }] };
  const { ids, check } = only(runChecks(healthy({ agent: { status: cut, pairs: healthy().agent!.pairs } })), 'network.lan2');
  t.same(ids, ['network.lan2 WARN']);
  t.match(check.fix, /check lan2 between this node and b: .*UDP 7410 and 7411/);
  const dead = { ...s, peers: [{ ...s.peers[0]!, state: 'failed' as const, channels: s.peers[0]!.channels.map((c) => ({ ...c, state: 'down' as const })) }] };
  const v = verdicts(runChecks(healthy({ agent: { status: dead, pairs: [] } })));
  t.equal(v['network.lan1'], 'FAIL');
  t.equal(v['network.lan2'], 'FAIL');
});

t.test('a network that loses 5% or more of a peer\'s heartbeats: WARN that network, with what to look at', async (t) => {
  const s = agent();
  const lossy = (loss: number) => ({ ...s, peers: [{ ...s.peers[0]!, links: s.peers[0]!.links.map((l) => (l.network === 'lan1' ? { ...l, loss } : { ...l, loss: 0 })) }] });
  const { ids, check } = only(runChecks(healthy({ agent: { status: lossy(0.3), pairs: healthy().agent!.pairs } })), 'network.lan1');
  t.same(ids, ['network.lan1 WARN']);
  t.equal(check.summary, 'lan1: b heard 0.1 s ago, rtt 0.30 ms, 30% lost');
  t.match(check.fix, /^lan1 drops heartbeats between this node and b: .*ip -s link/);
  t.equal(verdicts(runChecks(healthy({ agent: { status: lossy(0.049), pairs: [] } })))['network.lan1'], 'OK', 'below 5%: OK, the loss shown');
});

t.test('a peer\'s clock half a second or more off: WARN clocks, with the fix; not measured yet: OK, said so', async (t) => {
  const s = agent();
  const skewed = (offsetMs: number) => ({ ...s, peers: [{ ...s.peers[0]!, clock: { offsetMs, rttMs: 0.3, ageMs: 400 } }] });
  const behind = only(runChecks(healthy({ agent: { status: skewed(-2500), pairs: healthy().agent!.pairs } })), 'clocks');
  t.same(behind.ids, ['clocks WARN']);
  t.equal(behind.check.summary, 'clocks against this node\'s: b -2500 ms (±0.3 ms)');
  t.match(behind.check.fix, /synchronise the clocks of this node and b \(chrony/);
  t.equal(verdicts(runChecks(healthy({ agent: { status: skewed(500), pairs: [] } }))).clocks, 'WARN', 'ahead as much: the same');
  t.equal(verdicts(runChecks(healthy({ agent: { status: skewed(499), pairs: [] } }))).clocks, 'OK');
  const unmeasured = { ...s, peers: [{ ...s.peers[0]!, clock: undefined }] };
  const fresh = runChecks(healthy({ agent: { status: unmeasured, pairs: [] } })).find((c) => c.id === 'clocks')!;
  t.match(fresh, { verdict: 'OK', summary: 'clocks against this node\'s: b not measured yet' });
  t.notOk(runChecks(healthy({ agent: null })).some((c) => c.id === 'clocks'), 'without an agent: not checked (its status has the estimates)');
});

t.test('the holder\'s disk pulse silent: WARN heartbeat; this node fenced: FAIL', async (t) => {
  const s = agent({ node: 'b' });
  const silent = { ...s, disks: [{ disk: 'shared0', holder: 'a' }], peers: [{ ...s.peers[0]!, peer: 'a', channels: [{ channel: 'disk:shared0', state: 'down' as const, lastHeardAgeMs: 9000, silentMs: 9000 }] }] };
  const onB = healthy({ self: 'b', agent: { status: silent, pairs: [] }, disks: [{ ...disk(), mounts: [] }], addresses: [] });
  t.equal(verdicts(runChecks(onB))['disk.shared0.heartbeat'], 'WARN');
  t.equal(verdicts(runChecks(healthy({ agent: { status: agent({ disks: [{ disk: 'shared0', holder: 'a', fenced: true }] }), pairs: [] } })))['disk.shared0.heartbeat'], 'FAIL');
});

t.test('a mount of a cluster disk on a node that hosts no app using it: FAIL leftovers.mounts, with the umount', async (t) => {
  const onB = healthy({ self: 'b', agent: { status: agent({ node: 'b', disks: [{ disk: 'shared0', holder: 'a' }] }), pairs: [] }, addresses: [] });
  const { ids, check } = only(runChecks(onB), 'leftovers.mounts');
  t.same(ids, ['leftovers.mounts FAIL']);
  t.match(check.summary, /shared0 mounted at \/srv \(\/dev\/sdb\) but web is not hosted here/);
  t.equal(check.fix, 'unmount it: umount /srv (a mount writes to the disk beside its owner)');
});

t.test('a service address up on a node that does not host its app: FAIL leftovers.addresses, with the ip addr del', async (t) => {
  const onB = healthy({ self: 'b', agent: { status: agent({ node: 'b', disks: [{ disk: 'shared0', holder: 'a' }] }), pairs: [] }, disks: [{ ...disk(), mounts: [] }] });
  const { ids, check } = only(runChecks(onB), 'leftovers.addresses');
  t.same(ids, ['leftovers.addresses FAIL']);
  t.match(check.fix, /ip addr del 10\.0\.0\.100\/24 dev svc/);
});

t.test('a stay-out record FAILs stay-out, naming vigil rejoin', async (t) => {
  const checks = runChecks(healthy({ stayOut: { since: '2026-01-01T00:00:00.000Z', reason: 'low-battery', source: 'ups1', incarnation: '1', text: 'battery low' } }));
  t.equal(verdicts(checks)['stay-out'], 'FAIL');
  t.match(checks.find((c) => c.id === 'stay-out')!.fix, /vigil rejoin/);
});

t.test('a pair waiting for its peer WARNs priority; an unreadable record FAILs it', async (t) => {
  const pair = healthy().agent!.pairs![0]!;
  t.equal(verdicts(runChecks(healthy({ agent: { status: agent(), pairs: [{ ...pair, state: 'X' }] } })))['priority.web'], 'WARN');
  t.equal(verdicts(runChecks(healthy({ agent: { status: agent(), pairs: [{ ...pair, priority: null }] } })))['priority.web'], 'FAIL');
});

t.test('power sources as vigild watches them: on battery or silent WARNs, low battery FAILs', async (t) => {
  const withPower = { ...CONFIG, power: { sources: [], onBattery: { graceMs: undefined }, commsLostOnBatteryMs: undefined, modes: {} } } as unknown as typeof CONFIG;
  const facts = (sources: { source: string; type: string; connected: boolean; state: string | null; lastError?: string }[]) =>
    healthy({ config: withPower, agent: { ...healthy().agent!, power: { configured: true, sources } } });
  const v = (sources: Parameters<typeof facts>[0]) => runChecks(facts(sources)).find((c) => c.id === 'power')!;
  t.equal(v([{ source: 'ups1', type: 'nut', connected: true, state: 'online' }]).verdict, 'OK');
  t.equal(v([{ source: 'ups1', type: 'nut', connected: true, state: 'on-battery' }]).verdict, 'WARN');
  const lost = v([{ source: 'ups1', type: 'nut', connected: false, state: null, lastError: 'ECONNREFUSED' }]);
  t.equal(lost.verdict, 'WARN');
  t.match(lost.fix, /ups1 does not answer \(ECONNREFUSED\)/);
  t.equal(v([{ source: 'ups1', type: 'nut', connected: true, state: 'low-battery' }]).verdict, 'FAIL');
});

t.test('a BMC that cannot be asked WARNs (the node cannot be power-fenced); a peer powered off WARNs; one that answers on is OK', async (t) => {
  const bmc = (power: 'on' | 'off' | null, error: string | null) => runChecks(healthy({ bmcs: [{ node: 'b', host: '10.9.0.2', port: 623, power, error }] })).find((c) => c.id === 'bmc.b')!;
  t.equal(bmc('on', null).verdict, 'OK');
  const silent = bmc(null, 'no answer to Get Channel Authentication Capabilities');
  t.equal(silent.verdict, 'WARN');
  t.match(silent.fix, /until it answers, b cannot be power-fenced/);
  t.equal(bmc('off', null).verdict, 'WARN');
});

t.test('without an agent, the pair\'s record from the store: OK with what a lone start would decide; missing WARNs; unreadable FAILs', async (t) => {
  const rec: RecordFact = { tag: 'web', peer: 'b', priority: 1, missing: false, record: 'priority 1 (was master)', loneStart: 'starting alone: own priority 1' };
  const check = (r: RecordFact) => runChecks(healthy({ agent: null, agentError: 'not running', disks: [{ ...disk(), mounts: [] }], addresses: [], records: [r] })).find((c) => c.id === 'priority.web')!;
  t.match(check(rec), { verdict: 'OK', summary: 'web with b: priority 1 (was master); started alone now: starting alone: own priority 1' });
  t.equal(check({ ...rec, priority: null, missing: true }).verdict, 'WARN');
  t.equal(check({ ...rec, priority: null }).verdict, 'FAIL');
});

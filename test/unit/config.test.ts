// The cluster configuration: the lab example parses with every default filled in; each kind of mistake is
// reported with the line, column and field path to fix, all of them at once; `vigil config check` prints
// them and exits 1.
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { ConfigError, formatPath, loadConfig, parseConfig, type Problem } from '../../src/config/load.js';
import { identityProblem, parseEndpoint } from '../../src/config/schema.js';
import { runCli } from '../support/cli.js';
import { repoFile } from '../support/paths.js';

const EXAMPLE_PATH = repoFile('hw-fixtures', 'cluster', 'lab-two-node.yaml');
const EXAMPLE = readFileSync(EXAMPLE_PATH, 'utf8');

/** The example with `from` replaced by `to` (which must occur exactly once). */
function edit(from: string, to: string, text = EXAMPLE): string {
  if (text.split(from).length !== 2) throw new Error(`edit: "${from}" is not in the text exactly once`);
  return text.replace(from, to);
}

/** 1-based line of the `nth` line holding `needle`. */
function lineOf(text: string, needle: string, nth = 1): number {
  const lines = text.split('\n').map((l, i) => (l.includes(needle) ? i + 1 : 0)).filter((n) => n > 0);
  const line = lines[nth - 1];
  if (line === undefined) throw new Error(`lineOf: "${needle}" not found ${nth} times`);
  return line;
}

/** 1-based column of `needle` on the first line holding it. */
function columnOf(text: string, needle: string): number {
  return text.split('\n')[lineOf(text, needle) - 1]!.indexOf(needle) + 1;
}

function problems(text: string): Problem[] {
  try {
    parseConfig(text, 'cluster.yaml', { baseDir: '/etc/vigil' });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('the configuration was accepted');
}

const MINIMAL = `
cluster: c1
keyFile: /etc/vigil/key
networks: [{ name: n1, port: 7400 }]
nodes:
  - { name: x, id: 1, addresses: { n1: 192.0.2.1 } }
  - { name: y, id: 2, addresses: { n1: "2001:db8::2" } }
`;

t.test('the lab example parses, with relative paths resolved against its directory and defaults filled in', async (t) => {
  const c = await loadConfig(EXAMPLE_PATH);
  const dir = EXAMPLE_PATH.replace(/\/[^/]+$/, '');
  t.equal(c.source, EXAMPLE_PATH);
  t.equal(c.cluster, 'lab');
  t.equal(c.keyFile, `${dir}/cluster.key`);
  t.equal(c.linkTable, '/var/lib/vigil/links.json');
  t.same(c.control, { socket: '/run/vigil/ctl.sock', group: 'vigil', adminGroup: undefined, debug: false });
  t.same(c.metrics, { listen: { host: '127.0.0.1', port: 9642 } });
  t.same(c.networks, [{ name: 'lan1', port: 7400 }, { name: 'lan2', port: 7401 }]);
  t.same(c.nodes.map((n) => [n.name, n.id, n.addresses, n.reservationKey]), [
    ['a', 1, { lan1: '10.1.0.1', lan2: '10.2.0.1' }, undefined],
    ['b', 2, { lan1: '10.1.0.2', lan2: '10.2.0.2' }, undefined],
  ]);
  t.same(c.disks, [{ name: 'shared0', identity: 'naa.5001405aaaa00000', reservation: 'persistent', heartbeat: true, preemptAndAbort: true }]);
  t.same(c.timing, {
    heartbeatIntervalMs: 100, failAfterMs: 400, recoverAfterMs: 1000, diskHeartbeatIntervalMs: 200, agentLeaseMs: 5000,
    failbackDwellMs: 10000, failbackPromptRepeatMs: 60000, peerProbeMs: 10000,
  });
  const web = c.apps[0]!;
  t.equal(c.apps.length, 1);
  t.match(web, {
    tag: 'web', type: 'cluster-capable', command: ['/usr/bin/python3', '-m', 'http.server', '8080'], cwd: '/srv/web',
    env: {}, primary: 'a', backup: 'b', autoRecover: false, stopTimeoutMs: 10000, localRestarts: 0, restartWindowMs: 600000, attributes: { owner: 'ops' },
  });
  t.same(web.resources, [
    { kind: 'disk', disk: 'shared0' },
    { kind: 'mount', disk: 'shared0', path: '/srv/web', fstype: 'ext4', options: ['noatime'] },
    { kind: 'ip', address: '10.3.0.100', prefixLength: 24, interface: { a: 'eth0', b: 'eth0' } },
  ]);
  t.same(web.monitor, { probe: { kind: 'tcp', host: '127.0.0.1', port: 8080 }, intervalMs: 1000, timeoutMs: 500, failures: 3 });
});

t.test('a minimal configuration gets every default', async (t) => {
  const c = parseConfig(MINIMAL, '/etc/vigil/cluster.yaml');
  t.equal(c.stateDir, '/var/lib/vigil');
  t.equal(c.linkTable, '/var/lib/vigil/links.json');
  t.same(c.control, { socket: '/run/vigil/ctl.sock', group: undefined, adminGroup: undefined, debug: false });
  t.equal(c.metrics, undefined);
  t.same(c.log, { level: 'info' });
  t.same(c.disks, []);
  t.same(c.apps, []);
  t.equal(c.power, undefined);
  t.same(c.distress, { priority: 20, repeats: 3, repeatGapUs: 1000, fatalSignals: true, lockMemory: true });
  t.equal(c.timing.failAfterMs, 400);
  t.equal(c.nodes[1]!.addresses.n1, '2001:db8::2');
});

t.test('relative stateDir and linkTable resolve against the file; linkTable defaults inside stateDir', async (t) => {
  const c = parseConfig(`${MINIMAL}stateDir: state\n`, '/etc/vigil/cluster.yaml');
  t.equal(c.stateDir, '/etc/vigil/state');
  t.equal(c.linkTable, '/etc/vigil/state/links.json');
  t.equal(parseConfig(`${MINIMAL}linkTable: ../links.json\n`, '/etc/vigil/cluster.yaml').linkTable, '/etc/links.json');
});

t.test('a string command runs through /bin/sh -c; env values become text; a reservation key is a bigint', async (t) => {
  const text = `${MINIMAL.replace('{ name: x, id: 1,', '{ name: x, id: 1, reservationKey: "0xABC",')}
apps:
  - tag: job
    type: cluster-aware
    command: "exec ./run --port 80"
    env: { PORT: 80, DEBUG: true }
    primary: x
    backup: y
    monitor: { command: [/bin/true], timeoutMs: 200 }
    resources:
      - { ip: { address: "fd00::10/64", interface: { x: eth0, y: bond0 } } }
`;
  const c = parseConfig(text, '/etc/vigil/cluster.yaml');
  const job = c.apps[0]!;
  t.same(job.command, ['/bin/sh', '-c', 'exec ./run --port 80']);
  t.same(job.env, { PORT: '80', DEBUG: 'true' });
  t.same(job.monitor, { probe: { kind: 'command', command: ['/bin/true'] }, intervalMs: 1000, timeoutMs: 200, failures: 3 });
  t.same(job.resources, [{ kind: 'ip', address: 'fd00::10', prefixLength: 64, interface: { x: 'eth0', y: 'bond0' } }]);
  t.equal(c.nodes[0]!.reservationKey, 0xabcn);
  t.equal(c.nodes[1]!.reservationKey, undefined);
});

t.test('a misspelt key is an error on its own line, with a suggestion, and no second "required" for the real key', async (t) => {
  const text = edit('    addresses: { lan1: 10.1.0.2', '    adresses: { lan1: 10.1.0.2');
  t.same(problems(text), [{ line: lineOf(text, 'adresses'), column: 5, path: 'nodes[1].adresses', message: 'unknown key (did you mean "addresses"?)' }]);
  const top = edit('stateDir: /var/lib/vigil', 'stateDirectory: /var/lib/vigil');
  t.match(problems(top), [{ line: lineOf(top, 'stateDirectory'), column: 1, path: 'stateDirectory', message: /unknown key \(expected one of: cluster, keyFile, stateDir/ }]);
});

t.test('a mapping or a list as a key is refused at its line, without a process warning (the fuzz campaign found it stringified)', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => { process.off('warning', onWarning); });
  const text = `${EXAMPLE.trimEnd()}\n{ addresses: 1 }: x\n`;
  t.same(problems(text), [{ line: lineOf(text, '{ addresses: 1 }'), column: 1, path: '', message: 'a key must be a plain name, not a mapping or a list' }]);
  const list = edit('stateDir: /var/lib/vigil', '[stateDir]: /var/lib/vigil');
  t.same(problems(list), [{ line: lineOf(list, '[stateDir]'), column: 1, path: '', message: 'a key must be a plain name, not a mapping or a list' }]);
  await new Promise((r) => setImmediate(r));
  t.same(warnings, [], 'no "Keys with collection values will be stringified" warning');
});

t.test('a node without an address on a network names the missing field at its mapping', async (t) => {
  const text = edit('{ lan1: 10.1.0.2, lan2: 10.2.0.2 }', '{ lan1: 10.1.0.2 }');
  const line = lineOf(text, '{ lan1: 10.1.0.2 }');
  t.same(problems(text), [{ line, column: 16, path: 'nodes[1].addresses.lan2', message: 'required (every node needs an address on each network)' }]);
  t.throws(() => parseConfig(text, 'cluster.yaml'), {
    message: `cluster.yaml:${line}:16: nodes[1].addresses.lan2: required (every node needs an address on each network)`,
  });
});

t.test('an address on an undeclared network, or one shared by two nodes, is refused', async (t) => {
  const text = edit('{ lan1: 10.1.0.2, lan2: 10.2.0.2 }', '{ lan1: 10.1.0.1, lan2: 10.2.0.2, lan9: 10.9.0.2 }');
  t.match(problems(text), [
    { path: 'nodes[1].addresses.lan1', message: "10.1.0.1 is also nodes[0]'s address on lan1" },
    { path: 'nodes[1].addresses.lan9', message: 'unknown network "lan9" (networks: lan1, lan2)' },
  ]);
  const bad = edit('lan2: 10.2.0.1 }', 'lan2: 10.2.0.256 }');
  t.match(problems(bad), [{ line: lineOf(bad, '10.2.0.256'), path: 'nodes[0].addresses.lan2', message: 'expected an IPv4 or IPv6 address' }]);
});

t.test('an app whose backup is its primary, or that names an unknown node, points at that field', async (t) => {
  const same = edit('    backup: b', '    backup: a');
  t.same(problems(same), [{ line: lineOf(same, 'backup: a'), column: 13, path: 'apps[0].backup', message: 'the backup must be another node than the primary (a)' }]);
  const unknown = edit('    primary: a', '    primary: c');
  t.same(problems(unknown), [{ line: lineOf(unknown, 'primary: c'), column: 14, path: 'apps[0].primary', message: 'unknown node "c" (nodes: a, b)' }]);
});

t.test('a negative or fractional localRestarts is refused at its line', async (t) => {
  for (const bad of ['-1', '1.5']) {
    const text = edit('    backup: b', `    backup: b\n    localRestarts: ${bad}`);
    t.same(problems(text), [{ line: lineOf(text, 'localRestarts'), column: 20, path: 'apps[0].localRestarts', message: 'expected a whole number, 0 or more' }], bad);
  }
});

t.test('duplicate names, ids and tags name the second one and the first', async (t) => {
  // A third node that repeats a's name and id, and a second app "web" that also claims shared0.
  const app = EXAMPLE.slice(EXAMPLE.indexOf('  - tag: web'));
  const third = '    addresses: { lan1: 10.1.0.2, lan2: 10.2.0.2 }\n  - name: a\n    id: 1\n    addresses: { lan1: 10.1.0.3, lan2: 10.2.0.3 }';
  const text = edit('    addresses: { lan1: 10.1.0.2, lan2: 10.2.0.2 }', third) + app;
  t.same(problems(text).map((p) => [p.line, p.column, p.path, p.message]), [
    [lineOf(text, '- name: a', 2), 11, 'nodes[2].name', 'duplicate node name "a" (also nodes[0])'],
    [lineOf(text, 'id: 1', 2), 9, 'nodes[2].id', 'duplicate node id 1 (also nodes[0])'],
    [lineOf(text, '- tag: web', 2), 10, 'apps[1].tag', 'duplicate app tag "web" (also apps[0])'],
    [lineOf(text, '{ disk: shared0 }', 2), 17, 'apps[1].resources[0].disk', 'disk "shared0" already belongs to apps[0]; a disk has one owner'],
  ]);
});

t.test('a disk identity must be canonical VPD 0x83 text', async (t) => {
  const text = edit('naa.5001405aaaa00000', 'naa.5001405AAAA0000');
  t.same(problems(text), [{
    line: lineOf(text, 'identity:'), column: 15, path: 'disks[0].identity',
    message: 'naa. takes 16 (NAA 2, 3, 5) or 32 (NAA 6) lowercase hex digits, as vigil scsi scan prints it',
  }]);
  for (const ok of ['naa.5001405aaaa00000', 'naa.60014055ca1ab1e00000001000000000', 'eui.0011223344556677', 'uuid.00112233445566778899aabbccddeeff',
    't10.LIO-ORG disk0 abc', 'iqn.2003-01.org.linux-iscsi.lab:sn.1']) {
    t.equal(identityProblem(ok), undefined, ok);
  }
  for (const bad of ['naa.6001405', 'naa.7001405aaaa00000', 'eui.00112233', 'uuid.xyz', 't10. ', '/dev/sdb', 'scsi-36001405']) {
    t.type(identityProblem(bad), 'string', bad);
  }
});

t.test('a port out of range is refused at the port, wherever it is', async (t) => {
  const text = edit('{ name: lan2, port: 7401 }', '{ name: lan2, port: 74010 }');
  t.same(problems(text), [{ line: lineOf(text, '74010'), column: 25, path: 'networks[1].port', message: 'expected a port from 1 to 65534 (port + 1 is used too)' }]);
  const top = edit('{ name: lan2, port: 7401 }', '{ name: lan2, port: 65535 }');
  t.match(problems(top), [{ path: 'networks[1].port', message: /port \+ 1 is used too/ }], 'a network needs its port and the next');
  const monitor = edit('tcp: "127.0.0.1:8080"', 'tcp: "127.0.0.1:0"');
  t.match(problems(monitor), [{ path: 'apps[0].monitor.tcp', message: /expected host:port/ }]);
  t.same(parseEndpoint('[::1]:9642'), { host: '::1', port: 9642 });
  t.same(parseEndpoint('db.example:5432'), { host: 'db.example', port: 5432 });
  t.equal(parseEndpoint('[10.0.0.1]:1'), undefined);
  t.equal(parseEndpoint('10.0.0.1'), undefined);
});

t.test('a YAML syntax error gives its line and column and stops there', async (t) => {
  const text = edit('  - { name: lan2, port: 7401 }', '  - { name: lan2, port: 7401');
  const found = problems(text);
  t.equal(found.length, 1);
  t.match(found[0], { line: lineOf(text, 'nodes:'), column: 1, path: '', message: /^YAML: / });
  const dup = edit('cluster: lab', 'cluster: lab\ncluster: lab2');
  t.same(problems(dup), [{ line: 2, column: 1, path: '', message: 'YAML: map keys must be unique' }].map((p) => ({ ...p, line: lineOf(dup, 'lab2') })));
});

t.test('a mount needs its disk owned earlier in the same app', async (t) => {
  const text = edit('      - { disk: shared0 }\n      - { mount: { disk: shared0, path: /srv/web, fstype: ext4, options: [noatime] } }',
    '      - { mount: { disk: shared0, path: /srv/web, fstype: ext4, options: [noatime] } }\n      - { disk: shared0 }');
  t.same(problems(text), [{
    line: lineOf(text, '{ mount:'), column: 26, path: 'apps[0].resources[0].mount.disk',
    message: 'mounting disk "shared0" needs its ownership first: put { disk: shared0 } earlier in this app\'s resources',
  }]);
  const undeclared = edit('{ disk: shared0 }', '{ disk: shared1 }');
  t.match(problems(undeclared), [
    { path: 'apps[0].resources[0].disk', message: 'unknown disk "shared1" (disks: shared0)' },
    { path: 'apps[0].resources[1].mount.disk', message: /needs its ownership first/ },
  ]);
});

t.test('a mount point is a plain path outside the system\'s own directories, its options one per item', async (t) => {
  const etc = edit('path: /srv/web', 'path: /etc');
  t.match(problems(etc), [{ line: lineOf(etc, 'path: /etc'), path: 'apps[0].resources[1].mount.path', message: '/etc is a system directory: mount a shared file system elsewhere, e.g. /srv/NAME or /var/lib/NAME' }]);
  const up = edit('path: /srv/web', 'path: /srv/../usr/lib');
  t.match(problems(up), [{ path: 'apps[0].resources[1].mount.path', message: 'expected a plain path (no "..", "." or repeated or trailing "/"): /usr/lib' }]);
  const injected = edit('options: [noatime]', 'options: ["noatime,remount"]');
  t.match(problems(injected), [{ path: 'apps[0].resources[1].mount.options[0]', message: /no commas or spaces/ }]);
  t.equal(parseConfig(edit('path: /srv/web', 'path: /var/lib/web'), 'cluster.yaml', { baseDir: '/etc/vigil' }).apps[0]?.resources[1]?.kind, 'mount', 'below /var is fine');
});

t.test('a resource is exactly one of disk, mount and ip; an interface map names known nodes, including primary and backup', async (t) => {
  const both = edit('      - { disk: shared0 }', '      - { disk: shared0, ip: { address: 10.3.0.101/24, interface: eth1 } }');
  t.match(problems(both), [{ line: lineOf(both, 'ip: { address: 10.3.0.101'), path: 'apps[0].resources[0].ip', message: /one of disk, mount, ip, not both disk and ip/ }]);
  const map = edit('interface: eth0', 'interface: { a: eth0, c: eth1 }');
  t.match(problems(map), [
    { path: 'apps[0].resources[2].ip.interface', message: 'no interface for node "b" (the app\'s backup)' },
    { path: 'apps[0].resources[2].ip.interface.c', message: 'unknown node "c" (nodes: a, b)' },
  ]);
});

t.test('a monitor is one probe, tcp or command, whose timeout fits in its interval', async (t) => {
  const both = edit('monitor: { tcp: "127.0.0.1:8080",', 'monitor: { tcp: "127.0.0.1:8080", command: [/bin/true],');
  t.match(problems(both), [{ line: lineOf(both, 'monitor:'), path: 'apps[0].monitor.command', message: /a monitor is one of tcp, command, not both/ }]);
  const slow = edit('timeoutMs: 500', 'timeoutMs: 1500');
  t.same(problems(slow), [{
    line: lineOf(slow, 'timeoutMs: 1500'), column: columnOf(slow, '1500'),
    path: 'apps[0].monitor.timeoutMs', message: "a probe's timeoutMs (1500) cannot exceed its intervalMs (1000)",
  }]);
});

t.test('failAfterMs below twice the heartbeat interval is refused', async (t) => {
  const text = edit('  failAfterMs: 400', '  failAfterMs: 150');
  t.same(problems(text), [{
    line: lineOf(text, 'failAfterMs: 150'), column: 16, path: 'timing.failAfterMs',
    message: 'failAfterMs (150) must be at least twice heartbeatIntervalMs (100): one lost heartbeat must not fail a peer',
  }, {
    line: lineOf(text, 'failAfterMs: 150'), column: 16, path: 'timing.failAfterMs',
    message: 'failAfterMs (150) must be at least twice diskHeartbeatIntervalMs (200) while a disk carries heartbeats',
  }]);
  const interval = `${MINIMAL}timing: { heartbeatIntervalMs: 250 }\n`;
  t.match(problems(interval), [{ path: 'timing.heartbeatIntervalMs', message: /failAfterMs \(400\) must be at least twice heartbeatIntervalMs \(250\)/ }]);
});

t.test('every problem in a file is reported together, in line order', async (t) => {
  const text = edit('cluster: lab', 'cluster: Lab',
    edit('    reservation: persistent', '    reservation: scsi3',
      edit('    autoRecover: false', '    autoRecover: no',
        edit('{ lan1: 10.1.0.2, lan2: 10.2.0.2 }', '{ lan1: 10.1.0.2 }'))));
  const found = problems(text);
  t.same(found.map((p) => [p.line, p.path]), [
    [lineOf(text, 'cluster: Lab'), 'cluster'],
    [lineOf(text, '{ lan1: 10.1.0.2 }'), 'nodes[1].addresses.lan2'],
    [lineOf(text, 'scsi3'), 'disks[0].reservation'],
    [lineOf(text, 'autoRecover: no'), 'apps[0].autoRecover'],
  ]);
  t.match(found.map((p) => p.message), [/expected a cluster name/, /required/, 'expected one of persistent, scsi2; got "scsi3"', 'expected true or false, got "no"']);
});

t.test('missing required fields and wrong types say so', async (t) => {
  t.match(problems('cluster: c1\n'), [
    { line: 1, column: 1, path: 'keyFile', message: 'required' },
    { line: 1, column: 1, path: 'networks', message: 'required' },
    { line: 1, column: 1, path: 'nodes', message: 'required' },
  ]);
  t.same(problems(''), [{ line: 1, column: 1, path: '', message: 'expected a mapping with cluster, keyFile, networks and nodes (see docs/config.md)' }]);
  const one = MINIMAL.replace(/ {2}- \{ name: y.*\n/, '');
  t.match(problems(one), [{ path: 'nodes', message: 'expected 2 to 16 nodes' }]);
  const key = MINIMAL.replace('{ name: x, id: 1,', '{ name: x, id: 1, reservationKey: 0x1234,');
  t.match(problems(key), [{ path: 'nodes[0].reservationKey', message: /hex string in quotes/ }]);
  const cmd = edit('command: ["/usr/bin/python3", "-m", "http.server", "8080"]', 'command: ["/usr/bin/python3", ""]');
  t.match(problems(cmd), [{ path: 'apps[0].command[1]', message: 'expected a non-empty argument' }]);
  const noCmd = edit('    command: ["/usr/bin/python3", "-m", "http.server", "8080"]\n', '');
  t.same(problems(noCmd), [{ line: lineOf(noCmd, '- tag: web'), column: 5, path: 'apps[0].command', message: 'required' }]);
  const port = edit('port: 7401', 'port: "7401"');
  t.match(problems(port), [{ path: 'networks[1].port', message: 'expected a number, got "7401"' }]);
});

t.test('field paths print as in JavaScript, quoting odd keys', async (t) => {
  t.equal(formatPath(['nodes', 1, 'addresses', 'lan2']), 'nodes[1].addresses.lan2');
  t.equal(formatPath(['apps', 0, 'env', 'A.B']), 'apps[0].env["A.B"]');
  t.equal(formatPath([]), '');
});

t.test('loadConfig: a missing file is one problem with no position', async (t) => {
  await t.rejects(loadConfig('/nonexistent/cluster.yaml'), { name: 'ConfigError', message: '/nonexistent/cluster.yaml: cannot read the configuration: no such file' });
});

t.test('vigil config check: ok line and exit 0; problems on stderr and exit 1; --json documents; missing file', async (t) => {
  const ok = await runCli('vigil', ['config', 'check', EXAMPLE_PATH]);
  t.equal(ok.code, 0);
  t.equal(ok.stdout, `${EXAMPLE_PATH}: ok (cluster lab, 2 nodes, 2 networks, 1 disk, 1 app)\n`);
  t.equal(ok.stderr, '');

  const okJson = await runCli('vigil', ['--json', 'config', 'check', EXAMPLE_PATH]);
  t.equal(okJson.code, 0);
  t.match(JSON.parse(okJson.stdout), { ok: true, config: { cluster: 'lab', nodes: [{ name: 'a', reservationKey: null }, { name: 'b' }] } });

  const dir = await mkdtemp(join(tmpdir(), 'vigil-config-'));
  const file = join(dir, 'cluster.yaml');
  const text = edit('    backup: b', '    backup: a', edit('{ lan1: 10.1.0.2, lan2: 10.2.0.2 }', '{ lan1: 10.1.0.2 }'));
  await writeFile(file, text);
  const bad = await runCli('vigil', ['config', 'check', file]);
  t.equal(bad.code, 1);
  t.equal(bad.stdout, '');
  t.equal(bad.stderr, [
    `${file}:${lineOf(text, '{ lan1: 10.1.0.2 }')}:16: nodes[1].addresses.lan2: required (every node needs an address on each network)`,
    `${file}:${lineOf(text, 'backup: a')}:13: apps[0].backup: the backup must be another node than the primary (a)`,
  ].join('\n') + '\n');

  const badJson = await runCli('vigil', ['--json', 'config', 'check', file]);
  t.equal(badJson.code, 1);
  const doc = JSON.parse(badJson.stdout) as { ok: boolean; problems: Problem[] };
  t.equal(doc.ok, false);
  t.same(doc.problems.map((p) => p.path), ['nodes[1].addresses.lan2', 'apps[0].backup']);

  const missing = await runCli('vigil', ['config', 'check', join(dir, 'none.yaml')]);
  t.equal(missing.code, 1);
  t.equal(missing.stderr, `${join(dir, 'none.yaml')}: cannot read the configuration: no such file\n`);
  t.notMatch(missing.stderr, /\n\s+at /);
});

// The example of docs/power.md, so that the documentation cannot drift from what the schema takes.
const POWER_EXAMPLE = /```yaml\n(power:\n[\s\S]*?)```/.exec(readFileSync(repoFile('docs', 'power.md'), 'utf8'))![1]!;

t.test('power: the example of docs/power.md parses, each source with its name, the defaults filled in', async (t) => {
  const c = parseConfig(MINIMAL + POWER_EXAMPLE, '/etc/vigil/cluster.yaml');
  t.strictSame(c.power, {
    sources: [
      {
        kind: 'nut', name: 'nut:rack1@ups-mgmt.example', host: 'ups-mgmt.example', port: 3493, ups: 'rack1', user: 'vigil',
        passwordFile: '/etc/vigil/nut.password', pollMs: 1000, timeoutMs: 2000, commsLostAfter: 3,
      },
      {
        kind: 'apc-smart', name: 'apc-smart:/dev/serial/by-id/usb-FTDI_…-if00-port0', device: '/dev/serial/by-id/usb-FTDI_…-if00-port0',
        pollMs: 1000, timeoutMs: 1000, commsLostAfter: 3,
      },
      {
        kind: 'contact-closure', name: 'relay-ups', device: '/dev/ttyS0', upstype: 2, lines: { online: 'CTS', lowBattery: 'DCD' },
        polarity: { online: 'active-low', lowBattery: undefined }, cablePower: ['DTR', 'RTS'], debounceMs: 100,
      },
    ],
    onBattery: { graceMs: 120000 },
    commsLostOnBatteryMs: 15000,
    modes: { onBatteryGrace: 'async', commsLostOnBattery: 'async', lowBattery: 'sync', forcedShutdown: 'sync' },
  });
});

t.test('power: a NUT source on another port is named with it; a relative passwordFile resolves against the file', async (t) => {
  const c = parseConfig(`${MINIMAL}power:
  sources:
    - { kind: nut, host: 10.0.0.5, port: 3494, ups: rack2, user: vigil, passwordFile: nut.password }
    - { kind: contact-closure, device: /dev/ttyS1, lines: { online: DSR } }
`, '/etc/vigil/cluster.yaml');
  t.match(c.power!.sources, [
    { kind: 'nut', name: 'nut:rack2@10.0.0.5:3494', port: 3494, passwordFile: '/etc/vigil/nut.password' },
    { kind: 'contact-closure', name: 'contact-closure:/dev/ttyS1', upstype: undefined, lines: { online: 'DSR' }, cablePower: undefined, debounceMs: 100 },
  ]);
  t.strictSame(c.power!.onBattery, { graceMs: undefined });
  t.equal(c.power!.commsLostOnBatteryMs, undefined);
  t.strictSame(c.power!.modes, { onBatteryGrace: undefined, commsLostOnBattery: undefined, lowBattery: undefined, forcedShutdown: undefined });
});

t.test('power: a NUT source without ups, or with a passwordFile but no user, is refused at its line, with the other errors', async (t) => {
  const noUps = `${MINIMAL}power:\n  sources:\n    - kind: nut\n      host: ups-mgmt\n`;
  t.same(problems(noUps), [{ line: lineOf(noUps, '- kind: nut'), column: 7, path: 'power.sources[0].ups', message: 'required' }]);

  // The password check reads the raw document, so a type error in another source does not hide it.
  const password = `${MINIMAL}power:
  sources:
    - { kind: nut, host: ups-mgmt, ups: rack1, passwordFile: /etc/vigil/nut.password }
    - { kind: nut, host: ups-mgmt, ups: rack2, port: "3493" }
`;
  t.same(problems(password), [
    {
      line: lineOf(password, 'nut.password'), column: columnOf(password, '/etc/vigil/nut.password'), path: 'power.sources[0].passwordFile',
      message: 'passwordFile needs user (upsd takes a password only after USERNAME)',
    },
    { line: lineOf(password, 'rack2'), column: columnOf(password, '"3493"'), path: 'power.sources[1].port', message: 'expected a number, got "3493"' },
  ]);
});

t.test('power: two sources with the same name, given or derived, are refused at the second', async (t) => {
  const derived = `${MINIMAL}power:
  sources:
    - { kind: nut, host: ups-mgmt, ups: rack1 }
    - { kind: nut, host: ups-mgmt, ups: rack1, port: 3493, pollMs: 500 }
`;
  t.same(problems(derived), [{
    line: lineOf(derived, 'pollMs: 500'), column: 7, path: 'power.sources[1].name',
    message: 'two sources named nut:rack1@ups-mgmt (also power.sources[0]): give one a name',
  }]);
  const given = `${MINIMAL}power:
  sources:
    - { kind: apc-smart, device: /dev/ttyS0 }
    - { kind: contact-closure, name: ups, device: /dev/ttyS1, upstype: 9 }
    - { kind: apc-smart, name: ups, device: /dev/ttyUSB0 }
`;
  t.same(problems(given), [{
    line: lineOf(given, '/dev/ttyUSB0'), column: columnOf(given, 'ups, device: /dev/ttyUSB0'), path: 'power.sources[2].name',
    message: 'two sources named ups (also power.sources[1]): give one a name',
  }]);
});

t.test('power: a contact closure needs its on-line line (or an upstype), and two different lines', async (t) => {
  const noLine = `${MINIMAL}power:\n  sources:\n    - { kind: contact-closure, device: /dev/ttyS0, lines: { lowBattery: DCD } }\n`;
  t.same(problems(noLine), [{
    line: lineOf(noLine, 'contact-closure'), column: columnOf(noLine, '{ lowBattery'), path: 'power.sources[0].lines.online',
    message: 'expected the line that says "on line" (or an upstype, whose table names it)',
  }]);
  const bare = `${MINIMAL}power:\n  sources:\n    - kind: contact-closure\n      device: /dev/ttyS0\n      polarity: { online: active-low }\n`;
  t.same(problems(bare).map((p) => [p.line, p.path]), [
    [lineOf(bare, 'kind: contact-closure'), 'power.sources[0].lines.online'],
    [lineOf(bare, 'polarity:'), 'power.sources[0].polarity.online'],
  ]);

  const twice = `${MINIMAL}power:\n  sources:\n    - { kind: contact-closure, device: /dev/ttyS0, lines: { online: CTS, lowBattery: CTS } }\n`;
  t.same(problems(twice), [{
    line: lineOf(twice, 'contact-closure'), column: columnOf(twice, 'CTS }'), path: 'power.sources[0].lines.lowBattery',
    message: 'on line and low battery need two different lines, not both CTS',
  }]);
  // upstype 2 is genericups' "OL=-CTS LB=DCD": low battery moved onto CTS collides with the table's on line.
  const table = `${MINIMAL}power:\n  sources:\n    - { kind: contact-closure, device: /dev/ttyS0, upstype: 2, lines: { lowBattery: CTS } }\n`;
  t.same(problems(table), [{
    line: lineOf(table, 'contact-closure'), column: columnOf(table, 'CTS }'), path: 'power.sources[0].lines.lowBattery',
    message: 'on line and low battery need two different lines, not both CTS (upstype 2 has on line on CTS)',
  }]);
  t.match(problems(`${MINIMAL}power:\n  sources: [{ kind: contact-closure, device: /dev/ttyS0, upstype: 23 }]\n`),
    [{ path: 'power.sources[0].upstype', message: 'expected a genericups upstype from 0 to 22' }]);
  t.match(problems(`${MINIMAL}power:\n  sources: [{ kind: contact-closure, device: /dev/ttyS0, lines: { online: RTS } }]\n`),
    [{ path: 'power.sources[0].lines.online', message: 'expected one of the input lines CTS, DCD, RI, DSR' }]);
});

t.test('power: an unknown key gets a suggestion from the keys of its own kind of source', async (t) => {
  const text = `${MINIMAL}power:
  sources:
    - { kind: nut, host: ups-mgmt, ups: rack1, pollms: 500 }
    - { kind: apc-smart, device: /dev/ttyS0, ups: rack1 }
`;
  t.same(problems(text), [
    { line: lineOf(text, 'pollms'), column: columnOf(text, 'pollms'), path: 'power.sources[0].pollms', message: 'unknown key (did you mean "pollMs"?)' },
    {
      line: lineOf(text, 'apc-smart'), column: columnOf(text, 'ups: rack1 }'), path: 'power.sources[1].ups',
      message: 'unknown key (expected one of: kind, name, device, pollMs, timeoutMs, commsLostAfter)',
    },
  ]);
  const kind = `${MINIMAL}power:\n  sources:\n    - { kind: upsd, host: ups-mgmt, ups: rack1 }\n`;
  t.same(problems(kind), [{
    line: lineOf(kind, 'upsd'), column: columnOf(kind, 'upsd'), path: 'power.sources[0].kind',
    message: 'expected one of nut, apc-smart, contact-closure; got "upsd"',
  }]);
  const top = `${MINIMAL}power:\n  sources: [{ kind: apc-smart, device: /dev/ttyS0 }]\n  onBatery: { graceMs: 1000 }\n`;
  t.same(problems(top), [{ line: lineOf(top, 'onBatery'), column: 3, path: 'power.onBatery', message: 'unknown key (did you mean "onBattery"?)' }]);
});

t.test('distress: the values the file gives, and each out of range at its line', async (t) => {
  const c = parseConfig(`${MINIMAL}distress: { priority: 0, repeats: 16, repeatGapUs: 0, fatalSignals: false, lockMemory: false }\n`, 'c.yaml');
  t.strictSame(c.distress, { priority: 0, repeats: 16, repeatGapUs: 0, fatalSignals: false, lockMemory: false });
  const text = `${MINIMAL}distress:\n  priority: 100\n  repeats: 0\n  repeatGapUs: 100001\n  lockMemory: yes\n`;
  t.same(problems(text), [
    { line: lineOf(text, 'priority: 100'), column: 13, path: 'distress.priority', message: 'expected a SCHED_FIFO priority from 1 to 99, or 0 for normal scheduling' },
    { line: lineOf(text, 'repeats: 0'), column: 12, path: 'distress.repeats', message: 'expected a whole number from 1 to 16' },
    { line: lineOf(text, 'repeatGapUs'), column: 16, path: 'distress.repeatGapUs', message: 'expected a whole number of microseconds from 0 to 100000' },
    { line: lineOf(text, 'lockMemory'), column: 15, path: 'distress.lockMemory', message: 'expected true or false, got "yes"' },
  ]);
});

t.test('disks: preemptAndAbort defaults to true with persistent reservations, is false with scsi2, and refused there', async (t) => {
  const disks = (d: string) => `${MINIMAL}disks:\n  - ${d}\n`;
  const off = parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000, preemptAndAbort: false }'), 'c.yaml');
  t.equal(off.disks[0]!.preemptAndAbort, false);
  t.equal(parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000 }'), 'c.yaml').disks[0]!.preemptAndAbort, true);
  t.equal(parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2 }'), 'c.yaml').disks[0]!.preemptAndAbort, false);
  for (const given of ['true', 'false']) {
    const text = disks(`{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2, preemptAndAbort: ${given} }`);
    t.same(problems(text), [{
      line: lineOf(text, 'preemptAndAbort'), column: columnOf(text, `${given} }`), path: 'disks[0].preemptAndAbort',
      message: 'preemptAndAbort applies to reservation: persistent only (a SCSI-2 reservation has no key to preempt)',
    }], given);
  }
});

t.test('disks: the disk heartbeat is on by default with either reservation (the holder pulses through its reservation), and may be turned off', async (t) => {
  const disks = (d: string) => `${MINIMAL}disks:\n  - ${d}\n`;
  t.equal(parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000 }'), 'c.yaml').disks[0]!.heartbeat, true);
  t.equal(parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2 }'), 'c.yaml').disks[0]!.heartbeat, true);
  t.equal(parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2, heartbeat: true }'), 'c.yaml').disks[0]!.heartbeat, true);
  t.equal(parseConfig(disks('{ name: d0, identity: naa.5001405aaaa00000, heartbeat: false }'), 'c.yaml').disks[0]!.heartbeat, false);
});

t.test("a node's BMC: defaults filled in, files resolved; a bad cipher suite or user named on its line", async (t) => {
  const text = MINIMAL.replace('addresses: { n1: 192.0.2.1 } }', 'addresses: { n1: 192.0.2.1 }, bmc: { host: 10.9.0.1, user: admin, passwordFile: bmc-a.pw } }');
  const c = parseConfig(text, '/etc/vigil/cluster.yaml', { baseDir: '/etc/vigil' });
  t.same(c.nodes[0]!.bmc, { host: '10.9.0.1', port: 623, user: 'admin', passwordFile: '/etc/vigil/bmc-a.pw', cipherSuite: 17, kgFile: undefined });
  t.equal(c.nodes[1]!.bmc, undefined);
  t.same(c.fencing, { raceDelayMs: 5000, requestTimeoutMs: 2000, confirmTimeoutMs: 10000, watchdogMarginMs: 5000, action: 'off' });
  const bad = text.replace('user: admin, passwordFile: bmc-a.pw', 'user: a-user-name-too-long, passwordFile: bmc-a.pw, cipherSuite: 0');
  t.same(problems(bad).map((p) => [p.line, p.path, p.message]), [
    [lineOf(bad, 'cipherSuite'), 'nodes[0].bmc.user', 'an IPMI user name is at most 16 bytes'],
    [lineOf(bad, 'cipherSuite'), 'nodes[0].bmc.cipherSuite', 'expected cipher suite 17 (SHA-256) or 3 (SHA-1)'],
  ]);
  t.match(problems(text.replace(', passwordFile: bmc-a.pw', '')), [{ path: 'nodes[0].bmc.passwordFile' }]);
});

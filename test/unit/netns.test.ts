// The network-namespace rig (test/support/netns.ts): two nodes on two networks and a service network with a
// client; reachability, unplugging and replugging a link, moving a virtual IP with a gratuitous ARP, the
// stale-rig cleaner and teardown. Needs root and `ip netns`: it fails (does not skip) without them, since
// CI runs as root.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import {
  cleanStaleRigs, createRig, garp, mac, neighbour, ownNamespaces, pings, PREFIX, type Rig, sh,
} from '../support/netns.js';

const PORT = 7070;
/** A TCP server answering its node's name to every connection, on every address (the vip included). */
const SERVER = `require('net').createServer((s) => s.end(process.argv[1] + '\\n'))
  .listen(${PORT}, '0.0.0.0', () => console.log('ready'));`;
const CLIENT = `const s = require('net').connect(${PORT}, process.argv[1]); let d = '';
s.setTimeout(2000, () => { console.error('timeout'); process.exit(2); });
s.on('data', (b) => { d += b; }).on('end', () => { process.stdout.write(d); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });`;

/** True while the process exists and is not a zombie waiting to be reaped. */
function running(pid: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

async function ask(rig: Rig, ip: string): Promise<string> {
  const r = await rig.exec('client', [process.execPath, '-e', CLIENT, ip], { timeout: 5000 });
  return r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
}

async function startServer(rig: Rig, node: string): Promise<void> {
  const child = rig.spawn(node, [process.execPath, '-e', SERVER, node], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { if (d.includes('ready')) resolve(); });
    child.on('exit', (code) => reject(new Error(`server on ${node} exited ${code}`)));
  });
}

const rig = await createRig({ nodes: ['a', 'b'], networks: ['lan1', 'lan2'], client: true, t });

t.test('layout: names, addresses, interfaces', async (t) => {
  t.match(rig.ns('a'), new RegExp(`^${PREFIX}\\d+-\\d+-\\d+-a$`));
  t.equal(rig.addr('a', 'lan1'), `10.201.${rig.id}.1`);
  t.equal(rig.addr('b', 'lan2'), `10.202.${rig.id}.2`);
  t.equal(rig.addr('client', 'svc'), `10.200.${rig.id}.254`);
  t.throws(() => rig.addr('client', 'lan1'));
  t.throws(() => rig.ns('c'));
  const links = await rig.run('a', ['ip', '-br', 'addr']);
  for (const l of ['lan1', 'lan2', 'svc']) t.match(links, new RegExp(`^${l}@\\S+\\s+UP\\b`, 'm'), `${l} up on a`);
  t.match(await rig.run('a', ['ip', 'link', 'show', 'lo']), /<LOOPBACK,UP,LOWER_UP>/);
  t.match(links, `${rig.addr('a', 'svc')}/24`);
  t.match(await rig.run('client', ['ip', '-br', 'link']), /^svc\b/m);
  // Nothing in the host's namespace: the bridges are in the switch namespace.
  t.match(await rig.run('sw', ['ip', '-br', 'link', 'show', 'type', 'bridge']), /^lan1\b[\s\S]*^lan2\b[\s\S]*^svc\b/m);
  await t.rejects(createRig({ nodes: ['client'], networks: [] }), /bad node name/);
  await t.rejects(createRig({ nodes: ['a'], networks: ['svc'] }), /bad network name/);
  await t.rejects(createRig({ nodes: ['a', 'a'], networks: [] }), /duplicate/);
});

t.test('the nodes reach each other on both networks; the client reaches both svc addresses', async (t) => {
  const checks = await Promise.all([
    pings(rig, 'a', rig.addr('b', 'lan1')), pings(rig, 'a', rig.addr('b', 'lan2')),
    pings(rig, 'b', rig.addr('a', 'lan1')), pings(rig, 'b', rig.addr('a', 'lan2')),
    pings(rig, 'client', rig.addr('a', 'svc')), pings(rig, 'client', rig.addr('b', 'svc')),
  ]);
  t.same(checks, [true, true, true, true, true, true]);
});

t.test('cutting lan1 of a: lan1 is silent between a and b, lan2 still works; restore brings it back', async (t) => {
  await rig.cut('a', 'lan1');
  t.match(await rig.run('a', ['ip', 'link', 'show', 'lan1']), /state DOWN/);
  t.notMatch(await rig.run('a', ['ip', 'link', 'show', 'lan1']), /<[^>]*,UP[,>]/);
  const [l1ab, l1ba, l2] = await Promise.all([
    pings(rig, 'a', rig.addr('b', 'lan1')), pings(rig, 'b', rig.addr('a', 'lan1')), pings(rig, 'a', rig.addr('b', 'lan2')),
  ]);
  t.same({ l1ab, l1ba, l2 }, { l1ab: false, l1ba: false, l2: true });
  await rig.restore('a', 'lan1');
  t.ok(await pings(rig, 'a', rig.addr('b', 'lan1')), 'lan1 back a → b');
  t.ok(await pings(rig, 'b', rig.addr('a', 'lan1')), 'lan1 back b → a');
});

t.test('a cable cut: the node keeps its interface up, without carrier, and its address', async (t) => {
  await rig.cut('b', 'lan2', 'cable');
  t.match(await rig.run('b', ['ip', 'link', 'show', 'lan2']), /<[^>]*NO-CARRIER[^>]*,UP[,>]/);
  t.match(await rig.run('b', ['ip', '-br', 'addr', 'show', 'lan2']), `${rig.addr('b', 'lan2')}/24`);
  const [l2, l1] = await Promise.all([pings(rig, 'a', rig.addr('b', 'lan2')), pings(rig, 'a', rig.addr('b', 'lan1'))]);
  t.same({ l2, l1 }, { l2: false, l1: true });
  await rig.restore('b', 'lan2');
  t.ok(await pings(rig, 'a', rig.addr('b', 'lan2')));
});

t.test('cutAll isolates a node from every network, restoreAll brings it back', async (t) => {
  await rig.cutAll('b');
  const r = await Promise.all([
    pings(rig, 'a', rig.addr('b', 'lan1')), pings(rig, 'a', rig.addr('b', 'lan2')), pings(rig, 'client', rig.addr('b', 'svc')),
  ]);
  t.same(r, [false, false, false]);
  await rig.restoreAll('b');
  t.same(await Promise.all([
    pings(rig, 'a', rig.addr('b', 'lan1')), pings(rig, 'a', rig.addr('b', 'lan2')), pings(rig, 'client', rig.addr('b', 'svc')),
  ]), [true, true, true]);
});

t.test('a vip moves from a to b: the gratuitous ARP rewrites the client\'s neighbour entry', async (t) => {
  const vip = rig.vip();
  await Promise.all([startServer(rig, 'a'), startServer(rig, 'b')]);
  const [macA, macB] = await Promise.all([mac(rig, 'a', 'svc'), mac(rig, 'b', 'svc')]);
  t.not(macA, macB);

  await rig.run('a', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'svc']);
  t.equal(await ask(rig, vip), 'a');
  t.equal((await neighbour(rig, 'client', vip))?.mac, macA);

  await rig.run('a', ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'svc']);
  await rig.run('b', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'svc']);
  // Without the announcement the client still sends to a, which no longer has the address.
  t.equal((await neighbour(rig, 'client', vip))?.mac, macA, 'the client still has a\'s MAC before the GARP');
  await garp(rig, 'b', vip);
  t.equal((await neighbour(rig, 'client', vip))?.mac, macB, 'the GARP rewrote it at once (within the locktime)');
  t.equal(await ask(rig, vip), 'b');
});

t.test('the stale-rig cleaner removes namespaces of dead creators only', async (t) => {
  const dead = spawnSync('true').pid;
  const stale = `${PREFIX}${dead}-1-0-sw`;
  await sh(['ip', 'netns', 'add', stale]);
  t.teardown(() => sh(['ip', 'netns', 'del', stale]));
  const removed = await cleanStaleRigs();
  t.ok(removed.includes(stale), 'the dead creator\'s namespace was removed');
  t.notOk((await sh(['ip', 'netns', 'list'])).stdout.includes(stale));
  t.ok(ownNamespaces().includes(rig.ns('a')), 'the live rig is left alone');
});

t.test('a node\'s mount namespace outlives the processes started in it, until the node boots again', async (t) => {
  const r = await createRig({ nodes: ['x'], networks: ['n1'], t });
  // A mount made by one command of the node (as an agent mounts a file system) is seen by the next.
  const dir = await mkdtemp(join(tmpdir(), 'vigil-rig-mnt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await r.run('x', ['mount', '-t', 'tmpfs', 'none', dir]);
  await r.run('x', ['touch', join(dir, 'marker')]);
  const marked = async () => (await r.exec('x', ['test', '-e', join(dir, 'marker')])).code === 0;
  t.ok(await marked(), 'the next command of the node sees the mount');
  t.notOk((await sh(['test', '-e', join(dir, 'marker')])).code === 0, 'the host does not');
  for (const p of (await sh(['ip', 'netns', 'pids', r.ns('x')])).stdout.split(/\s+/).filter(Boolean)) process.kill(Number(p), 'SIGKILL');
  await r.boot('x');
  t.notOk(await marked(), 'after a boot: a fresh namespace, without the mount');
});

t.test('destroy kills the rig\'s processes and leaves no namespace behind', async (t) => {
  const r = await createRig({ nodes: ['x'], networks: ['n1'] });
  const names = [r.ns('sw'), r.ns('x')];
  t.ok(names.every((n) => ownNamespaces().includes(n)));
  const spawned = r.spawn('x', ['sleep', '60'], { stdio: 'ignore' });
  // A process the rig did not start, left running inside the namespace.
  await r.run('x', ['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!']);
  const inside = (await sh(['ip', 'netns', 'pids', r.ns('x')])).stdout.split(/\s+/).filter(Boolean);
  t.equal(inside.length, 3, 'the two sleeps and the process that holds the node\'s mount namespace');
  const exited = new Promise((resolve) => spawned.once('exit', resolve));
  await r.destroy();
  await exited;
  await r.destroy(); // idempotent
  t.same(ownNamespaces().filter((n) => names.includes(n)), []);
  for (const p of inside) t.notOk(running(p), `process ${p} is gone`);
});

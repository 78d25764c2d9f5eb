// Distress from the power sources (seed 002, docs/power.md) between two agents in network namespaces: a's
// UPS says the power is going (a real upsd with dummy-ups; the APC smart simulator on a pty), a's power
// policy decides distress, a sends it and leaves, and b takes web over at once, long before the heartbeat
// timeout. Power coming back does not bring a back: only `vigil rejoin` does.
//
// upsd runs in the host's namespace on loopback (test/support/nut-server.ts, as in test/unit/nut.test.ts);
// a reaches it as 127.0.0.1:3493 in its own namespace through two socat relays joined by a unix socket
// (the file system is shared between namespaces, as for the control sockets). The APC simulator's pty is
// a /dev/pts device, which a's namespace opens like any file.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import t, { type Test } from 'tap';

import { ApcSimulator } from '../../hw-fixtures/apc-sim/apc-sim.mjs';
import { PtyPair } from '../../hw-fixtures/apc-sim/pty-pair.mjs';
import { createCluster, primaryServing, settled, until, type Status, type TestCluster } from '../support/cluster.js';
import { NutServer, nutUnavailable, UPS_NAME } from '../support/nut-server.js';

// A heartbeat timeout long enough that any takeover within it was the distress's doing.
const TIMING = { failAfterMs: 5000, recoverAfterMs: 1000 };
const APPS = [{ tag: 'web', primary: 'a', backup: 'b', vip: true }];
/** Where a's NUT source finds upsd, inside a's namespace (the relay's end). */
const NUT_PORT = 3493;
const NUT_SOURCE = `nut:${UPS_NAME}@127.0.0.1`;

const host = (s: Status, tag: string) => s.apps.find((a) => a.tag === tag)?.host;
const peer = (s: Status, name: string) => s.peers.find((p) => p.peer === name);

interface Out { out: { reason: string; source: string; since: string } | null; incarnation: string }
interface PowerStatus {
  configured: boolean;
  sources: { source: string; type: string; connected: boolean; state?: string; raw?: string }[];
  distressed: { source: string; reason: string; agoMs: number } | null;
  decisions: { action: string; source: string; reason?: string; mode?: string; text: string }[];
  out: Out['out'];
}

const powerStatus = async (c: TestCluster, node: string) => (await c.request(node, 'power.status')) as PowerStatus;
const statusOut = async (c: TestCluster, node: string) => (await c.status(node)) as Status & Out;

/** Why the pty pair and the upsd relay cannot be made here, or undefined. */
function socatMissing(): string | undefined {
  return existsSync('/usr/bin/socat') || existsSync('/bin/socat') ? undefined : 'socat is missing (scripts/setup installs it)';
}

/** Why the real upsd cannot run here (or be reached from a's namespace), or undefined. */
function unavailable(): string | undefined {
  return nutUnavailable() ?? socatMissing();
}

/** a's power section: one source, and more top-level lines under `power:`. */
function powerYaml(source: string, more: string[] = []): (node: string) => string[] {
  return (node) => (node === 'a' ? ['power:', '  sources:', `    - ${source}`, ...more.map((l) => `  ${l}`)] : []);
}

/** Waits for a process to exit, then resolves (at once when it has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * A real upsd (dummy-ups behind it) on the host's loopback, and the host half of the relay: a unix socket
 * in a temp dir that forwards to it. The namespace half is started by relayIntoNode once the rig exists.
 */
async function startNut(t: Test): Promise<{ nut: NutServer; socket: string }> {
  const nut = await NutServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-nut-relay-'));
  const socket = join(dir, 'upsd.sock');
  // Its own process group: the connections it forks are ended with it.
  const relay = spawn('socat', [`UNIX-LISTEN:${socket},fork`, `TCP:127.0.0.1:${nut.port}`], { stdio: 'ignore', detached: true });
  t.teardown(async () => {
    try { process.kill(-relay.pid!, 'SIGTERM'); } catch { /* gone */ }
    await exited(relay);
    await nut.close();
    await rm(dir, { recursive: true, force: true });
  });
  await until('the upsd relay listens', async () => (existsSync(socket) ? true : undefined), 5000, 20);
  return { nut, socket };
}

/** Listens on 127.0.0.1:NUT_PORT inside the node's namespace and forwards each connection to the unix socket. */
async function relayIntoNode(c: TestCluster, node: string, socket: string): Promise<void> {
  c.rig.spawn(node, ['socat', `TCP-LISTEN:${NUT_PORT},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${socket}`], { stdio: 'ignore' });
  await until(`upsd reachable from ${node}'s namespace`, async () => {
    const r = await c.rig.exec(node, [process.execPath, '-e',
      `const s=require('net').connect(${NUT_PORT},'127.0.0.1');s.setTimeout(1000,()=>process.exit(1));`
      + `s.on('data',(d)=>{process.stdout.write(d);process.exit(0)});s.on('error',()=>process.exit(1));s.write('VER\\n');`], { timeout: 3000 });
    return r.code === 0 && /Network UPS Tools/i.test(r.stdout) ? true : undefined;
  }, 10_000, 100);
}

const bothUp = (c: TestCluster) => primaryServing(c);

/** Until a's power source reports this state over a live link. */
async function sourceIs(c: TestCluster, source: string, state: string): Promise<PowerStatus> {
  return until(`a's ${source} reports ${state}`, async () => {
    const ps = await powerStatus(c, 'a');
    const s = ps.sources.find((x) => x.source === source);
    return s?.connected && s.state === state ? ps : undefined;
  }, 10_000, 20);
}

/**
 * From the trigger (performance.now() in this process) to b hosting web: asserted below the heartbeat
 * timeout, then b's account of it: one distress acted on, naming the reason, one failover of web.
 */
async function takenOverAtOnce(t: Test, c: TestCluster, trigger: number, what: string, reason: string): Promise<{ ms: number; wall: number }> {
  const took = await until('b hosts web', async () => (host(await c.status('b'), 'web') === 'b' ? performance.now() : undefined), 15_000, 20);
  const wall = Date.now();
  const ms = took - trigger;
  t.comment(`${what} → b hosting web: ${ms.toFixed(0)} ms (heartbeat timeout ${TIMING.failAfterMs} ms)`);
  t.ok(ms < TIMING.failAfterMs, 'b took web over before the heartbeat timeout');
  await until('b completes the failover', async () => ((await c.status('b')).notices.some((n) => n.tag === 'web' && n.notice === 'failover-complete') ? true : undefined), 10_000);
  await until('the VIP answers from b', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 10_000);
  const sb = await c.status('b');
  const distress = sb.notices.filter((n) => n.notice === 'peer-distress');
  t.equal(distress.length, 1, 'b acted on one distress');
  t.match(distress[0]?.message, new RegExp(`^a sent distress \\(${reason}\\)`), `the distress named ${reason}`);
  t.equal(sb.notices.filter((n) => n.tag === 'web' && n.notice === 'primary-failed').length, 1, 'one failover of web started');
  t.equal(sb.notices.filter((n) => n.tag === 'web' && n.notice === 'failover-complete').length, 1, 'and completed');
  t.equal(peer(sb, 'a')?.state, 'failed', 'b holds a failed');
  return { ms, wall };
}

/** a is out for this reason, from this source, its app down; power.status says the same. */
async function outFor(t: Test, c: TestCluster, source: string, reason: string, mode: string, state: string): Promise<void> {
  const sa = await statusOut(c, 'a');
  t.match(sa.out, { reason, source }, `a is out: ${reason}`);
  t.equal(sa.apps.find((x) => x.tag === 'web')?.here?.app, 'down', 'a stopped web');
  t.ok(sa.notices.some((n) => n.notice === 'distress-sent' && n.message.includes(reason)), 'a says it sent distress');
  const ps = await powerStatus(c, 'a');
  t.equal(ps.configured, true, 'power.status: a power section is configured');
  t.match(ps.sources, [{ source, connected: true, state }], `power.status: ${source} ${state}`);
  t.match(ps.distressed, { source, reason }, 'power.status: distressed by that source');
  t.equal(ps.decisions.filter((d) => d.action === 'distress').length, 1, 'one distress decision');
  t.match(ps.decisions.find((d) => d.action === 'distress'), { source, reason, mode }, `decided ${reason}, sent ${mode}`);
  t.match(ps.out, { reason }, 'power.status: out for that reason');
}

// scripts/setup installs nut-server, nut-client and socat: their absence is a failure, never a skip.
t.before(() => {
  const why = unavailable();
  if (why) throw new Error(`${why} (scripts/setup installs it)`);
});

t.test('NUT: upsd sets FSD → a sends distress power-forced-shutdown and b takes web over at once', async (t) => {
  const { nut, socket } = await startNut(t);
  const c = await createCluster(t, ['a', 'b'], APPS, {
    timing: TIMING,
    extra: powerYaml(`{ kind: nut, host: 127.0.0.1, port: ${NUT_PORT}, ups: ${UPS_NAME}, pollMs: 200 }`),
  });
  await relayIntoNode(c, 'a', socket);
  await bothUp(c);
  const before = await sourceIs(c, NUT_SOURCE, 'online');
  t.match(before, { configured: true, distressed: null, out: null }, 'on line: a is a member, nothing decided');

  const fsd = await nut.setFsd();
  await takenOverAtOnce(t, c, fsd, 'upsd FSD', 'power-forced-shutdown');
  await outFor(t, c, NUT_SOURCE, 'power-forced-shutdown', 'sync', 'forced-shutdown');
  t.match((await powerStatus(c, 'a')).sources[0]?.raw, /^FSD/, 'the raw ups.status starts with FSD');
});

t.test('NUT: on battery past the grace → distress power-on-battery-grace; power back keeps a out until vigil rejoin', async (t) => {
  const { nut, socket } = await startNut(t);
  const graceMs = 1000;
  const c = await createCluster(t, ['a', 'b'], APPS, {
    timing: TIMING,
    extra: powerYaml(`{ kind: nut, host: 127.0.0.1, port: ${NUT_PORT}, ups: ${UPS_NAME}, pollMs: 200 }`, [`onBattery: { graceMs: ${graceMs} }`]),
  });
  await relayIntoNode(c, 'a', socket);
  await bothUp(c);
  await sourceIs(c, NUT_SOURCE, 'online');

  // The trigger is the moment upsd first serves OB (dummy-ups takes up to a second to apply a SET).
  const served = nut.whenServed('OB');
  await nut.setStatus('OB');
  const ob = await served;
  const { ms, wall } = await takenOverAtOnce(t, c, ob, `upsd serves OB (grace ${graceMs} ms)`, 'power-on-battery-grace');
  const sa = await statusOut(c, 'a');
  t.comment(`a's distress decision → b hosting web: ${wall - Date.parse(sa.out!.since)} ms (of the ${ms.toFixed(0)} ms above)`);
  await outFor(t, c, NUT_SOURCE, 'power-on-battery-grace', 'async', 'on-battery');
  const decided = (await powerStatus(c, 'a')).decisions;
  t.ok(decided.some((d) => d.action === 'warn' && /distress in 1000 ms unless power returns/.test(d.text)), 'a warned of the grace first');
  t.notOk(decided.some((d) => d.action === 'cancel'), 'nothing cancelled it: LB never came, the grace ran out');

  // The power comes back: a sees it, and stays out.
  await nut.setStatus('OL');
  const back = await sourceIs(c, NUT_SOURCE, 'online');
  t.match(back.decisions[0], { action: 'notice', source: NUT_SOURCE, text: /power back; the node stays out until vigil rejoin/ }, 'a notes the power is back');
  t.match(back.distressed, { reason: 'power-on-battery-grace' }, 'the distress stays latched');
  t.match(back.out, { reason: 'power-on-battery-grace' }, 'power.status: still out');
  t.match((await statusOut(c, 'a')).out, { reason: 'power-on-battery-grace' }, 'a stays out with the power back');
  t.equal((await statusOut(c, 'a')).heartbeat, undefined, 'no heartbeat thread while out');
  await sleep(3 * TIMING.recoverAfterMs);
  const sb = await c.status('b');
  t.equal(peer(sb, 'a')?.state, 'failed', 'b does not hear a again');
  t.equal(host(sb, 'web'), 'b', 'web stays on b');
  t.equal(sb.notices.filter((n) => n.notice === 'peer-distress').length, 1, 'still one distress');
  await t.rejects(c.request('a', 'app.load', { tag: 'web' }), /out of the cluster/, 'a refuses cluster commands while out');

  const r = (await c.request('a', 'rejoin')) as { restarting: boolean; was: { reason: string } };
  t.match(r, { restarting: true, was: { reason: 'power-on-battery-grace' } }, 'rejoin restarts the agent');
  await until('b hears a again', async () => (peer(await c.status('b'), 'a')?.state === 'alive' ? true : undefined), 15_000);
  const sa2 = await statusOut(c, 'a');
  t.equal(sa2.out, null, 'a is a member again');
  t.not(sa2.incarnation, sa.incarnation, 'with a new incarnation');
  const ps = await sourceIs(c, NUT_SOURCE, 'online');
  t.match(ps, { distressed: null, out: null }, 'the rejoined agent\'s power policy starts afresh, on line');
  t.notOk(ps.decisions.some((d) => d.action === 'distress'), 'and decides nothing on a UPS on line');
  await settled(c, ['a', 'b']);
  t.equal(host(await c.status('b'), 'web'), 'b', 'no failback without auto-recover: web stays on b');
});

t.test('APC smart: on battery, then battery low → a sends distress power-low-battery and b takes web over at once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-apc-'));
  const pair = await new PtyPair(dir).start();
  const sim = await new ApcSimulator(pair.ups).open();
  t.teardown(async () => {
    await sim.close();
    await pair.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const source = `apc-smart:${pair.host}`;
  const c = await createCluster(t, ['a', 'b'], APPS, {
    timing: TIMING,
    extra: powerYaml(`{ kind: apc-smart, device: ${pair.host}, pollMs: 200 }`),
  });
  await bothUp(c);
  const before = await sourceIs(c, source, 'online');
  t.match(before, { distressed: null, out: null }, 'on line: a is a member, nothing decided');
  t.equal(sim.smart, true, 'a\'s source put the simulated UPS in smart mode (from a\'s namespace)');

  sim.onBattery();
  const onBattery = await sourceIs(c, source, 'on-battery');
  t.ok(onBattery.decisions.some((d) => d.action === 'warn' && /on battery/.test(d.text)), 'on battery without a grace: a warning');
  t.equal(onBattery.distressed, null, 'no distress for being on battery alone');
  t.equal((await statusOut(c, 'a')).out, null, 'a is still a member');

  const low = performance.now();
  sim.lowBattery();
  await takenOverAtOnce(t, c, low, 'APC battery low (%)', 'power-low-battery');
  await outFor(t, c, source, 'power-low-battery', 'sync', 'low-battery');
});

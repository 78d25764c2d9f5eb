// The ladder's reboot rung for real (issue 14; docs/rejuvenation.md "The ladder"): a vigild in the lab guest
// climbs to `reboot`, whose command (hw-fixtures/lab/reboot-guest) reboots the guest, and the agent started
// after the boot verifies the rung: the node's return is the pass. Runs with scripts/lab --reboots=1 (it is
// in scripts/test-lab-guest's `rebooting` list). Two agents in the guest's own network namespace, a on
// 127.0.0.1 and b on 127.0.0.2 (the interlock needs a majority: b is there to be heard), no app, each
// with its state directory (the database with the node records) in the run directory on the project
// share, which outlives the reboot; the control sockets are in the guest's /run, which does not.
// - boot 1 (no marker on the share yet): both agents start; a marker (boot id, time) is left on the share;
//   an operator's `vigil rejuvenation run a` (no aging judgement needed) duplexes a (nothing to move) and
//   climbs the ladder `[reboot]`: the rung's start and its planned absence are written into a's record,
//   then the rung's command reboots the guest. The test waits for that; getting past the wait fails it.
// - boot 2 (scripts/test-lab-guest runs this file again): both agents start again from the same state;
//   a finds its reboot rung under way, sees from its uptime that the node restarted since the rung began,
//   finds its readings healthy (a load band no guest fails, the default memory band), goes on probation
//   and is then available again as the spare, its rung tried once; b's replica agrees.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { controlRequest } from '../../src/control/client.js';
import { packageRoot } from '../../src/util/package-root.js';
import { until } from '../support/cluster.js';
import { LAB_TIMING } from '../support/lab-cluster.js';
import { lab, vigil } from '../support/lab.js';
import { leaveWordForHost } from '../support/lab-word.js';
import { repoFile } from '../support/paths.js';

/** Left on the share in boot 1: the boot's id, when this test began and when it asked for the run (guest clock, ms). */
interface Marker { bootId: string; labBoot: number; testMs: number; wallMs: number }
interface Step { step: string; startedAt: number; endedAt?: number; outcome?: string; detail?: string }
interface Rec {
  node: string; role: string; state: string; since: number;
  rejuvenation?: { by: string; reason: string; steps: Step[]; absentUntil?: number; probationAt?: number; endedAt?: number; outcome?: string; why?: string };
}
interface Status { peers: { peer: string; state: string }[]; notices: { notice: string; message: string }[]; rejuvenation: { nodes: Rec[] } }

const NODES = ['a', 'b'] as const;
const PROBATION_MS = 3000;
const dir = join(lab.run, 'rejuvenation-reboot');
const markerFile = join(dir, 'boot1.json');
const labBoot = Number(process.env.VIGIL_LAB_BOOT);
const socket = (node: string) => `/run/vigil-rejuvenation-${node}.sock`;
const logFile = (node: string) => join(dir, `${node}.log`);
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const uptimeS = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
const testMs = Date.now();

function config(node: string): string {
  return [
    'cluster: rjlab',
    `keyFile: ${join(dir, 'cluster.key')}`,
    `stateDir: ${join(dir, node)}`,
    `control: { socket: ${socket(node)} }`,
    'log: { level: debug }',
    'networks: [{ name: lo, port: 7400 }]',
    'nodes:',
    '  - { name: a, id: 1, addresses: { lo: 127.0.0.1 } }',
    '  - { name: b, id: 2, addresses: { lo: 127.0.0.2 } }',
    `timing: { ${Object.entries(LAB_TIMING).map(([k, v]) => `${k}: ${v}`).join(', ')} }`,
    'apps: []',
    // The guest's load under TCG is no part of this test: a load band no machine reaches.
    'aging: { intervalMs: 500, load: { enter: 1000, leave: 999 } }',
    `rejuvenation: { ladder: [reboot], settleMs: 500, probationMs: ${PROBATION_MS}, absenceMs: { reboot: 600000 }, commands: { reboot: [${JSON.stringify(repoFile('hw-fixtures', 'lab', 'reboot-guest'))}] } }`,
  ].join('\n');
}

/** Starts a node's vigild, its log appended to a file on the share (the boot it ran in marked first). */
function startAgent(node: string): ChildProcess {
  writeFileSync(logFile(node), `--- boot ${labBoot}\n`, { flag: 'a' });
  const fd = openSync(logFile(node), 'a');
  const child = spawn(process.execPath, [join(packageRoot(), 'dist/src/cli/vigild.js'), '--config', join(dir, `${node}.yaml`), '--node', node, '--heartbeat-priority', '0'],
    { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

const logTail = (node: string, lines = 60) => readFileSync(logFile(node), 'utf8').split('\n').slice(-lines - 1).join('\n');
const status = async (node: string) => (await controlRequest(socket(node), 'status', {}, { timeoutMs: 15_000 })) as Status;
const recordOf = async (on: string, node: string) => (await status(on)).rejuvenation.nodes.find((r) => r.node === node);

async function bothAlive(): Promise<void> {
  await until('a and b alive to each other', async () => {
    const [sa, sb] = [await status('a'), await status('b')];
    const alive = (s: Status, peer: string) => s.peers.find((p) => p.peer === peer)?.state === 'alive';
    return alive(sa, 'b') && alive(sb, 'a') ? true : undefined;
  }, 120_000, 500);
}

if (!existsSync(markerFile)) {
  // Boot 1: up to the reboot. Plain TAP lines: the reboot cuts this process off.
  const agents: ChildProcess[] = [];
  const fail = (why: string): never => {
    console.log(`not ok 1 - ${why}`);
    for (const a of agents) a.kill('SIGTERM');
    for (const n of NODES) if (existsSync(logFile(n))) process.stderr.write(`--- ${n} (the last 60 lines of its log)\n${logTail(n)}\n`);
    process.exit(1);
  };
  if (process.env.VIGIL_LAB !== '1' || !(Number(process.env.VIGIL_LAB_REBOOTS) >= 1)) fail('this test reboots the guest: run it in the lab with scripts/lab --reboots=1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cluster.key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  for (const n of NODES) writeFileSync(join(dir, `${n}.yaml`), `${config(n)}\n`);
  for (const n of NODES) agents.push(startAgent(n));
  try {
    await bothAlive();
  } catch (e) {
    fail((e as Error).message);
  }
  const marker: Marker = { bootId: bootId(), labBoot, testMs, wallMs: Date.now() };
  leaveWordForHost(dir, 'boot1.json', `${JSON.stringify(marker)}\n`);
  const ran = await vigil('rejuvenation', 'run', 'a', '--reason', 'the lab\'s reboot rung', '--socket', socket('a'));
  if (ran.code !== 0) fail(`vigil rejuvenation run a: exit ${ran.code}: ${ran.stderr.trim()}`);
  console.log(`# boot ${labBoot} (boot id ${marker.bootId}, up ${uptimeS()} s): ${ran.stdout.trim().split('\n')[0]}; waiting for the reboot rung to reboot the guest`);
  await sleep(300_000);
  // Not reached when the rung reboots the guest.
  fail(`the guest did not reboot within 300 s of vigil rejuvenation run a; a's record: ${JSON.stringify(await recordOf('a', 'a').catch((e: unknown) => String(e)))}`);
} else {
  t.test('the reboot rung: the guest rebooted, the agent started again verifies the rung by the uptime, probation, then a spare', async (t) => {
    const marker = JSON.parse(readFileSync(markerFile, 'utf8')) as Marker;
    t.equal(labBoot, marker.labBoot + 1, `the lab counts the next boot (VIGIL_LAB_BOOT ${labBoot})`);
    t.not(bootId(), marker.bootId, `the kernel's boot id changed (${marker.bootId} before)`);
    const bootedAt = Date.now() - uptimeS() * 1000;
    const agents = NODES.map((n) => startAgent(n));
    t.teardown(() => {
      for (const a of agents) a.kill('SIGTERM');
      if (!t.passing()) for (const n of NODES) process.stderr.write(`--- ${n} (the last 60 lines of its log)\n${logTail(n)}\n`);
    });
    const seen = new Set<string>();
    const done = await until('a is back in the list as the spare', async () => {
      const r = await recordOf('a', 'a');
      if (r) seen.add(r.state);
      return r?.state === 'available' && r.rejuvenation?.outcome ? r : undefined;
    }, 240_000, 200);
    const j = done.rejuvenation!;
    t.equal(j.outcome, 'spare', `the rejuvenation ended with a as the spare (${j.why})`);
    t.match(j, { by: 'a', reason: /an operator on a: the lab's reboot rung/ }, 'the operator\'s run');
    t.equal(j.steps.length, 1, 'one rung: the reboot was not tried again after the boot');
    const step = j.steps[0]!;
    // The detail says how the restart is known (the uptime against the rung's start), then the readings.
    t.match(step, { step: 'reboot', outcome: 'healthy', detail: /^restarted \(up \d+ s, the rung began \d+ s ago\); load [\d.]+\/cpu, memory available [\d.]+%$/ }, `the reboot rung verified healthy on its uptime and readings (${step.detail})`);
    const [, up, began] = /up (\d+) s, the rung began (\d+) s ago/.exec(step.detail ?? '') ?? [];
    t.ok(Number(up) < Number(began), `up ${up} s, less than the ${began} s since the rung began: a restart since`);
    t.ok(step.startedAt > marker.wallMs && step.startedAt < bootedAt, `its start was written in boot ${marker.labBoot}, before this boot began`);
    t.ok(step.endedAt! > bootedAt, 'its verdict was written in this boot');
    t.ok(j.probationAt! >= step.endedAt! && j.endedAt! - j.probationAt! >= PROBATION_MS,
      `then on probation for ${PROBATION_MS / 1000} s before it was available (states seen by polling a: ${[...seen].join(', ')})`);
    t.equal(j.absentUntil, undefined, 'the planned absence is over');
    t.match(done, { state: 'available', role: 'spare' }, 'available again, as the spare');
    t.equal((await status('a')).notices.filter((n) => n.notice === 'rejuvenation-step').length, 1, 'the rung was verified once');
    const notices = (await status('a')).notices.map((n) => n.notice);
    for (const n of ['rejuvenation-step', 'rejuvenation-probation', 'rejuvenation-complete']) t.ok(notices.includes(n), `notice ${n} in this boot`);
    t.notMatch(readFileSync(logFile('a'), 'utf8').split(`--- boot ${labBoot}\n`).at(-1)!, /rejuvenation: rung reboot/, 'a\'s agent in this boot started no rung');
    const onB = await until('b\'s replica has a back as the spare', async () => {
      const r = await recordOf('b', 'a');
      return r?.rejuvenation?.outcome ? r : undefined;
    }, 60_000, 500);
    t.match(onB, { state: 'available', role: 'spare', rejuvenation: { outcome: 'spare', steps: [{ step: 'reboot', outcome: 'healthy' }] } }, 'b sees the same record');
    const text = await vigil('rejuvenation', 'status', '--socket', socket('b'));
    t.equal(text.code, 0, 'vigil rejuvenation status');
    t.match(text.stdout, /a: available \(spare\)[^\n]*\n  rejuvenation started [^\n]* by a: an operator on a: the lab's reboot rung\n    rung reboot at [^\n]*: healthy \(restarted \(up [^\n]*\)\n    ended [^\n]*: spare \(healthy for 3 s after reboot\)/,
      'vigil rejuvenation status tells the timeline');
    t.comment(text.stdout.trim());
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    t.comment(`timeline (guest clock): boot ${marker.labBoot}: test start → both agents alive, run asked ${s(marker.wallMs - marker.testMs)} → rung started ${s(step.startedAt - marker.wallMs)}; `
      + `rung → the next kernel ${s(bootedAt - step.startedAt)} → boot ${labBoot}'s test start ${s(testMs - bootedAt)} → rung verified ${s(step.endedAt! - testMs)} → probation over, a spare ${s(j.endedAt! - step.endedAt!)}`);
  });
}

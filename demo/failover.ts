// npm run demo, inside the lab guest: a two-node vigil cluster on one shared LIO logical unit (each node on
// its own tcm_loop nexus and in its own network namespace, two cluster networks), an app that owns the disk,
// mounts its ext4 file system and serves a virtual IP to a client namespace. The primary loses power; the
// backup takes over; the timeline of the takeover is printed from the backup's own log, phase by phase.
import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { formatStatus } from '../src/cli/status-format.js';
import { mergeTimeline } from '../src/timeline/merge.js';
import { parseNodeLog } from '../src/timeline/parse.js';
import { renderHtml } from '../src/timeline/render-html.js';
import { packageRoot } from '../src/util/package-root.js';
import { createCluster, until, APP_PORT, type TestCluster, settled } from '../test/support/cluster.js';
import { lab, prepareSharedUnit } from '../test/support/lab.js';

// Heartbeats every 100 ms (the default); failure after 1 s of silence on every channel rather than the
// default 400 ms, because the agents' JavaScript runs ~30× slower under the lab's CPU emulation.
const TIMING = { heartbeatIntervalMs: 100, failAfterMs: 1000, diskHeartbeatIntervalMs: 200, recoverAfterMs: 2000, failbackDwellMs: 600_000 };

const say = (s = '') => process.stdout.write(`${s}\n`);
const teardowns: (() => unknown)[] = [];

interface LogLine { time: number; msg: string; resource?: string; ms?: number; peer?: string; notice?: string }

function collectLog(child: ChildProcess): LogLine[] {
  const lines: LogLine[] = [];
  let rest = '';
  child.stdout?.on('data', (d: string) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) {
      try { lines.push(JSON.parse(p) as LogLine); } catch { /* not a log line */ }
    }
  });
  return lines;
}

/** A client in its own namespace asking the VIP every 20 ms; returns the wall-clock times of each answer. */
function prober(c: TestCluster): { answers: { at: number; who: string }[]; stop(): void } {
  const answers: { at: number; who: string }[] = [];
  const child = c.rig.spawn('client', [process.execPath, '-e', `
    const net = require('net');
    setInterval(() => {
      const s = net.connect(${APP_PORT}, '${c.vip()}'); let d = '';
      s.setTimeout(300, () => s.destroy()); s.on('error', () => {});
      s.on('data', (x) => { d += x; }); s.on('end', () => console.log(Date.now(), d.trim()));
    }, 20);`], { stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    for (const line of d.split('\n')) {
      const [at, who] = line.split(' ');
      if (at && who) answers.push({ at: Number(at), who });
    }
  });
  return { answers, stop: () => child.kill('SIGKILL') };
}

async function main(): Promise<void> {
  say('vigil demo: two nodes, one shared LIO disk, a virtual IP; the primary loses power.');
  say();
  await prepareSharedUnit();
  say(`shared unit ${lab.sharedId}: ext4 made on ${lab.aSd} (the last MiB is the disk heartbeat area)`);
  const c = await createCluster({ teardown: (fn) => { teardowns.push(fn); } }, ['a', 'b'],
    [{ tag: 'web', primary: 'a', backup: 'b', vip: true, disk: true, mount: true }], {
      timing: TIMING, disk: { identity: lab.sharedId, paths: { a: lab.a, b: lab.b }, preemptAndAbort: false },
    });
  say(`node a uses ${lab.a}, node b uses ${lab.b}; app "web": disk shared0 → mount → ${c.vip()}/24 → service on :${APP_PORT}`);
  say(`timing: heartbeat ${TIMING.heartbeatIntervalMs} ms, failure after ${TIMING.failAfterMs} ms of silence on every channel (2 networks + disk)`);
  c.start('a');
  const b = c.start('b');
  const bLog = collectLog(b);
  await until('a serves the VIP', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 120_000, 500);
  await until('b hears a on every channel', async () => {
    const p = (await c.status('b')).peers[0];
    return p?.channels.every((x) => x.state === 'up') ? true : undefined;
  }, 60_000, 500);
  say();
  say('--- vigil status on b, before');
  say(formatStatus(await c.status('b') as never));
  const probe = prober(c);
  await sleep(1500);
  say('--- power off a (kill -9 of everything in its namespace, links down)');
  const t0 = Date.now();
  await settled(c, ['a', 'b'], 120_000);
  await c.powerOff('a');
  await until('the client is served by b', async () => (probe.answers.some((x) => x.who === 'b' && x.at > t0) ? true : undefined), 120_000, 100);
  probe.stop();
  await sleep(500);
  const at = (pred: (l: LogLine) => boolean) => bLog.find((l) => l.time >= t0 && pred(l));
  const detect = at((l) => l.msg.startsWith('peer failed'));
  const fence = at((l) => l.msg === 'resource started' && l.resource?.startsWith('disk') === true);
  const mount = at((l) => l.msg === 'resource started' && l.resource?.startsWith('mount') === true);
  const ip = at((l) => l.msg === 'resource started' && l.resource?.startsWith('ip') === true);
  const app = at((l) => l.msg === 'application started');
  const served = probe.answers.find((x) => x.who === 'b' && x.at > t0);
  const lastA = [...probe.answers].reverse().find((x) => x.who === 'a');
  say();
  say('--- timeline on b (ms after the power-off; "took" is the step itself)');
  const row = (name: string, l: { time?: number; at?: number; ms?: number } | undefined) => {
    const when = l?.time ?? l?.at;
    say(`  ${name.padEnd(34)} ${when === undefined ? '   (not seen)' : `${String(when - t0).padStart(6)} ms`}${l?.ms !== undefined ? `   took ${l.ms} ms` : ''}`);
  };
  row('last answer from a', lastA);
  row('detect: every channel silent', detect);
  row('fence: preempt a, reserve (WERO)', fence);
  row('mount the file system', mount);
  row('add the VIP, gratuitous ARP', ip);
  row('start the app', app);
  row('client served by b', served);
  say();
  say('--- vigil status on b, after');
  say(formatStatus(await c.status('b') as never));
  say();
  say(`--- the timeline page of this failover (vigil timeline --html): ${await writeTimeline(c, probe.answers)}`);
}

/**
 * The agents' logs and the client's answers (as 'client answered' lines, the shape `vigil timeline` reads
 * a client log in) under dist/demo/timeline/, in the project, which the lab guest shares with the host;
 * then the page of `vigil timeline` over them. Returns the page's path.
 */
async function writeTimeline(c: TestCluster, answers: { at: number; who: string }[]): Promise<string> {
  const dir = join(packageRoot(), 'dist', 'demo', 'timeline');
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ['a.log', c.log('a')], ['b.log', c.log('b')],
    ['client.log', answers.map((x) => JSON.stringify({ time: x.at, node: 'client', peer: x.who, msg: 'client answered' })).join('\n')],
  ];
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  const page = join(dir, 'timeline.html');
  // The client runs in a namespace of the same guest as the agents: one kernel, one clock, offset 0.
  const timeline = mergeTimeline(files.map(([name, text]) => parseNodeLog(join(dir, name), text)), { offsets: { client: 0 } });
  await writeFile(page, renderHtml(timeline, 'vigil demo: the primary loses power'));
  return page;
}

main().then(async () => {
  for (const fn of teardowns.reverse()) await fn();
}, async (e: unknown) => {
  say(`demo failed: ${e instanceof Error ? e.message : String(e)}`);
  for (const fn of teardowns.reverse()) await fn();
  process.exitCode = 1;
});

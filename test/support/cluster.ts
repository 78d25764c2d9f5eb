// A vigil cluster in the network-namespace rig: writes a key and one configuration per node, starts the
// built vigild (dist/) inside each node's namespace, and reads each agent's status over its control socket
// (unix sockets live in the shared filesystem, so the test process reaches them from the host).
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

import { controlRequest } from '../../src/control/client.js';
import { packageRoot } from '../../src/util/package-root.js';
import { createRig, SERVICE, sh, type Rig } from './netns.js';

export const NETWORKS = ['lan1', 'lan2'];
export const APP_PORT = 8080;

/** A service that answers every connection with the name of the node it runs on. */
export const NAME_SERVER = ['/usr/bin/env', 'node', '-e',
  `require('net').createServer((s) => { s.on('error', () => {}); s.end(process.env.VIGIL_NODE + '\\n'); }).listen(${APP_PORT})`];

/**
 * A cluster-aware app (src/client/cluster-app.ts) that serves its node's name on APP_PORT once ready();
 * it resumes from the marker the previous host wrote, and on an unload request saves where it left (its
 * marker) and exits by itself.
 */
export const AWARE_APP = ['/usr/bin/env', 'node', '--input-type=module', '-e', `
import net from 'node:net';
import { ClusterApp } from ${JSON.stringify(pathToFileURL(join(packageRoot(), 'dist/src/client/cluster-app.js')).href)};
const node = process.env.VIGIL_NODE;
const app = await ClusterApp.connect();
await app.onUnload(async ({ reason }) => {
  await app.setMarker(node + ' unloaded (' + reason + ')');
  process.exit(0);
});
await app.ready();
const before = await app.marker();
await app.setMarker(node + ' resumed from ' + JSON.stringify(before.pointer));
net.createServer((s) => { s.on('error', () => {}); s.end(node + '\\n'); }).listen(${APP_PORT});
`];

/**
 * An app on the shared file system: appends its node's name to <mnt>/log and fsyncs it (as an app that
 * needs its write to survive a failover must), then answers with that name.
 */
export function logAndServe(mnt: string): string[] {
  return ['/usr/bin/env', 'node', '-e',
    `const fs=require('fs');const fd=fs.openSync('${mnt}/log','a');fs.writeSync(fd,process.env.VIGIL_NODE+'\\n');fs.fsyncSync(fd);fs.closeSync(fd);`
    + `require('net').createServer((s) => { s.on('error', () => {}); s.end(process.env.VIGIL_NODE + '\\n'); }).listen(${APP_PORT})`];
}

/**
 * NAME_SERVER listening on one address only (the app's virtual IP), so that several apps on one node can
 * share APP_PORT: `command: (_mnt, vip) => nameServer(vip)`.
 */
export function nameServer(address: string | undefined): string[] {
  if (address === undefined) return NAME_SERVER;
  return ['/usr/bin/env', 'node', '-e',
    `require('net').createServer((s) => { s.on('error', () => {}); s.end(process.env.VIGIL_NODE + '\\n'); }).listen(${APP_PORT}, ${JSON.stringify(address)})`];
}

/**
 * vip: the app gets a virtual IP on the service network (rig.vip(100 + its index)); disk: it owns the
 * cluster's shared disk and, with mount, mounts it (ext4) at <dir>/mnt before it starts.
 */
export interface AppDef {
  tag: string; primary: string; backup: string; autoRecover?: boolean; vip?: boolean;
  /** argv, or argv built from the mount path (<dir>/mnt) and the app's virtual IP (when vip is set). */
  command?: string[] | ((mnt: string, vip: string | undefined) => string[]);
  disk?: boolean; mount?: boolean;
  /** A TCP health probe of the app's port: every 200 ms, 3 failures in a row fail it. */
  monitor?: boolean;
  /** A command health probe instead (every 500 ms, 3 failures in a row fail it). */
  monitorCommand?: string[];
  /** The account the app (and its command probe) runs as. */
  user?: string;
  /** type cluster-aware (default cluster-capable). */
  aware?: boolean;
  /** Additional attributes (behaviour 6). */
  attributes?: Record<string, string>;
}

/**
 * A shared logical unit: its identity and, per node, the one path (I_T nexus) that node uses. scsi2: owned
 * by SCSI-2 reservation (default: persistent reservation).
 */
export interface SharedDisk {
  identity: string; paths: Record<string, string>; scsi2?: boolean;
  /** Take over with PREEMPT AND ABORT (the default); false where it wedges the unit (tcm_loop on 6.1). */
  preemptAndAbort?: boolean;
  /** The disk heartbeat through the reservation (default on). */
  heartbeat?: boolean;
}

export interface ClusterOptions {
  timing?: Record<string, number>; disk?: SharedDisk;
  /** More top-level YAML per node (a `power:` or `distress:` section), given the node's directory. */
  extra?: (node: string, nodeDir: string) => string[];
  /** control.debug: the debug.* methods (debug.stall, debug.crash) answer. */
  debug?: boolean;
  /** control.group: its members may read (status), not act. */
  controlGroup?: string;
  /** A node's `bmc:` mapping, in flow style ("{ host: …, user: … }"), or undefined for none. */
  bmc?: (node: string) => string | undefined;
}

export interface StartOptions {
  /** --heartbeat-priority; default 0 (normal scheduling), null: the flag left out (vigild's default). */
  heartbeatPriority?: number | null;
  /** argv put before vigild's (each program must exec the next: prlimit, setpriv, …); the child's pid stays vigild's. */
  wrap?: string[];
  /** More environment for vigild (NOTIFY_SOCKET, WATCHDOG_USEC: as systemd would set them). */
  env?: Record<string, string>;
}

export interface TestCluster {
  rig: Rig;
  dir: string;
  start(node: string, options?: StartOptions): ChildProcess;
  /** What the node's vigild processes wrote on stdout and stderr so far (JSON log lines). */
  log(node: string): string;
  status(node: string): Promise<Status>;
  request(node: string, method: string, params?: object): Promise<unknown>;
  /** Kills every process of the node (agent and apps) and unplugs it: a node that lost power. */
  powerOff(node: string): Promise<void>;
  /**
   * Plugs a powered-off node back in as the machine would come back from a reboot: without the service
   * addresses its apps had added (the namespace keeps them, a rebooted machine would not), with a fresh
   * mount namespace. Start its agent with start().
   */
  powerOn(node: string): Promise<void>;
  /** What the client gets from the VIP: the serving node's name, or null. */
  probe(vip: string): Promise<string | null>;
  socket(node: string): string;
  /** The virtual IP of the app at this index in the list given to createCluster. */
  vip(index?: number): string;
}

/**
 * The frozen-node drill: every process of `frozen` stopped (SIGSTOP) until `taker` hosts `tag`, then
 * thawed; resolves once the thawed node has stopped the app and its resources here, with its notices.
 */
export async function freezeUntilTakenOver(c: TestCluster, frozen: string, taker: string, tag: string, ms = 120_000): Promise<string[]> {
  const pids = (await sh(['ip', 'netns', 'pids', c.rig.ns(frozen)])).stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  try {
    await until(`${taker} takes ${tag} over`, async () => ((await c.status(taker)).apps.find((a) => a.tag === tag)?.host === taker ? true : undefined), ms, 500);
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  await until(`${frozen} stands down`, async () => {
    const w = (await c.status(frozen)).apps.find((x) => x.tag === tag);
    return w?.here?.app === 'down' && w.here.resources === 'down' ? true : undefined;
  }, ms, 500);
  return (await c.status(frozen)).notices.map((n) => n.notice);
}

interface PairState { tag: string; peer: string; state: string }

/**
 * Waits until every app shared by these running nodes has a master (M) and a slave (SL) in the
 * last-active chart: before that, a processor's failure is not taken over (seed 003 5-2/5-6: the slave
 * is not known to be in sync), so a test that kills the primary must wait for this first.
 */
export async function settled(c: TestCluster, nodes: string[], ms = 20_000): Promise<void> {
  await until(`${nodes.join(' and ')} settled as master and slave`, async () => {
    for (const node of nodes) {
      const r = (await c.request(node, 'priority.show')) as { pairs: PairState[] };
      const ok = r.pairs.filter((p) => nodes.includes(p.peer)).every((p) => p.state === 'M' || p.state === 'SL');
      if (!ok) return undefined;
    }
    return true;
  }, ms, 100);
}

/**
 * Starts a and b (through `start`, default c.start), waits until they hear each other, have settled as
 * master and slave, and a serves the first app's VIP: the starting point of a test that fails a over.
 */
export async function primaryServing(c: TestCluster, start: (node: string) => unknown = (n) => c.start(n)): Promise<void> {
  start('a');
  start('b');
  await until('a and b alive to each other', async () => {
    const [sa, sb] = [await c.status('a'), await c.status('b')];
    const alive = (s: Status, name: string) => s.peers.find((p) => p.peer === name)?.state === 'alive';
    return alive(sa, 'b') && alive(sb, 'a') ? true : undefined;
  }, 20_000);
  await settled(c, ['a', 'b']);
  await until('a serves', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 15_000);
}

export interface Status {
  node: string;
  peers: { peer: string; state: string; forMs: number; channels: { channel: string; state: string }[]; clock?: { offsetMs: number; rttMs: number | null; ageMs: number } }[];
  apps: { tag: string; host: string | null; phase: string; faults: string[]; here?: { app: string; resources: string; pid: number | null } }[];
  notices: { at: string; tag: string; notice: string; message: string }[];
  heartbeat?: { sent: number; received: number; realtime: boolean };
  view?: { valid: boolean; bound: boolean; why: string; watchdogBoundMs: number | null; peers: Record<string, { watchdogBoundMs: number | null; bound: boolean }> };
}

const FAILED_LOG_LINES = 60;

export async function createCluster(t: { teardown(fn: () => unknown): void; passing?(): boolean }, nodes: string[], apps: AppDef[], options: ClusterOptions = {}): Promise<TestCluster> {
  const timing = options.timing ?? {};
  const disk = options.disk;
  const rig = await createRig({ nodes, networks: NETWORKS, client: true, t });
  const dir = await mkdtemp(join(tmpdir(), 'vigil-cluster-'));
  // After the rig is gone: agents still running would write into the directory as it is removed.
  t.teardown(async () => { await rig.destroy(); await rm(dir, { recursive: true, force: true }); });
  await writeFile(join(dir, 'cluster.key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const yaml = (node: string) => [
    'cluster: test',
    `keyFile: ${join(dir, 'cluster.key')}`,
    `stateDir: ${join(dir, node)}`,
    `control: { socket: ${join(dir, node, 'ctl.sock')}${options.debug ? ', debug: true' : ''}${options.controlGroup ? `, group: ${options.controlGroup}` : ''} }`,
    `linkTable: ${join(dir, node, 'links.json')}`,
    ...(disk ? ['disks:', `  - { name: shared0, identity: ${disk.identity}, ${disk.scsi2 ? 'reservation: scsi2' : `reservation: persistent${disk.preemptAndAbort === false ? ', preemptAndAbort: false' : ''}`}${disk.heartbeat === false ? ', heartbeat: false' : ''} }`] : []),
    ...(options.extra?.(node, join(dir, node)) ?? []),
    'log: { level: debug }',
    'networks:',
    ...NETWORKS.map((n, i) => `  - { name: ${n}, port: ${7400 + 10 * i} }`),
    'nodes:',
    ...nodes.map((n, i) => `  - { name: ${n}, id: ${i + 1}, addresses: { ${NETWORKS.map((net) => `${net}: ${rig.addr(n, net)}`).join(', ')} }${options.bmc?.(n) ? `, bmc: ${options.bmc(n)}` : ''} }`),
    `timing: { ${Object.entries({ failbackDwellMs: 1000, peerProbeMs: 2000, ...timing }).map(([k, v]) => `${k}: ${v}`).join(', ')} }`,
    apps.length ? 'apps:' : 'apps: []',
    ...apps.flatMap((a, i) => [
      `  - tag: ${a.tag}`,
      `    type: ${a.aware ? 'cluster-aware' : 'cluster-capable'}`,
      `    command: ${JSON.stringify(typeof a.command === 'function' ? a.command(join(dir, 'mnt'), a.vip ? rig.vip(100 + i) : undefined) : a.command ?? NAME_SERVER)}`,
      `    primary: ${a.primary}`,
      `    backup: ${a.backup}`,
      `    autoRecover: ${a.autoRecover ?? false}`,
      `    stopTimeoutMs: 2000`,
      ...(a.attributes ? [`    attributes: ${JSON.stringify(a.attributes)}`] : []),
      ...(a.monitor ? [`    monitor: { tcp: "127.0.0.1:${APP_PORT}", intervalMs: 200, timeoutMs: 100, failures: 3 }`] : []),
      ...(a.monitorCommand ? [`    monitor: { command: ${JSON.stringify(a.monitorCommand)}, intervalMs: 500, timeoutMs: 500, failures: 3 }`] : []),
      ...(a.user ? [`    user: ${a.user}`] : []),
      `    resources: [ ${[
        ...(a.disk ? ['{ disk: shared0 }'] : []),
        ...(a.mount ? [`{ mount: { disk: shared0, path: ${join(dir, 'mnt')}, fstype: ext4 } }`] : []),
        ...(a.vip ? [`{ ip: { address: ${rig.vip(100 + i)}/24, interface: svc } }`] : []),
      ].join(', ')} ]`,
    ]),
  ].join('\n');
  await mkdir(join(dir, 'mnt'));
  for (const n of nodes) {
    await mkdir(join(dir, n));
    await writeFile(join(dir, `${n}.yaml`), `${yaml(n)}\n`);
    // Each node's stored link table names only its own nexus, as on real servers with their own HBAs.
    const path = disk?.paths[n];
    await writeFile(join(dir, n, 'links.json'), JSON.stringify({
      version: 1, savedAt: new Date().toISOString(), host: n,
      entries: disk && path ? [{ identity: disk.identity, paths: [path] }] : [],
    }));
  }
  const socket = (node: string) => join(dir, node, 'ctl.sock');
  const request = (node: string, method: string, params: object = {}) => controlRequest(socket(node), method, params, { timeoutMs: 3000 });
  const logs = new Map<string, string[]>();
  return {
    rig, dir, socket, request,
    vip: (index = 0) => rig.vip(100 + index),
    log: (node) => (logs.get(node) ?? []).join(''),
    start(node, o = {}) {
      const priority = o.heartbeatPriority === undefined ? 0 : o.heartbeatPriority;
      const child = rig.spawn(node, [...(o.wrap ?? []), process.execPath, join(packageRoot(), 'dist/src/cli/vigild.js'), '--config', join(dir, `${node}.yaml`),
        '--node', node, ...(priority === null ? [] : ['--heartbeat-priority', String(priority)])],
      { stdio: ['ignore', 'pipe', 'pipe'], ...(o.env ? { env: { ...process.env, ...o.env } } : {}) });
      const log: string[] = [];
      const all = logs.get(node) ?? [];
      logs.set(node, all);
      child.stdout?.setEncoding('utf8').on('data', (d: string) => { log.push(d); all.push(d); });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => { log.push(d); all.push(d); });
      // A failed test prints the tail of each agent's log: CI keeps nothing else of a run in a namespace
      // or in the lab guest, and a timeout alone does not say what the agent did instead.
      t.teardown(() => {
        if (process.env.VIGIL_TEST_LOGS) process.stderr.write(`--- ${node}\n${log.join('')}`);
        else if (t.passing?.() === false) process.stderr.write(`--- ${node} (the last ${FAILED_LOG_LINES} lines of its log)\n${log.join('').split('\n').slice(-FAILED_LOG_LINES - 1).join('\n')}\n`);
      });
      return child;
    },
    status: async (node) => (await request(node, 'status')) as Status,
    async powerOff(node) {
      const pids = (await sh(['ip', 'netns', 'pids', rig.ns(node)])).stdout.split('\n').filter(Boolean).map(Number);
      // Stop them all before killing any: a process told of its parent's death (keepalived's worker is)
      // must not get the chance to say goodbye, as it would not when the power goes.
      for (const signal of ['SIGSTOP', 'SIGKILL'] as const) {
        for (const pid of pids) {
          try { process.kill(pid, signal); } catch { /* already gone */ }
        }
      }
      await rig.cutAll(node);
    },
    async powerOn(node) {
      const out = await rig.run(node, ['ip', '-j', 'addr', 'show', 'dev', SERVICE]);
      const own = rig.addr(node, SERVICE);
      for (const link of JSON.parse(out || '[]') as { addr_info?: { family: string; local: string; prefixlen: number }[] }[]) {
        for (const a of link.addr_info ?? []) {
          if (a.family === 'inet' && a.local !== own) await rig.run(node, ['ip', 'addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', SERVICE]);
        }
      }
      await rig.restoreAll(node);
      await rig.boot(node);
    },
    async probe(vip) {
      const r = await rig.exec('client', [process.execPath, '-e',
        `const s=require('net').connect(${APP_PORT},'${vip}');let d='';s.setTimeout(800,()=>process.exit(1));s.on('data',(x)=>d+=x);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',()=>process.exit(1));`], { timeout: 3000 });
      return r.code === 0 ? r.stdout.trim() : null;
    },
  };
}

/**
 * The lines of a JSON log that a strict reader refuses: not one JSON object, or a key twice at its top
 * level (JSON.parse keeps the last silently; jq and other parsers may not, and the first is lost). The
 * logger's base fields (node, cluster) count too: a line that repeats one of them is a defect.
 */
export function badLogLines(log: string): string[] {
  const bad: string[] = [];
  for (const line of log.split('\n')) {
    if (line.trim() === '') continue;
    const keys = topLevelKeys(line);
    if (keys === undefined || new Set(keys).size !== keys.length) bad.push(line);
  }
  return bad;
}

/** The keys of a JSON object's top level, in order, duplicates kept; undefined if it is not one object. */
function topLevelKeys(text: string): string[] | undefined {
  try {
    if (typeof JSON.parse(text) !== 'object') return undefined;
  } catch {
    return undefined;
  }
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (ch === '{' || ch === '[') {
      depth++;
      expectKey = ch === '{' && depth === 1;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** The time (pino's, ms since 1970) of the first line of `node`'s log at or after `after` that matches. */
export function loggedAt(c: TestCluster, node: string, pattern: RegExp, after = 0): number | undefined {
  for (const line of c.log(node).split('\n')) {
    if (!pattern.test(line)) continue;
    try {
      const time = (JSON.parse(line) as { time: number }).time;
      if (time >= after - 1) return time;
    } catch { /* not JSON */ }
  }
  return undefined;
}

/**
 * Who answers the VIP first, within `ms`. After a takeover the new host's app may still be starting (a node
 * process under the lab's TCG takes seconds before it listens), and the client's neighbour entry may still
 * name the old host until the new one's announcement: the first answer is the one to judge.
 */
export function firstAnswer(c: TestCluster, ms = 60_000): Promise<string> {
  return until('the VIP answers', async () => (await c.probe(c.vip())) ?? undefined, ms, 250);
}

/** Polls `fn` until it returns a value other than undefined; throws after `ms` naming `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000, every = 50): Promise<T> {
  const end = performance.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(every);
  }
}

// A multi-node rig on this host built from network namespaces, for tests of the cluster agent: every node
// in its own namespace, one Ethernet segment per cluster network plus a "service" segment that carries the
// application's virtual IP, and optionally a client namespace on the service segment only.
//
//   switch namespace (…-sw)          one bridge per network, named after it (lan1, lan2, …, svc)
//     port v<node>n<net> ──veth──▶   node namespace: interface named after the network (lan1, lan2, svc)
//     port vcl ──────────veth──▶     client namespace: interface svc
//
// Nothing touches the host's own (root) namespace networking: the bridges live in the switch namespace.
// Each node also has a mount namespace of its own that outlives the processes started in it (held by an
// "anchor" process), as a real machine's does: what an agent mounted is still mounted when the next agent
// of the node starts, until the node loses power (powerOff kills the anchor; boot() makes a new one).
// Addresses (all /24): network j (0-based) → 10.(201+j).<rig id>.<node index + 1>; service network →
// <servicePrefix>.<node index + 1>, the client <servicePrefix>.254 (servicePrefix defaults to 10.200.<rig id>).
// The segments of two rigs never meet, so equal addresses in parallel rigs would be harmless; the rig id
// only makes them easier to tell apart in a capture. Namespaces are named vigilrig-<pid>-<start>-<seq>-<role>
// (pid and start time of the creating process), so leftovers of a killed run are recognised and removed
// by cleanStaleRigs(), which createRig() calls first.
//
// Needs root, iproute2 (ip netns), iputils-ping for ping and iputils-arping for gratuitous ARP (scripts/setup
// installs them). A gratuitous ARP (`arping -U -c1 -I svc <vip>`, sent from the namespace holding the vip)
// rewrites the client's existing neighbour entry at once (even within the 1 s locktime); it does not create
// one where none exists (arp_accept 0). Without it a client keeps the old MAC until its entry ages out
// (measured: 46 s).
import { type ChildProcess, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const PREFIX = 'vigilrig-';
/** The name of the service network (and of the interface on it in every namespace). */
export const SERVICE = 'svc';
/** The client's host number on the service network. */
export const CLIENT_HOST = 254;

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Milliseconds before the command is killed (SIGKILL); default 10 000. It then answers code -1. */
  timeout?: number;
  /** Written to the command's standard input, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface RigOptions {
  /** Node names: letters and digits, starting with a letter, at most 10 characters; not "sw" or "client". */
  nodes: string[];
  /** Cluster networks, which are also the interface names in the nodes: at most 15 characters, not "svc". */
  networks: string[];
  /** A client namespace on the service network. */
  client?: boolean;
  /** First three octets of the service network, e.g. "10.3.0"; default 10.200.<rig id>. */
  servicePrefix?: string;
  /** A tap test: the rig is destroyed in its teardown, whether the test passed or not. */
  t?: { teardown(fn: () => unknown): void };
}

/** How cut() takes a link down. */
export type CutMode =
  /** The switch port and the node's interface: the node's interface is admin-down, its connected route gone. */
  | 'both'
  /** The switch port only: the node's interface stays up with NO-CARRIER and its addresses and routes, as
   *  after pulling a real cable. */
  | 'cable';

export interface Rig {
  /** 1..254; the third octet of the cluster networks' addresses. */
  readonly id: number;
  readonly nodes: readonly string[];
  readonly networks: readonly string[];
  /** The service network's first three octets. */
  readonly servicePrefix: string;
  /** Namespace of a node, of "client", or of "sw" (the switch). */
  ns(node: string): string;
  /** Address (no prefix length) of a node or of "client" on a network or on "svc". */
  addr(node: string, network: string): string;
  /** An address on the service network for a virtual IP: <servicePrefix>.<host>, host 100 by default. */
  vip(host?: number): string;
  /** Runs argv inside the namespace (ip netns exec); never throws for a failing command. */
  exec(node: string, argv: string[], opts?: ExecOptions): Promise<Ran>;
  /** Like exec, throwing (with stderr) when the command does not exit 0. */
  run(node: string, argv: string[], opts?: ExecOptions): Promise<string>;
  /** Starts a long-running process inside the namespace; it is killed when the rig is destroyed. */
  spawn(node: string, argv: string[], opts?: SpawnOptions): ChildProcess;
  /** Unplugs the node from a network (cluster network or "svc"). */
  cut(node: string, network: string, mode?: CutMode): Promise<void>;
  /** Plugs it back in: both ends up. */
  restore(node: string, network: string): Promise<void>;
  /** Unplugs the node from every network, the service network included. */
  cutAll(node: string, mode?: CutMode): Promise<void>;
  /** A fresh mount namespace for the node, as after a reboot (its processes must be gone). */
  boot(node: string): Promise<void>;
  restoreAll(node: string): Promise<void>;
  /** Kills the rig's processes and deletes its namespaces; idempotent. */
  destroy(): Promise<void>;
}

// ---- running commands ----

function collect(child: ChildProcess, opts: ExecOptions): Promise<Ran> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeout ?? 10_000);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout, stderr: stderr + String(e) }); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut || code === null ? -1 : code, stdout, stderr: timedOut ? `${stderr}(timed out)` : stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs a program on the host; never throws. */
/**
 * A shell script that does to a node what losing its power (or a reset) does: every process of its
 * namespace stopped, then killed (none may say goodbye), until none is left (a process forked between the
 * listing and the kill, an app the agent was starting, would outlive a single round), and its links down
 * (its kernel would otherwise go on answering ARP for the addresses it had).
 */
export function powerLossScript(ns: string): string {
  return [
    `for round in $(seq 1 50); do pids=$(ip netns pids ${ns}); [ -n "$pids" ] || break; kill -STOP $pids 2>/dev/null; kill -KILL $pids 2>/dev/null; sleep 0.02; done`,
    `ip netns exec ${ns} sh -c 'for i in $(ls /sys/class/net); do ip link set dev $i down; done'`,
    'true',
  ].join('\n');
}

export function sh(argv: string[], opts: ExecOptions = {}): Promise<Ran> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('sh: empty argv');
  return collect(spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] }), opts);
}

async function must(argv: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await sh(argv, opts);
  if (r.code !== 0) {
    const what = opts.input === undefined ? argv.join(' ') : `${argv.join(' ')} <<${JSON.stringify(opts.input)}`;
    throw new Error(`${what}: exit ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

// ---- who made a namespace ----

function procText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function procLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null if none. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const OWNER = `${process.pid}-${startTime(process.pid) ?? '0'}`;
const NAME = /^vigilrig-(\d+)-(\d+)-\d+-[a-z0-9]+$/i;

function listNamespaces(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** Kills every process left in the namespaces and deletes them (errors are ignored: best effort). */
async function removeNamespaces(names: string[]): Promise<void> {
  if (names.length === 0) return;
  // Killed, then waited for (up to 2 s): when this resolves, nothing of the rig runs any more.
  for (let round = 0; round < 40; round++) {
    const pids = (await Promise.all(names.map((n) => sh(['ip', 'netns', 'pids', n]))))
      .flatMap((r) => r.stdout.split(/\s+/).filter(Boolean));
    if (pids.length === 0) break;
    for (const p of pids) {
      try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone already */ }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await sh(['ip', '-force', '-batch', '-'], { input: names.map((n) => `netns del ${n}\n`).join('') });
}

/**
 * Deletes the namespaces of rigs whose creating process is gone (a run killed before its teardown), and
 * the processes still inside them. Answers the names removed.
 */
export async function cleanStaleRigs(): Promise<string[]> {
  const stale = listNamespaces().filter((n) => {
    const m = NAME.exec(n);
    if (!m) return false;
    return startTime(Number(m[1])) !== m[2];
  });
  await removeNamespaces(stale);
  return stale;
}

/** The namespaces this process's rigs currently hold. */
export function ownNamespaces(): string[] {
  return listNamespaces().filter((n) => n.startsWith(`${PREFIX}${OWNER}-`));
}

/** Throws a clear message when the rig cannot run here (not root, no ip netns). */
export async function checkHost(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error('the netns rig needs root (ip netns add); run the tests as root, as CI does');
  }
  const ip = await sh(['ip', 'netns', 'list']);
  if (ip.code !== 0) throw new Error(`the netns rig needs iproute2 with netns support: ip netns list: ${ip.stderr.trim()}`);
  for (const [tool, pkg] of [['ping', 'iputils-ping'], ['arping', 'iputils-arping']] as const) {
    const w = await sh(['sh', '-c', `command -v ${tool}`]);
    if (w.code !== 0) throw new Error(`the netns rig needs ${tool} (Debian ${pkg}; scripts/setup installs it)`);
  }
}

// ---- the rig ----

let seq = 0;
const live = new Set<RigImpl>();
let exitHook = false;

const NODE_NAME = /^[a-z][a-z0-9]{0,9}$/i;
const IFNAME = /^[a-z][a-z0-9_]{0,14}$/i;

class RigImpl implements Rig {
  readonly id: number;
  readonly nodes: readonly string[];
  readonly networks: readonly string[];
  readonly servicePrefix: string;
  readonly client: boolean;
  private readonly base: string;
  private readonly children = new Set<ChildProcess>();
  /** Per node, the process that holds its mount namespace. */
  private readonly anchors = new Map<string, number>();
  private destroyed: Promise<void> | null = null;

  constructor(o: RigOptions) {
    const n = seq++;
    this.id = 1 + ((process.pid * 7 + n) % 254);
    this.base = `${PREFIX}${OWNER}-${n}-`;
    this.nodes = [...o.nodes];
    this.networks = [...o.networks];
    this.client = o.client ?? false;
    this.servicePrefix = o.servicePrefix ?? `10.200.${this.id}`;
    if (this.nodes.length === 0 || this.nodes.length > 200) throw new Error('rig: 1 to 200 nodes');
    if (this.networks.length > 50) throw new Error('rig: at most 50 networks');
    for (const node of this.nodes) {
      if (!NODE_NAME.test(node) || node === 'sw' || node === 'client') throw new Error(`rig: bad node name ${JSON.stringify(node)}`);
    }
    for (const net of this.networks) {
      if (!IFNAME.test(net) || net === SERVICE || net === 'lo') throw new Error(`rig: bad network name ${JSON.stringify(net)}`);
    }
    if (new Set(this.nodes).size !== this.nodes.length || new Set(this.networks).size !== this.networks.length) {
      throw new Error('rig: duplicate node or network name');
    }
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(this.servicePrefix)) throw new Error(`rig: bad servicePrefix ${this.servicePrefix}`);
  }

  /** Every namespace of the rig, the switch first. */
  get all(): string[] {
    return ['sw', ...this.nodes, ...(this.client ? ['client'] : [])].map((r) => this.ns(r));
  }

  private index(node: string): number {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new Error(`rig: no node ${node}`);
    return i;
  }

  ns(node: string): string {
    if (node === 'client' && !this.client) throw new Error('rig: made without a client');
    if (node !== 'sw' && node !== 'client') this.index(node);
    return `${this.base}${node}`;
  }

  addr(node: string, network: string): string {
    const host = node === 'client' ? CLIENT_HOST : this.index(node) + 1;
    if (network === SERVICE) return `${this.servicePrefix}.${host}`;
    if (node === 'client') throw new Error(`rig: the client is on ${SERVICE} only`);
    const j = this.networks.indexOf(network);
    if (j < 0) throw new Error(`rig: no network ${network}`);
    return `10.${201 + j}.${this.id}.${host}`;
  }

  vip(host = 100): string {
    return `${this.servicePrefix}.${host}`;
  }

  /** The switch port of a node (or the client) on a network. */
  private port(node: string, network: string): string {
    if (node === 'client') return 'vcl';
    const j = network === SERVICE ? 'svc' : String(this.networks.indexOf(network));
    if (j === '-1') throw new Error(`rig: no network ${network}`);
    return `v${this.index(node)}n${j}`;
  }

  async build(): Promise<void> {
    const sw = this.ns('sw');
    await must(['ip', '-batch', '-'], { input: this.all.map((n) => `netns add ${n}\n`).join('') });
    live.add(this);
    const nets = [...this.networks, SERVICE];
    const cmds = ['link set lo up'];
    for (const net of nets) cmds.push(`link add ${net} type bridge forward_delay 0 stp_state 0`, `link set ${net} up`);
    const members: [string, string][] = [];
    for (const node of this.nodes) for (const net of nets) members.push([node, net]);
    if (this.client) members.push(['client', SERVICE]);
    for (const [node, net] of members) {
      const p = this.port(node, net);
      cmds.push(`link add ${p} type veth peer name ${net} netns ${this.ns(node)}`, `link set ${p} master ${net} up`);
    }
    await must(['ip', '-n', sw, '-batch', '-'], { input: cmds.map((c) => `${c}\n`).join('') });
    await Promise.all([...this.nodes, ...(this.client ? ['client'] : [])].map((node) => {
      const own = node === 'client' ? [SERVICE] : nets;
      const c = ['link set lo up'];
      for (const net of own) c.push(`addr add ${this.addr(node, net)}/24 dev ${net}`, `link set ${net} up`);
      return must(['ip', '-n', this.ns(node), '-batch', '-'], { input: c.map((x) => `${x}\n`).join('') });
    }));
    await Promise.all(this.nodes.map((node) => this.boot(node)));
  }

  async boot(node: string): Promise<void> {
    // ip netns exec gives its command a mount namespace of its own; a sleeping command keeps it.
    const child = spawn('ip', ['netns', 'exec', this.ns(node), 'sleep', 'infinity'], { stdio: 'ignore' });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    const own = readlinkSync('/proc/self/ns/mnt');
    for (let i = 0; i < 200; i++) {
      const pid = child.pid;
      if (pid !== undefined && procText(`/proc/${pid}/comm`) === 'sleep' && procLink(`/proc/${pid}/ns/mnt`) !== own) {
        this.anchors.set(node, pid);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`rig: ${node}'s mount namespace did not come up`);
  }

  /** The command that runs argv in the node's namespaces: its anchor's while that lives, else a fresh one. */
  private inside(node: string, argv: string[]): string[] {
    const pid = this.anchors.get(node);
    if (pid !== undefined && procText(`/proc/${pid}/comm`) === 'sleep') return ['nsenter', '-t', String(pid), '-n', '-m', '--', ...argv];
    return ['ip', 'netns', 'exec', this.ns(node), ...argv];
  }

  exec(node: string, argv: string[], opts: ExecOptions = {}): Promise<Ran> {
    return sh(node === 'sw' || node === 'client' ? ['ip', 'netns', 'exec', this.ns(node), ...argv] : this.inside(node, argv), opts);
  }

  async run(node: string, argv: string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(node, argv, opts);
    if (r.code !== 0) throw new Error(`${node}: ${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  spawn(node: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    // ip netns exec and nsenter exec the command themselves, so the child's pid is the command's.
    const [cmd, ...args] = node === 'sw' || node === 'client' ? ['ip', 'netns', 'exec', this.ns(node), ...argv] : this.inside(node, argv);
    const child = spawn(cmd!, args, opts);
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    child.on('error', () => this.children.delete(child));
    return child;
  }

  async cut(node: string, network: string, mode: CutMode = 'both'): Promise<void> {
    await must(['ip', '-n', this.ns('sw'), 'link', 'set', this.port(node, network), 'down']);
    if (mode === 'both') await must(['ip', '-n', this.ns(node), 'link', 'set', network, 'down']);
  }

  async restore(node: string, network: string): Promise<void> {
    await must(['ip', '-n', this.ns(node), 'link', 'set', network, 'up']);
    await must(['ip', '-n', this.ns('sw'), 'link', 'set', this.port(node, network), 'up']);
  }

  private own(node: string): string[] {
    return node === 'client' ? [SERVICE] : [...this.networks, SERVICE];
  }

  async cutAll(node: string, mode: CutMode = 'both'): Promise<void> {
    for (const net of this.own(node)) await this.cut(node, net, mode);
  }

  async restoreAll(node: string): Promise<void> {
    for (const net of this.own(node)) await this.restore(node, net);
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      const exited = [...this.children].map((c) => new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) resolve();
        else c.once('exit', () => resolve());
      }));
      for (const c of this.children) c.kill('SIGTERM');
      const timer = setTimeout(() => { for (const c of this.children) c.kill('SIGKILL'); }, 2000);
      await Promise.all(exited);
      clearTimeout(timer);
      await removeNamespaces(this.all.filter((n) => listNamespaces().includes(n)));
      live.delete(this);
    })();
    return this.destroyed;
  }

  /** For process exit: synchronous, best effort. */
  destroySync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const n of this.all) {
      const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout ?? '';
      for (const p of pids.split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
      }
    }
    spawnSync('ip', ['-force', '-batch', '-'], { input: this.all.map((n) => `netns del ${n}\n`).join('') });
  }
}

/**
 * Builds a rig (in about 0.1 s for two nodes, two networks and a client) after removing stale ones. With
 * `t`, it is destroyed in the test's teardown; in any case at process exit.
 */
export async function createRig(o: RigOptions): Promise<Rig> {
  await checkHost();
  await cleanStaleRigs();
  const rig = new RigImpl(o);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const r of live) r.destroySync(); });
  }
  o.t?.teardown(() => rig.destroy());
  try {
    await rig.build();
  } catch (e) {
    await rig.destroy();
    throw e;
  }
  return rig;
}

/** Sends one gratuitous ARP for `ip` from `node`'s interface (default svc); `ip` must be on it. ~1 s. */
export async function garp(rig: Rig, node: string, ip: string, dev = SERVICE): Promise<void> {
  await rig.run(node, ['arping', '-q', '-U', '-c1', '-I', dev, ip]);
}

/** The link-layer address `node` has for `ip` in its neighbour table, with the entry's state, or null. */
export async function neighbour(rig: Rig, node: string, ip: string): Promise<{ mac: string; state: string } | null> {
  const out = await rig.run(node, ['ip', '-j', 'neigh', 'show', ip]);
  const entries = JSON.parse(out || '[]') as { lladdr?: string; state?: string[] }[];
  const e = entries[0];
  if (e?.lladdr === undefined) return null;
  return { mac: e.lladdr, state: (e.state ?? []).join(',') };
}

/** The MAC address of `node`'s interface on a network. */
export async function mac(rig: Rig, node: string, network: string): Promise<string> {
  const out = await rig.run(node, ['ip', '-j', 'link', 'show', network]);
  const link = (JSON.parse(out) as { address?: string }[])[0];
  if (link?.address === undefined) throw new Error(`rig: no address on ${node}/${network}`);
  return link.address;
}

/** True when `from` gets an answer to one ping of `to` within `waitS` seconds (default 1). */
export async function pings(rig: Rig, from: string, to: string, waitS = 1): Promise<boolean> {
  return (await rig.exec(from, ['ping', '-n', '-q', '-c1', `-W${waitS}`, to])).code === 0;
}

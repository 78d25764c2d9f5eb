// One run of one schedule, start to finish: a fresh cluster in the namespace rig (agents started in
// parallel), the ground truth sampled every ~150 ms and checked as it comes, the faults and writes carried
// out at their times, every fault healed, the clean-up (app.load on each primary, failback.approve where a
// prompt waits), then the end-of-run invariants. Returns the findings with a printable report.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { controlRequest } from '../../src/control/client.js';
import { createCluster, settled, until, type Status, type TestCluster } from '../support/cluster.js';
import { Checker, exactVipViolations, excusedOverlap, type Episode, type Violation } from './checker.js';
import { Injector } from './faults.js';
import { ackViolations, liveProblems, type DbShow, type WriteRecord } from './final.js';
import { Ground, type Sample } from './ground.js';
import { mac, neighbour, SERVICE } from '../support/netns.js';
import { appDefs } from './layout.js';
import { LinkRules } from './netfilter.js';
import { describeFault, describeWrite, type Fault, type Schedule } from './schedule.js';
import { fmt, logsAround, Timeline } from './timeline.js';
import { handOvers, type HandOver, type Held, VipWatch } from './vipwatch.js';
import { World } from './world.js';

export interface Limits {
  hMs: number;
  resolveMs: number;
  startMs: number;
  convergeMs: number;
}

/**
 * H 100 ms: no hand-over in vigil puts a VIP on two nodes (the old host removes it before HOST moves; a
 * takeover from a failed node finds it gone): measured exactly (ip monitor), every plain hand-over left a
 * gap, never an overlap. H only absorbs timestamp skew, and stays below the sampling period so that an
 * overlap seen in two samples breaks INV-VIP.
 * T_start 1000 ms: from a takeover's decision to its copy running (sync bounded at 500 ms, the priority
 * write, the address, the spawn), for a decision made just before the fault ended.
 * T_resolve 5000 ms: failAfterMs 400 + recoverAfterMs 1000 + the app's stopTimeoutMs 2000 + 1600 margin
 * for a loaded machine (the figures: resolutions p90 ~3.5 s with the lab's guest running beside).
 * T_converge 15 000 ms: restarted agents up and the cluster formed (recoverAfterMs 1000, seconds of
 * start-up when the machine is loaded), a last-active decision (peerProbeMs 2000 when a peer is silent),
 * the failback dwell (1000), the prompt and its hand-over; measured p90 ~6.5 s, max ~9.3 s.
 * See docs/nemesis.md for the measured figures.
 */
export const DEFAULT_LIMITS: Limits = { hMs: 100, resolveMs: 5000, startMs: 1000, convergeMs: 15_000 };

/**
 * What differs between the namespace rig and the lab guest: the cluster, the injector, the limits and the
 * harness's own pace, and the lab's end-of-run checks (the records on the shared disk).
 */
export interface Profile {
  limits: Limits;
  /** The ground truth is sampled this often. */
  sampleMs: number;
  /** INV-LIVE must hold this long without a break (longer than failbackDwellMs, so a due failback shows). */
  stableMs: number;
  /** Start-up waits (every agent hears every peer, settled, every app serving) give up after this. */
  startupMs: number;
  /** After the last heal, how long the clean-up waits for the cluster to form again before loading. */
  formMs: number;
  /** Timeout of the harness's own status and db.show requests. */
  requestMs: number;
  cluster(teardown: (fn: () => unknown) => void, sched: Schedule): Promise<TestCluster>;
  injector(c: TestCluster, world: World, tl: Timeline, rules: LinkRules, watch: VipWatch): Injector;
  /**
   * Every node has been powered off (the rig and its directory are still there): the rig's own end-of-run
   * checks. `converged`: the stable period at the end (ms since t0), if INV-LIVE held; `host`: the node
   * that ran each app then.
   */
  finish?(x: { c: TestCluster; t0: number; tl: Timeline; converged: { from: number; to: number } | undefined; host: Record<string, string> }): Promise<Violation[]>;
  replay(sched: Schedule, without: string[]): string;
  /** No fault excuses two copies: every takeover from a node that may run its copy is fenced (NETNS_BMC). */
  strict?: boolean;
}

/** The namespace rig on the host: default vigild timing, no shared disk. */
export const NETNS: Profile = {
  limits: DEFAULT_LIMITS,
  sampleMs: 150,
  stableMs: 1100,
  startupMs: 20_000,
  formMs: 6000,
  requestMs: 1000,
  cluster: (teardown, sched) => createCluster({ teardown }, sched.layout.nodes, appDefs(sched.layout)),
  injector: (c, world, tl, rules, watch) => new Injector(c, world, tl, rules, watch),
  replay: (sched, without) => `npm run nemesis -- --seed ${sched.seed} --nodes ${sched.layout.nodes.length}${sched.switchovers ? ' --switchovers' : ''}${without.length ? ` --without ${without.join(',')}` : ''}`,
};

export interface RunResult {
  seed: number;
  nodes: number;
  violations: Violation[];
  /** The whole record, printed for a failing run (and with --verbose). */
  report: string;
  ms: { total: number; startup: number; faults: number; converge: number | undefined };
  episodes: Episode[];
  /** Every change of holder of a VIP, measured exactly, with whether a fault excused an overlap. */
  handOvers: (HandOver & { excused: boolean; leftover: boolean })[];
}

/** status, with each app's pending failback prompt (null when none). */
type PromptStatus = Omit<Status, 'apps'> & { apps: (Status['apps'][number] & { prompt?: string | null; version?: number })[] };

function appSummary(s: Status): string {
  const peers = s.peers.map((p) => `${p.peer}:${p.state}`).join(',');
  // tag@HOST/phase, v<version>, !<fault marks>, * where this node runs it.
  const apps = (s as PromptStatus).apps.map((a) => `${a.tag}@${a.host ?? '-'}/${a.phase} v${a.version ?? '?'}${a.faults.length ? `!${a.faults.join('')}` : ''}${a.here?.app === 'up' ? '*' : ''}`).join(' ');
  return `${apps} peers ${peers}`;
}

function groundSummary(s: Sample, tags: string[]): string {
  return tags.map((t) => `${t}: run ${(s.copies[t] ?? []).map((c) => c.node).join('+') || '-'} vip ${(s.vips[t] ?? []).join('+') || '-'} client ${s.answer[t]?.node ?? '-'}`).join(' | ');
}

export interface RunOptions {
  limits?: Limits;
  /** Echo the timeline as it happens. */
  verbose?: boolean;
  /** Append every agent log line (info and above) of the run to its report. */
  logs?: boolean;
  /** The rig: the namespaces (default) or the lab guest (lab/profile.ts). */
  profile?: Profile;
}

export async function runSchedule(sched: Schedule, o: RunOptions = {}): Promise<RunResult> {
  const p = o.profile ?? NETNS;
  const limits = o.limits ?? p.limits;
  const verbose = o.verbose ?? false;
  const teardowns: (() => unknown)[] = [];
  const began = Date.now();
  const tags = sched.layout.apps.map((a) => a.tag);
  const primaryOf = (tag: string) => sched.layout.apps.find((a) => a.tag === tag)!.primary;
  const violations: Violation[] = [];
  let c: TestCluster | undefined;
  let tl = new Timeline(began, verbose);
  let checker: Checker | undefined;
  const ms: RunResult['ms'] = { total: 0, startup: 0, faults: 0, converge: undefined };
  let windowAt = 0;
  let t0 = began;
  let inj: Injector | undefined;
  let watching: VipWatch | undefined;
  let worldRef: World | undefined;
  /** Set when INV-LIVE failed: the report prints the agents' log from then on. */
  let liveFailedAt: number | undefined;
  let converged: { from: number; to: number } | undefined;
  const finalHost: Record<string, string> = {};
  try {
    c = await p.cluster((fn) => teardowns.push(fn), sched);
    t0 = Date.now();
    tl = new Timeline(t0, verbose);
    const cluster = c;
    const world = new World(sched.layout.nodes, t0, !p.strict);
    worldRef = world;
    const vips = Object.fromEntries(tags.map((t, i) => [t, cluster.vip(i)]));
    const watch = new VipWatch(cluster, vips, t0);
    watching = watch;
    await Promise.all(sched.layout.nodes.map((n) => watch.start(n)));
    inj = p.injector(cluster, world, tl, new LinkRules(cluster.rig), watch);
    const injector = inj;
    const ground = new Ground({ c: cluster, nodes: sched.layout.nodes, vips, t0, poweredOff: (n) => world.poweredOff(n) });
    teardowns.push(() => ground.stopProber());
    checker = new Checker(world, tags, limits, t0);
    const check = checker;

    // ---- start: every agent at once, then wait until each app runs once and answers ----
    for (const n of sched.layout.nodes) injector.startAgent(n);
    ground.startProber();
    await until('every agent hears every peer', async () => {
      for (const n of sched.layout.nodes) {
        const s = await cluster.status(n);
        if (!s.peers.every((p) => p.state === 'alive')) return undefined;
      }
      return true;
    }, p.startupMs, 100);
    await settled(cluster, sched.layout.nodes, p.startupMs);
    await until('every app runs once and answers', async () => (liveProblems(await ground.sample(), tags).length === 0 ? true : undefined), p.startupMs, 100);
    windowAt = world.now();
    ms.startup = windowAt;
    tl.add('note', `cluster up, every app serving; the fault window opens (schedule times are relative to ${fmt(windowAt)})`);

    // ---- sampling and the agents' view, until the end of the run ----
    // A VIP held by one node that the client cannot reach: what the client's neighbour table says
    // (a stale MAC is the usual reason), at most once a second per app.
    const macs = new Map(await Promise.all(sched.layout.nodes.map(async (n) => [await mac(cluster.rig, n, SERVICE), n] as const)));
    const diagnosed = new Map<string, number>();
    const diagnoseClient = async (s: Sample) => {
      for (const tag of tags) {
        if ((s.vips[tag] ?? []).length !== 1 || s.answer[tag]?.node !== null || s.at - (diagnosed.get(tag) ?? -Infinity) < 1000) continue;
        diagnosed.set(tag, s.at);
        const n = await neighbour(cluster.rig, 'client', vips[tag]!).catch(() => null);
        tl.add('note', `client unanswered on ${tag}'s VIP held by ${s.vips[tag]![0]}: client's neighbour entry ${n ? `${n.mac} (${macs.get(n.mac) ?? 'no node'}) ${n.state}` : 'none'}`, s.at);
      }
    };
    let sampling = true;
    let latest: Sample | undefined;
    let lastGround = '';
    const sampler = (async () => {
      while (sampling) {
        const started = Date.now();
        const s = await ground.sample();
        latest = s;
        const g = groundSummary(s, tags);
        if (g !== lastGround) tl.add('view', `ground ${g}`, s.at);
        lastGround = g;
        void diagnoseClient(s);
        for (const v of check.observe(s)) {
          violations.push(v);
          tl.add('violation', `${v.inv} ${v.text}`, v.at);
        }
        await sleep(Math.max(10, p.sampleMs - (Date.now() - started)));
      }
    })();
    const lastView = new Map<string, string>();
    const viewer = (async () => {
      while (sampling) {
        await Promise.all(sched.layout.nodes.map(async (n) => {
          if (!world.agentRunning(n) || world.isFrozen(n)) return;
          const s = await controlRequest(cluster.socket(n), 'status', {}, { timeoutMs: p.requestMs }).catch(() => undefined) as Status | undefined;
          if (!s) return;
          const v = appSummary(s);
          if (lastView.get(n) !== v) tl.add('agent', `${n} sees ${v}`);
          lastView.set(n, v);
        }));
        await sleep(1000);
      }
    })();

    // ---- the faults and the writes, each at its time; faults on one resource in turn ----
    const chains = new Map<string, Promise<void>>();
    const at = (offset: number) => sleep(Math.max(0, t0 + windowAt + offset - Date.now()));
    const runFault = async (f: Fault, after: Promise<unknown>) => {
      await after;
      await at(f.at);
      tl.add('step', `begin ${describeFault(f)}`);
      await injector.begin(f);
      if (f.ms > 0 || f.kind === 'agent-kill' || f.kind === 'agent-restart') {
        await at(f.at + f.ms);
        tl.add('step', `heal #${f.id} ${f.kind} ${f.node}`);
        await injector.end(f, primaryOf);
      }
    };
    const faultTasks = sched.faults.map((f) => {
      const after = Promise.all(f.resources.map((k) => chains.get(k)));
      const task = runFault(f, after).catch((e: unknown) => {
        violations.push({ inv: 'HARNESS', at: world.now(), text: `fault #${f.id} ${f.kind} failed: ${e instanceof Error ? e.message : String(e)}` });
      });
      for (const k of f.resources) chains.set(k, task);
      return task;
    });
    const records: WriteRecord[] = [];
    const writeTasks = sched.writes.map(async (w) => {
      await at(w.at);
      const sentAt = world.now();
      const outcome = w.kind === 'attr'
        ? await injector.request(w.node, 'attr.set', { tag: w.tag, name: w.name, value: w.value })
        : await injector.request(w.node, 'marker.set', { tag: w.tag, pointer: w.value });
      records.push({ w, sentAt, doneAt: world.now(), outcome });
    });
    await Promise.all([...faultTasks, ...writeTasks]);
    await injector.afterFaults();
    const healedAt = world.now();
    ms.faults = healedAt - windowAt;
    const unhealed = world.unhealed();
    if (unhealed.length) violations.push({ inv: 'HARNESS', at: healedAt, text: `not healed after the schedule: ${unhealed.join(', ')}` });
    tl.add('note', 'every fault healed: clean-up (app.load on each primary, failback.approve where a prompt waits)');

    // ---- clean-up and convergence ----
    // The loads wait until the cluster has formed again (every agent answers, hears every peer, and the
    // replicas agree), as an operator would: a load on a replica that has not synced yet is a write on
    // stale data, which INV-ACK covers; the clean-up is there to show liveness.
    await until('the cluster formed again', async () => {
      const all = await Promise.all(sched.layout.nodes.map(async (n) => {
        const st = await controlRequest(cluster.socket(n), 'status', {}, { timeoutMs: p.requestMs }).catch(() => undefined) as Status | undefined;
        const db = await controlRequest(cluster.socket(n), 'db.show', {}, { timeoutMs: p.requestMs }).catch(() => undefined) as DbShow | undefined;
        return st?.peers.every((p) => p.state === 'alive') ? db?.digest : undefined;
      }));
      return all.every((d) => d !== undefined && d === all[0]) ? true : undefined;
    }, p.formMs, 100).catch(() => tl.add('note', `the cluster has not formed again ${p.formMs / 1000} s after the last heal: loading anyway`));
    await Promise.all(sched.layout.apps.map((a) => injector.request(a.primary, 'app.load', { tag: a.tag })));
    const deadline = healedAt + limits.convergeMs;
    let stableSince: number | undefined;
    let problems: string[] = ['not checked yet'];
    let dbs: Record<string, DbShow> = {};
    while (world.now() < deadline) {
      await sleep(250);
      const statuses = await Promise.all(sched.layout.nodes.map(async (n) => [n, await controlRequest(cluster.socket(n), 'status', {}, { timeoutMs: p.requestMs }).catch(() => undefined) as PromptStatus | undefined] as const));
      for (const [n, s] of statuses) {
        for (const a of s?.apps ?? []) if (a.prompt && a.host === n) await injector.request(n, 'failback.approve', { tag: a.tag });
      }
      dbs = Object.fromEntries(await Promise.all(sched.layout.nodes.map(async (n) => [n, await controlRequest(cluster.socket(n), 'db.show', {}, { timeoutMs: p.requestMs }).catch(() => undefined)] as const))) as Record<string, DbShow>;
      const digests = new Set(Object.values(dbs).map((d) => d?.digest));
      problems = latest ? liveProblems(latest, tags) : ['no sample'];
      if (digests.size !== 1 || digests.has(undefined as unknown as number)) problems.push(`digests differ: ${Object.entries(dbs).map(([n, d]) => `${n} ${d?.digest ?? 'no answer'}`).join(', ')}`);
      if (statuses.some(([, s]) => s?.apps.some((a) => a.prompt))) problems.push('a failback prompt waits');
      if (problems.length) stableSince = undefined;
      else if (stableSince === undefined) stableSince = world.now();
      else if (world.now() - stableSince >= p.stableMs) break;
    }
    sampling = false;
    await Promise.all([sampler, viewer]);
    check.close(world.now());
    watch.stop(world.now());
    for (const v of exactVipViolations(watch.held, world, limits, violations)) {
      violations.push(v);
      tl.add('violation', `${v.inv} ${v.text}`, v.at);
    }
    if (stableSince !== undefined && world.now() - stableSince >= p.stableMs) {
      ms.converge = stableSince - healedAt;
      converged = { from: stableSince, to: world.now() };
      tl.add('note', `converged ${ms.converge} ms after the last heal`);
    } else {
      const live = problems.filter((p) => !p.startsWith('digests differ'));
      const conv = problems.filter((p) => p.startsWith('digests differ'));
      if (live.length) {
        violations.push({ inv: 'INV-LIVE', at: world.now(), text: `not converged ${limits.convergeMs} ms after the last heal: ${live.join('; ')}` });
        // What each agent says of the apps that did not come back: HOST, phase, marks, its flow here, the
        // last-active state (a closed gate is the usual reason an app waits), any prompt.
        for (const n of sched.layout.nodes) {
          const st = await controlRequest(cluster.socket(n), 'status', {}, { timeoutMs: p.requestMs }).catch((e: unknown) => String(e)) as PromptStatus | string;
          if (typeof st === 'string') tl.add('note', `final state on ${n}: no status (${st}); its agent process: ${processState(world.agents.get(n)?.pid)}`);
          else for (const a of st.apps) tl.add('note', `final state on ${n}: ${JSON.stringify(a)}`);
        }
        liveFailedAt = healedAt;
      }
      if (conv.length) {
        violations.push({ inv: 'INV-CONVERGE', at: world.now(), text: conv.join('; ') });
        liveFailedAt = healedAt;
      }
    }
    for (const text of ackViolations(records, Object.fromEntries(Object.entries(dbs).filter(([, d]) => d !== undefined)))) {
      violations.push({ inv: 'INV-ACK', at: world.now(), text });
    }
    for (const v of violations.filter((x) => x.inv !== 'INV-RUN' && x.inv !== 'INV-VIP' && x.inv !== 'AGENT-EXIT')) tl.add('violation', `${v.inv} ${v.text}`, v.at);
    for (const crash of injector.crashes) violations.push({ inv: 'AGENT-EXIT', at: world.now(), text: crash });
    for (const tag of tags) {
      const copies = latest?.copies[tag] ?? [];
      if (copies.length === 1) finalHost[tag] = copies[0]!.node;
    }
  } catch (e) {
    violations.push({ inv: 'HARNESS', at: Date.now() - began, text: `run aborted: ${e instanceof Error ? e.stack ?? e.message : String(e)}` });
  } finally {
    ms.total = Date.now() - began;
    const classified = worldRef && watching ? handOvers(watching.held).map((h) => classify(h, worldRef!, limits)) : [];
    inj?.shutdown();
    // Power every node off at once: the rig's own teardown would SIGTERM each agent and wait for it
    // to stop its apps, seconds a run does not need.
    if (c) await Promise.all(sched.layout.nodes.map((n) => c!.powerOff(n).catch(() => {})));
    if (c && p.finish) {
      try {
        for (const v of await p.finish({ c, t0, tl, converged, host: finalHost })) {
          violations.push(v);
          tl.add('violation', `${v.inv} ${v.text}`, v.at);
        }
      } catch (e) {
        violations.push({ inv: 'HARNESS', at: Date.now() - t0, text: `end-of-run checks failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}` });
      }
    }
    const logs = c ? Object.fromEntries(sched.layout.nodes.map((n) => [n, c!.log(n)])) : {};
    const report = formatReport(sched, violations, tl, logs, windowAt, t0, o.logs ? 0 : liveFailedAt, watching?.held ?? []);
    for (const fn of teardowns.reverse()) {
      try { await fn(); } catch { /* best effort */ }
    }
    return { seed: sched.seed, nodes: sched.layout.nodes.length, violations, report, ms, episodes: checker?.episodes ?? [], handOvers: classified };
  }
}

/**
 * A process as the kernel sees it: each thread's state and wait channel, the main thread's kernel stack,
 * and the stack of every other thread in uninterruptible sleep (where a process hangs, often a worker's).
 */
export function processState(pid: number | undefined): string {
  if (pid === undefined) return 'none';
  const read = (p: string) => { try { return readFileSync(p, 'utf8').trim(); } catch { return '?'; } };
  const state = (t: string) => { const stat = read(`/proc/${pid}/task/${t}/stat`); return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]; };
  const stack = (t: string) => read(`/proc/${pid}/task/${t}/stack`).split('\n').map((l) => l.replace(/^\[<0>\] /, '')).join(' < ');
  let tasks: string[];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return `pid ${pid} gone`; }
  const threads = tasks.map((t) => `${read(`/proc/${pid}/task/${t}/comm`)}:${state(t)}/${read(`/proc/${pid}/task/${t}/wchan`)}`);
  const waiting = tasks.filter((t) => t !== String(pid) && state(t) === 'D').map((t) => `; thread ${t} (D) stack ${stack(t)}`);
  return `pid ${pid}, threads ${threads.join(' ')}; stack ${stack(String(pid))}${waiting.join('')}`;
}

/** Whether a fault excused a hand-over's overlap, and whether a killed agent's leftover was one side. */
function classify(h: HandOver, world: World, limits: Limits): HandOver & { excused: boolean; leftover: boolean } {
  const end = h.at + Math.max(0, h.overlapMs);
  const excused = h.overlapMs > 0 && excusedOverlap(world, limits, h.from, h.to, h.at, end);
  const leftover = h.overlapMs > 0 && !excused && (world.killedAfter(h.from, h.since, end) ?? world.killedAfter(h.to, h.at, end)) !== undefined;
  return { ...h, excused, leftover };
}

export function replayCommand(sched: Schedule, without: string[] = [], profile: Profile = NETNS): string {
  return profile.replay(sched, without);
}

function formatReport(sched: Schedule, violations: Violation[], tl: Timeline, logs: Record<string, string>, windowAt: number, t0: number, liveFailedAt: number | undefined, held: readonly Held[]): string {
  const lines: string[] = [];
  const invs = [...new Set(violations.map((v) => v.inv))];
  lines.push(`seed ${sched.seed} (${sched.layout.nodes.length} nodes): ${invs.length ? `FAILED ${invs.join(', ')}` : 'passed'}`);
  lines.push(`layout: ${sched.layout.apps.map((a) => `${a.tag} ${a.primary}→${a.backup}${a.autoRecover ? ' autoRecover' : ''}${a.monitor ? ' monitored' : ''}`).join('; ')}`);
  lines.push('schedule (times since the cluster was created; the fault window opened at ' + fmt(windowAt).trim() + '):');
  for (const f of sched.faults) lines.push(`  ${fmt(windowAt + f.at)} ${describeFault(f)}`);
  for (const w of sched.writes) lines.push(`  ${fmt(windowAt + w.at)} ${describeWrite(w)}`);
  if (violations.length) {
    lines.push('violations:');
    for (const v of violations) lines.push(`  ${fmt(v.at)} ${v.inv} ${v.text}`);
  }
  lines.push('VIP history (exact, ip monitor; node from–to):');
  for (const tag of sched.layout.apps.map((a) => a.tag)) {
    const spans = held.filter((h) => h.tag === tag).sort((a, b) => a.from - b.from);
    lines.push(`  ${tag}: ${spans.map((h) => `${h.node} ${fmt(h.from).trim()}–${h.to === Infinity ? '' : fmt(h.to).trim()}`).join(', ')}`);
  }
  lines.push('timeline:');
  lines.push(tl.format().split('\n').map((l) => `  ${l}`).join('\n'));
  const around = violations.filter((v) => v.inv === 'INV-RUN' || v.inv === 'INV-VIP' || (v.inv.startsWith('INV-REC-') && Number.isFinite(v.at)));
  for (const v of around.slice(0, 4)) {
    lines.push(`agents' log around ${fmt(v.at).trim()} (${v.inv}):`);
    for (const l of logsAround(logs, t0, v.at - 2500, v.at + 500)) lines.push(`  ${l}`);
  }
  if (liveFailedAt !== undefined) {
    lines.push(liveFailedAt === 0 ? 'agents\' log:' : `agents' log from 1 s before the last heal (INV-LIVE, INV-CONVERGE):`);
    for (const l of logsAround(logs, t0, liveFailedAt === 0 ? -Infinity : liveFailedAt - 1000, Infinity)) lines.push(`  ${l}`);
  }
  return lines.join('\n');
}

/** What checkSchedule needs of a tap test. */
export interface Verdict {
  pass(message: string): void;
  fail(message: string): void;
  comment(message: string): void;
}

/**
 * One schedule as a test (the CI tests of both rigs): it passes, or its report is printed and it fails
 * naming what broke and the command that replays it. The result joins `results` for the figures.
 */
export async function checkSchedule(t: Verdict, sched: Schedule, results: RunResult[], o: RunOptions = {}): Promise<void> {
  const r = await runSchedule(sched, o);
  results.push(r);
  const broken = [...new Set(r.violations.map((v) => v.inv))];
  if (broken.length === 0) {
    t.pass(`no invariant broken (${(r.ms.total / 1000).toFixed(1)} s)`);
    return;
  }
  t.comment(r.report);
  t.fail(`${broken.join(', ')} broken; replay: ${replayCommand(sched, [], o.profile)}`);
}

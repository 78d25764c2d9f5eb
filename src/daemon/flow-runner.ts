// Runs the application flows (src/db/flows.ts) on this node: one reducer per app, fed one event at a time,
// and the actions it returns performed for real (database writes, resources, the app's process, its
// health probe, the cluster-aware app's unload requests and ready() waiters).
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

import type { Config, NodeConfig } from '../config/schema.js';
import { ControlError } from '../control/protocol.js';
import type { ControlConnection } from '../control/server.js';
import { DbWriteError } from '../db/database.js';
import { initialFlow, runEpoch, step, type AsyncAction, type FlowAction, type FlowEvent, type FlowState } from '../db/flows.js';
import type { AppObject, ResourceSpec } from '../db/object.js';
import type { PeerSnapshot } from '../membership/membership.js';
import { AppProcess } from '../resources/app-process.js';
import { announce, type IpAddressSpec } from '../resources/ip-address.js';
import { PeerProcessesError, StaleStartError, type StaleCheck } from '../resources/stale-start.js';
import { HealthMonitor, probeOnce } from './health.js';
import { handsOver, type LastActive } from './last-active.js';
import { stepPhase, type FailoverTimes } from './failover-times.js';
import type { PidFiles } from './leftovers.js';
import type { AgentLog } from './log.js';
import type { Notices } from './notices.js';
import { FenceFailedError, FenceMootError, type PowerFence } from './power-fence.js';
import type { SelfFence } from './self-fence.js';
import type { Replication } from './replication.js';
import { resourceName, type Resources } from './resources.js';
import type { AppHereStatus } from './status.js';

/** app.ready requests waiting at once per app (ready()). */
export const MAX_READY_WAITERS = 64;

interface Flow {
  state: FlowState;
  wakeAt: number | null;
  queue: FlowEvent[];
  draining: boolean;
  process: AppProcess | undefined;
  health: HealthMonitor | undefined;
  readyWaiters: (() => void)[];
  /** When the start under way began (performance.now()): its steps are refused after a long stall since. */
  decidedAt: number | undefined;
}

export interface FlowRunnerDeps {
  config: Config;
  self: NodeConfig;
  log: AgentLog;
  notices: Notices;
  /** The last failover's phases, for the metrics (failover-times.ts). */
  failoverTimes: FailoverTimes;
  replication: Replication;
  pidFiles: PidFiles;
  /** Where application output goes (tests: 'ignore'). */
  appOutput: 'inherit' | 'ignore' | undefined;
  resources(): Resources;
  lastActive(): LastActive;
  peerStates(): readonly PeerSnapshot[];
  /** A peer never heard since start that the last-active decision treats as failed. */
  declaredFailed(peer: string): boolean;
  isAlive(node: string): boolean;
  /** The node left the cluster (distress): nothing starts any more. */
  isOut(): boolean;
  /** Did this peer send distress (it cannot have removed its addresses if a fatal signal killed it)? */
  isDistressed(node: string): boolean;
  /** Its distress left its apps running (a fatal signal in its agent): a disk-less one is power-fenced. */
  distressLeftAppsRunning(node: string): boolean;
  /** Power fencing through the peers' BMCs (power-fence.ts). */
  powerFence: PowerFence;
  /** Watchdog self-fencing: this node's view, and when a silent peer counts as self-fenced (self-fence.ts). */
  selfFence: Pick<SelfFence, 'inMinority' | 'lostQuorum' | 'fencesItself' | 'selfFencedInMs'>;
  isStopped(): boolean;
  /** Why a start decided at `since` (performance.now()) no longer holds: this agent stalled since (own-stalls.ts). */
  staleSince(since: number): string | undefined;
}

export class FlowRunner {
  private readonly flows = new Map<string, Flow>();
  /** Cluster-aware apps' connections that asked for unload requests (app.watch), per tag. */
  private readonly watchers = new Map<string, Set<ControlConnection>>();
  private readonly prompts = new Map<string, string>();
  /** Since when a handover of each app has had nobody meant to take it (settlePairs). */
  private readonly handoverVoidSince = new Map<string, number>();

  constructor(private readonly d: FlowRunnerDeps) {}

  private get db() {
    return this.d.replication.db;
  }

  /** The flow of an app, created (with what membership knows now) on first use. */
  flowFor(tag: string): Flow {
    let flow = this.flows.get(tag);
    if (!flow) {
      const t = this.d.config.timing;
      const appConfig = this.d.config.apps.find((a) => a.tag === tag);
      const peers: Record<string, number | null> = {};
      const o = this.db.get(tag);
      const lastActive = this.d.lastActive();
      flow = {
        state: initialFlow(tag, this.d.self.name, {
          obj: o ?? null, peers, gated: o !== undefined && !lastActive.isOpen(tag, o.primary, o.backup),
          config: {
            failbackDwellMs: t.failbackDwellMs, promptRepeatMs: t.failbackPromptRepeatMs,
            ...(appConfig && { localRestarts: appConfig.localRestarts, restartWindowMs: appConfig.restartWindowMs }),
          },
        }),
        wakeAt: null, queue: [], draining: false, process: undefined, health: undefined, readyWaiters: [], decidedAt: undefined,
      };
      this.flows.set(tag, flow);
      // An app that reached this node after its start (replicated, registered): new here, so a missing
      // store gets its initial value; the flow stays gated until the pair's decision (src/daemon/last-active.ts).
      if (o && !lastActive.has(tag)) void lastActive.open(tag, o.primary, o.backup, performance.now(), { isNew: true }).catch((e: unknown) => this.d.log.error({ tag, err: String(e) }, 'cannot open the priority store'));
      for (const p of this.d.peerStates()) {
        if (p.state === 'alive') flow.queue.push({ type: 'peerAlive', node: p.peer });
        if (p.state === 'failed' || this.d.declaredFailed(p.peer)) flow.queue.push({ type: 'peerFailed', node: p.peer });
      }
      flow.queue.push({ type: 'tick' });
      this.drain(flow);
    }
    return flow;
  }

  post(tag: string, event: FlowEvent): void {
    this.postTo(this.flowFor(tag), event);
  }

  broadcast(event: FlowEvent): void {
    for (const flow of this.flows.values()) this.postTo(flow, event);
  }

  /**
   * Every flow whose held resources use this disk is told it was fenced off it. Its service addresses go
   * first, at once: the node that fenced this one is taking them over, and the app here can no longer
   * write; clients must not keep reaching it while it stops (which may take its whole stop timeout).
   */
  fenced(disk: string, detail: string): void {
    for (const flow of this.flows.values()) {
      if (flow.state.resources === 'down' || !usesDisk(flow.state.heldResources, disk)) continue;
      void this.dropAddresses(flow);
      this.postTo(flow, { type: 'fenced', detail: `disk ${disk}: ${detail}` });
    }
  }

  /** Removes the flow's service addresses now (the flow's own stop finds them gone). */
  private async dropAddresses(flow: Flow): Promise<void> {
    for (const r of flow.state.heldResources) {
      if (r.kind !== 'ip') continue;
      await this.d.resources().stop(r).then(
        () => this.d.log.warn({ tag: flow.state.tag, resource: resourceName(r) }, 'address removed ahead of the app\'s stop'),
        (e: unknown) => this.d.log.error({ tag: flow.state.tag, resource: resourceName(r), err: String(e) }, 'cannot remove the address'),
      );
    }
  }

  /** Each tick: a flow whose deadline passed gets its 'tick'. */
  wake(now: number): void {
    for (const flow of this.flows.values()) {
      if (flow.wakeAt !== null && flow.wakeAt <= now) this.postTo(flow, { type: 'tick' });
    }
  }

  /** Whether this node hosts anything: an app's resources (or some of them) or its program. */
  hosting(): boolean {
    for (const flow of this.flows.values()) if (flow.state.resources !== 'down' || flow.process?.running) return true;
    return false;
  }

  /** The service addresses this node holds now: those of every app whose resources are up here. */
  heldAddresses(): IpAddressSpec[] {
    const out: IpAddressSpec[] = [];
    for (const { state: s } of this.flows.values()) {
      if (s.resources === 'down') continue;
      for (const r of s.heldResources) {
        const a = this.d.resources().address(r);
        if (a) out.push(a);
      }
    }
    return out;
  }

  /**
   * The addresses of the apps this node hosts and runs are announced again (gratuitous ARP), every few
   * seconds (agent.ts): during a partition the peer may have announced them (a split brain it then
   * resolved by standing down), and clients would keep its link-layer address until their neighbour
   * entries age out (measured: 15 to 45 s), unanswered.
   */
  announceAddresses(): void {
    for (const { state: s } of this.flows.values()) {
      if (s.resources !== 'up' || s.app !== 'up' || s.pending !== null || s.obj?.host !== this.d.self.name) continue;
      for (const r of s.heldResources) {
        const a = this.d.resources().address(r);
        if (a) announce(a);
      }
    }
  }

  /**
   * After the heartbeat thread removed the node's addresses (the agent's lease lapsed: it was hung), the
   * apps still hosted here get theirs back, probed first: a peer that took one over meanwhile keeps it.
   */
  async restoreAddresses(): Promise<void> {
    for (const flow of this.flows.values()) {
      const s = flow.state;
      if (s.resources !== 'up' || s.obj?.host !== this.d.self.name) continue;
      for (const r of s.heldResources) {
        if (r.kind !== 'ip') continue;
        await this.d.resources().start(r).then(
          () => this.d.log.warn({ tag: s.tag, resource: resourceName(r) }, 'address added back after the lease lapse'),
          (e: unknown) => this.d.log.error({ tag: s.tag, resource: resourceName(r), err: String(e) }, 'address not added back after the lease lapse'),
        );
      }
    }
  }

  /**
   * Does an app of this node hold this disk, or is one taking or giving it up now, or is an app using it
   * hosted here (its last-active decision may have claimed the disk before its flow starts it)?
   */
  usesDisk(disk: string): boolean {
    // An app hosted here counts unless it is marked faulted here: then this node will not run it, and the
    // disk it kept (a last-active claim before the start, say) must go, or the backup could never take it
    // from a live node (nemesis lab seed 2044464527: x ran nowhere).
    const self = this.d.self.name;
    if (this.db.list().some((o) => o.host === self && !o.faults.includes(self) && usesDisk(o.resources, disk))) return true;
    for (const { state: s } of this.flows.values()) {
      if (s.resources !== 'down' && usesDisk(s.heldResources, disk)) return true;
      if ((s.pending?.kind === 'startResources' || s.pending?.kind === 'stopResources') && usesDisk(s.pending.resources, disk)) return true;
    }
    return false;
  }

  state(tag: string): FlowState | undefined {
    return this.flows.get(tag)?.state;
  }

  here(tag: string): AppHereStatus | undefined {
    const flow = this.flows.get(tag);
    const f = flow?.state;
    return f && { app: f.app, resources: f.resources, pending: f.pending?.kind ?? null, halted: f.halted, gated: f.gated, pid: flow.process?.pid ?? null };
  }

  prompt(tag: string): string | null {
    return this.prompts.get(tag) ?? null;
  }

  // ---- what the control socket asks of the flows ----

  answerFailback(o: AppObject, answer: 'approve' | 'deny'): object {
    if (o.host !== this.d.self.name || o.backup !== this.d.self.name) {
      throw new ControlError('wrong_node', `${o.tag} is hosted on ${o.host ?? 'no node'}; answer on its backup ${o.backup} while it hosts`);
    }
    this.prompts.delete(o.tag);
    this.post(o.tag, { type: answer });
    return { tag: o.tag, answer };
  }

  /**
   * Cluster-aware apps (app.ready): resolves once this node hosts the app and its flow let it run (claims
   * 31/32). A waiter leaves with its connection, and an app has at most MAX_READY_WAITERS: its own
   * processes need one each, not thousands.
   */
  ready(o: AppObject, connection?: ControlConnection): Promise<object> {
    const flow = this.flowFor(o.tag);
    if (o.host === this.d.self.name && flow.state.app === 'up') return Promise.resolve({ tag: o.tag, host: o.host });
    if (flow.readyWaiters.length >= MAX_READY_WAITERS) {
      return Promise.reject(new ControlError('busy', `${o.tag} already has ${MAX_READY_WAITERS} app.ready requests waiting on ${this.d.self.name}`));
    }
    return new Promise((resolve) => {
      const waiter = () => resolve({ tag: o.tag, host: this.d.self.name });
      flow.readyWaiters.push(waiter);
      connection?.onClose(() => {
        const i = flow.readyWaiters.indexOf(waiter);
        if (i >= 0) flow.readyWaiters.splice(i, 1);
      });
    });
  }

  /**
   * Whether process `pid` belongs to the app's copy running here: the app is started in its own process
   * group (detached), and its children stay in it unless they leave on purpose.
   */
  async isAppProcess(tag: string, pid: number): Promise<boolean> {
    const leader = this.flows.get(tag)?.process?.pid;
    if (leader === undefined) return false;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (in parentheses, which may hold anything): state, ppid, pgrp.
    return stat !== '' && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === leader;
  }

  /**
   * The pair follows HOST where nothing runs here (seed 003), every round, for idle flows. A processor
   * (SM or M) that no longer runs the app while the peer, its slave, is to run it (handsOver) hands it
   * over, as the stop would have if the peer had been there to take it: the app was stopped with nobody
   * to take it (an operator's unload), then loaded on the peer; or it faulted here while the peer was
   * down. Left the processor, it would keep the peer from ever starting it (LastActive.mayProcess;
   * nemesis seeds 723946990, 1617950402). A handover whose peer is no longer meant to run the app
   * (HOST cleared, or naming this node again with no fault here) before it ran it is void: this node is
   * the master again (LastActive.handoverVoid; seed 1617950405).
   */
  async settlePairs(): Promise<void> {
    if (this.d.isOut() || this.d.isStopped()) return; // a node that left writes nothing (seed 002)
    const lastActive = this.d.lastActive();
    for (const s of lastActive.status()) {
      const flow = this.flows.get(s.tag);
      if (!flow || flow.draining || flow.queue.length > 0) continue;
      const f = flow.state;
      if (f.pending !== null || f.app !== 'down' || f.resources !== 'down' || f.failover !== null) continue;
      const o = this.db.get(s.tag);
      if (!o) continue;
      const self = this.d.self.name;
      const isAlive = (n: string) => this.d.isAlive(n);
      if (s.state === 'SL' && (o.host === null || (o.host === self && !handsOver(o, self, false, isAlive)))) {
        const since = this.handoverVoidSince.get(s.tag) ?? performance.now();
        this.handoverVoidSince.set(s.tag, since);
        if (lastActive.handoverVoid(s.tag, since)) this.handoverVoidSince.delete(s.tag);
        continue;
      }
      this.handoverVoidSince.delete(s.tag);
      if ((s.state === 'SM' || s.state === 'M') && s.peerState === 'SL' && handsOver(o, self, false, isAlive)) {
        // To a peer settled as this node's slave: one still deciding (X) would take a handing-over SL
        // for a slave of this node's earlier life, and wait for it to go.
        this.d.log.info({ tag: s.tag, host: o.host }, 'not running the app, which the peer is to run: this node hands it over (seed 003)');
        await lastActive.stoppedProcessing(s.tag, true);
      }
    }
  }

  /** A cluster-aware app's connection asks for its unload requests. */
  watch(tag: string, connection: ControlConnection): void {
    let set = this.watchers.get(tag);
    if (!set) this.watchers.set(tag, (set = new Set()));
    set.add(connection);
    connection.onClose(() => set.delete(connection));
  }

  /**
   * Every app first, then its resources in reverse, so the node that takes over finds the address free.
   * `handingOver` (distress): where the peer is alive and may take the app over (this node was M, its
   * slave in sync), this node hands it over (seed 003, LastActive.stoppedProcessing): it keeps its 2 and
   * writes nothing, and the peer takes over on the distress as from a failed master (4-3/4-4), its 1
   * then naming it the last to have processed. An SM keeps its 1: nobody takes over, and it stays the
   * last to have processed (a lone survivor whose UPS runs out).
   */
  async stopAll(handingOver: boolean): Promise<void> {
    const lastActive = this.d.lastActive();
    const pairs = new Map(lastActive.status().map((p) => [p.tag, p]));
    // Leaving (distress): the peers take the addresses over now, so they go before the apps stop.
    if (handingOver) for (const flow of this.flows.values()) if (flow.state.resources !== 'down') await this.dropAddresses(flow);
    for (const flow of this.flows.values()) {
      const tag = flow.state.tag;
      const wasProcessing = flow.state.app !== 'down' || flow.state.resources !== 'down';
      flow.health?.stop();
      flow.health = undefined;
      if (flow.process?.running && handingOver) this.askToUnload(tag, flow.state, this.stopTimeout(tag));
      await flow.process?.stop(this.stopTimeout(tag));
      flow.process = undefined;
      await this.d.pidFiles.forget(tag).catch(() => {});
      if (flow.state.resources !== 'down') {
        for (const r of [...flow.state.heldResources].reverse()) {
          await this.d.resources().stop(r).catch((e: unknown) => this.d.log.error({ tag, resource: resourceName(r), err: String(e) }, 'stop failed'));
        }
      }
      const pair = pairs.get(tag);
      if (handingOver && wasProcessing && pair?.state === 'M' && this.d.isAlive(pair.peer)) {
        await lastActive.stoppedProcessing(tag, true, { leaving: true }).catch((e: unknown) => this.d.log.error({ tag, err: String(e) }, 'priority write failed'));
      }
      // The flows no longer run once the node is out: what they show is what was just done.
      if (handingOver) flow.state = { ...flow.state, app: 'down', resources: 'down', heldResources: [] };
    }
  }

  // ---- running the reducer ----

  private postTo(flow: Flow, event: FlowEvent): void {
    flow.queue.push(event);
    this.drain(flow);
  }

  /** Feeds queued events to the reducer one at a time; an event posted while an action runs waits its turn. */
  private drain(flow: Flow): void {
    if (flow.draining || this.d.isStopped() || this.d.isOut()) return;
    flow.draining = true;
    try {
      for (let event = flow.queue.shift(); event; event = flow.queue.shift()) {
        const r = step(flow.state, event, performance.now());
        flow.state = r.state;
        flow.wakeAt = r.wakeAt;
        for (const action of r.actions) this.perform(flow, action);
        // A failover that ended without a notice (given up, fenced here) leaves no record behind.
        if (flow.state.failover === null) this.d.failoverTimes.ended(flow.state.tag);
      }
    } finally {
      flow.draining = false;
    }
  }

  private perform(flow: Flow, a: FlowAction): void {
    const tag = flow.state.tag;
    switch (a.kind) {
      case 'write': {
        try {
          const obj = this.db.update(tag, a.patch, this.d.self.name, Date.now(), { ifHost: a.ifHost, ...(a.token ? { token: a.token } : {}) });
          void this.d.replication.changed([obj.tag]); // a flow's write: the flows read the replica, not the file
        } catch (e) {
          if (!(e instanceof DbWriteError)) throw e;
          this.d.log.warn({ tag, patch: a.patch, err: e.message }, 'write refused');
          flow.queue.push({ type: 'dbChanged', object: this.db.get(tag) ?? null });
        }
        return;
      }
      case 'notify':
        this.d.notices.add(tag, a.notice, a.message);
        this.timeFailover(flow, a.notice);
        return;
      case 'prompt':
        this.prompts.set(tag, a.message);
        this.d.notices.add(tag, 'failback-prompt', `${a.message} (vigil failback approve|deny ${tag})`);
        return;
      case 'resumeApp':
        for (const w of flow.readyWaiters.splice(0)) w();
        if (flow.process?.running) this.monitor(flow);
        return;
      default:
        void this.runAsync(flow, a);
    }
  }

  /** A failover's start and end, told by its notices (flows.ts), for FailoverTimes. */
  private timeFailover(flow: Flow, notice: string): void {
    const tag = flow.state.tag;
    const from = flow.state.failover?.from;
    if ((notice === 'primary-failed' || notice === 'host-faulted') && from !== undefined) this.d.failoverTimes.started(tag, from, notice === 'primary-failed');
    else if (notice === 'failover-complete') this.d.failoverTimes.completed(tag);
    else if (notice === 'failover-failed' || notice === 'failover-aborted') this.d.failoverTimes.ended(tag);
  }

  private async runAsync(flow: Flow, a: AsyncAction): Promise<void> {
    const tag = flow.state.tag;
    const resources = this.d.resources();
    const lastActive = this.d.lastActive();
    try {
      switch (a.kind) {
        case 'checkResources': {
          // A takeover from a host nothing fences (no disk here, no distress) first asks the service network
          // whether that host still answers for the app's addresses: cut off from the cluster but serving,
          // it keeps the app, and this node writes no 1 and starts nothing.
          // A failed host with a BMC is powered off instead (startResources): its answer would not make it safe.
          // So is one that counts as self-fenced (its watchdog reset it): it waits for that instead.
          const from = flow.state.failover?.from;
          const probeAddresses = from !== undefined && !this.d.isDistressed(from) && !a.resources.some((r) => r.kind === 'disk') && !this.powerFences(from)
            && !this.d.selfFence.fencesItself(from);
          const missing = await resources.missing(a.resources, a.command, { probeAddresses });
          const busy = missing.length > 0 && missing.every((m) => ANSWERED.test(m));
          return this.postTo(flow, { type: 'resourceCheck', ok: missing.length === 0, missing, ...(busy ? { busy } : {}) });
        }
        case 'startResources': {
          flow.decidedAt = performance.now();
          // Not while the pair is deciding or the peer processes (seed 003), checked before the disks are
          // taken from it. Then the disks, then this node's durable 1 or 2 (it processes from here on), then the rest.
          await lastActive.mayProcess(tag);
          const isDisk = (r: ResourceSpec) => r.kind === 'disk';
          const disks = a.resources.filter(isDisk);
          const from = flow.state.failover?.from;
          // A node in a minority it knows to be one takes nothing over: its watchdog is about to reset it.
          if (from !== undefined && this.d.selfFence.inMinority()) throw new StaleStartError(`takeover of ${tag} from ${from}: not done, this node is in a minority of the cluster`);
          // A takeover of an app no disk arbitrates, from a failed host that can be powered off: it is, and
          // its power confirmed off, before anything here starts (a fence that fails fails this start: no
          // takeover). Not a move from a live host whose app faulted: that host stopped it itself. So is a
          // host whose distress left its apps running (a fatal signal killed only its agent): no race delay
          // then, and a fence that fails leaves the app where it runs.
          const afterDistress = from !== undefined && this.d.isDistressed(from);
          const powerFenced = from !== undefined && disks.length === 0 && this.powerFences(from) && (!afterDistress || this.d.distressLeftAppsRunning(from));
          // A node cut off in a minority of three or more would power the healthy majority off: it waits.
          if (powerFenced && !afterDistress && this.d.selfFence.lostQuorum()) throw new StaleStartError(`takeover of ${tag} from ${from}: not done, this node is in a minority of the cluster and fences nobody (an operator who knows ${from} is down may fence it from here: vigil fence ${from})`);
          if (powerFenced) await this.timed(tag, 'peer powered off', from, async () => { await this.d.powerFence.fence(from, `takeover of ${tag}`, { afterDistress }); });
          // Else, one whose watchdog resets it once cut off (it published so, and this side is a majority
          // without it) counts as self-fenced once silent for that long and a margin (docs/ipmi.md).
          const selfFenced = from !== undefined && disks.length === 0 && !powerFenced && !this.d.isDistressed(from) && this.d.selfFence.fencesItself(from);
          if (selfFenced) await this.timed(tag, 'peer self-fenced', from, () => this.awaitSelfFenced(from));
          let token = 0;
          for (const r of disks) await this.timed(tag, 'resource started', resourceName(r), async () => { token = Math.max(token, await this.startUnlessOut(r)); });
          // A failover past here completes (flows.ts rule 2); the token raises the object's epoch.
          if (disks.length > 0) this.postTo(flow, { type: 'disksTaken', token });
          await lastActive.beforeProcessing(tag);
          // A takeover from a host that was fenced here (its disks taken, or its power off) or that sent
          // distress takes its addresses even while that host still answers for them; otherwise it waits for
          // them to be free.
          const takeOver = from !== undefined && (disks.length > 0 || powerFenced || selfFenced || this.d.isDistressed(from));
          const log = (message: string) => this.d.log.warn({ tag }, message);
          const stale = this.staleCheck(flow.decidedAt);
          // A planned switchover's target: the source removed the addresses before it wrote HOST = this node.
          const released = a.handedOver === true;
          for (const r of a.resources.filter((x) => !isDisk(x))) await this.timed(tag, 'resource started', resourceName(r), async () => { await this.startUnlessOut(r, { takeOver, released, log, stale }); });
          break;
        }
        case 'stopResources': {
          flow.decidedAt = undefined;
          // In the order given: the flows already reversed the start order (the address first, the disk last).
          for (const r of a.resources) await this.timed(tag, 'resource stopped', resourceName(r), () => resources.stop(r));
          // Handing the app over to a live peer (HOST moved to it, a failback about to write HOST = primary,
          // or a fault here that the peer takes over from): this node is its slave from now on (seed 003).
          // Not between the attempts of this node's own takeover.
          await lastActive.stoppedProcessing(tag, handsOver(this.db.get(tag), this.d.self.name, flow.state.faulted !== null, (n) => this.d.isAlive(n), flow.state.failover !== null));
          break;
        }
        case 'startApp':
          await this.startApp(flow, a);
          break;
        case 'stopApp':
          await this.stopApp(flow);
          break;
        case 'syncAll':
          await this.d.replication.syncAll();
          break;
      }
      this.postTo(flow, { type: 'done', op: a.kind, at: Date.now() });
      // A cluster-aware app started unpaused may have called ready() before its start was recorded.
      if (a.kind === 'startApp' && !a.paused && flow.state.app === 'up') for (const w of flow.readyWaiters.splice(0)) w();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.d.log.error({ tag, op: a.kind, err: error }, 'action failed');
      this.postTo(flow, {
        type: 'failed', op: a.kind, error,
        ...(e instanceof StaleStartError || e instanceof FenceMootError ? { stale: true } : {}),
        ...(e instanceof PeerProcessesError ? { yielded: true } : {}),
        ...(e instanceof FenceFailedError ? { fence: true } : {}),
      });
    }
  }

  /**
   * Until `from` counts as self-fenced; FenceMootError when it is heard again first, or when it no longer
   * can (this node lost its majority): the takeover is decided again.
   */
  private async awaitSelfFenced(from: string): Promise<void> {
    for (;;) {
      const left = this.d.selfFence.selfFencedInMs(from);
      if (left === undefined) throw new FenceMootError(`${from} no longer counts as self-fenced (heard again, or this side lost its majority)`);
      if (left === 0) return;
      await new Promise((r) => setTimeout(r, Math.min(left, 200)));
    }
  }

  /** A takeover from `from` powers it off first: it failed (is not heard from) and has a BMC. */
  private powerFences(from: string): boolean {
    return !this.d.isAlive(from) && this.d.powerFence.canFence(from);
  }

  private async startApp(flow: Flow, a: Extract<AsyncAction, { kind: 'startApp' }>): Promise<void> {
    const tag = flow.state.tag;
    // Paused (a cluster-aware app on its primary while the backup hosts it, seed 001 F0): the program is
    // loaded all the same and waits in ready() until this node hosts it; resumeApp releases it.
    const env = { ...a.command.env, VIGIL_NODE: this.d.self.name, VIGIL_SOCKET: this.d.config.control.socket, VIGIL_EPOCH: String(runEpoch(flow.state)) };
    const { user, group, groups } = a.command;
    const p = new AppProcess(tag, { argv: a.command.argv, cwd: a.command.cwd, env, user, group, groups }, this.d.appOutput);
    // Right after its resources, the start's decision is theirs; an app started alone (a restart) decides now.
    const since = flow.decidedAt ?? performance.now();
    flow.decidedAt = undefined;
    const startedAt = performance.now();
    p.onUnexpectedExit = (code, signal) => {
      flow.health?.stop();
      flow.health = undefined;
      void this.d.pidFiles.forget(tag).catch(() => {});
      this.postTo(flow, { type: 'exited', detail: signal ? `signal ${signal}` : `exit ${code}` });
    };
    await p.start(this.staleCheck(since));
    if (this.d.isOut()) {
      // Left the cluster while this app was being started: it must not stay up behind the stop.
      await p.stop(this.stopTimeout(tag));
      return;
    }
    flow.process = p;
    await this.d.pidFiles.record(tag, p.pid!).catch((e: unknown) => this.d.log.error({ tag, err: String(e) }, 'cannot record the pid file'));
    const ms = Math.round((performance.now() - startedAt) * 10) / 10;
    this.d.log.info({ tag, pid: p.pid, paused: a.paused, ms }, a.paused ? 'application started in pause mode' : 'application started');
    if (!a.paused) this.d.failoverTimes.step(tag, 'app_start', ms);
    if (!a.paused) this.monitor(flow);
  }

  /** The app's health probe, from when it runs for real (not while it waits paused). */
  private monitor(flow: Flow): void {
    const tag = flow.state.tag;
    const monitor = this.d.config.apps.find((x) => x.tag === tag)?.monitor;
    if (!monitor || flow.health) return;
    // A command probe runs as the app does.
    const { user, group, groups } = this.db.get(tag)?.command ?? {};
    const health = new HealthMonitor(monitor, (detail) => {
      health.stop();
      this.d.log.error({ tag, detail }, 'application failed its health probe');
      this.postTo(flow, { type: 'fault', detail });
    }, (m) => probeOnce(m, { user, group, groups }));
    flow.health = health;
    health.start();
  }

  private async stopApp(flow: Flow): Promise<void> {
    const tag = flow.state.tag;
    flow.health?.stop();
    flow.health = undefined;
    const p = flow.process;
    const timeoutMs = this.db.get(tag) ? this.stopTimeout(tag) : 5000;
    // A cluster-aware app that watches for it is asked first, and given the stop timeout to finish
    // its work and exit by itself; SIGTERM (then SIGKILL) only if it does not.
    if (p?.running && this.askToUnload(tag, flow.state, timeoutMs) > 0) {
      if (await p.awaitRequestedExit(timeoutMs)) this.d.log.info({ tag }, 'application exited on its unload request');
      else this.d.log.warn({ tag, timeoutMs }, 'application did not exit on its unload request: signalling it');
    }
    const r = p ? await p.stop(timeoutMs) : { killed: false };
    flow.process = undefined;
    await this.d.pidFiles.forget(tag);
    if (p) this.d.log.info({ tag, killed: r.killed }, 'application stopped');
    if (r.killed) this.d.notices.add(tag, 'stop-killed', `${tag} did not stop in time and was killed`);
  }

  /** Sends the unload request to the app's watchers; how many got it. */
  private askToUnload(tag: string, state: FlowState, graceMs: number): number {
    const o = state.obj;
    const reason = state.halted ?? state.standDown
      ?? (o?.phase === 'failing-back' ? `failback to ${o.primary}` : o && o.host !== this.d.self.name ? `HOST is ${o.host ?? 'none'}` : 'stop');
    let n = 0;
    for (const c of this.watchers.get(tag) ?? []) if (c.notify('unload', { tag, reason, graceMs })) n++;
    return n;
  }

  /**
   * The check before each irreversible start step: a start decided before a stall of this agent long enough
   * for the peers to fail it over is refused, and decided again on what the agent learns after the stall.
   */
  private staleCheck(since: number): StaleCheck {
    return () => this.d.staleSince(since);
  }

  /** A start still under way when the node leaves goes no further: leave() has stopped the rest. */
  private startUnlessOut(r: ResourceSpec, o: { takeOver?: boolean; released?: boolean; log?: (message: string) => void; stale?: StaleCheck } = {}): Promise<number> {
    if (this.d.isOut()) return Promise.reject(new Error('this node left the cluster (distress)'));
    return this.d.resources().start(r, o);
  }

  /** Runs one resource step and logs how long it took: the failover timeline is read from these lines. */
  private async timed(tag: string, message: string, resource: string, fn: () => Promise<void>): Promise<void> {
    const start = performance.now();
    await fn();
    const ms = Math.round((performance.now() - start) * 10) / 10;
    this.d.log.info({ tag, resource, ms }, message);
    const phase = stepPhase(message, resource);
    if (phase) this.d.failoverTimes.step(tag, phase, ms);
  }

  private stopTimeout(tag: string): number {
    return stopTimeout(this.d.config, tag);
  }
}

export function stopTimeout(config: Config, tag: string): number {
  return config.apps.find((a) => a.tag === tag)?.stopTimeoutMs ?? 10_000;
}

/** A missing resource that is an address another host still answers for (Resources.missing). */
const ANSWERED = /: still answered by another host /;

/** Does a resource list use this disk (its ownership, or a mount on it)? */
function usesDisk(resources: readonly ResourceSpec[], disk: string): boolean {
  return resources.some((r) => (r.kind === 'disk' || r.kind === 'mount') && r.disk === disk);
}

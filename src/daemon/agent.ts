// vigild's agent: wires the pure modules (membership, database, flows) to the real I/O (the native heartbeat
// thread, agent messages, the control socket, resources, the application processes). Everything that
// decides lives in those modules; this file only carries facts in and performs the actions that come out.
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { z } from 'zod';

import type { Config, NodeConfig } from '../config/schema.js';
import { ControlError } from '../control/protocol.js';
import { ControlServer, type ControlConnection } from '../control/server.js';
import { ClusterDb, DbWriteError, parseSnapshot, parseVersionMap, syncPlan, type VersionMap } from '../db/database.js';
import {
  initialFlow, registrationCheck, step, type AsyncAction, type FlowAction, type FlowEvent, type FlowState,
} from '../db/flows.js';
import type { AppObject, ResourceSpec } from '../db/object.js';
import { loadDatabase, saveDatabase } from '../db/store.js';
import { Membership, type MembershipEvent } from '../membership/membership.js';
import { nativeAddon, type NativeDistressSender, type NativeHeartbeatEngine } from '../native.js';
import { createPowerSources, powerPolicyConfig } from '../power/from-config.js';
import type { PowerDecision } from '../power/policy.js';
import { AppProcess } from '../resources/app-process.js';
import { clusterTag } from '../wire/datagram.js';
import { DistressReceiver, reasonCode, reasonOfCode, defaultSendMode, type Distress, type DistressReason, type SendMode } from '../wire/distress.js';
import { distressArming, distressOptions, distressWarnings } from '../wire/distress-arming.js';
import { nextIncarnation } from '../wire/incarnation.js';
import { loadClusterKey } from '../wire/key.js';
import { heartbeatOptions, networkChannel, observeHeartbeats } from './heartbeat.js';
import { Messenger, type Received } from './messenger.js';
import { Disks } from './disks.js';
import { HealthMonitor } from './health.js';
import type { DiskEvidence } from '../lastactive/decision.js';
import { LastActive, parsePairReport } from './last-active.js';
import { PidFiles } from './leftovers.js';
import { PowerWatch } from './power-watch.js';
import { clearStayOut, readStayOut, stayOutFile, writeStayOut, type StayOut } from './stay-out.js';
import type { StatusLike } from './status.js';
import { resourceName, Resources, type DiskOwnership } from './resources.js';

export interface AgentLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface AgentOptions {
  /** SCHED_FIFO priority of the heartbeat thread (0: normal scheduling). */
  heartbeatPriority?: number;
  /** The SCSI side of disk resources; without it, apps with disk resources fail their resource check. */
  disks?: DiskOwnership;
  /** Where application output goes (tests: 'ignore'). */
  appOutput?: 'inherit' | 'ignore';
  /**
   * `vigil rejoin` on a node that stays out: called once the stay-out record is gone; vigild stops this
   * agent and starts a new one (a new incarnation). Without it the operator is told to restart vigild.
   */
  onRejoin?: () => void;
}

interface Flow {
  state: FlowState;
  wakeAt: number | null;
  queue: FlowEvent[];
  draining: boolean;
  process: AppProcess | undefined;
  health: HealthMonitor | undefined;
  readyWaiters: (() => void)[];
}

export interface Notice { at: string; tag: string; notice: string; message: string }

const NO_DISKS: DiskOwnership = {
  check: async (disk) => `disk ${disk}: no SCSI support in this agent`,
  acquire: async (disk) => { throw new Error(`disk ${disk}: no SCSI support in this agent`); },
  release: async () => {},
  blockDevice: async (disk) => { throw new Error(`disk ${disk}: no SCSI support in this agent`); },
};

export class Agent {
  private db = new ClusterDb();
  private membership!: Membership;
  private engine: NativeHeartbeatEngine | undefined;
  private messenger!: Messenger;
  private control!: ControlServer;
  private resources: Resources;
  private disks: Disks | undefined;
  private readonly flows = new Map<string, Flow>();
  private readonly peers: NodeConfig[];
  private timer: NodeJS.Timeout | undefined;
  private incarnation = 0n;
  private readonly tickMs: number;
  private readonly startedAt = performance.now();
  private readonly startupGraceMs: number;
  private readonly unknownDeclared = new Set<string>();
  /** Peers not heard since start-up and not yet declared failed: the only ones the start-up grace concerns. */
  private readonly neverHeard: Set<string>;
  private saving: Promise<void> = Promise.resolve();
  private syncWaiters: { peers: Set<string>; done: () => void }[] = [];
  private peerDigests = new Map<string, number>();
  private lastDigestRequest = new Map<string, number>();
  private readonly peerVersions = new Map<string, VersionMap>();
  readonly notices: Notice[] = [];
  private readonly noticeCounts: Record<string, number> = {};
  private readonly prompts = new Map<string, string>();
  private readonly pidFiles: PidFiles;
  private lastActive!: LastActive;
  /** Membership's failure/recovery events, in order: a failure waits for its priority write. */
  private membershipChain: Promise<void> = Promise.resolve();
  private lastActiveBusy = false;
  private lastActiveAt = -Infinity;
  /** Tags whose operator asked for a forced start (vigil force-start), until the decision takes it. */
  private readonly forceStart = new Set<string>();
  /** Cluster-aware apps' connections that asked for unload requests (app.watch), per tag. */
  private readonly watchers = new Map<string, Set<ControlConnection>>();
  private stopped = false;
  /** Set once this node sent distress (or started with the record of one): it stays out until `vigil rejoin`. */
  private out: StayOut | undefined;
  private leaving: Promise<void> | undefined;
  private distressSender: NativeDistressSender | undefined;
  private distressReceiver: DistressReceiver | undefined;
  /** Peers that sent distress, with the incarnation that sent it: its heartbeats and messages are ignored. */
  private readonly distressed = new Map<string, bigint>();
  private readonly distressReceived: { at: string; from: string; reason: string; incarnation: string; acted: boolean }[] = [];
  private power: PowerWatch | undefined;

  constructor(readonly config: Config, readonly self: NodeConfig, private readonly log: AgentLog, private readonly options: AgentOptions = {}) {
    this.peers = config.nodes.filter((n) => n !== self);
    this.neverHeard = new Set(this.peers.map((p) => p.name));
    this.tickMs = Math.max(10, Math.min(50, Math.floor(config.timing.heartbeatIntervalMs / 2)));
    this.startupGraceMs = Math.max(2 * config.timing.failAfterMs, 2000);
    this.resources = new Resources(self.name, options.disks ?? NO_DISKS);
    this.pidFiles = new PidFiles(join(config.stateDir, 'apps'));
  }

  /**
   * Before anything starts: the apps an earlier agent of this node left running (it died, the machine
   * did not) are stopped, and their addresses removed; the backup may have taken them over meanwhile, and
   * two copies must never answer. Every app's address goes, HOST here or not: the local replica may be
   * stale (it says HOST is this node when the backup took over while this agent was dead), and an app
   * hosted here is started again, address included, only after the first sync.
   */
  private async clearLeftovers(): Promise<void> {
    await this.pidFiles.stopLeftovers((tag) => stopTimeout(this.config, tag), this.log);
    for (const o of this.db.list()) {
      for (const r of o.resources) {
        const removed = await this.resources.removeStaleAddress(r).catch((e: unknown) => {
          this.log.error({ tag: o.tag, resource: resourceName(r), err: String(e) }, 'cannot remove a leftover address');
          return false;
        });
        if (removed) this.log.warn({ tag: o.tag, resource: resourceName(r) }, 'address left by an earlier agent removed');
      }
    }
  }

  private get dbFile(): string {
    return join(this.config.stateDir, 'db.json');
  }

  async start(): Promise<void> {
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o750 });
    const key = await loadClusterKey(this.config.keyFile);
    const inc = await nextIncarnation(this.config.stateDir, Date.now());
    if (inc.warning) this.log.warn({ warning: inc.warning }, 'incarnation');
    this.incarnation = inc.incarnation;
    const firstStart = await access(this.dbFile).then(() => false, () => true);
    this.db = await loadDatabase(this.dbFile);
    await this.clearLeftovers();
    this.lastActive = new LastActive({
      dir: join(this.config.stateDir, 'priority'), cluster: this.config.cluster, self: this.self,
      nodeId: (name) => this.config.nodes.find((n) => n.name === name)?.id ?? 0,
      peerProbeMs: this.config.timing.peerProbeMs, firstStart, log: this.log,
      onChange: (peer) => this.sendPairReports(peer),
    });
    for (const o of this.db.list()) await this.lastActive.open(o.tag, o.primary, o.backup, performance.now());
    const now = performance.now();
    const channels = [
      ...this.config.networks.map((n) => networkChannel(n.name)),
      ...this.config.disks.filter((d) => d.heartbeat).map((d) => diskChannel(d.name)),
    ];
    this.membership = new Membership({
      peers: this.peers.map((p) => ({ name: p.name, channels })),
      failAfterMs: this.config.timing.failAfterMs,
      recoverAfterMs: this.config.timing.recoverAfterMs,
      tickMs: this.tickMs,
      stallSlackMs: this.tickMs,
    }, now);
    this.messenger = new Messenger(this.config, this.self, key, this.incarnation, (r) => this.onMessage(r), undefined, (buf) => this.onDistressDatagram(buf));
    this.out = await readStayOut(this.config.stateDir);
    if (this.out) {
      await this.startPower();
      // Seed 002 step 508: no heartbeat, no messages, no disks, no apps; only the control socket, to say why.
      this.control = new ControlServer({ path: this.config.control.socket, gid: await groupId(this.config.control.group), log: this.log });
      this.registerControl();
      await this.control.start();
      this.log.warn({ ...this.out }, 'this node sent distress and stays out of the cluster: run `vigil rejoin` to bring it back');
      return;
    }
    await this.messenger.start();
    this.distressReceiver = new DistressReceiver({
      key, clusterTag: clusterTag(this.config.cluster), selfId: this.self.id, peers: this.peers.map((p) => p.id),
      currentIncarnation: (id) => {
        const inc = this.engine?.snapshot().peers.find((p) => p.id === id)?.incarnation;
        return inc ? inc : undefined;
      },
    });
    this.engine = new (nativeAddon().HeartbeatEngine)(heartbeatOptions(this.config, this.self, key, this.incarnation, this.options.heartbeatPriority ?? 0));
    this.armDistress(key);
    const sched = this.engine.snapshot();
    if ((this.options.heartbeatPriority ?? 0) > 0 && !sched.realtime) {
      this.log.warn({ errno: sched.schedError }, 'heartbeat thread: SCHED_FIFO refused, running at normal priority');
    }
    if (this.config.disks.length > 0 && !this.options.disks) {
      this.disks = new Disks(this.config, this.self, key, this.incarnation, {
        isAlive: (node) => this.isAlive(node),
        isDistressed: (node) => this.distressed.has(node),
        onPulse: (node, disk, at, incarnation) => {
          if (!this.ignoreIncarnation(node, incarnation)) this.membership.observe(node, diskChannel(disk), at);
        },
        onFenced: (disk, detail) => {
          for (const flow of this.flows.values()) {
            if (usesDisk(flow.state.heldResources, disk)) this.post(flow, { type: 'fenced', detail: `disk ${disk}: ${detail}` });
          }
        },
      }, this.log);
      await this.disks.start();
      this.resources = new Resources(this.self.name, this.disks);
    }
    this.registerConfiguredApps();
    for (const obj of this.db.list()) this.flowFor(obj.tag);
    this.control = new ControlServer({ path: this.config.control.socket, gid: await groupId(this.config.control.group), log: this.log });
    this.registerControl();
    await this.control.start();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    // Last: a UPS already low at start leaves a fully started agent, never one half-way up.
    await this.startPower();
    this.log.info({ node: this.self.name, incarnation: String(this.incarnation), apps: this.db.list().length }, 'vigild started');
  }

  /** Stops the agent; the applications it runs are stopped too unless `leaveApps`. */
  async stop(leaveApps = false): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.leaving?.catch(() => {});
    clearInterval(this.timer);
    this.engine?.stop();
    this.messenger?.close();
    this.distressSender?.stop();
    await this.power?.stop();
    await this.control?.close();
    if (!leaveApps) await this.stopAppsAndResources(false);
    this.disks?.stop();
    await this.saving;
  }

  /**
   * Every app first, then its resources in reverse, so the node that takes over finds the address free.
   * `handingOver` (distress): where the peer is alive and may take the app over (this node was M, its
   * slave in sync), this node writes itself the slave (seed 003); otherwise it keeps its 1, since nobody
   * takes over and it stays the last to have processed (a lone survivor whose UPS runs out).
   */
  private async stopAppsAndResources(handingOver: boolean): Promise<void> {
    const pairs = new Map(this.lastActive.status().map((p) => [p.tag, p]));
    for (const flow of this.flows.values()) {
      const tag = flow.state.tag;
      const wasProcessing = flow.state.app !== 'down' || flow.state.resources !== 'down';
      flow.health?.stop();
      if (flow.process?.running && handingOver) this.askToUnload(tag, flow.state, stopTimeout(this.config, tag));
      await flow.process?.stop(stopTimeout(this.config, tag));
      flow.process = undefined;
      await this.pidFiles.forget(tag).catch(() => {});
      if (flow.state.resources !== 'down') {
        for (const r of [...flow.state.heldResources].reverse()) {
          await this.resources.stop(r).catch((e: unknown) => this.log.error({ tag, resource: resourceName(r), err: String(e) }, 'stop failed'));
        }
      }
      const pair = pairs.get(tag);
      if (handingOver && wasProcessing && pair?.state === 'M' && this.isAlive(pair.peer)) {
        await this.lastActive.stoppedProcessing(tag, true).catch((e: unknown) => this.log.error({ tag, err: String(e) }, 'priority write failed'));
      }
      // The flows no longer run once the node is out: what they show is what was just done.
      if (handingOver) flow.state = { ...flow.state, app: 'down', resources: 'down', heldResources: [] };
    }
  }

  // ---- distress (seed 002): the armed sender, the receivers, leaving and staying out ----

  /** The sender is armed before any fault can happen: everything a send needs is built now. */
  private armDistress(key: Buffer): void {
    const d = this.config.distress;
    this.distressSender = new (nativeAddon().DistressSender)(distressOptions(this.config, this.self, key, this.incarnation, distressArming(d)));
    const snap = this.distressSender.snapshot();
    for (const w of distressWarnings(snap)) this.log.warn({}, w);
    if (d.fatalSignals) {
      // The handler writes the stay-out record itself: no JavaScript runs after a fatal signal.
      const record: StayOut = {
        since: '', reason: 'fatal-signal', source: 'fatal-signal', incarnation: String(this.incarnation),
        text: 'the agent died of a fatal signal (SIGSEGV, SIGBUS, SIGABRT, SIGILL or SIGFPE) after sending distress',
      };
      this.distressSender.installFatalHandlers(reasonCode('fatal-signal'), { path: stayOutFile(this.config.stateDir), content: `${JSON.stringify(record)}\n` });
    }
    this.log.info({ priority: snap.priority, realtime: snap.realtime, destinations: snap.destinations, fatalSignals: d.fatalSignals }, 'distress sender armed');
  }

  private async startPower(): Promise<void> {
    const power = this.config.power;
    if (!power) return;
    const sources = await createPowerSources(power);
    this.power = new PowerWatch(sources, powerPolicyConfig(power), (d) => this.onPowerDecision(d));
    this.power.start();
    this.log.info({ sources: sources.map((s) => s.name) }, 'power sources started');
  }

  private onPowerDecision(d: PowerDecision): void {
    switch (d.action) {
      case 'warn':
        this.log.warn({ source: d.source }, d.text);
        this.notice('power', 'power-warning', d.text);
        return;
      case 'notice':
      case 'cancel':
        this.notice('power', d.action === 'cancel' ? 'power-cancel' : 'power-notice', d.text);
        return;
      case 'distress':
        if (this.out) {
          this.notice('power', 'power-notice', `${d.text}: this node is already out of the cluster`);
          return;
        }
        void this.leave(d.reason, d.mode, d.source, d.text);
    }
  }

  /**
   * Sends distress and leaves: the message first (the node may have milliseconds), then the record that
   * keeps it out, then every role it holds is given up (apps, addresses, reservations), heartbeats stop.
   * The peers take its work over on the message, without waiting for silence.
   */
  leave(reason: DistressReason, mode: SendMode, source: string, text: string): Promise<void> {
    if (this.out || this.leaving) return this.leaving ?? Promise.resolve();
    const code = reasonCode(reason);
    const sender = this.distressSender;
    let sent: number | boolean = false;
    try {
      sent = sender ? (mode === 'sync' ? sender.trigger(code, 'sync') : sender.trigger(code, 'async')) : false;
    } catch (e) {
      this.log.error({ err: String(e) }, 'distress trigger failed');
    }
    this.out = { since: new Date().toISOString(), reason, source, incarnation: String(this.incarnation), text };
    this.log.error({ reason, mode, source, sent }, `distress sent (${text}): leaving the cluster; this node stays out until \`vigil rejoin\``);
    this.notice('distress', 'distress-sent', `distress sent (${reason}, ${mode}): ${text}; staying out until vigil rejoin`);
    this.leaving = (async () => {
      await writeStayOut(this.config.stateDir, this.out!).catch((e: unknown) => this.log.error({ err: String(e) }, 'cannot write the stay-out record'));
      clearInterval(this.timer);
      this.timer = undefined;
      this.engine?.stop();
      this.engine = undefined;
      await this.stopAppsAndResources(true);
      this.messenger.close();
      this.disks?.stop();
      this.disks = undefined;
      this.log.warn({}, 'left the cluster: no heartbeat, no apps; `vigil rejoin` brings this node back');
    })();
    return this.leaving;
  }

  /** A datagram on stream 2: authenticated, deduplicated, acted on once per sender incarnation. */
  private onDistressDatagram(buf: Buffer): void {
    const r = this.distressReceiver?.receive(buf);
    if (!r?.ok) return;
    const node = this.config.nodes.find((n) => n.id === r.distress.sender);
    if (!node) return;
    this.recordDistress(node.name, r.distress, r.first);
    if (!r.actionable) {
      this.notice('distress', 'distress-test', `${node.name} sent a distress test (operator-test): logged, nothing done`);
      return;
    }
    if (!r.first) return;
    this.onPeerDistress(node, r.distress);
  }

  private recordDistress(from: string, d: Distress, acted: boolean): void {
    this.distressReceived.unshift({ at: new Date().toISOString(), from, reason: d.reason, incarnation: String(d.incarnation), acted });
    if (this.distressReceived.length > 20) this.distressReceived.pop();
  }

  /**
   * Seed 002 on a receiver: the sender is failed now (no heartbeat timeout), its heartbeats and messages
   * from that incarnation are ignored from here on, its key is fenced off the shared disks, and the flows
   * take its apps over through the ordinary failure path (priority write first, seed 003).
   */
  private onPeerDistress(node: NodeConfig, d: Distress): void {
    const now = performance.now();
    this.distressed.set(node.name, d.incarnation);
    this.notice('distress', 'peer-distress', `${node.name} sent distress (${d.reason}): failed now, its work is taken over without waiting for the heartbeat timeout`);
    const e = this.membership.declareFailed(node.name, `distress: ${d.reason}`);
    if (e) this.onMembership(e, now);
    if (this.disks) {
      const survivors = this.peers.filter((p) => p !== node && this.isAlive(p.name));
      void this.disks.fenceNode(node, survivors.length === 0).then((results) => {
        for (const f of results) this.log.warn({ peer: node.name, disk: f.disk, done: f.done }, 'distress: fencing the sender\'s key');
      });
    }
  }

  /** Drops what a peer says from the incarnation that sent distress; a newer one (it rejoined) is heard again. */
  private ignoreIncarnation(node: string, incarnation: bigint): boolean {
    const gone = this.distressed.get(node);
    if (gone === undefined) return false;
    if (incarnation > gone) {
      this.distressed.delete(node);
      this.log.info({ peer: node, incarnation: String(incarnation) }, 'a peer that sent distress is back with a new incarnation');
      return false;
    }
    return true;
  }

  private distressStatus(): object {
    const snap = this.distressSender?.snapshot();
    return {
      node: this.self.name,
      out: this.out ?? null,
      sender: snap ? {
        armed: snap.armed, priority: snap.priority, realtime: snap.realtime, memoryLocked: snap.memoryLocked,
        fatalHandlers: snap.fatalHandlers, destinations: snap.destinations, networks: snap.networks, repeats: snap.repeats,
        sendErrors: snap.sendErrors, lastError: snap.lastError,
        reasons: snap.reasons.filter((r) => r.triggers > 0).map((r) => ({ ...r, reason: reasonOfCode(r.code) })),
        perNetwork: snap.perNetwork,
      } : null,
      received: this.distressReceived,
      dropped: this.distressReceiver?.dropped ?? {},
      distressedPeers: [...this.distressed].map(([peer, inc]) => ({ peer, incarnation: String(inc) })),
    };
  }

  private assertMember(): void {
    if (this.out) {
      throw new ControlError('out', `${this.self.name} is out of the cluster since ${this.out.since || 'an unknown time'} (distress: ${this.out.reason}${this.out.text ? `, ${this.out.text}` : ''}); run \`vigil rejoin\` first`);
    }
  }

  // ---- the tick: heartbeats in, membership out ----

  private tick(): void {
    const now = performance.now();
    const engine = this.engine!;
    engine.renewLease();
    engine.setDigest(this.db.digest());
    this.peerDigests = observeHeartbeats(engine.snapshot(), this.config, this.membership, now, (node, inc) => this.ignoreIncarnation(node, inc));
    for (const e of this.membership.tick(now)) this.onMembership(e, now);
    // A peer never heard since we started is not failed by membership's rules (it may be booting): the
    // last-active decision (seed 003) says whether this node may start alone and treat it as failed.
    if (now - this.lastActiveAt >= 500 && !this.lastActiveBusy) {
      this.lastActiveAt = now;
      this.lastActiveBusy = true;
      void this.lastActiveRound(now).catch((e: unknown) => this.log.error({ err: String(e) }, 'last-active round failed'))
        .finally(() => { this.lastActiveBusy = false; });
    }
    const digest = this.db.digest();
    for (const [peer, theirs] of this.peerDigests) {
      const last = this.lastDigestRequest.get(peer) ?? -Infinity;
      if (theirs !== digest && now - last > 1000) {
        this.lastDigestRequest.set(peer, now);
        this.sendDigest(peer, true);
      }
    }
    for (const [, flow] of this.flows) {
      if (flow.wakeAt !== null && flow.wakeAt <= now) this.post(flow, { type: 'tick' });
    }
  }

  private isAlive(node: string): boolean {
    return this.membership.snapshot(performance.now()).peers.some((p) => p.peer === node && p.state === 'alive');
  }

  /**
   * Every 500 ms: the recovery decision of the apps still deciding (seed 003), SM → M where the slave is
   * in sync, and this node's reports to its peers.
   */
  private async lastActiveRound(now: number): Promise<void> {
    let evidence: Promise<DiskEvidence[] | undefined> | undefined;
    const disks = () => (evidence ??= this.diskEvidence());
    for (const r of await this.lastActive.decideAll(now, (peer) => this.isAlive(peer), disks, this.forceStart)) {
      this.forceStart.delete(r.tag);
      this.post(this.flowFor(r.tag), { type: 'gate', open: true });
      const o = this.db.get(r.tag);
      const peer = o && (o.primary === this.self.name ? o.backup : o.primary);
      if (r.alone && peer && !this.isAlive(peer) && !this.unknownDeclared.has(peer)) {
        // Started alone as the last processor: the silent peer is failed as far as the flows go.
        this.unknownDeclared.add(peer);
        this.neverHeard.delete(peer);
        this.log.warn({ peer, tag: r.tag }, 'peer not heard: this node processed last and starts alone; the peer is treated as failed');
        this.syncAnswered(peer);
        this.broadcast({ type: 'peerFailed', node: peer });
      }
    }
    const digest = this.db.digest();
    for (const s of this.lastActive.status()) {
      if (s.state === 'SM' && this.isAlive(s.peer) && this.peerDigests.get(s.peer) === digest) await this.lastActive.slaveInSync(s.tag);
    }
    for (const p of this.peers) this.sendPairReports(p.name);
  }

  private sendPairReports(peerName: string): void {
    const peer = this.peers.find((p) => p.name === peerName);
    const reports = this.lastActive.reports(peerName);
    if (peer && reports.length > 0) this.messenger.send(peer, { kind: 'pair', reports });
  }

  /** Who holds each shared disk, for the last-active cross-check; undefined without disks. */
  private async diskEvidence(): Promise<DiskEvidence[] | undefined> {
    if (!this.disks) return undefined;
    const nodes = new Set(this.config.nodes.map((n) => n.name));
    return (await this.disks.describe()).map((described): DiskEvidence => {
      const d = described as { disk: string; error?: unknown; holder?: string | null };
      if (d.error !== undefined) return { disk: d.disk, readable: false, error: String(d.error) };
      const holder = d.holder ?? null;
      if (holder === null) return { disk: d.disk, readable: true, reservationHolder: null };
      if (nodes.has(holder)) return { disk: d.disk, readable: true, reservationHolder: { node: holder } };
      // SCSI-2 names no holder ("another initiator"): no evidence either way.
      if (!holder.startsWith('0x')) return { disk: d.disk, readable: false, error: `the holder cannot be named (${holder})` };
      return { disk: d.disk, readable: true, reservationHolder: { unknownKey: holder } };
    });
  }

  private onMembership(e: MembershipEvent, now: number): void {
    switch (e.kind) {
      case 'peerAlive':
        this.log.info({ peer: e.peer }, 'peer alive');
        this.membershipChain = this.membershipChain.then(() => {
          this.neverHeard.delete(e.peer);
          this.unknownDeclared.delete(e.peer);
          this.sendDigest(e.peer, true);
          this.sendPairReports(e.peer);
          this.broadcast({ type: 'peerAlive', node: e.peer });
        });
        break;
      case 'peerFailed':
        this.log.warn({ peer: e.peer, at: now }, e.declared ? `peer failed: ${e.declared}` : 'peer failed: every channel silent');
        // The survivor's priority is durable before any flow acts on the failure (seed 003 write-ahead).
        this.membershipChain = this.membershipChain.then(async () => {
          const pairs = await this.lastActive.peerFailed(e.peer).catch((err: unknown) => {
            this.log.error({ peer: e.peer, err: String(err) }, 'priority write on a peer failure failed: not taking over');
            return undefined;
          });
          for (const p of pairs ?? []) if (!p.mayTakeOver) this.post(this.flowFor(p.tag), { type: 'gate', open: false });
          this.syncAnswered(e.peer);
          if (pairs) this.broadcast({ type: 'peerFailed', node: e.peer });
        });
        break;
      case 'channelDown':
        this.log.warn({ peer: e.peer, channel: e.channel }, 'channel fault: silent while the peer is heard elsewhere (no failover)');
        break;
      case 'channelUp':
        this.log.info({ peer: e.peer, channel: e.channel }, 'channel back');
        break;
      case 'ownStall':
        this.log.warn({ stallMs: e.stallMs }, 'own event loop stalled; not counted against peers');
        break;
    }
  }

  private broadcast(event: FlowEvent): void {
    for (const flow of this.flows.values()) this.post(flow, event);
  }

  // ---- flows ----

  private registerConfiguredApps(): void {
    for (const app of this.config.apps) {
      if (app.primary !== this.self.name) continue; // the primary registers; the others learn it by sync
      const spec = {
        tag: app.tag, type: app.type,
        command: { argv: app.command, ...(app.cwd ? { cwd: app.cwd } : {}), ...(Object.keys(app.env).length ? { env: app.env } : {}) },
        primary: app.primary, backup: app.backup,
        resources: app.resources as unknown as ResourceSpec[], autoRecover: app.autoRecover, attributes: app.attributes,
      };
      const existing = this.db.get(app.tag);
      if (!existing) {
        const decision = registrationCheck(this.db, app.tag, this.self.name, { spec });
        if (decision.kind === 'create') {
          this.db.upsert(decision.object, this.self.name, Date.now());
          this.log.info({ tag: app.tag }, 'registered from the configuration');
        } else {
          this.log.error({ tag: app.tag, decision }, 'not registered');
        }
      } else {
        // The configuration owns the definition; the database owns HOST, phase and user attributes.
        const { tag: _tag, attributes: _a, ...definition } = spec;
        this.db.update(app.tag, definition, this.self.name, Date.now());
      }
    }
    this.persist();
  }

  private flowFor(tag: string): Flow {
    let flow = this.flows.get(tag);
    if (!flow) {
      const t = this.config.timing;
      const appConfig = this.config.apps.find((a) => a.tag === tag);
      const peers: Record<string, number | null> = {};
      flow = {
        state: initialFlow(tag, this.self.name, {
          obj: this.db.get(tag) ?? null, peers, gated: !this.lastActive.isOpen(tag),
          config: {
            failbackDwellMs: t.failbackDwellMs, promptRepeatMs: t.failbackPromptRepeatMs,
            ...(appConfig && { localRestarts: appConfig.localRestarts, restartWindowMs: appConfig.restartWindowMs }),
          },
        }),
        wakeAt: null, queue: [], draining: false, process: undefined, health: undefined, readyWaiters: [],
      };
      this.flows.set(tag, flow);
      const o = this.db.get(tag);
      if (o && !this.lastActive.has(tag)) void this.lastActive.open(tag, o.primary, o.backup, performance.now()).catch((e: unknown) => this.log.error({ tag, err: String(e) }, 'cannot open the priority store'));
      const snap = this.membership.snapshot(performance.now());
      for (const p of snap.peers) {
        if (p.state === 'alive') flow.queue.push({ type: 'peerAlive', node: p.peer });
        if (p.state === 'failed' || this.unknownDeclared.has(p.peer)) flow.queue.push({ type: 'peerFailed', node: p.peer });
      }
      flow.queue.push({ type: 'tick' });
      this.drain(flow);
    }
    return flow;
  }

  private post(flow: Flow, event: FlowEvent): void {
    flow.queue.push(event);
    this.drain(flow);
  }

  /** Feeds queued events to the reducer one at a time; an event posted while an action runs waits its turn. */
  private drain(flow: Flow): void {
    if (flow.draining || this.stopped || this.out) return;
    flow.draining = true;
    try {
      for (let event = flow.queue.shift(); event; event = flow.queue.shift()) {
        const r = step(flow.state, event, performance.now());
        flow.state = r.state;
        flow.wakeAt = r.wakeAt;
        for (const action of r.actions) this.perform(flow, action);
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
          const obj = this.db.update(tag, a.patch, this.self.name, Date.now(), { ifHost: a.ifHost });
          this.changed([obj.tag]);
        } catch (e) {
          if (!(e instanceof DbWriteError)) throw e;
          this.log.warn({ tag, patch: a.patch, err: e.message }, 'write refused');
          flow.queue.push({ type: 'dbChanged', object: this.db.get(tag) ?? null });
        }
        return;
      }
      case 'notify':
        this.notice(tag, a.notice, a.message);
        return;
      case 'prompt':
        this.prompts.set(tag, a.message);
        this.notice(tag, 'failback-prompt', `${a.message} (vigil failback approve|deny ${tag})`);
        return;
      case 'resumeApp':
        for (const w of flow.readyWaiters.splice(0)) w();
        return;
      default:
        void this.runAsync(flow, a);
    }
  }

  private async runAsync(flow: Flow, a: AsyncAction): Promise<void> {
    const tag = flow.state.tag;
    try {
      switch (a.kind) {
        case 'checkResources': {
          const missing = await this.resources.missing(a.resources, a.command);
          return this.post(flow, { type: 'resourceCheck', ok: missing.length === 0, missing });
        }
        case 'startResources': {
          // The disks first, then this node's durable 1 or 2 (seed 003: it processes from here on), then the rest.
          const isDisk = (r: ResourceSpec) => r.kind === 'disk';
          for (const r of a.resources.filter(isDisk)) await this.timed(tag, 'resource started', resourceName(r), () => this.startUnlessOut(r));
          await this.lastActive.beforeProcessing(tag);
          for (const r of a.resources.filter((x) => !isDisk(x))) await this.timed(tag, 'resource started', resourceName(r), () => this.startUnlessOut(r));
          break;
        }
        case 'stopResources': {
          for (const r of [...a.resources].reverse()) await this.timed(tag, 'resource stopped', resourceName(r), () => this.resources.stop(r));
          // Handing over to a live peer (HOST moved to it, or a failback about to write HOST = primary):
          // this node is its slave from now on, durable before the peer can start (seed 003).
          const o = this.db.get(tag);
          const peerHosts = o?.host != null && o.host !== this.self.name && this.isAlive(o.host);
          const failingBack = o?.phase === 'failing-back' && o.backup === this.self.name && o.host === this.self.name && this.isAlive(o.primary);
          await this.lastActive.stoppedProcessing(tag, peerHosts || failingBack);
          break;
        }
        case 'startApp': {
          if (a.paused) break; // a cluster-aware app is started by its own ready(); nothing to spawn here
          const env = { ...a.command.env, VIGIL_NODE: this.self.name, VIGIL_SOCKET: this.config.control.socket };
          const p = new AppProcess(tag, { argv: a.command.argv, cwd: a.command.cwd, env }, this.options.appOutput);
          p.onUnexpectedExit = (code, signal) => {
            flow.health?.stop();
            void this.pidFiles.forget(tag).catch(() => {});
            this.post(flow, { type: 'exited', detail: signal ? `signal ${signal}` : `exit ${code}` });
          };
          await p.start();
          if (this.out) {
            // Left the cluster while this app was being started: it must not stay up behind the stop.
            await p.stop(stopTimeout(this.config, tag));
            break;
          }
          flow.process = p;
          await this.pidFiles.record(tag, p.pid!).catch((e: unknown) => this.log.error({ tag, err: String(e) }, 'cannot record the pid file'));
          this.log.info({ tag, pid: p.pid }, 'application started');
          const monitor = this.config.apps.find((x) => x.tag === tag)?.monitor;
          if (monitor) {
            const health = new HealthMonitor(monitor, (detail) => {
              health.stop();
              this.log.error({ tag, detail }, 'application failed its health probe');
              this.post(flow, { type: 'fault', detail });
            });
            flow.health = health;
            flow.health.start();
          }
          break;
        }
        case 'stopApp': {
          flow.health?.stop();
          flow.health = undefined;
          const p = flow.process;
          const timeoutMs = this.db.get(tag) ? stopTimeout(this.config, tag) : 5000;
          // A cluster-aware app that watches for it is asked first, and given the stop timeout to finish
          // its work and exit by itself; SIGTERM (then SIGKILL) only if it does not.
          if (p?.running && this.askToUnload(tag, flow.state, timeoutMs) > 0) {
            if (await p.awaitRequestedExit(timeoutMs)) this.log.info({ tag }, 'application exited on its unload request');
            else this.log.warn({ tag, timeoutMs }, 'application did not exit on its unload request: signalling it');
          }
          const r = p ? await p.stop(timeoutMs) : { killed: false };
          flow.process = undefined;
          await this.pidFiles.forget(tag);
          if (r.killed) this.notice(tag, 'stop-killed', `${tag} did not stop in time and was killed`);
          break;
        }
        case 'syncAll':
          await this.syncAll();
          break;
      }
      this.post(flow, { type: 'done', op: a.kind });
      // A cluster-aware app started unpaused may have called ready() before its start was recorded.
      if (a.kind === 'startApp' && !a.paused && flow.state.app === 'up') for (const w of flow.readyWaiters.splice(0)) w();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.log.error({ tag, op: a.kind, err: error }, 'action failed');
      this.post(flow, { type: 'failed', op: a.kind, error });
    }
  }

  /** A start still under way when the node leaves goes no further: leave() has stopped the rest. */
  private async startUnlessOut(r: ResourceSpec): Promise<void> {
    if (this.out) throw new Error('this node left the cluster (distress)');
    await this.resources.start(r);
  }

  /** Runs one resource step and logs how long it took: the failover timeline is read from these lines. */
  private async timed(tag: string, message: string, resource: string, fn: () => Promise<void>): Promise<void> {
    const start = performance.now();
    await fn();
    this.log.info({ tag, resource, ms: Math.round((performance.now() - start) * 10) / 10 }, message);
  }

  private notice(tag: string, notice: string, message: string): void {
    this.notices.push({ at: new Date().toISOString(), tag, notice, message });
    if (this.notices.length > 200) this.notices.shift();
    this.noticeCounts[notice] = (this.noticeCounts[notice] ?? 0) + 1;
    this.log.info({ tag, notice }, message);
  }

  // ---- the database: persistence and replication ----

  /** After local writes: persist, replicate to every peer, tell the flows. */
  private changed(tags: string[], markers: string[] = []): void {
    this.persist();
    const records = this.db.records({ apps: tags, markers });
    for (const peer of this.peers) this.messenger.send(peer, { kind: 'update', entries: records.apps, markers: records.markers });
    for (const tag of tags) this.post(this.flowFor(tag), { type: 'dbChanged', object: this.db.get(tag) ?? null });
  }

  private persist(): void {
    const file = this.dbFile;
    this.saving = this.saving.then(() => saveDatabase(file, this.db)).catch((e: unknown) => {
      this.log.error({ err: e instanceof Error ? e.message : String(e), file }, 'cannot persist the database');
    });
  }

  private sendDigest(peerName: string, reply: boolean): void {
    const peer = this.peers.find((p) => p.name === peerName);
    if (peer) this.messenger.send(peer, { kind: 'digest', versions: this.db.versionMap(), reply });
  }

  private onMessage({ from, message, incarnation }: Received): void {
    if (this.ignoreIncarnation(from.name, incarnation)) return;
    try {
      if (message.kind === 'update') {
        const snap = parseSnapshot({ apps: message.entries, markers: message.markers });
        const applied: string[] = [];
        for (const e of snap.apps) if (this.db.merge(e).applied) applied.push(e.tag);
        let markers = 0;
        for (const m of snap.markers) if (this.db.mergeMarker(m).applied) markers++;
        if (applied.length || markers) {
          this.persist();
          for (const tag of applied) this.post(this.flowFor(tag), { type: 'dbChanged', object: this.db.get(tag) ?? null });
        }
      } else if (message.kind === 'pair') {
        for (const r of message.reports) {
          const report = parsePairReport(r);
          if (report) this.lastActive.onReport(report, performance.now());
        }
      } else {
        const theirs = parseVersionMap(message.versions);
        this.peerVersions.set(from.name, theirs);
        const plan = syncPlan(this.db.versionMap(), theirs);
        if (plan.send.apps.length || plan.send.markers.length) {
          const records = this.db.records(plan.send);
          this.messenger.send(from, { kind: 'update', entries: records.apps, markers: records.markers });
        }
        // Our map makes the peer send what it holds newer; ask for it whenever we lack something.
        const lacking = plan.request.apps.length > 0 || plan.request.markers.length > 0;
        if (message.reply || lacking) this.sendDigest(from.name, false);
      }
      this.checkSynced(from.name);
    } catch (e) {
      this.log.warn({ from: from.name, err: e instanceof Error ? e.message : String(e) }, 'agent message refused');
    }
  }

  /**
   * FIG. 6 step 614: exchange version maps with every peer that is not known to have failed, and take what
   * is newer. A peer not heard yet since start-up is waited for (up to the start-up grace): a node that
   * restarts must learn that another took its apps over before it runs anything. Resolves when each has
   * answered (its newer records travel before its answer), or when the rest are declared failed, or
   * after a bound: an unreachable replica cannot hold a start hostage.
   */
  private syncAll(): Promise<void> {
    const now = performance.now();
    const targets = this.membership.snapshot(now).peers
      .filter((p) => p.state === 'alive' || (p.state === 'unknown' && !this.unknownDeclared.has(p.peer)));
    if (targets.length === 0) return Promise.resolve();
    const waitUnknown = targets.some((p) => p.state === 'unknown');
    const bound = Math.max(500, 5 * this.config.timing.heartbeatIntervalMs)
      + (waitUnknown ? Math.max(0, this.startupGraceMs - (now - this.startedAt)) : 0);
    return new Promise((resolve) => {
      const waiter = { peers: new Set(targets.map((p) => p.peer)), done: resolve };
      this.syncWaiters.push(waiter);
      for (const p of targets) this.peerVersions.delete(p.peer); // only an answer to this sync counts
      for (const p of targets) if (p.state === 'alive') this.sendDigest(p.peer, true);
      setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
        resolve();
      }, bound).unref();
    });
  }

  /** A peer is synced with once we hold everything its last version map showed newer. */
  private checkSynced(peer: string): void {
    const theirs = this.peerVersions.get(peer);
    if (!theirs) return;
    const { request } = syncPlan(this.db.versionMap(), theirs);
    if (request.apps.length === 0 && request.markers.length === 0) this.syncAnswered(peer);
  }

  /** A peer that answered a sync, or that will never answer it (failed). */
  private syncAnswered(peer: string): void {
    for (const w of this.syncWaiters) w.peers.delete(peer);
    this.syncWaiters = this.syncWaiters.filter((w) => (w.peers.size ? true : (w.done(), false)));
  }

  // ---- the control socket ----

  private registerControl(): void {
    const tagParam = z.object({ tag: z.string() });
    const existing = (tag: string): AppObject => {
      const o = this.db.get(tag);
      if (!o) throw new ControlError('not_found', `no application ${tag}`);
      return o;
    };
    this.control
      .handle('status', z.object({}), async () => ({ ...this.status(), disks: (await this.disks?.describe()) ?? [] }))
      .handle('db.show', z.object({}), () => ({ ...this.db.snapshot(), digest: this.db.digest() }))
      .handle('db.sync', z.object({}), async () => {
        this.assertMember();
        await this.syncAll();
        return { digest: this.db.digest() };
      })
      .handle('app.load', tagParam, ({ tag }) => {
        this.assertMember();
        existing(tag);
        this.post(this.flowFor(tag), { type: 'load' });
        return { tag };
      })
      .handle('app.unload', tagParam, ({ tag }) => {
        this.assertMember();
        existing(tag);
        this.post(this.flowFor(tag), { type: 'unload' });
        return { tag };
      })
      .handle('failback.approve', tagParam, ({ tag }) => (this.assertMember(), this.answerFailback(existing(tag), 'approve')))
      .handle('failback.deny', tagParam, ({ tag }) => (this.assertMember(), this.answerFailback(existing(tag), 'deny')))
      .handle('attr.get', z.object({ tag: z.string(), name: z.string().optional() }), ({ tag, name }) => {
        const o = existing(tag);
        if (name === undefined) return { tag, attributes: o.attributes };
        if (!(name in o.attributes)) throw new ControlError('not_found', `${tag} has no attribute ${name}`);
        return { tag, name, value: o.attributes[name] };
      })
      .handle('attr.set', z.object({ tag: z.string(), name: z.string().min(1), value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }), ({ tag, name, value }) => {
        this.assertMember();
        existing(tag);
        const o = this.db.setAttributes(tag, { [name]: value }, this.self.name, Date.now());
        this.changed([tag]);
        return { tag, attributes: o.attributes };
      })
      // Fault injection for tests and drills: blocks this agent's event loop (as a long GC or a stuck
      // synchronous call would). Only the control socket's authorised users can reach it.
      .handle('debug.stall', z.object({ ms: z.number().int().min(0).max(30_000) }), ({ ms }) => {
        setImmediate(() => {
          const end = performance.now() + ms;
          while (performance.now() < end) { /* blocked on purpose */ }
        });
        return { stallingMs: ms };
      })
      // Last-active server (seed 003): each app's priority, state and the decision while it waits.
      .handle('priority.show', z.object({}), () => ({ node: this.self.name, pairs: this.lastActive.status() }))
      .handle('priority.force-start', z.object({ tag: z.string().optional() }), ({ tag }) => {
        this.assertMember();
        const waiting = this.lastActive.status().filter((s) => s.state === 'X' && (tag === undefined || s.tag === tag));
        if (waiting.length === 0) {
          throw new ControlError('not_found', tag === undefined ? 'no app is waiting for a decision on this node' : `${tag} is not waiting for a decision on this node`);
        }
        const results = waiting.map((s) => ({ tag: s.tag, ...this.lastActive.checkForce(s.tag, performance.now(), this.isAlive(s.peer)) }));
        for (const r of results) if (r.ok) this.forceStart.add(r.tag);
        return { node: this.self.name, results };
      })
      // The cluster-aware application API (src/client/cluster-app.ts).
      .handle('app.ready', tagParam, ({ tag }, ctx) => this.ready(existing(tag), ctx.connection))
      .handle('app.register', z.object({ spec: z.record(z.string(), z.unknown()) }), ({ spec }) => (this.assertMember(), this.register(spec)))
      .handle('app.watch', tagParam, ({ tag }, ctx) => {
        const o = existing(tag);
        let set = this.watchers.get(tag);
        if (!set) this.watchers.set(tag, (set = new Set()));
        set.add(ctx.connection);
        ctx.connection.onClose(() => set.delete(ctx.connection));
        return { tag, host: o.host };
      })
      .handle('marker.get', tagParam, ({ tag }) => {
        existing(tag);
        const m = this.db.marker(tag);
        return { tag, pointer: m?.pointer ?? null, seq: m?.seq ?? 0, writtenBy: m?.writtenBy ?? null };
      })
      .handle('marker.set', z.object({ tag: z.string(), pointer: z.union([z.string().max(MAX_MARKER_TEXT), z.number(), z.null()]) }), ({ tag, pointer }) => {
        this.assertMember();
        existing(tag);
        const m = this.db.writeMarker(tag, pointer, this.self.name);
        this.changed([], [tag]);
        return { tag, pointer: m.pointer, seq: m.seq };
      })
      // Distress (seed 002) and power (docs/power.md, docs/distress.md).
      .handle('distress.status', z.object({}), () => this.distressStatus())
      .handle('distress.test', z.object({}), () => {
        this.assertMember();
        const sender = this.armedSender();
        // A fresh set first: a test never reuses the event of an earlier one, which receivers would drop as a copy.
        sender.rearm({});
        const woken = sender.trigger(reasonCode('operator-test'), 'async');
        this.notice('distress', 'distress-test-sent', 'distress test sent (operator-test): peers log it and do nothing else');
        return { node: this.self.name, sent: woken, destinations: sender.snapshot().destinations };
      })
      .handle('distress.send', z.object({ reason: z.enum(['hardware-fault', 'unknown']).default('hardware-fault') }), ({ reason }) => {
        this.assertMember();
        this.armedSender();
        void this.leave(reason, defaultSendMode(reason), 'operator', 'sent by the operator (vigil distress send)');
        return { node: this.self.name, reason, out: this.out };
      })
      .handle('power.status', z.object({}), () => ({ node: this.self.name, configured: this.power !== undefined, ...(this.power?.status() ?? {}), out: this.out ?? null }))
      .handle('rejoin', z.object({}), async () => {
        if (!this.out) throw new ControlError('not_out', `${this.self.name} is a member of the cluster: nothing to rejoin`);
        await this.leaving?.catch(() => {});
        await clearStayOut(this.config.stateDir);
        const was = this.out;
        const restart = this.options.onRejoin;
        this.log.warn({ was }, 'rejoin asked by the operator: the stay-out record is removed');
        if (restart) setTimeout(restart, 100); // after this answer is on its way: the restart closes the socket
        return { node: this.self.name, was, restarting: restart !== undefined, ...(restart ? {} : { next: 'restart vigild to join the cluster' }) };
      })
      // Fault injection for tests and drills: the agent dies of this signal, and the armed sender's handler
      // sends distress (fatal-signal) on the way. Only the control socket's authorised users can reach it.
      .handle('debug.crash', z.object({ kind: z.enum(['segv', 'bus', 'abort', 'ill', 'fpe']) }), ({ kind }) => {
        this.assertMember();
        const sender = this.armedSender();
        setTimeout(() => sender.crashForTest(kind), 50);
        return { node: this.self.name, crashing: kind, fatalHandlers: sender.snapshot().fatalHandlers };
      });
  }

  private armedSender(): NativeDistressSender {
    if (!this.distressSender) throw new ControlError('not_armed', 'the distress sender is not armed on this node');
    return this.distressSender;
  }

  /**
   * FIG. 6 for an app that registers itself with its attribute values: a new TAG is stored (HOST = its
   * primary) and replicated; an existing one is checked against them. The answer says what happens next.
   */
  private register(spec: Record<string, unknown>): object {
    const tag = typeof spec.tag === 'string' ? spec.tag : '';
    const decision = registrationCheck(this.db, tag, this.self.name, { spec });
    switch (decision.kind) {
      case 'reject':
      case 'prompt-operator':
        throw new ControlError('rejected', decision.reason);
      case 'create':
        this.db.upsert(decision.object, this.self.name, Date.now());
        this.log.info({ tag }, 'registered by the application');
        this.changed([tag]);
        return { tag, decision: 'created', host: decision.object.host };
      default:
        return { tag, decision: decision.kind, host: this.db.get(tag)?.host ?? null };
    }
  }

  /** Sends the unload request to the app's watchers; how many got it. */
  private askToUnload(tag: string, state: FlowState, graceMs: number): number {
    const o = state.obj;
    const reason = state.halted ?? state.standDown
      ?? (o?.phase === 'failing-back' ? `failback to ${o.primary}` : o && o.host !== this.self.name ? `HOST is ${o.host ?? 'none'}` : 'stop');
    let n = 0;
    for (const c of this.watchers.get(tag) ?? []) if (c.notify('unload', { tag, reason, graceMs })) n++;
    return n;
  }

  private answerFailback(o: AppObject, answer: 'approve' | 'deny'): object {
    if (o.host !== this.self.name || o.backup !== this.self.name) {
      throw new ControlError('wrong_node', `${o.tag} is hosted on ${o.host ?? 'no node'}; answer on its backup ${o.backup} while it hosts`);
    }
    this.prompts.delete(o.tag);
    this.post(this.flowFor(o.tag), { type: answer });
    return { tag: o.tag, answer };
  }

  /** Cluster-aware apps: resolves once this node hosts the app and its flow let it run (claims 31/32). */
  private ready(o: AppObject, _connection: ControlConnection): Promise<object> {
    const flow = this.flowFor(o.tag);
    if (o.host === this.self.name && flow.state.app === 'up') return Promise.resolve({ tag: o.tag, host: o.host });
    return new Promise((resolve) => flow.readyWaiters.push(() => resolve({ tag: o.tag, host: this.self.name })));
  }

  status(): StatusLike {
    const now = performance.now();
    const m = this.membership.snapshot(now);
    const hb = this.engine?.snapshot();
    const sender = this.distressSender?.snapshot() ?? null;
    const pairs = new Map(this.lastActive.status().map((p) => [p.tag, p]));
    return {
      cluster: this.config.cluster,
      node: this.self.name,
      incarnation: String(this.incarnation),
      uptimeMs: Math.round(now - this.startedAt),
      ownStallMs: m.ownStallMs, noticeCounts: { ...this.noticeCounts },
      peers: m.peers.map((p) => {
        const node = this.peers.find((n) => n.name === p.peer)!;
        const links = hb?.peers.find((x) => x.id === node.id)?.links ?? [];
        return {
          ...p,
          links: links.map((l) => ({ network: this.config.networks[l.network]?.name, heardAgoMs: l.heardAgoMs, ackedAgoMs: l.ackedAgoMs, rttUs: l.rttUs })),
        };
      }),
      heartbeat: hb && { sent: hb.sent, received: hb.received, sendErrors: hb.sendErrors, dropped: hb.dropped, realtime: hb.realtime, leaseLapsed: hb.leaseLapsed },
      messages: { sent: this.messenger.sent, received: this.messenger.received, dropped: this.messenger.dropped },
      apps: this.db.list().map((o) => {
        const f = this.flows.get(o.tag)?.state;
        const pair = pairs.get(o.tag);
        return {
          lastActive: pair && { state: pair.state, priority: pair.priority, decision: pair.decision },
          tag: o.tag, type: o.type, host: o.host, primary: o.primary, backup: o.backup, phase: o.phase, faults: o.faults, autoRecover: o.autoRecover,
          version: o.version,
          here: f && { app: f.app, resources: f.resources, pending: f.pending?.kind ?? null, halted: f.halted, pid: this.flows.get(o.tag)?.process?.pid ?? null },
          prompt: this.prompts.get(o.tag) ?? null,
          resources: o.resources.map(resourceName),
        };
      }),
      notices: this.notices.slice(-20),
      out: this.out ?? null,
      distress: sender && { armed: sender.armed, realtime: sender.realtime },
    };
  }
}

export function diskChannel(disk: string): string {
  return `disk:${disk}`;
}

/** Does a resource list use this disk (its ownership, or a mount on it)? */
function usesDisk(resources: readonly ResourceSpec[], disk: string): boolean {
  return resources.some((r) => (r.kind === 'disk' || r.kind === 'mount') && r.disk === disk);
}

/** A resume marker is a pointer (a position, a key), not a payload. */
const MAX_MARKER_TEXT = 4096;

function stopTimeout(config: Config, tag: string): number {
  return config.apps.find((a) => a.tag === tag)?.stopTimeoutMs ?? 10_000;
}

async function groupId(name: string | undefined): Promise<number | undefined> {
  if (name === undefined) return undefined;
  const line = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.split(':')[0] === name);
  if (!line) throw new Error(`control.group ${name}: no such group in /etc/group`);
  return Number(line.split(':')[2]);
}


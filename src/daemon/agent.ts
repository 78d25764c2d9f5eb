// vigild's agent: composes the parts of one node's agent and drives them. Everything that decides lives in
// the pure modules (membership, database, flows, last-active); the parts wire them to real I/O:
//   replication.ts      the local replica, its file, the sync with the peers
//   flow-runner.ts      the application flows and what their actions do (resources, processes)
//   distress-link.ts    the armed distress sender and the distress receiver
//   control-commands.ts the control socket's methods
//   disks.ts            the shared units (reservations, fencing, the disk heartbeat)
// This file holds the life cycle (start, stop, leave, rejoin), the tick that carries heartbeats into
// membership and membership's events out, the last-active rounds, and status.
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import type { Config, NodeConfig } from '../config/schema.js';
import { ControlError } from '../control/protocol.js';
import { ControlServer } from '../control/server.js';
import { DbWriteError } from '../db/database.js';
import { registrationCheck } from '../db/flows.js';
import type { ResourceSpec } from '../db/object.js';
import type { DiskEvidence } from '../lastactive/decision.js';
import { Membership, type MembershipEvent } from '../membership/membership.js';
import { nativeAddon, type NativeHeartbeatEngine } from '../native.js';
import { createPowerSources, powerPolicyConfig } from '../power/from-config.js';
import type { PowerDecision } from '../power/policy.js';
import type { Distress, DistressReason, SendMode } from '../wire/distress.js';
import { nextIncarnation } from '../wire/incarnation.js';
import { loadClusterKey } from '../wire/key.js';
import { AgingSampler } from './aging.js';
import { registerControlCommands } from './control-commands.js';
import { Disks } from './disks.js';
import { DistressLink } from './distress-link.js';
import { clearLeftovers, pidFilesOf, replicaFile } from './clear-leftovers.js';
import { ClockSampler } from './clock-samples.js';
import { FailoverTimes } from './failover-times.js';
import { FlowRunner } from './flow-runner.js';
import { heartbeatOptions, networkChannel, observeHeartbeats } from './heartbeat.js';
import { LastActive, parsePairReport } from './last-active.js';
import type { PidFiles } from './leftovers.js';
import { LinkLoss } from './link-loss.js';
import type { AgentLog } from './log.js';
import { Messenger, type Received } from './messenger.js';
import { Notices } from './notices.js';
import { OwnStalls } from './own-stalls.js';
import { PeerClocks } from './peer-clocks.js';
import { PeerIncarnations } from './peer-incarnations.js';
import { PowerWatch } from './power-watch.js';
import { Rejuvenator } from './rejuvenation.js';
import { Replication } from './replication.js';
import { SwitchoverRequests } from './switchover-requests.js';
import { NO_DISKS, resourceName, Resources, type DiskOwnership } from './resources.js';
import { PowerFence } from './power-fence.js';
import { NodeWatchdog, watchdogStatus } from './watchdog.js';
import { parsePublishedView, SelfFence } from './self-fence.js';
import { clearStayOut, readStayOut, writeStayOut, type StayOut } from './stay-out.js';
import type { DiskMetricsStatus, StatusLike } from './status.js';
import { peerHearsUs, weHearPeer, type LinkView } from './disk-pulse.js';
import { runCommand } from '../resources/run-command.js';

/**
 * How often the addresses of the apps this node hosts are announced again (gratuitous ARP): after a split
 * brain that ended in this node's favour the clients may still hold the other node's link-layer address.
 */
const ANNOUNCE_EVERY_MS = 5000;
/** How often a disk this node holds without using it is given up (Disks.relinquishUnused). */
const RELINQUISH_EVERY_MS = 2000;
/** How often the BMCs of nodes this one fenced off are asked whether they stay off, and how long an answer holds. */
const KEPT_OFF_RECHECK_MS = 2000;
const KEPT_OFF_HOLDS_MS = 3 * KEPT_OFF_RECHECK_MS;
/** A scrape waits this long for the disks' reservations; a unit that has not answered by then reads unreadable. */
const DISK_READ_FOR_METRICS_MS = 2000;

export type { AgentLog } from './log.js';

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
  /** Everything logged so far written out: before the agent re-executes itself (the rejuvenation's agent rung). */
  drainLog?: () => Promise<void>;
}

export class Agent {
  private membership!: Membership;
  private engine: NativeHeartbeatEngine | undefined;
  private messenger!: Messenger;
  private control!: ControlServer;
  private resources: Resources;
  private disks: Disks | undefined;
  private readonly replication: Replication;
  private readonly flows: FlowRunner;
  private readonly powerFence: PowerFence;
  private watchdog: NodeWatchdog | undefined;
  private readonly selfFence: SelfFence;
  private distress!: DistressLink;
  private readonly notices: Notices;
  private readonly failoverTimes = new FailoverTimes();
  private readonly peers: NodeConfig[];
  private timer: NodeJS.Timeout | undefined;
  private relinquishTimer: NodeJS.Timeout | undefined;
  /** What the heartbeat thread was last given (followAddresses), and how many lapses it reported. */
  private addressesGiven = '';
  private addressDrops = 0;
  private announcedAt = performance.now();
  private keptOffCheckedAt = performance.now();
  /** Each peer's incarnation as the heartbeat thread last reported it (followIncarnations). */
  private readonly peerIncarnations = new Map<string, bigint>();
  /** The same, kept across this agent's restarts: the floor below which a peer's distress is stale. */
  private peerFloors: PeerIncarnations | undefined;
  private incarnation = 0n;
  private readonly tickMs: number;
  private readonly startedAt = performance.now();
  private readonly startupGraceMs: number;
  /** Peers never heard since start that the last-active decision treats as failed (this node started alone). */
  private readonly unknownDeclared = new Set<string>();
  private readonly pidFiles: PidFiles;
  private lastActive!: LastActive;
  /** Membership's failure/recovery events, in order: a failure waits for its priority write. */
  private membershipChain: Promise<void> = Promise.resolve();
  private lastActiveBusy = false;
  private lastActiveAt = -Infinity;
  /** Tags whose operator asked for a forced start (vigil force-start), until the decision takes it. */
  private readonly forceStart = new Set<string>();
  private stopped = false;
  /** Set once this node sent distress (or started with the record of one): it stays out until `vigil rejoin`. */
  private out: StayOut | undefined;
  private leaving: Promise<void> | undefined;
  private power: PowerWatch | undefined;
  /** This agent's own stalls: a start decided before a long one is decided again (own-stalls.ts). */
  private ownStalls: OwnStalls | undefined;
  /** The aging monitor (docs/rejuvenation.md); undefined when `aging.enabled` is false or the node is out. */
  private aging: AgingSampler | undefined;
  /** Seed 000's loop on this node (docs/rejuvenation.md); undefined while the node is out. */
  private rejuvenator: Rejuvenator | undefined;
  private readonly clockSampler: ClockSampler;
  private readonly peerClocks = new PeerClocks();
  private readonly linkLoss: LinkLoss;

  constructor(readonly config: Config, readonly self: NodeConfig, private readonly log: AgentLog, private readonly options: AgentOptions = {}) {
    this.peers = config.nodes.filter((n) => n !== self);
    this.tickMs = Math.max(10, Math.min(50, Math.floor(config.timing.heartbeatIntervalMs / 2)));
    this.startupGraceMs = Math.max(2 * config.timing.failAfterMs, 2000);
    this.resources = new Resources(self.name, options.disks ?? NO_DISKS);
    this.pidFiles = pidFilesOf(config);
    this.notices = new Notices(log);
    this.clockSampler = new ClockSampler(log, config);
    // Every node sends each round one heartbeat per peer and network (heartbeat.ts, heartbeatOptions).
    this.linkLoss = new LinkLoss((config.nodes.length - 1) * config.networks.length);
    this.replication = new Replication({
      config, peers: this.peers, log, file: replicaFile(config),
      send: (peer, message) => this.messenger.send(peer, message),
      peerStates: () => this.membership.snapshot(performance.now()).peers,
      declaredFailed: (peer) => this.unknownDeclared.has(peer),
      startupGraceLeftMs: () => Math.max(0, this.startupGraceMs - (performance.now() - this.startedAt)),
      onAppsChanged: (tags) => {
        for (const tag of tags) this.flows.post(tag, { type: 'dbChanged', object: this.replication.db.get(tag) ?? null });
      },
    });
    this.powerFence = new PowerFence({ self, nodes: config.nodes, fencing: config.fencing, isAlive: (node) => this.isAlive(node), log });
    const failAfterMs = config.timing.failAfterMs;
    this.selfFence = new SelfFence({
      nodes: config.nodes, peers: this.peers, watchdog: () => this.watchdog,
      cutToLapseMs: failAfterMs + config.timing.agentLeaseMs, marginMs: config.fencing.watchdogMarginMs,
      heardBothWays: () => this.heardBothWays(failAfterMs),
      heardFreshly: () => this.heardBothWays(failAfterMs / 2),
      keptOff: () => this.powerFence.keptOffNodes(performance.now(), KEPT_OFF_HOLDS_MS).length,
      hosting: () => this.flows.hosting(),
      disks: () => this.disks?.tieBreaker(failAfterMs) ?? 'none',
      silentMs: (peer) => {
        const p = this.membership.snapshot(performance.now()).peers.find((x) => x.peer === peer);
        return p && p.state !== 'alive' ? Math.min(...p.channels.map((c) => c.silentMs)) : undefined;
      },
      send: (peer, message) => this.messenger.send(peer, message),
      log, notices: this.notices,
    });
    this.flows = new FlowRunner({
      config, self, log, notices: this.notices, failoverTimes: this.failoverTimes, replication: this.replication, pidFiles: this.pidFiles, appOutput: options.appOutput,
      resources: () => this.resources,
      lastActive: () => this.lastActive,
      peerStates: () => this.membership.snapshot(performance.now()).peers,
      declaredFailed: (peer) => this.unknownDeclared.has(peer),
      isAlive: (node) => this.isAlive(node),
      isOut: () => this.out !== undefined,
      isDistressed: (node) => this.distress?.isDistressed(node) === true,
      distressLeftAppsRunning: (node) => this.distress?.leftAppsRunning(node) === true,
      powerFence: this.powerFence,
      selfFence: this.selfFence,
      isStopped: () => this.stopped,
      staleSince: (since) => this.ownStalls?.staleSince(since, performance.now()),
    });
  }

  private get db() {
    return this.replication.db;
  }

  /**
   * Before anything starts: the apps an earlier agent of this node left running (it died, the machine
   * did not) are stopped, and their addresses removed; the backup may have taken them over meanwhile, and
   * two copies must never answer. Every app's address goes, HOST here or not: the local replica may be
   * stale (it says HOST is this node when the backup took over while this agent was dead), and an app
   * hosted here is started again, address included, only after the first sync.
   */
  private clearLeftovers(): Promise<void> {
    return clearLeftovers({ config: this.config, pidFiles: this.pidFiles, apps: this.db.list(), resources: this.resources, log: this.log });
  }

  /**
   * Starts the agent. A start that fails half-way undoes what it started before it throws: the caller
   * exits, and exit-time clean-up must not run with the distress sender's fatal-signal handlers installed
   * and the heartbeat thread live (a crash there would send distress and write the stay-out record for a
   * node that merely failed to start, and its peers would count a node that is exiting alive).
   */
  async start(): Promise<void> {
    try {
      await this.startUp();
    } catch (e) {
      this.abandonStart();
      // An armed watchdog left behind would reset a node whose agent merely could not start.
      await this.watchdog?.stop();
      throw e;
    }
  }

  /** What a failed start leaves running, stopped at once (synchronous: the caller exits next). */
  private abandonStart(): void {
    clearInterval(this.timer);
    this.aging?.stop();
    this.rejuvenator?.stop();
    clearInterval(this.relinquishTimer);
    this.engine?.stop();
    this.engine = undefined;
    this.distress?.stop();
    this.messenger?.close();
    this.disks?.stop();
    void this.power?.stop();
    void this.control?.close();
  }

  private async startUp(): Promise<void> {
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o750 });
    const key = await loadClusterKey(this.config.keyFile);
    const inc = await nextIncarnation(this.config.stateDir, Date.now());
    if (inc.warning) this.log.warn({ warning: inc.warning }, 'incarnation');
    this.incarnation = inc.incarnation;
    const firstStart = await access(replicaFile(this.config)).then(() => false, () => true);
    await this.replication.load();
    await this.clearLeftovers();
    this.lastActive = new LastActive({
      dir: join(this.config.stateDir, 'priority'), cluster: this.config.cluster, self: this.self,
      nodeId: (name) => this.config.nodes.find((n) => n.name === name)?.id ?? 0,
      peerProbeMs: this.config.timing.peerProbeMs, firstStart, log: this.log,
      onChange: (peer) => this.sendPairReports(peer),
      onGate: (tag, open) => this.flows.post(tag, { type: 'gate', open }),
      claimDisks: (tag) => this.claimDisks(tag),
      hostAgreed: (tag, peer) => (this.replication.digestOf(peer) === this.db.digest() ? this.db.get(tag)?.host ?? null : undefined),
    });
    const loaded = new Set(this.db.list().map((o) => o.tag));
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
    this.peerFloors = await PeerIncarnations.load(this.config.stateDir, this.log);
    const floors = this.peerFloors;
    this.distress = new DistressLink({
      config: this.config, self: this.self, peers: this.peers, key, incarnation: this.incarnation, log: this.log, notices: this.notices,
      currentIncarnation: (id) => this.engine?.snapshot().peers.find((p) => p.id === id)?.incarnation,
      floor: (node) => floors.floor(node),
      failAfterMs: this.config.timing.failAfterMs,
      onPeerDistress: (node, d) => this.onPeerDistress(node, d),
    });
    this.messenger = new Messenger(this.config, this.self, key, this.incarnation, (r) => this.onMessage(r), undefined, (buf) => this.distress.receive(buf));
    this.control = new ControlServer({
      path: this.config.control.socket, gid: await groupId(this.config.control.group), adminGid: await groupId(this.config.control.adminGroup),
      debug: this.config.control.debug, isAppProcess: (tag, pid) => this.flows.isAppProcess(tag, pid), log: this.log,
    });
    registerControlCommands(this.control, {
      self: this.self, config: this.config, log: this.log, replication: this.replication, flows: this.flows, distress: this.distress,
      lastActive: () => this.lastActive, power: () => this.power, forceStart: this.forceStart,
      status: async () => ({ ...this.status(), disks: (await this.disks?.describe()) ?? [] }),
      isAlive: (node) => this.isAlive(node),
      powerFence: this.powerFence,
      out: () => this.out,
      leave: (reason, mode, source, text) => this.leave(reason, mode, source, text),
      rejoin: () => this.rejoin(),
      rejuvenator: () => this.rejuvenator,
    });
    this.out = await readStayOut(this.config.stateDir);
    if (this.out) {
      await this.startPower();
      // Seed 002 step 508: no heartbeat, no messages, no disks, no apps; only the control socket, to say why.
      await this.control.start();
      this.log.warn({ ...this.out }, 'this node sent distress and stays out of the cluster: run `vigil rejoin` to bring it back');
      return;
    }
    await this.messenger.start();
    // Armed before anything is taken: from here on a hung agent resets the node (docs/ipmi.md).
    this.watchdog = new NodeWatchdog(this.config.watchdog, this.config.timing.agentLeaseMs, this.log);
    await this.watchdog.start();
    this.engine = new (nativeAddon().HeartbeatEngine)(heartbeatOptions(this.config, this.self, key, this.incarnation, this.options.heartbeatPriority ?? 0));
    this.distress.arm();
    const sched = this.engine.snapshot();
    if ((this.options.heartbeatPriority ?? 0) > 0 && !sched.realtime) {
      this.log.warn({ errno: sched.schedError }, 'heartbeat thread: SCHED_FIFO refused, running at normal priority');
    }
    if (this.config.disks.length > 0 && !this.options.disks) {
      // Only a disk's holder pulses on it: the other peers' disk channels are idle until one holds it.
      for (const d of this.config.disks) for (const p of this.peers) this.membership.expect(p.name, diskChannel(d.name), false);
      this.disks = new Disks(this.config, this.self, key, {
        isAlive: (node) => this.isAlive(node),
        isDistressed: (node) => this.distress.isDistressed(node),
        onPulse: (node, disk, at) => {
          if (!this.distress.isDistressed(node)) this.membership.observe(node, diskChannel(disk), at);
        },
        onHolder: (disk, holder) => {
          const scsi2 = this.config.disks.find((d) => d.name === disk)?.reservation === 'scsi2';
          for (const p of this.peers) this.membership.expect(p.name, diskChannel(disk), !scsi2 && p.name === holder);
        },
        onFenced: (disk, detail) => this.flows.fenced(disk, detail),
        onForeignKey: (disk, message) => this.notices.add(disk, 'foreign-key', message),
        mustProveLife: (except) => this.peers.some((p) => !except.has(p.name) && !peerHearsUs(this.links(p), this.config.timing.failAfterMs / 2)),
        silentHolder: (disk) => {
          const host = this.db.list().find((o) => o.resources.some((r) => r.kind === 'disk' && r.disk === disk))?.host;
          const peer = this.peers.find((p) => p.name === host);
          return peer && !weHearPeer(this.links(peer), this.config.timing.failAfterMs / 2) ? peer.name : undefined;
        },
      }, this.log);
      await this.disks.start();
      this.resources = new Resources(this.self.name, this.disks);
      await this.unmountLeftovers();
    }
    this.registerConfiguredApps();
    // Every app's priority store before its flow: a flow never starts an app before the pair's decision,
    // apps registered from the configuration just now included (seed 003).
    for (const o of this.db.list()) if (!loaded.has(o.tag)) await this.lastActive.open(o.tag, o.primary, o.backup, performance.now(), { isNew: true });
    for (const obj of this.db.list()) this.flows.flowFor(obj.tag);
    await this.control.start();
    // A stall this long may have let the peers fail this node (one heartbeat short of failAfterMs).
    const t = this.config.timing;
    this.ownStalls = new OwnStalls(2 * this.tickMs, Math.max(this.tickMs, t.failAfterMs - t.heartbeatIntervalMs), performance.now());
    this.timer = setInterval(() => this.tick(), this.tickMs);
    if (this.config.aging.enabled) {
      this.aging = new AgingSampler({ config: this.config.aging, log: this.log, notices: this.notices, apps: () => this.runningApps() });
      this.aging.start();
    }
    const switchovers = new SwitchoverRequests({ self: this.self.name, replication: this.replication, isAlive: (n) => this.isAlive(n) });
    this.rejuvenator = new Rejuvenator({
      config: this.config, self: this.self, log: this.log, notices: this.notices, db: () => this.db,
      changed: (nodes) => this.replication.changed([], [], nodes), isAlive: (n) => this.isAlive(n),
      synced: () => this.replication.syncAll(),
      aging: () => this.aging && { latest: this.aging.latest(), status: this.aging.status() },
      drain: (undo, waitMs) => switchovers.drain(this.self.name, undo, waitMs, false),
      ...(this.options.drainLog ? { drainLog: this.options.drainLog } : {}),
    });
    this.rejuvenator.start();
    if (this.disks) {
      const disks = this.disks;
      this.relinquishTimer = setInterval(() => {
        if (performance.now() - this.startedAt > this.startupGraceMs) void disks.relinquishUnused((disk) => this.flows.usesDisk(disk));
      }, RELINQUISH_EVERY_MS);
    }
    // Last: a UPS already low at start leaves a fully started agent, never one half-way up.
    await this.startPower();
    this.log.info({ incarnation: String(this.incarnation), apps: this.db.list().length }, 'vigild started'); // node: the logger's base
  }

  /** Stops the agent; the applications it runs are stopped too unless `leaveApps`. */
  async stop(leaveApps = false): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.leaving?.catch(() => {});
    clearInterval(this.timer);
    this.aging?.stop();
    this.rejuvenator?.stop();
    clearInterval(this.relinquishTimer);
    this.engine?.stop();
    this.messenger?.close();
    this.distress?.stop();
    await this.power?.stop();
    await this.control?.close();
    if (!leaveApps) await this.flows.stopAll(false);
    this.disks?.stop();
    await this.watchdog?.stop();
    await this.replication.flushed();
    await this.peerFloors?.flushed();
  }

  // ---- distress (seed 002): power, leaving and staying out, the peers' distress ----

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
        this.notices.add('power', 'power-warning', d.text);
        return;
      case 'notice':
      case 'cancel':
        this.notices.add('power', d.action === 'cancel' ? 'power-cancel' : 'power-notice', d.text);
        return;
      case 'distress':
        if (this.out) {
          this.notices.add('power', 'power-notice', `${d.text}: this node is already out of the cluster`);
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
    const sent = this.distress.trigger(reason, mode);
    this.out = { since: new Date().toISOString(), reason, source, incarnation: String(this.incarnation), text };
    this.log.error({ reason, mode, source, sent }, `distress sent (${text}): leaving the cluster; this node stays out until \`vigil rejoin\``);
    this.notices.add('distress', 'distress-sent', `distress sent (${reason}, ${mode}): ${text}; staying out until vigil rejoin`);
    this.leaving = (async () => {
      await writeStayOut(this.config.stateDir, this.out!).catch((e: unknown) => this.log.error({ err: String(e) }, 'cannot write the stay-out record'));
      clearInterval(this.timer);
      this.timer = undefined;
      clearInterval(this.relinquishTimer);
      this.aging?.stop();
      this.aging = undefined;
      this.rejuvenator?.stop();
      this.rejuvenator = undefined;
      this.engine?.stop();
      this.engine = undefined;
      await this.flows.stopAll(true);
      this.messenger.close();
      this.disks?.stop();
      this.disks = undefined;
      await this.watchdog?.stop();
      this.log.warn({}, 'left the cluster: no heartbeat, no apps; `vigil rejoin` brings this node back');
    })();
    return this.leaving;
  }

  /** `vigil rejoin`: the stay-out record goes, and vigild restarts this agent (a new incarnation). */
  private async rejoin(): Promise<object> {
    if (!this.out) throw new ControlError('not_out', `${this.self.name} is a member of the cluster: nothing to rejoin`);
    await this.leaving?.catch(() => {});
    await clearStayOut(this.config.stateDir);
    const was = this.out;
    const restart = this.options.onRejoin;
    this.log.warn({ was }, 'rejoin asked by the operator: the stay-out record is removed');
    if (restart) setTimeout(restart, 100); // after this answer is on its way: the restart closes the socket
    return { node: this.self.name, was, restarting: restart !== undefined, ...(restart ? {} : { next: 'restart vigild to join the cluster' }) };
  }

  /**
   * Seed 002 on a receiver: the sender is failed now (no heartbeat timeout), its heartbeats and messages
   * from that incarnation are ignored from here on, its key is fenced off the shared disks, and the flows
   * take its apps over through the ordinary failure path (priority write first, seed 003).
   */
  private onPeerDistress(node: NodeConfig, d: Distress): void {
    const now = performance.now();
    this.notices.add('distress', 'peer-distress', `${node.name} sent distress (${d.reason}): failed now, its work is taken over without waiting for the heartbeat timeout`);
    const e = this.membership.declareFailed(node.name, `distress: ${d.reason}`);
    if (e) this.onMembership(e, now);
    if (this.disks) {
      const survivors = this.peers.filter((p) => p !== node && this.isAlive(p.name));
      void this.disks.fenceNode(node, survivors.length === 0).then((results) => {
        for (const f of results) this.log.warn({ peer: node.name, disk: f.disk, done: f.done }, 'distress: fencing the sender\'s key');
      });
    }
  }

  // ---- the tick: heartbeats in, membership out ----

  private tick(): void {
    const now = performance.now();
    this.ownStalls?.tick(now);
    const engine = this.engine!;
    engine.renewLease();
    engine.setDigest(this.db.digest());
    const snapshot = engine.snapshot();
    this.followAddresses(engine, snapshot.addressDrops);
    this.followIncarnations(snapshot.peers);
    this.distress.tick(now);
    const digests = observeHeartbeats(snapshot, this.config, this.membership, now, (node, inc) => this.distress.ignores(node, inc));
    for (const e of this.membership.tick(now)) this.onMembership(e, now);
    // After membership: a peer it has just declared failed no longer counts toward this node's view.
    this.selfFence.tick(now); // the watchdog's lease, renewed while the view is valid
    this.clockSampler.tick(snapshot, now);
    this.linkLoss.tick(snapshot.peers.flatMap((p) => p.links.map((l) => ({ key: `${p.id}/${l.network}`, heardCount: l.heardCount, peerSeq: l.peerSeq }))), now);
    // A peer never heard since we started is not failed by membership's rules (it may be booting): the
    // last-active decision (seed 003) says whether this node may start alone and treat it as failed.
    if (now - this.lastActiveAt >= 500 && !this.lastActiveBusy) {
      this.lastActiveAt = now;
      this.lastActiveBusy = true;
      void this.lastActiveRound(now).catch((e: unknown) => this.log.error({ err: String(e) }, 'last-active round failed'))
        .finally(() => { this.lastActiveBusy = false; });
    }
    this.replication.compareDigests(digests, now);
    this.flows.wake(now);
    if (now - this.announcedAt >= ANNOUNCE_EVERY_MS) {
      this.announcedAt = now;
      this.flows.announceAddresses();
    }
    if (now - this.keptOffCheckedAt >= KEPT_OFF_RECHECK_MS) {
      this.keptOffCheckedAt = now;
      void this.powerFence.recheckKeptOff().catch((e: unknown) => this.log.error({ err: String(e) }, 'power fence: re-reading the fenced nodes\' power failed'));
    }
  }

  /**
   * The heartbeat thread holds the list of the node's service addresses, to remove them if the lease lapses
   * (native/service_addresses.h); after it did, the apps still hosted here get them back.
   */
  private followAddresses(engine: NativeHeartbeatEngine, drops: number): void {
    const held = this.flows.heldAddresses();
    const key = JSON.stringify(held);
    if (key !== this.addressesGiven) {
      this.addressesGiven = key;
      try {
        engine.setAddresses(held);
      } catch (e) {
        this.log.error({ err: String(e) }, 'cannot give the heartbeat thread the service addresses');
      }
    }
    if (drops > this.addressDrops) {
      this.addressDrops = drops;
      this.log.warn({}, 'this agent was hung past its lease: the heartbeat thread removed the service addresses; those of apps still hosted here are added back');
      void this.flows.restoreAddresses();
    }
  }

  /**
   * A peer heard with a new incarnation restarted, whether or not membership saw it fail: the slaves of its
   * earlier life decide again (LastActive.peerRestarted), and their flows wait for that decision.
   */
  private followIncarnations(peers: readonly { id: number; incarnation: bigint }[]): void {
    for (const p of peers) {
      const node = this.peers.find((n) => n.id === p.id);
      if (!node || p.incarnation === 0n) continue;
      const before = this.peerIncarnations.get(node.name);
      this.peerIncarnations.set(node.name, p.incarnation);
      this.peerFloors?.heard(node.name, p.incarnation);
      if (before === undefined || p.incarnation <= before) continue;
      // Before the alive event below: a takeover from it that is processing here completes (flows.ts).
      this.flows.broadcast({ type: 'peerRestarted', node: node.name });
      this.lastActive.peerRestarted(node.name); // their gates close (onGate)
      // Its failure is over: the node restarted and goes through its own start-up rules (sync, last-active),
      // possibly starting the apps it hosts. It counts alive now, not after membership's recovery
      // hysteresis, or this node would take over an app its restarted host is starting (two copies).
      const back = this.membership.restarted(node.name);
      if (back) this.onMembership(back, performance.now());
    }
  }

  /** One peer's networks as the heartbeat thread sees them (empty before it runs). */
  private links(peer: NodeConfig): LinkView[] {
    return this.engine?.snapshot().peers.find((x) => x.id === peer.id)?.links ?? [];
  }

  /**
   * After a dead agent (its apps stopped by clearLeftovers): the shared file systems it left mounted are
   * unmounted, so this node can take their disks again (it never registers while one is mounted). One
   * that cannot be unmounted is named, and its disk stays refused until an operator unmounts it.
   */
  private async unmountLeftovers(): Promise<void> {
    for (const o of this.db.list()) {
      for (const r of o.resources) {
        if (r.kind !== 'mount') continue;
        const mounted = await runCommand(['mountpoint', '-q', String(r.path)]).then(() => true, () => false);
        if (!mounted) continue;
        await this.resources.stop(r).then(
          () => this.log.warn({ tag: o.tag, resource: resourceName(r) }, 'file system left mounted by an earlier agent unmounted'),
          (e: unknown) => this.log.error({ tag: o.tag, resource: resourceName(r), err: String(e) },
            'file system left mounted by an earlier agent cannot be unmounted: this node will not take its disk until it is'),
        );
      }
    }
  }

  /**
   * Peers alive and acknowledging this node's heartbeats within `withinMs`: one membership and one
   * heartbeat snapshot for all of them (this runs every tick; a snapshot per peer was O(N²) a tick).
   */
  private heardBothWays(withinMs: number): number {
    const alive = new Set(this.membership.snapshot(performance.now()).peers.filter((p) => p.state === 'alive').map((p) => p.peer));
    const links = new Map((this.engine?.snapshot().peers ?? []).map((x) => [x.id, x.links]));
    return this.peers.filter((p) => alive.has(p.name) && peerHearsUs(links.get(p.id) ?? [], withinMs)).length;
  }

  /** The apps whose process runs on this node, for the aging monitor. */
  private runningApps(): { tag: string; pid: number }[] {
    return this.db.list().flatMap((o) => {
      const pid = this.flows.here(o.tag)?.pid;
      return typeof pid === 'number' ? [{ tag: o.tag, pid }] : [];
    });
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
      this.forceStart.delete(r.tag); // its gate opened as its record was written (onGate)
      const o = this.db.get(r.tag);
      const peer = o && (o.primary === this.self.name ? o.backup : o.primary);
      if (r.alone && peer && !this.isAlive(peer) && !this.unknownDeclared.has(peer)) {
        // Started alone as the last processor: the silent peer is failed as far as the flows go.
        this.unknownDeclared.add(peer);
        this.log.warn({ peer, tag: r.tag }, 'peer not heard: this node processed last and starts alone; the peer is treated as failed');
        this.replication.answered(peer);
        this.flows.broadcast({ type: 'peerFailed', node: peer });
      }
    }
    await this.flows.settlePairs();
    const digest = this.db.digest();
    for (const s of this.lastActive.status()) {
      if (s.state === 'SM' && this.isAlive(s.peer) && this.replication.digestOf(s.peer) === digest) await this.lastActive.slaveInSync(s.tag);
    }
    for (const p of this.peers) this.sendPairReports(p.name);
  }

  /** Before a decision to start writes its 1: the app's disks, as the flows' startResources claims them first. */
  private async claimDisks(tag: string): Promise<void> {
    for (const r of this.db.get(tag)?.resources ?? []) if (r.kind === 'disk') await this.resources.start(r);
  }

  private sendPairReports(peerName: string): void {
    const peer = this.peers.find((p) => p.name === peerName);
    const reports = this.lastActive.reports(peerName, performance.now());
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
        this.clockSampler.peerAlive(e.peer);
        this.membershipChain = this.membershipChain.then(() => {
          this.unknownDeclared.delete(e.peer);
          this.replication.sendDigest(e.peer, true);
          this.sendPairReports(e.peer);
          this.flows.broadcast({ type: 'peerAlive', node: e.peer });
        });
        break;
      case 'peerFailed':
        this.log.warn({ peer: e.peer }, e.declared ? `peer failed: ${e.declared}` : 'peer failed: every channel silent');
        this.failoverTimes.peerFailed(e.peer, e.silentMs);
        // The survivor's priority is durable before any flow acts on the failure (seed 003 write-ahead).
        this.membershipChain = this.membershipChain.then(async () => {
          const pairs = await this.lastActive.peerFailed(e.peer).catch((err: unknown) => {
            this.log.error({ peer: e.peer, err: String(err) }, 'priority write on a peer failure failed: not taking over');
            return undefined;
          });
          this.replication.answered(e.peer);
          if (pairs) this.flows.broadcast({ type: 'peerFailed', node: e.peer });
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

  // ---- the database ----

  private registerConfiguredApps(): void {
    for (const app of this.config.apps) {
      if (app.primary !== this.self.name) continue; // the primary registers; the others learn it by sync
      const spec = {
        tag: app.tag, type: app.type,
        command: {
          argv: app.command, ...(app.cwd ? { cwd: app.cwd } : {}), ...(Object.keys(app.env).length ? { env: app.env } : {}),
          ...(app.user ? { user: app.user } : {}), ...(app.group ? { group: app.group } : {}), ...(app.groups ? { groups: app.groups } : {}),
        },
        primary: app.primary, backup: app.backup,
        resources: app.resources as unknown as ResourceSpec[], autoRecover: app.autoRecover, attributes: app.attributes,
      };
      const existing = this.db.get(app.tag);
      try {
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
      } catch (e) {
        if (!(e instanceof DbWriteError)) throw e;
        this.log.error({ tag: app.tag, err: e.message }, 'not registered from the configuration');
      }
    }
    this.replication.persist();
  }

  private onMessage({ from, message, incarnation }: Received): void {
    if (this.distress.ignores(from.name, incarnation)) return;
    try {
      if (message.kind === 'pair') {
        for (const r of message.reports) {
          const report = parsePairReport(r);
          if (report) this.lastActive.onReport(report, performance.now()); // a slave deciding again closes its gate (onGate)
        }
      } else if (message.kind === 'view') {
        const view = parsePublishedView(message);
        if (view) this.selfFence.onView(from.name, view);
        if (message.sentAtMs !== undefined) this.peerClocks.onSample(from.name, message.sentAtMs, Date.now());
      } else {
        this.replication.receive(from, message);
      }
      this.replication.checkSynced(from.name);
    } catch (e) {
      this.log.warn({ from: from.name, err: e instanceof Error ? e.message : String(e) }, 'agent message refused');
    }
  }

  status(): StatusLike {
    const now = performance.now();
    const m = this.membership.snapshot(now);
    const hb = this.engine?.snapshot();
    const pairs = new Map(this.lastActive.status().map((p) => [p.tag, p]));
    const sender = this.distress.senderSnapshot();
    return {
      cluster: this.config.cluster,
      node: this.self.name,
      incarnation: String(this.incarnation),
      uptimeMs: Math.round(now - this.startedAt),
      ownStallMs: m.ownStallMs, noticeCounts: { ...this.notices.counts },
      peers: m.peers.map((p) => {
        const node = this.peers.find((n) => n.name === p.peer)!;
        const links = hb?.peers.find((x) => x.id === node.id)?.links ?? [];
        const measured = links.filter((l) => l.rttUs >= 0).map((l) => l.rttUs);
        const clock = this.peerClocks.of(p.peer, Date.now(), measured.length > 0 ? Math.min(...measured) : undefined);
        return {
          ...p,
          links: links.map((l) => ({ network: this.config.networks[l.network]?.name, heardAgoMs: l.heardAgoMs, ackedAgoMs: l.ackedAgoMs, rttUs: l.rttUs, loss: this.linkLoss.loss(`${node.id}/${l.network}`) })),
          ...(clock ? { clock } : {}),
        };
      }),
      heartbeat: hb && { sent: hb.sent, received: hb.received, sendErrors: hb.sendErrors, dropped: hb.dropped, realtime: hb.realtime, leaseLapsed: hb.leaseLapsed },
      watchdog: watchdogStatus(this.watchdog?.snapshot()),
      view: this.selfFence.status(),
      messages: { sent: this.messenger.sent, received: this.messenger.received, dropped: this.messenger.dropped },
      apps: this.db.list().map((o) => {
        const pair = pairs.get(o.tag);
        return {
          lastActive: pair && { state: pair.state, priority: pair.priority, decision: pair.decision },
          tag: o.tag, type: o.type, host: o.host, primary: o.primary, backup: o.backup, phase: o.phase, faults: o.faults, switchover: o.switchover, keepOff: o.keepOff, autoRecover: o.autoRecover,
          version: o.version,
          here: this.flows.here(o.tag),
          prompt: this.flows.prompt(o.tag),
          resources: o.resources.map(resourceName),
        };
      }),
      notices: this.notices.recent(),
      out: this.out ?? null,
      distress: sender && { armed: sender.armed, realtime: sender.realtime },
      aging: this.aging?.status() ?? null,
      rejuvenation: this.rejuvenator ? { auto: this.config.rejuvenation.auto, mode: this.config.rejuvenation.mode, ladder: this.config.rejuvenation.ladder, nodes: this.db.nodeRecords() } : null,
    };
  }

  /**
   * status() and what only the metrics show: the last failovers, the power fences and sources, and the
   * shared disks' reservations, read now (SCSI commands, as `vigil status` does), for at most
   * DISK_READ_FOR_METRICS_MS: a unit that hangs costs its own samples, not the whole scrape.
   */
  async metricsStatus(): Promise<StatusLike> {
    const now = performance.now();
    const power = this.power?.status();
    return {
      ...this.status(),
      failovers: this.failoverTimes.list(),
      powerFence: this.powerFence.fenceStatus(now, KEPT_OFF_HOLDS_MS),
      power: power ? power.sources.map((s) => ({ source: s.source, connected: s.connected, state: s.state ?? null })) : null,
      diskMetrics: await this.diskMetrics(),
    };
  }

  private async diskMetrics(): Promise<DiskMetricsStatus[]> {
    const disks = this.disks;
    if (!disks) return [];
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => { timer = setTimeout(resolve, DISK_READ_FOR_METRICS_MS, undefined); });
    const described = await Promise.race([disks.describe().catch(() => undefined), late]).finally(() => clearTimeout(timer));
    const read = new Map((described ?? []).map((d) => [(d as { disk: string }).disk, d as { error?: unknown; holder?: string | null }]));
    const hostOf = (disk: string) => this.db.list().find((o) => o.host !== null && o.resources.some((r) => (r.kind === 'disk' || r.kind === 'mount') && r.disk === disk))?.host ?? null;
    return disks.counters().map((c) => {
      const d = read.get(c.disk);
      const readable = d !== undefined && d.error === undefined;
      return { disk: c.disk, readable, holder: readable ? d.holder ?? null : null, expected: hostOf(c.disk), fenced: c.fenced, preempts: c.preempts, resets: c.resets };
    });
  }
}

export function diskChannel(disk: string): string {
  return `disk:${disk}`;
}

async function groupId(name: string | undefined): Promise<number | undefined> {
  if (name === undefined) return undefined;
  const line = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.split(':')[0] === name);
  if (!line) throw new Error(`control group ${name}: no such group in /etc/group`);
  return Number(line.split(':')[2]);
}

// The Prometheus endpoint (config `metrics.listen`): GET /metrics in the text exposition format, 404 for
// anything else. A private registry (never prom-client's global one) whose collect() callbacks read one
// Agent.metricsStatus() snapshot taken when the scrape arrives: no timers, nothing computed between scrapes.
// Every metric is in docs/cluster.md's table; hw-fixtures/prometheus/vigil-alerts.yml alerts on them.
// Counters mirror the agent's own monotonic counts (set, not incremented, at each scrape). What the
// snapshot lacks (no heartbeat engine yet, no ownStallMs) reads 0 for an unlabelled metric, no sample
// for a labelled one.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

import type { AgentLog } from './log.js';
import { POWER_STATES } from '../power/source.js';
import type { AgingJudgementStatus } from './aging.js';
import { NODE_STATES } from '../db/node-record.js';
import { FAILOVER_PHASES } from './failover-times.js';
import type { DiskMetricsStatus, NoticeStatus, StatusLike } from './status.js';

export interface MetricsListen {
  host: string;
  /** 0: any free port (tests); the bound one is returned. */
  port: number;
}

export interface MetricsServer {
  /** The port actually bound. */
  readonly port: number;
  /** Stops listening and drops open (keep-alive) connections. */
  close(): Promise<void>;
}

const PEER_STATES = ['unknown', 'alive', 'failed'] as const;
const CHANNEL_STATES = ['unknown', 'up', 'down', 'idle'] as const;
const FENCE_RESULTS = ['off', 'failed', 'moot'] as const;

/** The status may be computed (the metrics read the disks): a source returns it or its promise. */
export type StatusSource = () => StatusLike | Promise<StatusLike>;

/** One sample: its labels (prom-client checks their names against the metric's) and value. */
type Sample = [labels: Record<string, string>, value: number];
const smp = (labels: Record<string, string>, value: number): Sample => [labels, value];

/** Builds the registry; `source` is called once per scrape (by `scrape`), the collectors read its result. */
export function metricsRegistry(source: StatusSource): { registry: Registry; scrape(): Promise<string> } {
  const registry = new Registry();
  const registers = [registry];
  let s: StatusLike | undefined;
  const status = (): StatusLike => {
    if (!s) throw new Error('metrics collected outside a scrape');
    return s;
  };
  const notices = new NoticeTally();

  /** A counter whose value is the agent's own count (the agent never decreases one). */
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], samples: (st: StatusLike) => Sample[]) =>
    new Counter<L>({
      name, help, labelNames, registers,
      collect() {
        this.reset();
        for (const [labels, v] of samples(status())) this.inc(labels as Partial<Record<L, string>>, Math.max(0, v));
      },
    });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], samples: (st: StatusLike) => Sample[]) =>
    new Gauge<L>({
      name, help, labelNames, registers,
      collect() {
        this.reset();
        for (const [labels, v] of samples(status())) this.set(labels as Partial<Record<L, string>>, v);
      },
    });

  gauge('vigil_uptime_seconds', 'Seconds since this agent started', [], (st) => [smp({}, st.uptimeMs / 1000)]);

  // ---- membership ----
  gauge('vigil_peer_up', 'Whether the peer is alive (1) or failed/not heard since start-up (0)', ['peer'],
    (st) => st.peers.map((p) => smp({ peer: p.peer }, p.state === 'alive' ? 1 : 0)));
  gauge('vigil_peer_state', "The peer's membership state: 1 for the current state, 0 for the others", ['peer', 'state'],
    (st) => st.peers.flatMap((p) => PEER_STATES.map((state) => smp({ peer: p.peer, state }, p.state === state ? 1 : 0))));
  gauge('vigil_channel_up', 'Whether the channel (network or disk heartbeat) to the peer is up (1) or down/unknown/idle (0)', ['peer', 'channel'],
    (st) => st.peers.flatMap((p) => p.channels.map((c) => smp({ peer: p.peer, channel: c.channel }, c.state === 'up' ? 1 : 0))));
  gauge('vigil_channel_state', "The channel's state: 1 for the current one (down: silent while expected; idle: a disk heartbeat nobody pulses on), 0 for the others",
    ['peer', 'channel', 'state'],
    (st) => st.peers.flatMap((p) => p.channels.flatMap((c) => CHANNEL_STATES.map((state) => smp({ peer: p.peer, channel: c.channel, state }, c.state === state ? 1 : 0)))));
  gauge('vigil_channel_heard_age_seconds', 'Seconds since the last authentic heartbeat from the peer on this network (absent: never)', ['peer', 'network'],
    (st) => st.peers.flatMap((p) => p.links.filter((l) => l.heardAgoMs >= 0)
      .map((l) => smp({ peer: p.peer, network: l.network ?? '' }, l.heardAgoMs / 1000))));
  gauge('vigil_channel_rtt_seconds', 'Round trip of the latest acknowledged heartbeat on this network (absent: never measured)', ['peer', 'network'],
    (st) => st.peers.flatMap((p) => p.links.filter((l) => l.rttUs >= 0)
      .map((l) => smp({ peer: p.peer, network: l.network ?? '' }, l.rttUs / 1e6))));
  gauge('vigil_channel_loss_ratio', "The share of the peer's heartbeats lost on this network over the agent's last 10 s (absent: too little heard yet)", ['peer', 'network'],
    (st) => st.peers.flatMap((p) => p.links.filter((l) => typeof l.loss === 'number')
      .map((l) => smp({ peer: p.peer, network: l.network ?? '' }, l.loss!))));
  counter('vigil_own_stall_seconds_total', "This agent's own event-loop stalls, discounted from peers' silence", [],
    (st) => (st.ownStallMs === undefined ? [] : [smp({}, st.ownStallMs / 1000)]));

  // ---- the heartbeat thread (0 until it started) ----
  const hb = (f: (h: NonNullable<StatusLike['heartbeat']>) => number) => (st: StatusLike): Sample[] =>
    (st.heartbeat ? [smp({}, f(st.heartbeat))] : []);
  counter('vigil_heartbeats_sent_total', 'Heartbeat datagrams sent (all peers, all networks)', [], hb((h) => h.sent));
  counter('vigil_heartbeats_received_total', 'Authentic heartbeat datagrams received', [], hb((h) => h.received));
  counter('vigil_heartbeat_send_errors_total', 'Heartbeat sends the kernel refused', [], hb((h) => h.sendErrors));
  counter('vigil_heartbeat_lease_lapsed_total', 'Heartbeat rounds skipped because the agent had not renewed its lease', [], hb((h) => h.leaseLapsed));
  gauge('vigil_heartbeat_realtime', 'Whether the heartbeat thread runs at SCHED_FIFO (1) or normal priority (0)', [], hb((h) => (h.realtime ? 1 : 0)));
  counter('vigil_heartbeat_drops_total', 'Heartbeat datagrams dropped, by reason', ['reason'],
    (st) => Object.entries(st.heartbeat?.dropped ?? {}).map(([reason, v]) => smp({ reason }, v)));

  // ---- agent messages ----
  counter('vigil_messages_sent_total', 'Agent messages sent', [], (st) => [smp({}, st.messages.sent)]);
  counter('vigil_messages_received_total', 'Agent messages received and accepted', [], (st) => [smp({}, st.messages.received)]);
  counter('vigil_messages_dropped_total', 'Agent messages dropped, by reason', ['reason'],
    (st) => Object.entries(st.messages.dropped).map(([reason, v]) => smp({ reason }, v)));

  // ---- applications ----
  gauge('vigil_app_hosted_here', 'Whether HOST of the application is this node', ['tag'],
    (st) => st.apps.map((a) => smp({ tag: a.tag }, a.host === st.node ? 1 : 0)));
  gauge('vigil_app_running', 'Whether the application runs on this node (started and released)', ['tag'],
    (st) => st.apps.map((a) => smp({ tag: a.tag }, a.here?.app === 'up' ? 1 : 0)));
  gauge('vigil_app_info', "The application's replicated record (host '' when unloaded); always 1", ['tag', 'host', 'primary', 'backup', 'phase'],
    (st) => st.apps.map((a) => smp({ tag: a.tag, host: a.host ?? '', primary: a.primary, backup: a.backup, phase: a.phase }, 1)));
  gauge('vigil_app_faulted', 'Whether the application carries a fault mark for the node (it goes there only after a load clears it)', ['tag', 'node'],
    (st) => st.apps.flatMap((a) => [a.primary, a.backup].map((node) => smp({ tag: a.tag, node }, a.faults.includes(node) ? 1 : 0))));

  // ---- notices ----
  const noticeCounts = (st: StatusLike): Record<string, number> => st.noticeCounts ?? notices.update(st.notices);
  counter('vigil_notices_total', 'Operator notices raised on this node, by kind', ['notice'],
    (st) => Object.entries(noticeCounts(st)).map(([notice, v]) => smp({ notice }, v)));
  counter('vigil_failovers_total', 'Failovers completed by this node (as the backup taking over)', [], (st) => [smp({}, noticeCounts(st)['failover-complete'] ?? 0)]);
  counter('vigil_failbacks_total', 'Failbacks completed on this node (as the primary taking its app back)', [], (st) => [smp({}, noticeCounts(st)['failback-complete'] ?? 0)]);

  // ---- distress (seed 002) ----
  gauge('vigil_out_of_cluster', 'Whether this node sent distress and stays out of the cluster until vigil rejoin', [],
    (st) => (st.out === undefined ? [] : [smp({}, st.out ? 1 : 0)]));
  gauge('vigil_distress_armed', 'Whether the distress sender is armed (0 while the node is out: nothing to send)', [],
    (st) => [smp({}, st.distress?.armed ? 1 : 0)]);
  counter('vigil_distress_received_total', 'Distress messages from peers acted on (each failed its sender over at once)', [],
    (st) => [smp({}, noticeCounts(st)['peer-distress'] ?? 0)]);
  counter('vigil_distress_sent_total', 'Distress sent by this node (it then left the cluster); counted by this agent since it started', [],
    (st) => [smp({}, noticeCounts(st)['distress-sent'] ?? 0)]);

  // ---- the last failover of each app by this node, by phase (failover-times.ts) ----
  gauge('vigil_last_failover_seconds', "This node's last completed failover of the app, by phase (total: the last sign of life of the old host, or the takeover's start, to failover-complete)",
    ['tag', 'phase'],
    (st) => (st.failovers ?? []).flatMap((f) => FAILOVER_PHASES.flatMap((phase) => {
      const ms = f.phases[phase];
      return ms === undefined ? [] : [smp({ tag: f.tag, phase }, ms / 1000)];
    })));
  gauge('vigil_last_failover_timestamp_seconds', "When this node's last failover of the app completed (Unix time)", ['tag'],
    (st) => (st.failovers ?? []).map((f) => smp({ tag: f.tag }, f.completedAt / 1000)));

  // ---- fencing: power fences through the peers' BMCs, the shared disks ----
  counter('vigil_power_fences_total', "Power fences of the peer by this node, by how they ended: off (confirmed by the BMC), failed, moot (heard again during the race delay)",
    ['peer', 'result'],
    (st) => (st.powerFence ?? []).flatMap((f) => FENCE_RESULTS.map((result) => smp({ peer: f.node, result }, f.counts[result]))));
  gauge('vigil_power_fence_in_progress', 'Whether a power fence of the peer by this node is under way', ['peer'],
    (st) => (st.powerFence ?? []).map((f) => smp({ peer: f.node }, f.inProgress ? 1 : 0)));
  gauge('vigil_peer_fenced_off', "Whether the peer was powered off by this node's fence and its BMC, re-read every 2 s, still says off", ['peer'],
    (st) => (st.powerFence ?? []).map((f) => smp({ peer: f.node }, f.keptOff ? 1 : 0)));
  const disk = (f: (d: DiskMetricsStatus) => number | null) => (st: StatusLike): Sample[] =>
    (st.diskMetrics ?? []).flatMap((d) => {
      const v = f(d);
      return v === null ? [] : [smp({ disk: d.disk }, v)];
    });
  gauge('vigil_disk_readable', 'Whether this scrape read the reservation of the shared disk', ['disk'], disk((d) => (d.readable ? 1 : 0)));
  gauge('vigil_disk_reservation_holder', "Who holds the disk's reservation as this node reads it (holder: a node, a foreign key 0x…, 'another initiator' (SCSI-2), '' none); always 1",
    ['disk', 'holder'],
    (st) => (st.diskMetrics ?? []).filter((d) => d.readable).map((d) => smp({ disk: d.disk, holder: d.holder ?? '' }, 1)));
  gauge('vigil_disk_reservation_unexpected', "Whether the disk's holder is not the HOST of the app that uses it (or someone holds a disk no hosted app uses)", ['disk'],
    disk((d) => (d.readable ? (unexpectedHolder(d, status().node) ? 1 : 0) : null)));
  gauge('vigil_disk_fenced', "Whether this node was fenced off the disk (its key preempted, its SCSI-2 reservation taken)", ['disk'], disk((d) => (d.fenced ? 1 : 0)));
  counter('vigil_disk_preempts_total', 'Keys this node removed from the disk (PREEMPT [AND ABORT]: takeovers, fencing a sender of distress)', ['disk'], disk((d) => d.preempts));
  counter('vigil_disk_resets_total', "Resets this node sent to break the disk's SCSI-2 reservation", ['disk'], disk((d) => d.resets));

  // ---- power sources (the `power:` section) ----
  gauge('vigil_power_source_state', "The power source's last known state: 1 for the current one, 0 for the others (none before its first answer)",
    ['source', 'state'],
    (st) => (st.power ?? []).flatMap((p) => (p.state === null ? [] : POWER_STATES.map((state) => smp({ source: p.source, state }, p.state === state ? 1 : 0)))));
  gauge('vigil_power_source_connected', 'Whether the power source gets answers from its UPS (or upsd)', ['source'],
    (st) => (st.power ?? []).map((p) => smp({ source: p.source }, p.connected ? 1 : 0)));

  // ---- the node's watchdog and view (docs/ipmi.md) ----
  // Labelled by kind (ipmi, device), so that a node without a watchdog has no samples rather than zeros.
  const wd = (f: (w: NonNullable<StatusLike['watchdog']>) => number | null) => (st: StatusLike): Sample[] => {
    const v = st.watchdog ? f(st.watchdog) : null;
    return v === null || !st.watchdog ? [] : [smp({ kind: st.watchdog.kind }, v)];
  };
  gauge('vigil_watchdog_armed', 'Whether a watchdog is armed (absent: none configured or the node is out)', ['kind'], wd((w) => (w.armed ? 1 : 0)));
  gauge('vigil_watchdog_resets_node', "Whether the watchdog's expiry resets the node (an IPMI action none, or a countdown that does not run, resets nothing)", ['kind'],
    wd((w) => (w.resets ? 1 : 0)));
  gauge('vigil_watchdog_countdown_running', "Whether the BMC's watchdog countdown was read back running after arming (IPMI only)", ['kind'],
    wd((w) => (w.countdown ? (w.countdown.counts ? 1 : 0) : null)));
  gauge('vigil_watchdog_timeout_seconds', "The watchdog's timeout", ['kind'], wd((w) => w.timeoutMs / 1000));
  counter('vigil_watchdog_tickles_total', 'Watchdog tickles sent', ['kind'], wd((w) => w.tickles));
  counter('vigil_watchdog_tickles_withheld_total', "Watchdog tickle times that passed with the agent's lease run out (a hung agent, or a lost view): the countdown ran on", ['kind'], wd((w) => w.withheld));
  counter('vigil_watchdog_tickle_errors_total', 'Watchdog tickles the device or BMC refused', ['kind'], wd((w) => w.tickleErrors));
  gauge('vigil_view_valid', "Whether this node's cluster view is valid (invalid: it no longer renews its watchdog's lease, which resets a node whose watchdog resets)", [],
    (st) => (st.view ? [smp({}, st.view.valid ? 1 : 0)] : []));

  // ---- aging (seed 000): one sample per judged signal; app '' for the node's own ----
  const aging = (f: (j: AgingJudgementStatus) => number | null) => (st: StatusLike): Sample[] => {
    const a = st.aging;
    if (!a) return [];
    const subjects = [{ app: '', signals: a.node }, ...a.apps.map((x) => ({ app: x.tag, signals: x.signals }))];
    return subjects.flatMap(({ app, signals }) => signals.flatMap((j) => {
      const v = f(j);
      return v === null ? [] : [smp({ signal: j.signal, app }, v)];
    }));
  };
  gauge('vigil_aging_unstable', 'Whether the aging monitor judges the signal unstable (1): its condition held for the hold time', ['signal', 'app'],
    aging((j) => (j.state === 'unstable' ? 1 : 0)));
  gauge('vigil_aging_value', "The signal's latest reading (bytes, load per CPU, seconds or a count)", ['signal', 'app'], aging((j) => j.value));
  gauge('vigil_aging_slope_per_hour', "The signal's robust trend (Theil–Sen) in its unit per hour (absent: too few samples)", ['signal', 'app'],
    aging((j) => j.slopePerHour));
  gauge('vigil_aging_eta_seconds', 'Estimated seconds until the signal reaches its limit at its trend (absent: not heading there)', ['signal', 'app'],
    aging((j) => (j.etaMs === null ? null : j.etaMs / 1000)));

  // ---- rejuvenation (seed 000): the available-server list as this node's replica holds it ----
  const listed = (st: StatusLike) => st.rejuvenation?.nodes ?? [];
  gauge('vigil_node_list_state', "A node's state in the available-server list: 1 for the current state, 0 for the others", ['node', 'state'],
    (st) => listed(st).flatMap((r) => NODE_STATES.map((state) => smp({ node: r.node, state }, r.state === state ? 1 : 0))));
  gauge('vigil_rejuvenation_last_end_timestamp_seconds', "When the node's last rejuvenation ended (the time between rejuvenations: its changes)", ['node', 'outcome'],
    (st) => listed(st).flatMap((r) => (r.rejuvenation?.endedAt && r.rejuvenation.outcome ? [smp({ node: r.node, outcome: r.rejuvenation.outcome }, r.rejuvenation.endedAt / 1000)] : [])));
  gauge('vigil_rejuvenation_last_duration_seconds', "How long the node's last rejuvenation took, from its decision to its end", ['node', 'outcome'],
    (st) => listed(st).flatMap((r) => (r.rejuvenation?.endedAt && r.rejuvenation.outcome ? [smp({ node: r.node, outcome: r.rejuvenation.outcome }, (r.rejuvenation.endedAt - r.rejuvenation.startedAt) / 1000)] : [])));
  gauge('vigil_switchover_gap_seconds', "The app's last planned switchover's service gap (the source's stop to the target's start)", ['tag', 'from', 'to'],
    (st) => st.apps.flatMap((a) => (a.switchover?.gapMs !== undefined ? [smp({ tag: a.tag, from: a.switchover.from, to: a.switchover.to }, a.switchover.gapMs / 1000)] : [])));

  // The process itself (process_*, nodejs_*: the names dashboards expect, hence no vigil_ prefix).
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    async scrape() {
      s = await source(); // throws here, before any collector ran, if the agent cannot answer
      try {
        return await registry.metrics();
      } finally {
        s = undefined;
      }
    },
  };
}

/**
 * A holder this node would not expect: not the HOST of the app using the disk. SCSI-2 cannot name another
 * holder ('another initiator'): that is unexpected only where nobody, or this node, should hold it.
 */
function unexpectedHolder(d: DiskMetricsStatus, self: string): boolean {
  if (d.holder === 'another initiator') return d.expected === null || d.expected === self;
  return d.holder !== d.expected;
}

/**
 * Counts notices when the agent reports only its latest ones (no noticeCounts): each scrape counts the
 * notices after the last one the previous scrape saw. A lower bound if more notices than the list holds
 * arrive between two scrapes; exact when the agent keeps counts itself.
 */
class NoticeTally {
  private readonly counts: Record<string, number> = {};
  private lastKey: string | undefined;
  private memo: { list: NoticeStatus[]; counts: Record<string, number> } | undefined;

  update(list: NoticeStatus[]): Record<string, number> {
    if (this.memo?.list === list) return this.memo.counts; // several collectors read the same snapshot
    const key = (n: NoticeStatus) => `${n.at}\0${n.tag}\0${n.notice}\0${n.message}`;
    let start = 0;
    if (this.lastKey !== undefined) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (key(list[i]!) === this.lastKey) {
          start = i + 1;
          break;
        }
      }
    }
    for (const n of list.slice(start)) this.counts[n.notice] = (this.counts[n.notice] ?? 0) + 1;
    const last = list.at(-1);
    if (last) this.lastKey = key(last);
    this.memo = { list, counts: this.counts };
    return this.counts;
  }
}

/** Serves the metrics on `listen`; resolves once bound (rejects on EADDRINUSE and the like). */
export async function startMetrics(listen: MetricsListen, source: StatusSource, log: AgentLog): Promise<MetricsServer> {
  const { registry, scrape } = metricsRegistry(source);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: try GET /metrics\n');
      return;
    }
    scrape().then((body) => {
      res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    }, (e: unknown) => {
      const err = e instanceof Error ? e.message : String(e);
      log.warn({ err }, 'metrics: scrape failed');
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`status unavailable: ${err}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log.error({ err: e.message }, 'metrics: server error'));
  const port = (server.address() as AddressInfo).port;
  log.info({ host: listen.host, port }, 'metrics: serving /metrics');
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

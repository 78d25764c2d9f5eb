// The shape of Agent.status(): what `vigil status` prints (over the control socket) and what the
// Prometheus endpoint (metrics.ts) reads at scrape time. Types only.
import type { AsyncAction, FlowState } from '../db/flows.js';
import type { AppType, Phase, SwitchoverRecord } from '../db/object.js';
import type { PeerSnapshot } from '../membership/membership.js';
import type { HeartbeatSnapshot } from '../native.js';
import type { PowerState } from '../power/source.js';
import type { NodeRecord } from '../db/node-record.js';
import type { AgingStatus } from './aging.js';
import type { LastFailover } from './failover-times.js';
import type { PeerClock } from './peer-clocks.js';
import type { FenceCounts } from './power-fence.js';

/** One network's view of a peer, from the native heartbeat thread. */
export interface LinkStatus {
  /** The configured network's name (undefined only if the engine reports an index the config lacks). */
  network: string | undefined;
  /** Milliseconds since the last authentic heartbeat from the peer on this network; -1 never. */
  heardAgoMs: number;
  /** Milliseconds since the peer last acknowledged one of ours on this network; -1 never. */
  ackedAgoMs: number;
  /** Round trip of the latest acknowledged heartbeat, microseconds; -1 never measured. */
  rttUs: number;
  /** The share of its heartbeats lost on this network over the last 10 s (0..1); null: too little heard yet (link-loss.ts). */
  loss?: number | null;
}

export interface PeerStatus extends PeerSnapshot {
  links: LinkStatus[];
  /** Its wall clock against this node's (peer-clocks.ts); absent until it has sent one (or from an older agent). */
  clock?: PeerClock;
}

export interface HeartbeatStatus {
  sent: number;
  received: number;
  sendErrors: number;
  dropped: HeartbeatSnapshot['dropped'];
  realtime: boolean;
  leaseLapsed: number;
}

export interface MessagesStatus {
  sent: number;
  received: number;
  dropped: Record<string, number>;
}

/** What this node does about the app (undefined: no flow for it yet). */
export interface AppHereStatus {
  app: FlowState['app'];
  resources: FlowState['resources'];
  pending: AsyncAction['kind'] | null;
  halted: string | null;
  /** The flow waits for this pair's last-active decision (its gate is closed): it starts nothing. */
  gated: boolean;
  pid: number | null;
}

export interface AppStatus {
  tag: string;
  type: AppType;
  host: string | null;
  primary: string;
  backup: string;
  phase: Phase;
  /** Nodes where the app faulted and no load has cleared the mark since: it does not go there. */
  faults: string[];
  /** The last planned switchover (its times and service gap), absent when there was none. */
  switchover?: SwitchoverRecord | undefined;
  /** The node a drain keeps the app off (vigil drain), absent when none. */
  keepOff?: string | undefined;
  /** This node's place in the app's last-active chart (seed 003); absent when it is not in the pair. */
  lastActive?: { state: string; priority: number | null; decision: string | null } | undefined;
  autoRecover: boolean;
  version: number;
  here: AppHereStatus | undefined;
  /** The failback question waiting for the operator on this node, if any. */
  prompt: string | null;
  resources: string[];
}

/** One shared disk as this node sees it, read when the metrics are scraped (Agent.metricsStatus). */
export interface DiskMetricsStatus {
  disk: string;
  /** The reservation was read (false: the unit is not open, or the read failed or took too long). */
  readable: boolean;
  /** Its holder: a node's name, a key no node has (0x…), 'another initiator' (SCSI-2, not this node), null: none. */
  holder: string | null;
  /** Who should hold it: HOST of the app whose resources use it; null when no app using it is hosted. */
  expected: string | null;
  /** This node was fenced off it (its key preempted, its SCSI-2 reservation taken). */
  fenced: boolean;
  /** Keys this node removed from it, resets this node sent to break a SCSI-2 reservation on it. */
  preempts: number;
  resets: number;
}

/** Structurally Agent's Notice. */
export interface NoticeStatus {
  at: string;
  tag: string;
  notice: string;
  message: string;
}

export interface StatusLike {
  cluster: string;
  node: string;
  incarnation: string;
  uptimeMs: number;
  peers: PeerStatus[];
  /** undefined before the heartbeat engine started. */
  heartbeat: HeartbeatStatus | undefined;
  messages: MessagesStatus;
  apps: AppStatus[];
  /** The latest notices (the agent keeps a bounded list). */
  notices: NoticeStatus[];
  /** Membership's total own event-loop stall discounted so far (MembershipSnapshot.ownStallMs). Optional. */
  ownStallMs?: number;
  /** Notices counted by kind since the agent started, never trimmed: the source of counters. Optional. */
  noticeCounts?: Record<string, number>;
  /** Set when this node sent distress and stays out of the cluster until `vigil rejoin` (seed 002). */
  out?: { since: string; reason: string; source: string; text: string } | null;
  /** The armed distress sender; null when not armed (the node is out). */
  distress?: { armed: boolean; realtime: boolean } | null;
  /** The node's watchdog (src/daemon/watchdog.ts); null when none is armed. */
  watchdog?: { path: string; kind: string; timeoutMs: number; armed: boolean; resets: boolean; countdown?: { counts: boolean; why: string }; tickles: number; withheld: number; tickleErrors: number } | null;
  /**
   * This node's view for watchdog self-fencing (src/daemon/self-fence.ts): valid or not and why, its
   * published watchdog bound (ms from a cut to its reset; null: none), and what each peer published.
   */
  view?: { valid: boolean; bound: boolean; why: string; watchdogBoundMs: number | null; peers: Record<string, { watchdogBoundMs: number | null; bound: boolean }> };
  /** The aging monitor's judgements (src/daemon/aging.ts); null when it is off (or the node is out). Optional. */
  aging?: AgingStatus | null;
  /** The available-server list and this node's rejuvenation settings (docs/rejuvenation.md); null while out. Optional. */
  rejuvenation?: { auto: boolean; mode: string; ladder: string[]; nodes: NodeRecord[] } | null;
  /** This node's last completed failover of each app, by phase (src/daemon/failover-times.ts). Optional. */
  failovers?: LastFailover[];
  /** Per peer with a BMC: this node's power fences of it (src/daemon/power-fence.ts). Optional. */
  powerFence?: { node: string; counts: FenceCounts; inProgress: boolean; keptOff: boolean }[];
  /** The node's power sources (the `power:` section); null without one. Optional. */
  power?: { source: string; connected: boolean; state: PowerState | null }[] | null;
  /** The shared disks; only in what the metrics read (it takes SCSI commands). Optional. */
  diskMetrics?: DiskMetricsStatus[];
}

// Between the config and the native distress sender (native/distress.h): the options that arm it for this
// node, built the way src/daemon/heartbeat.ts builds the heartbeat thread's. The agent creates the sender at
// start with these, re-arms it (`rearm({ key, incarnation, peers })`) when the key or the membership changes,
// and turns the snapshot's schedError / memoryLockError into warnings.
import type { Config, DistressConfig, NodeConfig } from '../config/schema.js';
import type { DistressSenderOptions } from '../native.js';
import { clusterTag } from './datagram.js';
import { DISTRESS_REASONS, reasonCode } from './distress.js';

/**
 * Where peers receive distress: the agents' message socket on each network (network port + 1,
 * src/daemon/messenger.ts), which already authenticates datagrams and can hand stream-2 ones to a
 * DistressReceiver. No new port to configure or open in a firewall, and the config keeps its rule that a
 * network uses its port and port + 1.
 */
export function distressPort(networkPort: number): number {
  return networkPort + 1;
}

export interface DistressArming {
  /** SCHED_FIFO priority of the sender's thread; 0 normal policy. */
  priority?: number;
  /** The thread's nice value when SCHED_FIFO is not granted. */
  nice?: number;
  repeats?: number;
  repeatGapUs?: number;
  slots?: number;
  lockMemory?: boolean;
}

/**
 * The configuration's `distress:` as the sender's arming. fatalSignals is not the sender's option: the agent
 * installs the handlers (installFatalHandlers) after creating the sender, when it is set. nice and slots are
 * not configurable; distressOptions' defaults stand.
 */
export function distressArming(d: DistressConfig): DistressArming {
  return { priority: d.priority, repeats: d.repeats, repeatGapUs: d.repeatGapUs, lockMemory: d.lockMemory };
}

/** Every reason this build knows, armed in REASON_CODES order. */
export function armedReasonCodes(): number[] {
  return DISTRESS_REASONS.map(reasonCode);
}

/** The peers' destinations: every other node, on every network, at distressPort(network port). */
export function distressPeers(config: Config, self: NodeConfig): DistressSenderOptions['peers'] {
  return config.nodes.filter((n) => n.id !== self.id).map((peer) => ({
    id: peer.id,
    addresses: config.networks.map((n, index) => ({ network: index, host: peer.addresses[n.name]!, port: distressPort(n.port) })),
  }));
}

export function distressOptions(config: Config, self: NodeConfig, key: Buffer, incarnation: bigint, o: DistressArming = {}): DistressSenderOptions {
  return {
    key,
    clusterTag: clusterTag(config.cluster),
    selfId: self.id,
    incarnation,
    reasons: armedReasonCodes(),
    slots: o.slots ?? 4,
    repeats: o.repeats ?? 3,
    repeatGapUs: o.repeatGapUs ?? 1000,
    priority: o.priority ?? 0,
    nice: o.nice ?? 0,
    lockMemory: o.lockMemory ?? true,
    networks: config.networks.map((n) => ({ bind: self.addresses[n.name]! })),
    peers: distressPeers(config, self),
  };
}

/** What the agent should log at start about how well the sender is armed; empty when all is as asked. */
export function distressWarnings(s: {
  priority: number; realtime: boolean; schedError: number; memoryLocked: boolean; memoryLockError: number;
  codeLocked: boolean; codeLockError: number;
}): string[] {
  const out: string[] = [];
  if (s.priority > 0 && !s.realtime) {
    out.push(`distress thread: SCHED_FIFO ${s.priority} refused (errno ${s.schedError}); running at normal priority (needs CAP_SYS_NICE or RLIMIT_RTPRIO)`);
  }
  if (!s.memoryLocked && s.memoryLockError !== 0) out.push(`distress sender: memory not locked (errno ${s.memoryLockError}); raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK`);
  if (!s.codeLocked && s.codeLockError !== 0) out.push(`distress sender: code pages not locked (errno ${s.codeLockError})`);
  return out;
}

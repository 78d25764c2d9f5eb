// Between the config and the native heartbeat thread: the thread's start options for this node, and the
// translation of its snapshot into membership observations ('net:<network>' channels).
import type { Config, NodeConfig } from '../config/schema.js';
import type { Membership } from '../membership/membership.js';
import type { HeartbeatEngineOptions, HeartbeatSnapshot } from '../native.js';
import { clusterTag } from '../wire/datagram.js';

/** The membership channel of a network. */
export function networkChannel(network: string): string {
  return `net:${network}`;
}

export function heartbeatOptions(config: Config, self: NodeConfig, key: Buffer, incarnation: bigint, priority = 0): HeartbeatEngineOptions {
  return {
    key,
    clusterTag: clusterTag(config.cluster),
    selfId: self.id,
    incarnation,
    intervalMs: config.timing.heartbeatIntervalMs,
    leaseMs: config.timing.agentLeaseMs,
    priority,
    networks: config.networks.map((n) => ({ bind: self.addresses[n.name]!, port: n.port })),
    peers: config.nodes.filter((n) => n !== self).map((peer) => ({
      id: peer.id,
      addresses: config.networks.map((n, index) => ({ network: index, host: peer.addresses[n.name]!, port: n.port })),
    })),
  };
}

/**
 * Records in `membership` every link the thread heard from, stamped `now - heardAgoMs` on the caller's
 * clock (the thread's ages need no shared clock). Returns the peers' database digests by node name.
 * `ignore` drops a peer's heartbeats from a given incarnation (one that sent distress).
 */
export function observeHeartbeats(
  snapshot: HeartbeatSnapshot, config: Config, membership: Membership, now: number,
  ignore: (node: string, incarnation: bigint) => boolean = () => false,
): Map<string, number> {
  const digests = new Map<string, number>();
  for (const peer of snapshot.peers) {
    const node = config.nodes.find((n) => n.id === peer.id);
    if (!node || ignore(node.name, peer.incarnation)) continue;
    let heard = false;
    for (const link of peer.links) {
      const network = config.networks[link.network];
      if (!network || link.heardAgoMs < 0) continue;
      membership.observe(node.name, networkChannel(network.name), now - link.heardAgoMs);
      heard = true;
    }
    if (heard) digests.set(node.name, peer.digest);
  }
  return digests;
}

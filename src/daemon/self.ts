// Which configured node this process is. An operator names it (`vigild --node b`); otherwise the host
// name is tried, then the machine's own addresses: the node whose address on some network is configured
// on a local interface. Two matches, or none, is an error naming what was tried, never a guess: a
// node that believes it is another would answer for it.
import { hostname, networkInterfaces } from 'node:os';

import type { Config, NodeConfig } from '../config/schema.js';

export class SelfError extends Error {}

export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address);
  }
  return out;
}

export function resolveSelf(config: Config, named?: string, host = hostname(), addresses = localAddresses()): NodeConfig {
  const names = config.nodes.map((n) => n.name).join(', ');
  if (named !== undefined) {
    const node = config.nodes.find((n) => n.name === named);
    if (!node) throw new SelfError(`--node ${named}: not a node of cluster ${config.cluster} (nodes: ${names})`);
    return node;
  }
  const short = host.split('.')[0];
  const byName = config.nodes.find((n) => n.name === host || n.name === short);
  if (byName) return byName;
  const byAddress = config.nodes.filter((n) => Object.values(n.addresses).some((a) => addresses.has(a)));
  if (byAddress.length === 1) return byAddress[0]!;
  if (byAddress.length > 1) {
    throw new SelfError(`this machine has addresses of several nodes (${byAddress.map((n) => n.name).join(', ')}); say which with --node`);
  }
  throw new SelfError(`cannot tell which node this is: host name ${host} is not one of ${names} and no node's address is configured here; say which with --node`);
}

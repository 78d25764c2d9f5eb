// One-direction cuts and lossy links, with nftables in the node's namespace. This kernel has no traffic
// control schedulers at all (CONFIG_NET_SCHED is not set: no netem, no prio, no u32), so `tc netem` cannot
// delay, reorder or drop here; netfilter can drop, exactly or at random (numgen). Only UDP is dropped: the
// cluster's heartbeats and messages are UDP, and ARP keeps working, so a one-direction cut stays one
// direction (dropping ARP replies would soon stop the other direction too, once the peer's neighbour
// entry expires).
import type { Rig } from '../support/netns.js';

export interface LinkRule {
  net: string;
  dir: 'in' | 'out';
  /** Share of datagrams dropped, 0 < loss ≤ 1. */
  loss: number;
}

function rule(r: LinkRule): string {
  const iface = `${r.dir === 'out' ? 'oifname' : 'iifname'} "${r.net}"`;
  const pct = Math.round(r.loss * 100);
  return pct >= 100 ? `${iface} meta l4proto udp drop` : `${iface} meta l4proto udp numgen random mod 100 < ${pct} drop`;
}

/** Replaces the node's rules with these, atomically (one nft transaction). */
export async function applyRules(rig: Rig, node: string, rules: LinkRule[]): Promise<void> {
  const script = [
    'table ip nemesis {}',
    'delete table ip nemesis',
    ...(rules.length === 0 ? [] : [
      'table ip nemesis {',
      '  chain out { type filter hook output priority 0; policy accept;',
      ...rules.filter((r) => r.dir === 'out').map((r) => `    ${rule(r)}`),
      '  }',
      '  chain in { type filter hook input priority 0; policy accept;',
      ...rules.filter((r) => r.dir === 'in').map((r) => `    ${rule(r)}`),
      '  }',
      '}',
    ]),
  ].join('\n');
  await rig.run(node, ['nft', '-f', '-'], { input: `${script}\n` });
}

/** Per node, the rules in force: each fault adds its own and takes them away when healed. */
export class LinkRules {
  private readonly active = new Map<string, Map<number, LinkRule[]>>();

  constructor(private readonly rig: Rig) {}

  async add(node: string, faultId: number, rules: LinkRule[]): Promise<void> {
    const m = this.active.get(node) ?? new Map<number, LinkRule[]>();
    this.active.set(node, m);
    m.set(faultId, rules);
    await applyRules(this.rig, node, [...m.values()].flat());
  }

  async remove(node: string, faultId: number): Promise<void> {
    const m = this.active.get(node);
    if (!m?.delete(faultId)) return;
    await applyRules(this.rig, node, [...m.values()].flat());
  }
}

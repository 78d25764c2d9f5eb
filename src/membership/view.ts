// Whether this node's view of the cluster is still valid: the rule under which its watchdog is tickled
// (watchdog self-fencing, docs/ipmi.md), and, from the other side, when its peers may count it as
// self-fenced. Pure: the caller says what it hears; nothing here reads a clock or a device.
//
// THE RULE (sbd's, with vigil's channels). A node's view is valid while any of these holds:
//   1. quorum: it hears a strict majority of the configured nodes, itself included ("heard" counts a peer
//      only both ways: heard from, and acknowledging this node's heartbeats, so a one-way cut counts);
//   2. it hosts nothing (no app, no disk): a reset would protect nothing;
//   3. it is not in a minority it knows to be one: it never had quorum since it started (a lone start
//      after a total outage, seed 003), or it hears exactly half (two-node clusters, an even split), and
//      then the shared disks break the tie: valid while its disk heartbeat still works, or when no disk
//      carries one (nothing can tell; peers never count such a node as self-fenced).
// Otherwise it stops tickling: a node that lost both networks and the disk heartbeat, or that had quorum
// and is now in a minority while it hosts something.
//
// THE PEERS' SIDE. A node is "bound" while it had quorum since its start and has a watchdog armed: in a
// minority it can only keep its view by hosting nothing. Its peers, holding a strict majority without it,
// may then count it as self-fenced once it has been silent for its published bound (its failure timeout,
// its agent lease and its watchdog's timeout: how long after it was cut off its watchdog has reset it, at
// the latest) plus a margin.

export type DiskTieBreaker = 'reachable' | 'lost' | 'none';

export interface ViewInput {
  /** Configured nodes, this one included. */
  nodes: number;
  /**
   * Configured nodes confirmed off by a power fence and still off by their BMC's word (fencing.action off):
   * they run nothing and cannot, so the quorum is counted without them.
   */
  keptOff?: number;
  /** Nodes heard both ways, this one included (so at least 1). */
  heard: number;
  /** Whether this node runs an app or holds a disk. */
  hosting: boolean;
  /** The shared disks' heartbeat as this node runs it: 'none' when no disk carries one. */
  disks: DiskTieBreaker;
}

export interface ViewJudgement {
  valid: boolean;
  /** This node has had quorum since it started: in a minority its peers may count it as self-fenced. */
  bound: boolean;
  why: string;
}

export function hasQuorum(heard: number, nodes: number): boolean {
  return heard * 2 > nodes;
}

/** The judgement over time: remembers whether the node has had quorum since it started. */
export class ClusterView {
  private hadQuorum = false;

  judge(v: ViewInput): ViewJudgement {
    const off = v.keptOff ?? 0;
    const nodes = v.nodes - off;
    const of = `hears ${v.heard} of ${nodes} nodes${off ? ` (${off} more powered off by a fence)` : ''}`;
    if (hasQuorum(v.heard, nodes)) {
      // A two-node cluster hearing its peer has "quorum" too, but it cannot be bound: alone, it is half.
      if (nodes >= 3) this.hadQuorum = true;
      return { valid: true, bound: this.hadQuorum, why: `quorum: ${of}` };
    }
    const bound = this.hadQuorum;
    if (!v.hosting) return { valid: true, bound, why: `${of}, and hosts nothing` };
    if (bound && v.heard * 2 < nodes) return { valid: false, bound, why: `lost quorum: ${of} (a minority) and hosts apps` };
    if (v.disks === 'none') return { valid: true, bound, why: `${of}; no disk heartbeat to break the tie` };
    if (v.disks === 'reachable') return { valid: true, bound, why: `${of}; its disk heartbeat still works` };
    return { valid: false, bound, why: `cut off: ${of} and its disk heartbeat fails` };
  }
}

/**
 * A peer's published view: how long after it is cut off its watchdog resets it at the latest (null: no
 * watchdog armed), and whether it is bound by the minority rule.
 */
export interface PublishedView {
  watchdogBoundMs: number | null;
  bound: boolean;
}

/**
 * How much longer `peer`, silent for `silentMs`, must stay silent before this node may count it as
 * self-fenced; undefined when it never may (no watchdog, not bound, or this node lacks a majority
 * without it).
 */
export function selfFencedInMs(published: PublishedView | undefined, silentMs: number, heardHere: number, nodes: number, marginMs: number): number | undefined {
  if (!published || published.watchdogBoundMs === null || !published.bound) return undefined;
  if (!hasQuorum(heardHere, nodes)) return undefined;
  return Math.max(0, published.watchdogBoundMs + marginMs - silentMs);
}

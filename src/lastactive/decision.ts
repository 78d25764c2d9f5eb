// The recovery decision of seed 003 (B.5, 図4 and 図5), the forced start (B.6) and the cross-check with
// the shared disk, pure. A node runs `decide` whenever it is in X and up: after it starts, and as a
// survivor that 5-2/5-6 stopped (B.10 #2), again after every probe until it has left X. Each node
// decides by itself; both compare the same two numbers, so the decisions agree (one SM, one SL) or both
// wait.
//
// THE RULES, in order:
//   1. The peer answers and processes (SM or M): join it as slave (3-x-1), whatever the own record
//      says, even a stale 1 or an undeterminable one.
//   2. The peer answers and is in X too: compare, once its report says it hears this node (the exchange
//      of B.5 is mutual: a peer that does not hear this node yet decides alone meanwhile, and may start
//      alone or be forced on a record newer than the one it reported). The lower number processed last
//      and becomes SM, the other SL (1-x-1). The peer's priority is fetched even when ours is 1, so a tie
//      is seen (B.10 #3).
//      An undeterminable record loses to a 1 (a holder of 1 processed last, Prop. 2) and decides
//      nothing against a 2 or a 3. A tie of 1s is settled only when exactly one of the two 1s was
//      written by a forced start and the other one by an edge with the peer present or just failed
//      ("paired": 1-x-1, 4-x): each of those edges found the forced side holding a 2 or 3, so the paired
//      1 is older than the forced one, and the forced side processed last. Any other tie waits for an
//      operator (B.6: [1 1] needs another forced start).
//   3. The peer does not answer: keep probing for the configured window first (the 所定時間), so a peer
//      that comes up moments later is compared with. Then start alone only with priority 1 (2-x), and
//      only if the peer shows no sign of life elsewhere (a live peer that the network cannot reach is a
//      partition: wait for the network and compare). Priority 2 or 3 alone is undeterminable: wait
//      and keep probing (the patent's wait mode), or an operator forces the start.
//
// FORCED START. Accepted only where the rules say wait: never on a node that processes or is a slave,
// never while the peer is known to process (it answers with SM or M, or shows signs of life over the
// disk while the network is silent), never where the node would start or join by itself. It writes 1
// with the FORCED flag (priority-store.ts), which is what rule 2 uses to settle the [1 1] tie.
//
// THE STALE 1 (B.10 #3). After a forced start on b while a held a 1, a's 1 is stale, and a's lone
// recovery cannot tell it from a fresh one: nothing on a's disk changed. What changed is the shared
// disk: b's start took the reservation over. `crossCheckDisks` refuses a lone start when the shared
// disk's ownership evidence names the peer; the model test shows the stale-1 start happening without it.
import { isProcessing, type Label, type Priority, type State } from './chart.js';
import type { StoreReading } from './priority-store.js';

/** How the current 1 came about: rule 2 and the forced start depend on it. */
export type Origin = 'init' | 'paired' | 'lone' | 'forced';

/** A priority record as the decision needs it, own or reported by the peer. */
export type PriorityView =
  | { known: true; priority: Priority; state: State; transition: Label | 'init'; forced: boolean }
  | { known: false; why: string };

export function viewOf(reading: StoreReading): PriorityView {
  if (reading.kind === 'undeterminable') return { known: false, why: reading.why };
  const { priority, state, transition, forced } = reading.record;
  return { known: true, priority, state, transition, forced };
}

export function originOf(v: { transition: Label | 'init'; forced: boolean }): Origin {
  if (v.forced) return 'forced';
  if (v.transition === 'init') return 'init';
  return v.transition === '2-1' || v.transition === '2-2' ? 'lone' : 'paired';
}

export type PeerProbe =
  /**
   * `hearsUs`: the peer's report says it hears this node, so it compares too; a peer that does not may
   * be starting alone (by its 1, or forced) on a record newer than the one it reported. Default true.
   */
  | { reachable: true; state: State; record: PriorityView; hearsUs?: boolean }
  /** `signsOfLife`: what says the peer is up although the network is silent (its disk heartbeat, say). */
  | { reachable: false; silentForMs: number; signsOfLife?: string[] };

export interface DecisionInput {
  self: string;
  peer: string;
  own: PriorityView;
  probe: PeerProbe;
  /** How long this node has been probing since it came up (or was stopped by 5-2/5-6). */
  probedForMs: number;
  /** The configured probing time before a lone start (B.5's 所定時間). */
  probeWindowMs: number;
  /** B.10 #3 (b): false makes a lone 1 wait as well, after a forced start the operator distrusts. Default true. */
  allowLoneAutoStart?: boolean;
  /** An operator asked for a forced start (vigil force-start, confirmed). */
  forceStart?: boolean;
  /** The shared disks' ownership evidence (absent: none could be read); see crossCheckDisks. */
  disks?: DiskEvidence[];
  /**
   * The app's HOST in this node's database replica while it equals the peer's (their digests match), so
   * both sides read the same name; absent otherwise. It breaks a [1 1] tie that no forced start made:
   * only a split brain leaves one (each side processed alone, then both restarted before the loser
   * stood down), and HOST names the side the cluster recorded last, which the loser would have joined.
   */
  hostAgreed?: string | null;
}

/**
 * What to do, and the sentence `vigil status` shows. `forceAccepted`: a forced start would be accepted
 * now. `forceRefused`: one was asked for, and why it was not done. `notes`: the cross-check's remarks.
 */
export type Decision =
  | { action: 'become-sm'; basis: 'comparison' | 'alone' | 'forced'; tieBrokenByForcedStart: boolean; reason: string; notes: string[]; forceRefused?: string }
  | { action: 'join-sl'; basis: 'peer-processing' | 'comparison'; reason: string; forceRefused?: string }
  | { action: 'wait'; forceAccepted: boolean; reason: string; forceRefused?: string };

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 ? Math.floor(s) : Math.floor(s * 10) / 10} s`;
}

/** "priority 3 (was slave when the cluster stopped)" and the like. */
export function describeView(v: PriorityView): string {
  if (!v.known) return `priority undeterminable (${v.why})`;
  if (v.transition === 'init') return `priority ${v.priority} (the initial value: the pair has not run yet)`;
  const was = v.priority === 1
    ? (v.forced ? 'was processing alone after a forced start' : 'was processing alone (single master)')
    : v.priority === 2 ? 'was master with an in-sync slave' : 'was slave';
  return `priority ${v.priority} (${was} when the cluster stopped)`;
}

const known = (v: PriorityView): v is Extract<PriorityView, { known: true }> => v.known;

type Compared = { winner: 'self' | 'peer'; tieBroken: boolean; why: string } | { winner: 'none'; why: string };

/** Rule 2, symmetric by construction: compare(a, b) names the opposite winner of compare(b, a). */
function compare(own: PriorityView, peer: PriorityView, self: string, peerName: string, hostAgreed?: string | null): Compared {
  const mine = `own ${describeView(own)}`;
  const theirs = `${peerName}'s ${describeView(peer)}`;
  if (!known(own) && !known(peer)) return { winner: 'none', why: `${mine}; ${theirs}` };
  if (!known(own)) {
    return peer.known && peer.priority === 1
      ? { winner: 'peer', tieBroken: false, why: `${theirs} outranks an undeterminable record` }
      : { winner: 'none', why: `${mine}; ${theirs}: a lost record may have held a 1` };
  }
  if (!known(peer)) {
    return own.priority === 1
      ? { winner: 'self', tieBroken: false, why: `${mine} outranks ${peerName}'s undeterminable record` }
      : { winner: 'none', why: `${mine}; ${theirs}: a lost record may have held a 1` };
  }
  if (own.priority !== peer.priority) {
    const w = own.priority < peer.priority ? 'self' : 'peer';
    return { winner: w, tieBroken: false, why: `${mine}; ${theirs}: ${w === 'self' ? self : peerName} processed last` };
  }
  if (own.priority === 1) {
    const [o, p] = [originOf(own), originOf(peer)];
    if (o === 'forced' && p === 'paired') return { winner: 'self', tieBroken: true, why: `both priorities 1; ${self}'s comes from a forced start after ${peerName}'s (written with its peer present)` };
    if (p === 'forced' && o === 'paired') return { winner: 'peer', tieBroken: true, why: `both priorities 1; ${peerName}'s comes from a forced start after ${self}'s (written with its peer present)` };
    if (o !== 'forced' && p !== 'forced' && (hostAgreed === self || hostAgreed === peerName)) {
      const w = hostAgreed === self ? 'self' : 'peer';
      return { winner: w, tieBroken: false, why: `both priorities 1 without a forced start (a split brain): HOST, on which both replicas agree, is ${hostAgreed}` };
    }
    return { winner: 'none', why: `both priorities 1 (${self}: ${o}, ${peerName}: ${p}): which processed last cannot be told after a forced start` };
  }
  return { winner: 'none', why: `both priorities ${own.priority}, which the chart never produces: a store was restored or edited` };
}

/** The automatic decision (rules 1-3, cross-checked with the disks), or the forced start if one was asked for and may be done. */
export function decide(input: DecisionInput): Decision {
  const auto = decideAutomatically(input);
  if (!input.forceStart) return auto;
  const forced = checkForcedStart(input, 'X');
  return forced.ok ? forced.decision : { ...auto, forceRefused: forced.reason };
}

function decideAutomatically(input: DecisionInput): Decision {
  const d = rules(input);
  return input.disks === undefined ? d : withCrossCheck(d, crossCheckDisks(d, input.self, input.peer, input.disks));
}

function rules(input: DecisionInput): Decision {
  const { self, peer, own, probe } = input;
  const mine = `own ${describeView(own)}`;
  const force = `run vigil force-start on this node if ${peer} is known to be down`;

  if (probe.reachable) {
    if (isProcessing(probe.state)) {
      return { action: 'join-sl', basis: 'peer-processing', reason: `joining as slave: peer ${peer} is processing (${probe.state})` };
    }
    // A slave by an earlier run of this node has not yet seen it stop: wait for it to. One that became
    // SL by comparing with this node now (1-x-1, it decided first) waits for this node's side of the same
    // comparison, which follows below.
    const comparedNow = probe.record.known && (probe.record.transition === '1-1-1' || probe.record.transition === '1-2-1');
    if (probe.state === 'SL' && !comparedNow) {
      return { action: 'wait', forceAccepted: false, reason: `waiting: peer ${peer} still reports SL (it has not yet seen this node stop); ${mine}` };
    }
    // The comparison is mutual: a peer that does not hear this node yet decides alone meanwhile.
    if (probe.state === 'X' && probe.hearsUs === false) {
      return { action: 'wait', forceAccepted: false, reason: `waiting: peer ${peer} answers but does not hear this node yet (it may be starting alone); ${mine}` };
    }
    const c = compare(own, probe.record, self, peer, input.hostAgreed);
    if (c.winner === 'self') return { action: 'become-sm', basis: 'comparison', tieBrokenByForcedStart: c.tieBroken, reason: `starting as single master: ${c.why}`, notes: [] };
    if (c.winner === 'peer') return { action: 'join-sl', basis: 'comparison', reason: `joining as slave: ${c.why}` };
    return { action: 'wait', forceAccepted: true, reason: `waiting: ${c.why}; run vigil force-start on the node whose data is to be kept` };
  }

  const silent = `peer ${peer} unreachable for ${seconds(probe.silentForMs)}`;
  if (input.probedForMs < input.probeWindowMs) {
    return { action: 'wait', forceAccepted: true, reason: `waiting: probing peer ${peer} (${seconds(input.probedForMs)} of ${seconds(input.probeWindowMs)}); ${mine}` };
  }
  const life = probe.signsOfLife ?? [];
  if (life.length > 0) {
    return { action: 'wait', forceAccepted: false, reason: `waiting: ${silent} over the network but alive (${life.join('; ')}); ${mine}; the priorities are compared once the network is back` };
  }
  if (!own.known) return { action: 'wait', forceAccepted: true, reason: `waiting: ${mine}; ${silent}; ${force}` };
  if (own.priority === 1) {
    if (input.allowLoneAutoStart === false) {
      return { action: 'wait', forceAccepted: true, reason: `waiting: ${mine}, but lone automatic start is disabled; ${silent}; ${force}` };
    }
    return { action: 'become-sm', basis: 'alone', tieBrokenByForcedStart: false, reason: `starting alone as single master: ${mine}, so this node processed last; ${silent}`, notes: [] };
  }
  return { action: 'wait', forceAccepted: true, reason: `waiting: ${mine}; ${silent}; ${force}` };
}

export type ForcedStartCheck = { ok: true; decision: Decision & { action: 'become-sm' } } | { ok: false; reason: string };

/**
 * May an operator force this node to start as SM now? `current` is the node's state (a forced start is
 * for a node waiting in X). The answer says why not, for the CLI to print before asking to confirm.
 */
export function checkForcedStart(input: DecisionInput, current: State): ForcedStartCheck {
  const { peer, probe } = input;
  if (isProcessing(current)) return { ok: false, reason: `refused: this node is already processing (${current})` };
  if (current === 'SL') return { ok: false, reason: `refused: this node is the slave of ${peer}, which is processing; a forced start would make two masters` };
  if (probe.reachable && isProcessing(probe.state)) return { ok: false, reason: `refused: ${peer} is processing (${probe.state}); this node joins it as slave` };
  if (!probe.reachable && (probe.signsOfLife ?? []).length > 0) {
    return { ok: false, reason: `refused: ${peer} is unreachable over the network but alive (${probe.signsOfLife!.join('; ')}) and may be processing` };
  }
  const auto = decideAutomatically(input);
  if (auto.action !== 'wait') return { ok: false, reason: `refused: not needed, the node decides by itself: ${auto.reason}` };
  if (!auto.forceAccepted) return { ok: false, reason: `refused: ${auto.reason}` };
  const decision: Decision & { action: 'become-sm' } = {
    action: 'become-sm', basis: 'forced', tieBrokenByForcedStart: false, notes: [],
    reason: `starting as single master by forced start (${auto.reason.replace(/^waiting: /, 'was waiting: ')}); updates that only ${peer} had, if any, are given up`,
  };
  if (input.disks === undefined) return { ok: true, decision };
  const check = crossCheckDisks(decision, input.self, peer, input.disks);
  return check.ok ? { ok: true, decision: { ...decision, notes: check.notes } } : { ok: false, reason: `refused: ${check.reason}` };
}

// ---------------------------------------------------------------------------------------------------
// The cross-check with the shared disk (issue 4 §5).

/** Who a shared unit says owns it: a node by name, a registration key no node of the pair has, or nobody. */
export type Holder = { node: string } | { unknownKey: string } | null;

export type DiskEvidence =
  | { disk: string; readable: false; error: string }
  /** `reservationHolder`: the persistent reservation's holder; `recordOwner`: the owner an on-disk record names, if any. */
  | { disk: string; readable: true; reservationHolder: Holder; recordOwner?: Holder };

/** `forceOverrides`: a forced start may go ahead despite the refusal (the peer's evidence, not a stranger's). */
export type CrossCheck = { ok: true; notes: string[] } | { ok: false; reason: string; forceOverrides: boolean };

function holderName(h: Exclude<Holder, null>): string {
  return 'node' in h ? h.node : `key ${h.unknownKey}`;
}

/**
 * Does the shared disks' ownership evidence contradict a decision to start? Only a start is checked
 * (joining as slave or waiting claims nothing). A holder outside the pair always contradicts. The peer
 * as holder contradicts a lone start (rule 3): the peer took the disk after this node's record was
 * written, by a forced start or a takeover the record does not show (the stale 1: LastActive claims the
 * disks before it writes any 1). After a comparison it does not: the peer, answering now and hearing
 * this node, holds a lower priority by its own record, and a reservation without a 1 is left by a node
 * that crashed between its claim and its write. A forced start takes the disk over knowingly.
 */
export function crossCheckDisks(decision: Decision, self: string, peer: string, evidence: DiskEvidence[]): CrossCheck {
  if (decision.action !== 'become-sm') return { ok: true, notes: [] };
  const notes: string[] = [];
  for (const e of evidence) {
    if (!e.readable) {
      notes.push(`${e.disk} not cross-checked: ${e.error}`);
      continue;
    }
    const seen: Array<[string, Holder]> = [['reserved by', e.reservationHolder]];
    if (e.recordOwner !== undefined) seen.push(['recorded as owned by', e.recordOwner]);
    for (const [how, h] of seen) {
      if (h === null || ('node' in h && h.node === self)) continue;
      const who = holderName(h);
      if (!('node' in h) || h.node !== peer) {
        return { ok: false, forceOverrides: false, reason: `not starting: shared disk ${e.disk} is ${how} ${who}, which is neither ${self} nor ${peer}` };
      }
      if (decision.basis === 'alone') {
        return {
          ok: false, forceOverrides: true,
          reason: `not starting: shared disk ${e.disk} is ${how} ${peer}, so ${peer} may have processed after this node ` +
            `(a forced start or a takeover that this node's record does not show); waiting for ${peer}; ` +
            `run vigil force-start on this node if ${peer} is known to be down and its later updates may be lost`,
        };
      }
      notes.push(decision.basis === 'forced'
        ? `shared disk ${e.disk} is ${how} ${peer}; the forced start takes it over`
        : `shared disk ${e.disk} is ${how} ${peer}, which agreed its priority is lower`);
    }
  }
  return { ok: true, notes };
}

/** A decision after its cross-check: a refused start becomes a wait that a forced start can end. */
export function withCrossCheck(decision: Decision, check: CrossCheck): Decision {
  if (check.ok) return decision.action === 'become-sm' ? { ...decision, notes: [...decision.notes, ...check.notes] } : decision;
  return { action: 'wait', forceAccepted: check.forceOverrides, reason: check.reason };
}

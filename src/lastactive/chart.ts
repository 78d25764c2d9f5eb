// The M/SM/SL/X state chart of seed 003 (JP 2001-175626 A, 図2), pure, for one primary/backup pair: the
// two servers of an application object. The figure is missing from the seed; the chart below is the
// reconstruction in ../shared/notes/seed002_003.md B.3, which the text pins down edge by edge.
//
// THE SIDES. The chart speaks of the pair as (A B), and (A B) differs from (B A). Side A is whichever node
// the caller puts first; `initialPriorities` gives the primary 2 and the backup 3 whichever side it is on,
// so the primary wins the first joint start.
//
// THE PRIORITY (B.4, 図3). Entering SM writes 1, M writes 2, SL writes 3, X writes nothing (the stored
// value stays byte for byte what it was). A side whose state does not change writes nothing either
// (5-3: B stays SM and keeps its 1). Lower number = higher priority = processed last.
//
// WRITE-AHEAD (B.10 #1). A transition is proposed by `next` as steps "write priority p, then enter
// state s"; `settle` moves the chart only once every write it lists has been confirmed durable. The
// notes' crash model shows why: a server that starts processing before its 1 is on disk and then crashes
// leaves [2 3] behind with itself as the last processor, and the other server wins the next comparison
// with older data (test/unit/lastactive-model.test.ts finds exactly that with the order reversed).
// A durable 1 is the commit point of a takeover. A step entering M is also to be announced to the
// slave only after its 2 is durable: until the slave hears it, the slave's copy of the chart is still
// (SM SL), so if the master then fails the slave stops (5-6) instead of taking over with a 2 that might
// not exist.
//
// THE SHARED DISK FIRST. A step that begins processing (entering SM from SL or X) claims the shared
// units (reservation, preempting the peer) before its 1 is written. The reservation is what lets a
// node recovering alone with a stale 1 see that the peer processed after it (decision.ts,
// crossCheckDisks), so no 1 may be durable without it: a node that crashes between the two leaves a
// reservation without a 1, which only makes the other node wait (the model test finds the stale-1 start
// with the order reversed).
//
// SYNC (B.10 #8). SM → M happens only on 'in-sync' from the side that is SL: the slave reports it holds
// everything (for vigil: the cluster database and the application's takeover state are current), having
// entered SL, and so written its 3, before it could report.

export type State = 'M' | 'SM' | 'SL' | 'X';
export type Priority = 1 | 2 | 3;
export type Side = 'A' | 'B';
export interface Pair { A: State; B: State }
export interface Priorities { A: Priority; B: Priority }

export const STATES: readonly State[] = ['M', 'SM', 'SL', 'X'];
export const PRIORITIES: readonly Priority[] = [1, 2, 3];

export function otherSide(side: Side): Side {
  return side === 'A' ? 'B' : 'A';
}

/** The priority written on entering a state; undefined for X, which leaves the stored value alone. */
export function priorityOnEntering(state: State): Priority | undefined {
  switch (state) {
    case 'SM': return 1;
    case 'M': return 2;
    case 'SL': return 3;
    case 'X': return undefined;
  }
}

/** Does a server in this state run the application? (B.2: M and SM process, SL and X do not.) */
export function isProcessing(state: State): boolean {
  return state === 'M' || state === 'SM';
}

/** The labels of B.3, in its order; a stored record names the transition that wrote it by index + 1. */
export const LABELS = [
  '1-1-1', '1-1-2', '1-2-1', '1-2-2', '2-1', '2-2', '3-1-1', '3-1-2', '3-2-1', '3-2-2',
  '4-1', '4-2', '4-3', '4-4', '5-1', '5-2', '5-3', '5-4', '5-5', '5-6', '5-7', '5-8',
] as const;
export type Label = (typeof LABELS)[number];

export type ChartEvent =
  /** Both servers are up in (X X) and the priority comparison named the one that processed last. */
  | { type: 'compared'; higher: Side; tieBrokenByForcedStart?: boolean }
  /** In (X X), one server starts alone: its own priority is 1, or an operator forced it. */
  | { type: 'lone-start'; side: Side; forced: boolean }
  /** The stopped side comes up while the other processes alone (SM): it joins as slave. */
  | { type: 'recovered'; side: Side }
  /** The slave reports that it holds everything the master has: the master may become M. */
  | { type: 'in-sync'; slave: Side }
  | { type: 'failed'; side: Side }
  | { type: 'both-failed' };

interface Row {
  label: Label;
  from: Pair;
  /** The event, as `eventKey` spells it. */
  on: readonly string[];
  to: Pair;
  /** For the two edges the notes label twice (1-1-2 = 3-1-2, 1-2-2 = 3-2-2): the label of the edge that led here. */
  after?: Label;
  meaning: string;
}

function pair(text: string): Pair {
  const [a, b] = text.split(' ') as [State, State];
  return { A: a, B: b };
}

const row = (label: Label, from: string, on: string | string[], to: string, meaning: string, after?: Label): Row => ({
  label, from: pair(from), on: typeof on === 'string' ? [on] : on, to: pair(to), meaning, ...(after ? { after } : {}),
});

/** Chart 800, as B.3 gives it. Writes are not listed: they follow from the state each side enters. */
const TABLE: readonly Row[] = [
  row('1-1-1', 'X X', 'compared:B', 'SL SM', 'both recovered; B processed last'),
  row('1-1-2', 'SL SM', 'in-sync:A', 'SL M', 'slave A in sync; B becomes master', '1-1-1'),
  row('1-2-1', 'X X', 'compared:A', 'SM SL', 'both recovered; A processed last'),
  row('1-2-2', 'SM SL', 'in-sync:B', 'M SL', 'slave B in sync; A becomes master', '1-2-1'),
  row('2-1', 'X X', 'lone-start:B', 'X SM', 'only B recovered, with priority 1 or forced'),
  row('2-2', 'X X', 'lone-start:A', 'SM X', 'only A recovered, with priority 1 or forced'),
  row('3-1-1', 'X SM', 'recovered:A', 'SL SM', 'A recovered while B processes alone'),
  row('3-1-2', 'SL SM', 'in-sync:A', 'SL M', 'slave A in sync; B becomes master', '3-1-1'),
  row('3-2-1', 'SM X', 'recovered:B', 'SM SL', 'B recovered while A processes alone'),
  row('3-2-2', 'SM SL', 'in-sync:B', 'M SL', 'slave B in sync; A becomes master', '3-2-1'),
  row('4-1', 'SL M', 'failed:A', 'X SM', 'slave A failed; B processes alone'),
  row('4-2', 'M SL', 'failed:B', 'SM X', 'slave B failed; A processes alone'),
  row('4-3', 'SL M', 'failed:B', 'SM X', 'master B failed; A takes over'),
  row('4-4', 'M SL', 'failed:A', 'X SM', 'master A failed; B takes over'),
  row('5-1', 'SL M', 'both-failed', 'X X', 'both failed'),
  row('5-2', 'SL SM', ['failed:B', 'both-failed'], 'X X', 'single master B failed (A cannot take over), or both'),
  row('5-3', 'SL SM', 'failed:A', 'X SM', 'slave A failed; B goes on alone'),
  row('5-4', 'X SM', 'failed:B', 'X X', 'single master B failed'),
  row('5-5', 'M SL', 'both-failed', 'X X', 'both failed'),
  row('5-6', 'SM SL', ['failed:A', 'both-failed'], 'X X', 'single master A failed (B cannot take over), or both'),
  row('5-7', 'SM SL', 'failed:B', 'SM X', 'slave B failed; A goes on alone'),
  row('5-8', 'SM X', 'failed:A', 'X X', 'single master A failed'),
];

/** What a label means, for status lines and logs. */
export function describeLabel(label: Label): string {
  return TABLE.find((r) => r.label === label)!.meaning;
}

/** The chart as one node holds it: the pair state, and the edge that led to it (it names the next edge). */
export interface Chart { pair: Pair; enteredBy: Label | null }

export const INITIAL_CHART: Chart = { pair: { A: 'X', B: 'X' }, enteredBy: null };

/** Before automatic operation starts: the primary 2, the backup 3 (B.4: one 2, one 3). */
export function initialPriorities(primary: Side): Priorities {
  return primary === 'A' ? { A: 2, B: 3 } : { A: 3, B: 2 };
}

/**
 * One side's part of a transition, in this order: if `claim`, take the shared units over; make `write`
 * durable (with `forced` recorded); only then enter `enter`; if `announce`, tell the slave that the
 * master is established (M_ESTABLISHED), which makes it eligible to take over (4-3/4-4).
 */
export interface Step { side: Side; claim: boolean; write: Priority | undefined; enter: State; forced: boolean; announce: boolean }

export interface Transition { label: Label; from: Pair; to: Pair; steps: Step[] }

export type Next = { ok: true; transition: Transition } | { ok: false; reason: string };

function eventKey(e: ChartEvent): string {
  switch (e.type) {
    case 'compared': return `compared:${e.higher}`;
    case 'lone-start': return `lone-start:${e.side}`;
    case 'recovered': return `recovered:${e.side}`;
    case 'in-sync': return `in-sync:${e.slave}`;
    case 'failed': return `failed:${e.side}`;
    case 'both-failed': return 'both-failed';
  }
}

const same = (p: Pair, q: Pair): boolean => p.A === q.A && p.B === q.B;
export const formatPair = (p: Pair): string => `(${p.A} ${p.B})`;

/**
 * The transition an event causes, with its writes, or why there is none. `priorities` are the values
 * stored now; they guard the two edges that need the last-processor decision (1-x-1, 2-x).
 */
export function next(chart: Chart, event: ChartEvent, priorities: Priorities): Next {
  const key = eventKey(event);
  const rows = TABLE.filter((r) => same(r.from, chart.pair) && r.on.includes(key));
  // Two rows share (from, event) only for the twice-labelled sync edges; the edge that led here decides.
  const r = rows.length > 1 ? rows.find((x) => x.after === chart.enteredBy) ?? rows[0] : rows[0];
  if (r === undefined) return { ok: false, reason: `no transition from ${formatPair(chart.pair)} on ${key}` };

  if (event.type === 'compared') {
    const hi = priorities[event.higher];
    const lo = priorities[otherSide(event.higher)];
    const tie = hi === 1 && lo === 1 && event.tieBrokenByForcedStart === true;
    if (!(hi < lo || tie)) {
      return { ok: false, reason: `${event.higher} is not higher: priorities A ${priorities.A}, B ${priorities.B}` };
    }
  }
  if (event.type === 'lone-start' && !event.forced && priorities[event.side] !== 1) {
    return { ok: false, reason: `${event.side} may start alone only with priority 1 (it has ${priorities[event.side]}) or by a forced start` };
  }

  const steps: Step[] = [];
  // Sides that stop or step down first, then the one that starts or keeps processing: nothing runs on
  // the strength of a write that is not yet durable, whichever side it is on.
  const order: Side[] = isProcessing(r.to.A) && !isProcessing(r.to.B) ? ['B', 'A'] : ['A', 'B'];
  for (const side of order) {
    if (r.from[side] === r.to[side]) continue;
    const enter = r.to[side];
    steps.push({
      side, enter, write: priorityOnEntering(enter), claim: enter === 'SM' && !isProcessing(r.from[side]),
      forced: event.type === 'lone-start' && event.forced && event.side === side,
      announce: enter === 'M',
    });
  }
  return { ok: true, transition: { label: r.label, from: chart.pair, to: r.to, steps } };
}

export class UnconfirmedWriteError extends Error {
  constructor(label: Label, side: Side, priority: Priority) {
    super(`transition ${label}: ${side}'s priority ${priority} is not confirmed durable; the state may not change before it is`);
    this.name = 'UnconfirmedWriteError';
  }
}

/**
 * The chart after a transition, once the writes are durable. `confirmed` are the sides whose write
 * (if their step has one) the caller has seen complete: its own after fsync, the peer's from the peer's
 * report. Throws UnconfirmedWriteError otherwise: write-ahead is not left to the caller's care.
 */
export function settle(chart: Chart, t: Transition, confirmed: ReadonlySet<Side>): Chart {
  if (!same(chart.pair, t.from)) throw new Error(`transition ${t.label} starts at ${formatPair(t.from)}, the chart is at ${formatPair(chart.pair)}`);
  for (const s of t.steps) {
    if (s.write !== undefined && !confirmed.has(s.side)) throw new UnconfirmedWriteError(t.label, s.side, s.write);
  }
  return { pair: t.to, enteredBy: t.label };
}

/** The priorities after a transition's writes (X and unchanged sides keep theirs). */
export function afterWrites(p: Priorities, t: Transition): Priorities {
  const out = { ...p };
  for (const s of t.steps) if (s.write !== undefined) out[s.side] = s.write;
  return out;
}

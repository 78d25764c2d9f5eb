// The M/SM/SL/X chart of seed 003 (src/lastactive/chart.ts) against the table of
// ../shared/notes/seed002_003.md B.3, copied here by hand (labels, states, writes), in both orientations;
// and the priority pairs the chart can reach, against the notes' B.3 table (図6, 図7).
import t, { type Test } from 'tap';

import {
  afterWrites, describeLabel, INITIAL_CHART, initialPriorities, isProcessing, LABELS, next, otherSide, priorityOnEntering,
  settle, UnconfirmedWriteError,
  type Chart, type ChartEvent, type Label, type Pair, type Priorities, type Priority, type Side, type State,
} from '../../src/lastactive/chart.js';

interface NotesRow { label: Label; from: string; event: ChartEvent; to: string; writes: Partial<Record<Side, Priority>>; after?: Label }

const B3: NotesRow[] = [
  { label: '1-1-1', from: 'X X', event: { type: 'compared', higher: 'B' }, to: 'SL SM', writes: { A: 3, B: 1 } },
  { label: '1-1-2', from: 'SL SM', event: { type: 'in-sync', slave: 'A' }, to: 'SL M', writes: { B: 2 }, after: '1-1-1' },
  { label: '1-2-1', from: 'X X', event: { type: 'compared', higher: 'A' }, to: 'SM SL', writes: { A: 1, B: 3 } },
  { label: '1-2-2', from: 'SM SL', event: { type: 'in-sync', slave: 'B' }, to: 'M SL', writes: { A: 2 }, after: '1-2-1' },
  { label: '2-1', from: 'X X', event: { type: 'lone-start', side: 'B', forced: false }, to: 'X SM', writes: { B: 1 } },
  { label: '2-2', from: 'X X', event: { type: 'lone-start', side: 'A', forced: false }, to: 'SM X', writes: { A: 1 } },
  { label: '3-1-1', from: 'X SM', event: { type: 'recovered', side: 'A' }, to: 'SL SM', writes: { A: 3 } },
  { label: '3-1-2', from: 'SL SM', event: { type: 'in-sync', slave: 'A' }, to: 'SL M', writes: { B: 2 }, after: '3-1-1' },
  { label: '3-2-1', from: 'SM X', event: { type: 'recovered', side: 'B' }, to: 'SM SL', writes: { B: 3 } },
  { label: '3-2-2', from: 'SM SL', event: { type: 'in-sync', slave: 'B' }, to: 'M SL', writes: { A: 2 }, after: '3-2-1' },
  { label: '4-1', from: 'SL M', event: { type: 'failed', side: 'A' }, to: 'X SM', writes: { B: 1 } },
  { label: '4-2', from: 'M SL', event: { type: 'failed', side: 'B' }, to: 'SM X', writes: { A: 1 } },
  { label: '4-3', from: 'SL M', event: { type: 'failed', side: 'B' }, to: 'SM X', writes: { A: 1 } },
  { label: '4-4', from: 'M SL', event: { type: 'failed', side: 'A' }, to: 'X SM', writes: { B: 1 } },
  { label: '5-1', from: 'SL M', event: { type: 'both-failed' }, to: 'X X', writes: {} },
  { label: '5-2', from: 'SL SM', event: { type: 'failed', side: 'B' }, to: 'X X', writes: {} },
  { label: '5-3', from: 'SL SM', event: { type: 'failed', side: 'A' }, to: 'X SM', writes: {} },
  { label: '5-4', from: 'X SM', event: { type: 'failed', side: 'B' }, to: 'X X', writes: {} },
  { label: '5-5', from: 'M SL', event: { type: 'both-failed' }, to: 'X X', writes: {} },
  { label: '5-6', from: 'SM SL', event: { type: 'failed', side: 'A' }, to: 'X X', writes: {} },
  { label: '5-7', from: 'SM SL', event: { type: 'failed', side: 'B' }, to: 'SM X', writes: {} },
  { label: '5-8', from: 'SM X', event: { type: 'failed', side: 'A' }, to: 'X X', writes: {} },
];

/** Each label's mirror image: the same edge with the servers swapped. */
const MIRROR: Record<Label, Label> = {
  '1-1-1': '1-2-1', '1-1-2': '1-2-2', '1-2-1': '1-1-1', '1-2-2': '1-1-2', '2-1': '2-2', '2-2': '2-1',
  '3-1-1': '3-2-1', '3-1-2': '3-2-2', '3-2-1': '3-1-1', '3-2-2': '3-1-2', '4-1': '4-2', '4-2': '4-1', '4-3': '4-4', '4-4': '4-3',
  '5-1': '5-5', '5-5': '5-1', '5-2': '5-6', '5-6': '5-2', '5-3': '5-7', '5-7': '5-3', '5-4': '5-8', '5-8': '5-4',
};

const pairOf = (s: string): Pair => { const [a, b] = s.split(' ') as [State, State]; return { A: a, B: b }; };
const swapPair = (p: Pair): Pair => ({ A: p.B, B: p.A });
function swapEvent(e: ChartEvent): ChartEvent {
  switch (e.type) {
    case 'compared': return { ...e, higher: otherSide(e.higher) };
    case 'lone-start': case 'recovered': case 'failed': return { ...e, side: otherSide(e.side) };
    case 'in-sync': return { ...e, slave: otherSide(e.slave) };
    case 'both-failed': return e;
  }
}
function swapRow(r: NotesRow): NotesRow {
  const writes: Partial<Record<Side, Priority>> = {};
  if (r.writes.A !== undefined) writes.B = r.writes.A;
  if (r.writes.B !== undefined) writes.A = r.writes.B;
  const [a, b] = r.from.split(' ');
  const [c, d] = r.to.split(' ');
  return { label: MIRROR[r.label], from: `${b} ${a}`, event: swapEvent(r.event), to: `${d} ${c}`, writes, ...(r.after ? { after: MIRROR[r.after] } : {}) };
}

/** Priorities under which the row's guard holds: the comparison winner lower, a lone starter at 1. */
function prioritiesFor(r: NotesRow): Priorities {
  if (r.event.type === 'compared') return r.event.higher === 'A' ? { A: 2, B: 3 } : { A: 3, B: 2 };
  if (r.event.type === 'lone-start') return r.event.side === 'A' ? { A: 1, B: 3 } : { A: 3, B: 1 };
  return { A: 2, B: 3 };
}

function checkRow(t: Test, r: NotesRow, orientation: string): void {
  const chart: Chart = { pair: pairOf(r.from), enteredBy: r.after ?? null };
  const n = next(chart, r.event, prioritiesFor(r));
  if (!n.ok) {
    t.fail(`${orientation} ${r.label}: ${n.reason}`);
    return;
  }
  const tr = n.transition;
  t.equal(tr.label, r.label, `${orientation} ${r.label}: label`);
  t.same(tr.to, pairOf(r.to), `${orientation} ${r.label}: (${r.from}) -> (${r.to})`);
  const writes: Partial<Record<Side, Priority>> = {};
  for (const s of tr.steps) if (s.write !== undefined) writes[s.side] = s.write;
  t.same(writes, r.writes, `${orientation} ${r.label}: writes`);
  for (const s of tr.steps) {
    t.equal(s.write, priorityOnEntering(s.enter), `${orientation} ${r.label}: ${s.side} entering ${s.enter} writes ${s.write ?? 'nothing'}`);
  }
  for (const s of tr.steps) {
    const from = pairOf(r.from)[s.side];
    t.equal(s.claim, s.enter === 'SM' && (from === 'X' || from === 'SL'), `${orientation} ${r.label}: ${s.side} claims the shared disk iff it begins processing`);
    t.equal(s.announce, s.enter === 'M', `${orientation} ${r.label}: ${s.side} announces iff it becomes master`);
  }
  // The side that starts or keeps processing comes last, so nothing runs on a write not yet durable.
  const last = tr.steps.at(-1);
  if (last !== undefined && tr.steps.some((s) => isProcessing(s.enter))) t.ok(isProcessing(last.enter), `${orientation} ${r.label}: processing side last`);
  t.same(settle(chart, tr, new Set<Side>(['A', 'B'])), { pair: pairOf(r.to), enteredBy: r.label }, `${orientation} ${r.label}: settles`);
}

t.test('every transition of B.3, with A as the primary: label, next pair state, priority writes', async (t) => {
  t.equal(B3.length, 22);
  t.same(new Set(B3.map((r) => r.label)), new Set(LABELS), 'the table covers the 22 labels');
  for (const r of B3) checkRow(t, r, 'A primary');
});

t.test('every transition of B.3 with the servers swapped (B as the primary) gives the mirror label', async (t) => {
  const swapped = B3.map(swapRow);
  t.same(new Set(swapped.map((r) => r.label)), new Set(LABELS), 'the mirrored table covers the 22 labels too');
  for (const r of swapped) checkRow(t, r, 'B primary');
});

t.test('5-2 and 5-6 also cover both servers failing at once', async (t) => {
  const sl_sm = next({ pair: pairOf('SL SM'), enteredBy: '3-1-1' }, { type: 'both-failed' }, { A: 3, B: 1 });
  const sm_sl = next({ pair: pairOf('SM SL'), enteredBy: '1-2-1' }, { type: 'both-failed' }, { A: 1, B: 3 });
  t.ok(sl_sm.ok && sl_sm.transition.label === '5-2' && sl_sm.transition.steps.every((s) => s.write === undefined));
  t.ok(sm_sl.ok && sm_sl.transition.label === '5-6' && sm_sl.transition.steps.every((s) => s.write === undefined));
});

t.test('the primary starts with 2 and the backup with 3, and the first joint start makes the primary SM, in both orientations', async (t) => {
  for (const primary of ['A', 'B'] as const) {
    const p = initialPriorities(primary);
    t.equal(p[primary], 2);
    t.equal(p[otherSide(primary)], 3);
    const n = next(INITIAL_CHART, { type: 'compared', higher: primary }, p);
    t.ok(n.ok, `primary ${primary}`);
    if (n.ok) {
      t.equal(n.transition.label, primary === 'A' ? '1-2-1' : '1-1-1');
      t.equal(n.transition.to[primary], 'SM');
      t.same(afterWrites(p, n.transition), primary === 'A' ? { A: 1, B: 3 } : { A: 3, B: 1 });
    }
    const wrong = next(INITIAL_CHART, { type: 'compared', higher: otherSide(primary) }, p);
    t.notOk(wrong.ok, `the backup (3) cannot be named higher than the primary (2), primary ${primary}`);
  }
});

t.test('guards: a lone start needs 1 or force; the SM becomes M only on the slave\'s report; events without an edge are refused', async (t) => {
  const xx = INITIAL_CHART;
  const lone = next(xx, { type: 'lone-start', side: 'A', forced: false }, { A: 2, B: 3 });
  t.notOk(lone.ok, 'priority 2 alone does not start');
  t.match(lone.ok ? '' : lone.reason, /priority 1/);
  const forced = next(xx, { type: 'lone-start', side: 'A', forced: true }, { A: 2, B: 3 });
  t.ok(forced.ok && forced.transition.label === '2-2' && forced.transition.steps[0]!.forced, 'a forced start is 2-2 with the forced mark');
  const tie = next(xx, { type: 'compared', higher: 'A' }, { A: 1, B: 1 });
  t.notOk(tie.ok, 'a tie of 1s is not a comparison result');
  const broken = next(xx, { type: 'compared', higher: 'A', tieBrokenByForcedStart: true }, { A: 1, B: 1 });
  t.ok(broken.ok, 'unless the decision broke it by the forced mark');
  t.notOk(next({ pair: pairOf('SM SL'), enteredBy: '1-2-1' }, { type: 'in-sync', slave: 'A' }, { A: 1, B: 3 }).ok, 'the master cannot report itself in sync');
  t.notOk(next(xx, { type: 'in-sync', slave: 'A' }, { A: 2, B: 3 }).ok);
  t.notOk(next(xx, { type: 'failed', side: 'A' }, { A: 2, B: 3 }).ok, '(X X) has no failure edge');
  t.notOk(next({ pair: pairOf('SM X'), enteredBy: '2-2' }, { type: 'both-failed' }, { A: 1, B: 3 }).ok);
  t.notOk(next({ pair: pairOf('SM X'), enteredBy: '2-2' }, { type: 'recovered', side: 'A' }, { A: 1, B: 3 }).ok, 'the SM side cannot recover');
  t.match(describeLabel('4-4'), /master A failed; B takes over/);
});

t.test('settle refuses a transition whose writes are not all confirmed durable, or that starts elsewhere', async (t) => {
  const chart: Chart = { pair: pairOf('M SL'), enteredBy: '1-2-2' };
  const n = next(chart, { type: 'failed', side: 'A' }, { A: 2, B: 3 });
  if (!n.ok) throw new Error(n.reason);
  t.throws(() => settle(chart, n.transition, new Set<Side>()), UnconfirmedWriteError);
  t.throws(() => settle(chart, n.transition, new Set<Side>(['A'])), UnconfirmedWriteError, 'A entering X writes nothing; B must confirm its 1');
  t.same(settle(chart, n.transition, new Set<Side>(['B'])).pair, pairOf('X SM'));
  t.throws(() => settle(INITIAL_CHART, n.transition, new Set<Side>(['A', 'B'])), /starts at \(M SL\)/);
  const quiet = next({ pair: pairOf('SL M'), enteredBy: '1-1-2' }, { type: 'both-failed' }, { A: 3, B: 2 });
  if (!quiet.ok) throw new Error(quiet.reason);
  t.same(settle({ pair: pairOf('SL M'), enteredBy: '1-1-2' }, quiet.transition, new Set()).pair, pairOf('X X'), 'a transition with no writes needs no confirmation');
});

// ---- reachable priority pairs ----

const ALL_EVENTS: ChartEvent[] = [
  { type: 'recovered', side: 'A' }, { type: 'recovered', side: 'B' }, { type: 'in-sync', slave: 'A' }, { type: 'in-sync', slave: 'B' },
  { type: 'failed', side: 'A' }, { type: 'failed', side: 'B' }, { type: 'both-failed' },
  { type: 'lone-start', side: 'A', forced: false }, { type: 'lone-start', side: 'B', forced: false },
];

interface Config { chart: Chart; p: Priorities; last: Side | null }

/**
 * Breadth-first over the chart with the patent's rules: in (X X) the comparison names the lower
 * number; a lone start needs 1 (or, with `forced`, an operator). `last` is the side that most recently
 * began processing.
 */
function explore(start: Priorities, forced: boolean): { pairs: Map<string, Set<string>>; configs: Set<string> } {
  const key = (c: Config): string => `${c.chart.pair.A} ${c.chart.pair.B}|${c.p.A}${c.p.B}|${c.last ?? '-'}|${c.chart.enteredBy ?? ''}`;
  const seen = new Set<string>();
  const queue: Config[] = [{ chart: INITIAL_CHART, p: start, last: null }];
  const pairs = new Map<string, Set<string>>();
  const configs = new Set<string>();
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (seen.has(key(c))) continue;
    seen.add(key(c));
    const ps = `${c.chart.pair.A} ${c.chart.pair.B}`;
    if (!pairs.has(ps)) pairs.set(ps, new Set());
    pairs.get(ps)!.add(`${c.p.A}${c.p.B}`);
    configs.add(`${ps}|${c.p.A}${c.p.B}|${c.last ?? '-'}`);
    const events = [...ALL_EVENTS];
    if (c.p.A !== c.p.B) events.push({ type: 'compared', higher: c.p.A < c.p.B ? 'A' : 'B' });
    if (forced) events.push({ type: 'lone-start', side: 'A', forced: true }, { type: 'lone-start', side: 'B', forced: true });
    for (const e of events) {
      const n = next(c.chart, e, c.p);
      if (!n.ok) continue;
      let last = c.last;
      for (const side of ['A', 'B'] as const) {
        if (isProcessing(n.transition.to[side]) && !isProcessing(c.chart.pair[side])) last = side;
      }
      queue.push({ chart: settle(c.chart, n.transition, new Set<Side>(['A', 'B'])), p: afterWrites(c.p, n.transition), last });
    }
  }
  return { pairs, configs };
}

const NOTES_PAIRS: Record<string, string[]> = {
  'X X': ['12', '13', '21', '23', '31', '32'],
  'SM SL': ['13'], 'SL SM': ['31'], 'M SL': ['23'], 'SL M': ['32'],
  'SM X': ['12', '13'], 'X SM': ['21', '31'],
};
const NOTES_FORCED_EXTRA: Record<string, string[]> = { 'X X': ['11'], 'SM X': ['11'], 'X SM': ['11'] };

/** Pair state → sorted priority pairs, keys sorted: comparable with t.same whatever the discovery order. */
function sortedRecord(entries: Iterable<[string, Iterable<string>]>): Record<string, string[]> {
  const rows: Array<[string, string[]]> = [...entries].map(([k, v]) => [k, [...v].sort()]);
  rows.sort((x, y) => x[0].localeCompare(y[0]));
  return Object.fromEntries(rows);
}
const asRecord = (m: Map<string, Set<string>>): Record<string, string[]> => sortedRecord(m);

t.test('the reachable priority pairs are those of B.3 (図6): the seven pair states, the (X X) ones always distinct', async (t) => {
  for (const primary of ['A', 'B'] as const) {
    const { pairs, configs } = explore(initialPriorities(primary), false);
    t.same(asRecord(pairs), sortedRecord(Object.entries(NOTES_PAIRS)), `from (X X)${JSON.stringify(initialPriorities(primary))}`);
    if (primary === 'A') t.equal(configs.size, 15, 'with the last processor, 15 configurations, as the notes counted from (X X)[2 3]');
  }
});

t.test('with forced starts, [1 1] becomes reachable in (X X), (SM X) and (X SM), and nowhere else (図7)', async (t) => {
  const expected: Record<string, string[]> = { ...NOTES_PAIRS };
  for (const [k, v] of Object.entries(NOTES_FORCED_EXTRA)) expected[k] = [...expected[k]!, ...v];
  for (const primary of ['A', 'B'] as const) {
    const { pairs, configs } = explore(initialPriorities(primary), true);
    t.same(asRecord(pairs), sortedRecord(Object.entries(expected)), `from (X X)${JSON.stringify(initialPriorities(primary))}`);
    if (primary === 'A') t.equal(configs.size, 19, 'with the last processor, 19 configurations, as the notes counted');
  }
});

t.test('without forced starts, every (X X) configuration names the last processor by the lower number (Props 1 and 2)', async (t) => {
  const { configs } = explore(initialPriorities('A'), false);
  let checked = 0;
  for (const c of configs) {
    const [ps, pr, last] = c.split('|') as [string, string, string];
    if (ps !== 'X X' || last === '-') continue;
    const [a, b] = [Number(pr[0]), Number(pr[1])];
    t.not(a, b, c);
    t.equal(a < b ? 'A' : 'B', last, c);
    checked++;
  }
  t.ok(checked >= 6);
});

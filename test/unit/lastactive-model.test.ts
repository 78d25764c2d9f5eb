// A property test of seed 003's last-active server (src/lastactive/) against an oracle model: two
// servers, each with a priority store (in memory, through the store's own encode/choose code), the
// chart, the recovery decision and the forced start as built, and a shared disk whose reservation the
// node that begins processing takes. Random sequences of failures, recoveries, probes, syncs, work,
// forced starts, and crashes in the middle of a transition (the appendix B crash model of
// ../shared/notes/seed002_003.md).
//
// THE ORACLE is the data, not the priorities: every server has a data version; processing makes a new
// one (copied at once to an in-sync slave: the takeover information of M → SL); a slave catches up at
// 'in-sync'; an operator's forced start declares the forced server's data current (a new version) at
// its commit point, the durable 1. Invariants, checked after every step:
//   I1  never two processing servers (SM or M);
//   I2  a server that starts processing by itself after a double failure (1-x-1, 2-x) holds the newest
//       data: "the server that processed last is the one that starts";
//   I3  every so often the world is healed (both servers up, probes done, syncs allowed): the pair must
//       reach (M SL) or (SL M) without a forced start, unless both hold 1 after a forced start (the
//       patent's [1 1] case), which one forced start must then resolve.
// Failing runs print their seed and the trace; VIGIL_MODEL_SEED=n reruns that one seed in the tests that
// expect no violation. The decision's cases one by one are in test/unit/lastactive-decision.test.ts.
import t from 'tap';

import {
  INITIAL_CHART, initialPriorities, isProcessing, next, otherSide, settle,
  type Chart, type ChartEvent, type Priorities, type Side, type State, type Step, type Transition,
} from '../../src/lastactive/chart.js';
import {
  checkForcedStart, decide, viewOf, type Decision, type DecisionInput,
} from '../../src/lastactive/decision.js';
import { chooseRecord, initialImage, planWrite, type PriorityRecord, type StoreIdentity, type StoreReading } from '../../src/lastactive/priority-store.js';
import { prng } from '../support/prng.js';

/**
 * write-ahead: claim the disk, make the write durable, then change state (what chart.ts prescribes).
 * claim-after-write: write-ahead, but the disk is claimed after the durable write.
 * write-behind: change state (and begin processing), then write.
 */
type Ordering = 'write-ahead' | 'claim-after-write' | 'write-behind';
interface ModelOptions { ordering: Ordering; diskEvidence: boolean; crashRate: number; forceRate: number }

const SIDES: readonly Side[] = ['A', 'B'];
const NAME: Record<Side, string> = { A: 'a', B: 'b' };
const ID: Record<Side, StoreIdentity> = { A: { cluster: 'model', node: 1, peer: 2 }, B: { cluster: 'model', node: 2, peer: 1 } };
const WINDOW_MS = 10_000;

interface Server { up: boolean; state: State; image: Buffer; probedForMs: number; version: number }
interface Stats {
  autoStarts: number; loneStarts: number; tiesBroken: number; diskRefusals: number; forcedStarts: number;
  forcedRefused: number; crashes: number; heals: number; unblockedByForce: number;
}
interface World {
  opts: ModelOptions;
  rand: () => number;
  chart: Chart;
  s: Record<Side, Server>;
  holder: Side | null;
  newest: number;
  forcedStarts: number;
  trace: string[];
  stats: Stats;
}

class Violation extends Error {
  constructor(message: string, readonly trace: string[]) {
    super(message);
  }
}

const violation = (w: World, message: string): Violation => new Violation(message, [...w.trace]);

function newWorld(seed: number, opts: ModelOptions): World {
  const rand = prng(seed);
  const primary: Side = rand() < 0.5 ? 'A' : 'B';
  const p = initialPriorities(primary);
  const server = (side: Side): Server => ({
    up: false, state: 'X', probedForMs: 0, version: 0,
    image: initialImage(ID[side], { priority: p[side], state: 'X', transition: 'init', forced: false }),
  });
  return {
    opts, rand, chart: INITIAL_CHART, s: { A: server('A'), B: server('B') }, holder: null, newest: 0, forcedStarts: 0,
    trace: [`primary ${NAME[primary]}: priorities [${p.A} ${p.B}]`],
    stats: { autoStarts: 0, loneStarts: 0, tiesBroken: 0, diskRefusals: 0, forcedStarts: 0, forcedRefused: 0, crashes: 0, heals: 0, unblockedByForce: 0 },
  };
}

function cloneWorld(w: World, rand: () => number): World {
  const s = (x: Server): Server => ({ ...x, image: Buffer.from(x.image) });
  return { ...w, rand, opts: { ...w.opts, crashRate: 0 }, chart: { ...w.chart, pair: { ...w.chart.pair } }, s: { A: s(w.s.A), B: s(w.s.B) }, trace: [...w.trace] };
}

/**
 * A store read, remembered per image: an image is never changed in place (a write makes a new one), and
 * the model reads the stores many times per step.
 */
const readings = new WeakMap<Buffer, StoreReading>();
function readStore(w: World, side: Side): StoreReading {
  const image = w.s[side].image;
  let r = readings.get(image);
  if (r === undefined) {
    r = chooseRecord(image, ID[side]);
    readings.set(image, r);
  }
  return r;
}

function record(w: World, side: Side): PriorityRecord {
  const r = readStore(w, side);
  if (r.kind !== 'record') throw violation(w, `${NAME[side]}'s store is undeterminable: ${r.why}`);
  return r.record;
}

const priorities = (w: World): Priorities => ({ A: record(w, 'A').priority, B: record(w, 'B').priority });

function describe(w: World): string {
  const p = priorities(w);
  const srv = (x: Side): string => `${NAME[x]}${w.s[x].up ? '' : '(down)'} ${w.s[x].state} p${p[x]}${record(w, x).forced ? 'f' : ''} v${w.s[x].version}`;
  return `${srv('A')} | ${srv('B')} | newest v${w.newest}, disk held by ${w.holder === null ? 'nobody' : NAME[w.holder]}`;
}

// ---- actions on one server ----

function writeStore(w: World, step: Step, label: Transition['label']): void {
  const side = step.side;
  const plan = planWrite(readStore(w, side), ID[side], {
    priority: step.write!, state: step.enter, transition: label, forced: step.forced,
  });
  const image = Buffer.from(w.s[side].image);
  plan.bytes.copy(image, plan.offset);
  w.s[side].image = image;
}

/** The operator's forced start, at its commit point: from now on the forced server's data is the current data. */
function decree(w: World, side: Side): void {
  w.newest++;
  w.s[side].version = w.newest;
}

/** The processing server makes an update; an in-sync slave (the peer of an M) receives it at once. */
function work(w: World): void {
  const p = SIDES.find((x) => isProcessing(w.s[x].state));
  if (p === undefined) return;
  w.newest++;
  w.s[p].version = w.newest;
  if (w.s[p].state === 'M') w.s[otherSide(p)].version = w.newest;
}

// ---- executing transitions, in the three orderings ----

function perform(w: World, event: ChartEvent, crashable = true): void {
  const n = next(w.chart, event, priorities(w));
  if (!n.ok) throw violation(w, `the chart refused ${JSON.stringify(event)}: ${n.reason}`);
  const tr = n.transition;
  w.trace.push(`  ${tr.label}: (${tr.from.A} ${tr.from.B}) -> (${tr.to.A} ${tr.to.B})`);
  const writers = tr.steps.filter((s) => s.write !== undefined);
  const crash = crashable && writers.length > 0 && w.rand() < w.opts.crashRate ? writers[Math.floor(w.rand() * writers.length)] : undefined;
  if (crash) w.stats.crashes++;
  if (w.opts.ordering === 'write-behind') writeBehind(w, tr, crash);
  else writeAhead(w, tr, event, crash);
}

function writeAhead(w: World, tr: Transition, cause: ChartEvent, crash: Step | undefined): void {
  let crashed: { side: Side; after: string } | undefined;
  for (const st of tr.steps) {
    const actions: Array<'claim' | 'write'> = [];
    if (st.write !== undefined) actions.push('write');
    if (st.claim) {
      if (w.opts.ordering === 'claim-after-write') actions.push('claim');
      else actions.unshift('claim');
    }
    // The crashing writer dies after one of its actions, before the transition takes effect; the other
    // side, on its own machine, goes on with its own.
    const stopAfter = st === crash ? 1 + Math.floor(w.rand() * actions.length) : actions.length;
    for (const a of actions.slice(0, stopAfter)) {
      if (a === 'claim') w.holder = st.side;
      else {
        writeStore(w, st, tr.label);
        if (st.forced) decree(w, st.side);
      }
    }
    if (st === crash) crashed = { side: st.side, after: actions.slice(0, stopAfter).join(' and ') };
  }
  if (crashed) {
    w.trace.push(`  ${NAME[crashed.side]} crashes after its ${crashed.after}, before ${tr.label} takes effect`);
    w.s[crashed.side].up = false;
    if (cause.type === 'failed') perform(w, { type: 'both-failed' }, false);
    else if (w.chart.pair[crashed.side] !== 'X') perform(w, { type: 'failed', side: crashed.side }, false);
    return;
  }
  for (const st of tr.steps) w.s[st.side].state = st.enter;
  w.chart = settle(w.chart, tr, new Set(SIDES));
}

function writeBehind(w: World, tr: Transition, crash: Step | undefined): void {
  // What settle() forbids: the state first, with the writes still to come.
  for (const st of tr.steps) {
    if (st.claim) w.holder = st.side;
    if (st.forced) decree(w, st.side);
    w.s[st.side].state = st.enter;
  }
  w.chart = { pair: tr.to, enteredBy: tr.label };
  let crashed: Side | undefined;
  for (const st of tr.steps) {
    if (st === crash) {
      crashed = st.side;
      if (isProcessing(st.enter)) work(w); // it began processing, then died before its write
      continue;
    }
    if (st.write !== undefined) writeStore(w, st, tr.label);
  }
  if (crashed) {
    w.trace.push(`  ${NAME[crashed]} crashes after ${tr.label} took effect, before its write`);
    w.s[crashed].up = false;
    perform(w, { type: 'failed', side: crashed }, false);
  }
}

// ---- the servers' own decisions ----

function inputFor(w: World, x: Side): DecisionInput {
  const peer = otherSide(x);
  const p = w.s[peer];
  return {
    self: NAME[x], peer: NAME[peer], own: viewOf(readStore(w, x)),
    probe: p.up ? { reachable: true, state: p.state, record: viewOf(readStore(w, peer)) } : { reachable: false, silentForMs: 60_000 },
    probedForMs: w.s[x].probedForMs, probeWindowMs: WINDOW_MS,
    ...(w.opts.diskEvidence ? { disks: [{ disk: 'd1', readable: true as const, reservationHolder: w.holder === null ? null : { node: NAME[w.holder] } }] } : {}),
  };
}

/** I2, checked as a server starts by itself from (X X). */
function checkNewest(w: World, x: Side, d: Decision): void {
  w.stats.autoStarts++;
  if (w.s[x].version !== w.newest) {
    throw violation(w, `I2: ${NAME[x]} starts with data v${w.s[x].version} while v${w.newest} exists (${describe(w)}); it decided: ${d.reason}`);
  }
}

/** Every server up in X decides, and what they decide is done, until nothing changes. */
function runDecisions(w: World): void {
  for (let round = 0; round < 6; round++) {
    const waiting = SIDES.filter((x) => w.s[x].up && w.s[x].state === 'X');
    if (waiting.length === 0) return;
    if (waiting.length === 2) {
      const d = { A: decide(inputFor(w, 'A')), B: decide(inputFor(w, 'B')) };
      if (d.A.action === 'wait' && d.B.action === 'wait') return;
      const winner = SIDES.find((x) => d[x].action === 'become-sm');
      const dw = winner && d[winner];
      const dl = winner && d[otherSide(winner)];
      if (!winner || dw?.action !== 'become-sm' || dw.basis !== 'comparison' || dl?.action !== 'join-sl' || dl.basis !== 'comparison') {
        throw violation(w, `the two decisions disagree: a ${d.A.action} (${d.A.reason}); b ${d.B.action} (${d.B.reason})`);
      }
      w.trace.push(`  ${NAME[winner]}: ${dw.reason}`);
      checkNewest(w, winner, dw);
      if (dw.tieBrokenByForcedStart) w.stats.tiesBroken++;
      perform(w, { type: 'compared', higher: winner, tieBrokenByForcedStart: dw.tieBrokenByForcedStart });
      continue;
    }
    const x = waiting[0]!;
    const d = decide(inputFor(w, x));
    if (d.action === 'wait') {
      if (/^not starting: shared disk/.test(d.reason)) w.stats.diskRefusals++;
      return;
    }
    w.trace.push(`  ${NAME[x]}: ${d.reason}`);
    if (d.action === 'join-sl') perform(w, { type: 'recovered', side: x });
    else {
      checkNewest(w, x, d);
      w.stats.loneStarts++;
      perform(w, { type: 'lone-start', side: x, forced: false });
    }
  }
}

function checkInvariants(w: World): void {
  if (SIDES.every((x) => isProcessing(w.s[x].state))) throw violation(w, `I1: two processing servers (${describe(w)})`);
  for (const x of SIDES) {
    if (w.chart.pair[x] !== w.s[x].state) throw violation(w, `the chart says ${w.chart.pair[x]} for ${NAME[x]}, the server is ${w.s[x].state}`);
    if (!w.s[x].up && w.s[x].state !== 'X') throw violation(w, `${NAME[x]} is down in ${w.s[x].state}`);
  }
}

// ---- events ----

function fail(w: World, x: Side): void {
  if (!w.s[x].up) return;
  w.trace.push(`${NAME[x]} fails`);
  w.s[x].up = false;
  if (w.s[x].state !== 'X') perform(w, { type: 'failed', side: x });
}

function recover(w: World, x: Side): void {
  if (w.s[x].up) return;
  w.trace.push(`${NAME[x]} comes up`);
  w.s[x].up = true;
  w.s[x].probedForMs = 0;
}

function sync(w: World): boolean {
  const slave = SIDES.find((x) => w.s[x].state === 'SL');
  if (slave === undefined || w.s[otherSide(slave)].state !== 'SM') return false;
  w.trace.push(`${NAME[slave]} reports in sync`);
  w.s[slave].version = w.s[otherSide(slave)].version;
  perform(w, { type: 'in-sync', slave });
  return true;
}

function force(w: World, x: Side): boolean {
  if (!w.s[x].up) return false;
  const check = checkForcedStart({ ...inputFor(w, x), forceStart: true }, w.s[x].state);
  if (!check.ok) {
    w.stats.forcedRefused++;
    return false;
  }
  w.trace.push(`operator forces ${NAME[x]}: ${check.decision.reason}`);
  w.forcedStarts++;
  w.stats.forcedStarts++;
  perform(w, { type: 'lone-start', side: x, forced: true });
  return true;
}

function step(w: World): void {
  const r = w.rand();
  const x: Side = w.rand() < 0.5 ? 'A' : 'B';
  if (r < 0.2) fail(w, x);
  else if (r < 0.27) {
    if (SIDES.every((y) => w.s[y].up && w.s[y].state !== 'X')) {
      w.trace.push('both fail');
      for (const y of SIDES) w.s[y].up = false;
      perform(w, { type: 'both-failed' });
    } else {
      fail(w, 'A');
      fail(w, 'B');
    }
  } else if (r < 0.5) recover(w, x);
  else if (r < 0.6) {
    for (const y of SIDES) if (w.s[y].up) w.s[y].probedForMs += WINDOW_MS;
  } else if (r < 0.72) sync(w);
  else if (r < 1 - w.opts.forceRate) work(w);
  else force(w, x);
  runDecisions(w);
  checkInvariants(w);
}

/** I3: with both servers up and left alone, automatic operation resumes. Works on a copy. */
function heal(w0: World): void {
  const w = cloneWorld(w0, prng(0x5eed));
  w.trace.push('-- heal: both up, probes done, syncs allowed --');
  w0.stats.heals++;
  const settleDown = (): boolean => {
    for (let round = 0; round < 8; round++) {
      for (const x of SIDES) if (!w.s[x].up) recover(w, x);
      for (const x of SIDES) w.s[x].probedForMs += WINDOW_MS;
      runDecisions(w);
      checkInvariants(w);
      if (!sync(w) && SIDES.some((x) => w.s[x].state === 'M')) return true;
    }
    return false;
  };
  if (settleDown()) return;
  const p = priorities(w);
  if (!(p.A === 1 && p.B === 1 && w.forcedStarts > 0)) {
    throw violation(w, `I3: blocked without a forced start having caused it (${describe(w)})`);
  }
  if (!force(w, 'A')) throw violation(w, `I3: blocked by a [1 1] tie and a forced start is refused (${describe(w)})`);
  if (!settleDown()) throw violation(w, `I3: still blocked after a forced start (${describe(w)})`);
  w0.stats.unblockedByForce++;
}

interface RunResult { seed: number; violation?: Violation; stats: Stats }

function run(seed: number, opts: ModelOptions, steps: number): RunResult {
  const w = newWorld(seed, opts);
  try {
    for (let i = 0; i < steps; i++) {
      step(w);
      if (i % 10 === 9) heal(w);
    }
    heal(w);
  } catch (e) {
    if (e instanceof Violation) return { seed, violation: e, stats: w.stats };
    throw new Error(`seed ${seed}: ${(e as Error).stack}\n${w.trace.join('\n')}`);
  }
  return { seed, stats: w.stats };
}

const ONE_SEED = process.env.VIGIL_MODEL_SEED === undefined ? undefined : Number(process.env.VIGIL_MODEL_SEED);
const seeds = (n: number, base: number): number[] => (ONE_SEED !== undefined ? [ONE_SEED] : Array.from({ length: n }, (_, i) => base + i));

function sum(results: RunResult[]): Stats {
  const total = { ...results[0]!.stats };
  for (const k of Object.keys(total) as Array<keyof Stats>) total[k] = results.reduce((a, r) => a + r.stats[k], 0);
  return total;
}

/** The violation with the shortest trace: the counterexample to show. */
function shortest(results: RunResult[], kind = /./): RunResult | undefined {
  return results.filter((r) => r.violation && kind.test(r.violation.message)).sort((a, b) => a.violation!.trace.length - b.violation!.trace.length)[0];
}

/** Runs seeds from `base` on until `enough` runs violate an invariant (or `max` runs), and returns those. */
function search(opts: ModelOptions, base: number, max: number, enough = 30): { runs: number; violating: RunResult[] } {
  const violating: RunResult[] = [];
  let runs = 0;
  for (let seed = base; seed < base + max; seed++) {
    runs++;
    const r = run(seed, opts, 80);
    if (r.violation) violating.push(r);
    if (violating.length >= enough) break;
  }
  return { runs, violating };
}

const show = (r: RunResult): string => `seed ${r.seed} (rerun alone: VIGIL_MODEL_SEED=${r.seed}): ${r.violation!.message}\n${r.violation!.trace.join('\n')}`;

// ---------------------------------------------------------------------------------------------------

const WRITE_AHEAD: ModelOptions = { ordering: 'write-ahead', diskEvidence: true, crashRate: 0.15, forceRate: 0.06 };

t.test('write-ahead: I1, I2 and I3 hold over random failures, recoveries, syncs, forced starts and crashes mid-transition', async (t) => {
  const results = seeds(2500, 1).map((s) => run(s, WRITE_AHEAD, 80));
  const bad = results.filter((r) => r.violation);
  for (const r of bad.slice(0, 3)) t.fail(show(r));
  t.equal(bad.length, 0, `${results.length} runs without a violation`);
  const st = sum(results);
  t.comment(JSON.stringify(st));
  if (ONE_SEED === undefined) {
    // The runs are only worth something if they reach the cases that matter.
    t.ok(st.autoStarts > 1000, 'automatic starts after double failures were checked');
    t.ok(st.loneStarts > 100, 'lone starts with priority 1');
    t.ok(st.forcedStarts > 200, 'forced starts');
    t.ok(st.forcedRefused > 200, 'refused forced starts');
    t.ok(st.crashes > 500, 'crashes in the middle of a transition');
    t.ok(st.diskRefusals > 10, 'lone starts refused by the shared disk\'s evidence (the stale 1)');
    t.ok(st.tiesBroken > 0, '[1 1] ties settled by the forced mark');
    t.ok(st.unblockedByForce > 0, '[1 1] ties that needed a forced start');
  }
});

t.test('without forced starts, healing never needs one, crashes included', async (t) => {
  const results = seeds(800, 100_000).map((s) => run(s, { ...WRITE_AHEAD, forceRate: 0 }, 80));
  const bad = results.filter((r) => r.violation);
  for (const r of bad.slice(0, 3)) t.fail(show(r));
  const st = sum(results);
  t.equal(st.unblockedByForce, 0);
  t.ok(st.heals > 5000 && st.crashes > 100, JSON.stringify(st));
});

t.test('write-behind (the state changes before the write is durable) breaks the invariants: the model finds both of the notes\' counterexamples', async (t) => {
  const { runs, violating } = search({ ...WRITE_AHEAD, ordering: 'write-behind', forceRate: 0 }, 200_000, 3000, 60);
  t.ok(violating.length > 0, `${violating.length} of ${runs} runs violate`);
  // The notes' first: the new master processes before its 1 is durable, crashes, and the old one wins.
  const wrongStart = shortest(violating, /^I2:/);
  t.ok(wrongStart, 'I2: a server with older data starts');
  if (wrongStart) t.comment(`shortest I2 counterexample, ${show(wrongStart)}`);
  // The notes' second: a master announced before its 2 is durable crashes, the slave takes over: [1 1].
  const tie = shortest(violating, /^I3:/);
  t.ok(tie, 'I3: a [1 1] tie that no forced start caused');
  if (tie) {
    t.match(tie.violation!.message, /a X p1 .* \| b X p1 /);
    t.comment(`shortest I3 counterexample, ${show(tie)}`);
  }
});

t.test('claiming the shared disk after the durable 1 lets a stale 1 start: the model finds it', async (t) => {
  // It takes a forced start that crashes between its durable 1 and its claim: crashes are made frequent.
  const { runs, violating } = search({ ...WRITE_AHEAD, ordering: 'claim-after-write', crashRate: 0.5, forceRate: 0.15 }, 300_000, 4000, 10);
  const found = shortest(violating);
  t.ok(found, `a counterexample among ${runs} runs`);
  if (found) {
    t.match(found.violation!.message, /^I2: .* starts with data/);
    t.ok(found.violation!.trace.some((l) => l.startsWith('operator forces')), 'it follows a forced start');
    t.comment(`shortest counterexample, ${show(found)}`);
  }
});

t.test('without the shared disk\'s evidence, the stale 1 starts alone after a forced start (B.10 #3): the model finds it', async (t) => {
  const { runs, violating } = search({ ...WRITE_AHEAD, diskEvidence: false, crashRate: 0 }, 400_000, 4000);
  const found = shortest(violating);
  t.ok(found, `a counterexample among ${runs} runs`);
  if (found) {
    t.match(found.violation!.message, /^I2: .* starts with data .* starting alone/, 'a lone start');
    t.ok(found.violation!.trace.some((l) => l.startsWith('operator forces')), 'it follows a forced start');
    t.comment(`shortest counterexample, ${show(found)}`);
  }
  const clean = seeds(800, 500_000).map((s) => run(s, { ...WRITE_AHEAD, diskEvidence: false, forceRate: 0 }, 80));
  t.equal(clean.filter((r) => r.violation).length, 0, 'and without forced starts there is nothing to catch: the priorities alone suffice');
});


// One signal's judge: threshold hysteresis, the hold time before a state changes (seed 000 claim 8), the
// robust trend on noisy samples, the time to exhaustion, and clearing.
import t from 'tap';

import { SignalJudge, TREND_LEAVE, type JudgeOptions, type Sample } from '../../src/aging/judge.js';
import { theilSenSlope, timeToLimit } from '../../src/aging/trend.js';
import { prng } from '../support/prng.js';

const HOUR = 3_600_000;
const opts = (o: Partial<JudgeOptions> = {}): JudgeOptions => ({ worse: 'rises', windowSamples: 10, holdMs: 3000, horizonMs: HOUR, ...o });

/** Feeds `values` one a second from `t0`; returns the transitions (with the time of each). */
function feed(j: SignalJudge, values: number[], extra: Omit<Sample, 't' | 'value'> = {}, t0 = 0): { at: number; to: string }[] {
  const out: { at: number; to: string }[] = [];
  values.forEach((value, i) => {
    const tr = j.observe({ t: t0 + i * 1000, value, ...extra });
    if (tr) out.push({ at: t0 + i * 1000, to: tr.to });
  });
  return out;
}

t.test('Theil–Sen: the slope of a line, and of a line with wild outliers, is the line\'s', async (t) => {
  const line = Array.from({ length: 20 }, (_, i) => ({ t: i * 1000, value: 5 + 2 * i }));
  t.equal(theilSenSlope(line), 2 / 1000);
  const wild = line.map((p, i) => (i % 5 === 2 ? { ...p, value: p.value + (i % 2 ? 1e6 : -1e6) } : p));
  t.equal(theilSenSlope(wild), 2 / 1000, 'four outliers in twenty do not move it');
  t.equal(theilSenSlope([{ t: 0, value: 1 }]), undefined, 'one sample: no slope');
  t.equal(theilSenSlope([{ t: 5, value: 1 }, { t: 5, value: 9 }]), undefined, 'two at the same time: no slope');
});

t.test('time to a limit: only when heading towards it', async (t) => {
  t.equal(timeToLimit(100, 2, 200), 50);
  t.equal(timeToLimit(100, -4, 0), 25, 'falling towards 0');
  t.equal(timeToLimit(100, 2, 0), undefined, 'rising away from 0');
  t.equal(timeToLimit(100, 0, 200), undefined, 'flat');
  t.equal(timeToLimit(100, 2, undefined), undefined, 'no limit');
  t.equal(timeToLimit(200, 2, 200), 0, 'already there');
});

t.test('a threshold crossed only becomes unstable after holding for holdMs, measured from its first sample', async (t) => {
  const j = new SignalJudge(opts());
  const tr = feed(j, [1, 1, 5, 5, 5, 5, 5], { enter: 4, leave: 3 });
  t.strictSame(tr, [{ at: 5000, to: 'unstable' }], 'crossed at 2 s, unstable at 5 s (3 s hold)');
  t.equal(j.judgement?.condition, 'threshold');
  t.equal(j.judgement?.since, 2000, 'since the first sample past the threshold');
  t.equal(j.judgement?.enter, 4);
});

t.test('a spike shorter than the hold time is never declared', async (t) => {
  const j = new SignalJudge(opts());
  t.strictSame(feed(j, [1, 5, 5, 1, 5, 5, 1, 1, 1], { enter: 4, leave: 3 }), []);
  t.equal(j.judgement?.state, 'stable');
  t.equal(j.judgement?.condition, null);
});

t.test('hysteresis: a value between leave and enter keeps an unstable signal unstable, and below leave it clears after the hold', async (t) => {
  const j = new SignalJudge(opts());
  const values = [5, 5, 5, 5, 3.5, 3.5, 3.5, 3.5, 3.5, 2, 2, 2, 2];
  const tr = feed(j, values, { enter: 4, leave: 3 });
  t.strictSame(tr, [{ at: 3000, to: 'unstable' }, { at: 12000, to: 'stable' }], 'unstable through 3.5; clear from 9 s, stable at 12 s');
});

t.test('hysteresis: a stable signal between leave and enter is not a condition', async (t) => {
  const j = new SignalJudge(opts());
  t.strictSame(feed(j, [3.5, 3.9, 3.5, 3.9, 3.5, 3.9], { enter: 4, leave: 3 }), []);
});

t.test('falling signals (available memory): enter below, clear above leave', async (t) => {
  const j = new SignalJudge(opts({ worse: 'falls', holdMs: 0 }));
  t.strictSame(feed(j, [50, 9, 12, 16], { enter: 10, leave: 15 }), [{ at: 1000, to: 'unstable' }, { at: 3000, to: 'stable' }]);
});

t.test('a clearing interrupted by the condition again does not count: the hold starts over', async (t) => {
  const j = new SignalJudge(opts({ holdMs: 2000 }));
  const tr = feed(j, [5, 5, 5, 1, 1, 5, 1, 1, 1], { enter: 4, leave: 3 });
  t.strictSame(tr, [{ at: 2000, to: 'unstable' }, { at: 8000, to: 'stable' }]);
});

t.test('trend: a noisy leak towards a limit gets a slope near the true one, an ETA, and is unstable after the hold', async (t) => {
  const rand = prng(7);
  const j = new SignalJudge(opts({ windowSamples: 30, holdMs: 5000, horizonMs: HOUR }));
  // 1 MB a second towards a 1 GB limit from 100 MB, ±10 MB noise: ~900 s to go, well within the hour.
  const values = Array.from({ length: 40 }, (_, i) => 100e6 + 1e6 * i + (rand() - 0.5) * 20e6);
  const tr = feed(j, values, { limit: 1e9 });
  t.equal(tr.length, 1);
  t.equal(tr[0]?.to, 'unstable');
  // Half a window (15 samples) before a slope, then 5 s of hold.
  t.ok(tr[0]!.at >= 14000 + 5000, `not before half a window and the hold (at ${tr[0]!.at})`);
  const jd = j.judgement!;
  t.equal(jd.condition, 'trend');
  t.ok(Math.abs(jd.slopePerHour! - 3.6e9) < 0.9e9, `slope ${jd.slopePerHour} per hour within 25% of 3.6e9`);
  t.ok(jd.etaMs! > 600_000 && jd.etaMs! < 1_200_000, `eta ${jd.etaMs} ms near 900 s`);
});

t.test('trend: noise around a flat line is no trend to judge', async (t) => {
  const rand = prng(11);
  const j = new SignalJudge(opts({ windowSamples: 30, holdMs: 0 }));
  t.strictSame(feed(j, Array.from({ length: 60 }, () => 500e6 + (rand() - 0.5) * 40e6), { limit: 1e9 }), []);
  t.ok(Math.abs(j.judgement!.slopePerHour!) < 2e9, 'slope small');
  t.ok(j.judgement!.etaMs === null || j.judgement!.etaMs > HOUR, 'no exhaustion within the horizon');
});

t.test('trend: a start-up jump in the first samples is not a leak', async (t) => {
  const j = new SignalJudge(opts({ windowSamples: 20, holdMs: 2000 }));
  t.strictSame(feed(j, [5e6, 40e6, 42e6, ...Array.from({ length: 30 }, () => 42e6)], { limit: 1e9 }), []);
});

t.test('trend: once unstable it clears only when the ETA passes horizon × TREND_LEAVE (or the trend stops)', async (t) => {
  const j = new SignalJudge(opts({ windowSamples: 8, holdMs: 0, horizonMs: 100_000 }));
  // Slope 1/ms towards a limit: ETA = limit - value. Seven samples: not yet a trend to judge…
  for (let i = 0; i < 7; i++) t.equal(j.observe({ t: i * 1000, value: i * 1000, limit: 90_000 }), undefined);
  t.equal(j.judgement?.etaMs, null, 'no ETA below eight samples');
  // …the eighth: ETA 83 s ≤ the horizon.
  t.equal(j.observe({ t: 7000, value: 7000, limit: 90_000 })?.to, 'unstable');
  t.equal(j.judgement?.etaMs, 83_000);
  t.ok(j.judgement!.trendZ! >= 3, `Mann–Kendall Z ${j.judgement?.trendZ}`);
  // Still unstable with the ETA between the horizon and 1.5 horizons…
  t.equal(j.observe({ t: 8000, value: 8000, limit: 8000 + 100_000 * (TREND_LEAVE - 0.1) }), undefined);
  t.equal(j.judgement?.state, 'unstable');
  // …stable beyond it.
  t.equal(j.observe({ t: 9000, value: 9000, limit: 9000 + 100_000 * (TREND_LEAVE + 0.1) })?.to, 'stable');
});

t.test('the window keeps only the last windowSamples samples: a leak that stopped leaves the trend', async (t) => {
  const j = new SignalJudge(opts({ windowSamples: 8, holdMs: 0, horizonMs: HOUR }));
  const rising = Array.from({ length: 8 }, (_, i) => i * 1e6);
  const tr = feed(j, [...rising, ...Array.from({ length: 10 }, () => 7e6)], { limit: 10e6 });
  t.strictSame(tr.map((x) => x.to), ['unstable', 'stable']);
  t.equal(j.judgement?.slopePerHour, 0);
  t.equal(j.judgement?.samples, 8);
});

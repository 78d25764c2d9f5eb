// A robust trend of a signal: the Theil–Sen slope (the median of the slopes between every pair of
// samples). Up to about 29% of the samples can be wild (a burst of allocations, a GC that frees half the
// heap, a reading taken mid-fork) without moving it, which a least-squares fit cannot say. Its companion,
// the Mann–Kendall statistic, says whether there is a trend at all: noise around a flat line has a
// slope too, and its "time to exhaustion" would be an invention.

export interface Point {
  /** Milliseconds on a monotonic clock (performance.now()). */
  t: number;
  value: number;
}

/** Units of value per millisecond; undefined with fewer than two samples at distinct times. */
export function theilSenSlope(points: readonly Point[]): number | undefined {
  // A typed array sorts numerically without a comparator: several times faster than an Array's sort,
  // and this runs for every signal every round on the agent's event loop.
  const slopes = new Float64Array((points.length * (points.length - 1)) / 2);
  let n = 0;
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const dt = points[j]!.t - points[i]!.t;
      if (dt !== 0) slopes[n++] = (points[j]!.value - points[i]!.value) / dt;
    }
  }
  if (n === 0) return undefined;
  const sorted = slopes.subarray(0, n).sort();
  const mid = n >> 1;
  return n % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Milliseconds until `value`, moving at `slopePerMs`, reaches `limit`; undefined when it is not moving
 * towards it (or has no limit). 0 when it is already there.
 */
export function timeToLimit(value: number, slopePerMs: number | undefined, limit: number | undefined): number | undefined {
  if (limit === undefined || slopePerMs === undefined || slopePerMs === 0) return undefined;
  const gap = limit - value;
  if (gap === 0 || Math.sign(gap) !== Math.sign(slopePerMs)) return gap === 0 ? 0 : undefined;
  return gap / slopePerMs;
}

/**
 * The Mann–Kendall trend statistic as a normal score: (S − sign S) / √Var(S), S the count of rising pairs
 * less falling ones, Var(S) = n(n−1)(2n+5)/18 (no tie correction: ties make it conservative). |Z| ≥ 3 is a
 * trend at p ≈ 0.003; 0 with fewer than three samples.
 */
export function mannKendallZ(points: readonly Point[]): number {
  const n = points.length;
  if (n < 3) return 0;
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) s += Math.sign((points[j]!.value - points[i]!.value) * Math.sign(points[j]!.t - points[i]!.t));
  }
  const variance = (n * (n - 1) * (2 * n + 5)) / 18;
  return (s - Math.sign(s)) / Math.sqrt(variance);
}

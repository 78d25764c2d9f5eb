// OwnStalls: which decisions of the agent a stall of its own makes stale (src/daemon/own-stalls.ts).
import t from 'tap';

import { OwnStalls } from '../../src/daemon/own-stalls.js';

const CAP = 100;
const LIMIT = 300;

/** Ticks every 50 ms from `from` to `to`. */
function ticks(s: OwnStalls, from: number, to: number): void {
  for (let now = from; now <= to; now += 50) s.tick(now);
}

t.test('regular ticks and short stalls make nothing stale', async (t) => {
  const s = new OwnStalls(CAP, LIMIT, 0);
  ticks(s, 50, 1000);
  s.tick(1000 + CAP + LIMIT - 1); // a gap one ms short of a stall that counts
  t.equal(s.staleSince(0, 1000 + CAP + LIMIT + 10), undefined);
});

t.test('a stall that ended after the decision makes it stale, and says how long it was', async (t) => {
  const s = new OwnStalls(CAP, LIMIT, 0);
  ticks(s, 50, 1000);
  s.tick(3600); // 2600 ms without a tick: 2500 of them a stall
  t.match(s.staleSince(990, 3610), /stalled 2500 ms/);
  t.equal(s.staleSince(3600, 3610), undefined, 'a decision taken after it is not');
});

t.test('a stall still under way counts before the tick that ends it', async (t) => {
  // The step that follows the agent's continuing may run before its tick does.
  const s = new OwnStalls(CAP, LIMIT, 0);
  ticks(s, 50, 1000);
  t.match(s.staleSince(1000, 3600), /stalled 2500 ms/);
  t.equal(s.staleSince(1000, 1000 + CAP + LIMIT - 1), undefined, 'a gap shorter than cap + limit is not one');
});

t.test('only the latest stalls are kept, and a decision older than all of them is still stale', async (t) => {
  const s = new OwnStalls(CAP, LIMIT, 0);
  let now = 0;
  for (let i = 0; i < 100; i++) s.tick(now += CAP + LIMIT + 1);
  t.ok(s.longestSince(0, now) >= 1, 'the latest stall is remembered');
  t.ok(s.staleSince(0, now) !== undefined);
});

t.test('bad limits are refused', async (t) => {
  t.throws(() => new OwnStalls(0, LIMIT, 0), RangeError);
  t.throws(() => new OwnStalls(CAP, Number.NaN, 0), RangeError);
});

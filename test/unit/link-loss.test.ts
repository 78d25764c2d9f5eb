// The heartbeat loss per link (src/daemon/link-loss.ts): heard counts sampled once a second against one
// heartbeat per interval, over the last ten seconds.
import t from 'tap';

import { LinkLoss } from '../../src/daemon/link-loss.js';

/** `perSecond` heartbeats heard each second for `seconds`, starting at `from` (counts and times in ms). */
function feed(l: LinkLoss, key: string, seconds: number, perSecond: (s: number) => number, from = { at: 0, count: 0 }): { at: number; count: number } {
  let { at, count } = from;
  for (let s = 0; s < seconds; s++) {
    l.tick([{ key, heardCount: count, heard: true }], at);
    count += perSecond(s);
    at += 1000;
  }
  return { at, count };
}

t.test('every heartbeat heard: no loss; a tenth missing: 0.1; none for 3 s of 10: 0.3', async (t) => {
  // One tracker per case: it samples all links at once, once a second.
  const all = new LinkLoss(100);
  feed(all, 'k', 12, () => 10);
  t.equal(all.loss('k'), 0);
  const tenth = new LinkLoss(100);
  feed(tenth, 'k', 12, () => 9);
  t.equal(tenth.loss('k'), 0.1);
  const gap = new LinkLoss(100);
  feed(gap, 'k', 11, (s) => (s >= 7 ? 0 : 10));
  t.equal(gap.loss('k'), 0.3, 'the window is the last 10 s');
});

t.test('the window moves: a loss long past no longer counts', async (t) => {
  const l = new LinkLoss(100);
  const end = feed(l, 'k', 6, () => 5);
  t.equal(l.loss('k'), 0.5);
  feed(l, 'k', 12, () => 10, end);
  t.equal(l.loss('k'), 0);
});

t.test('too little history, a link never heard, a peer that restarted, a peer sending more than due', async (t) => {
  const l = new LinkLoss(100);
  feed(l, 'young', 3, () => 10);
  t.equal(l.loss('young'), null, 'two seconds of history: null');
  t.equal(l.loss('unknown'), null);
  const l2 = new LinkLoss(100);
  l2.tick([{ key: 'silent', heardCount: 0, heard: false }], 0);
  l2.tick([{ key: 'silent', heardCount: 0, heard: false }], 5000);
  t.equal(l2.loss('silent'), null, 'never heard: no loss to speak of');
  const l3 = new LinkLoss(100);
  feed(l3, 'r', 3, () => 10, { at: 0, count: 500 });
  feed(l3, 'r', 5, () => 10, { at: 3000, count: 0 });
  t.equal(l3.loss('r'), 0, 'the count went back (a new heartbeat engine): counted afresh');
  const l4 = new LinkLoss(100);
  feed(l4, 'more', 12, () => 14);
  t.equal(l4.loss('more'), 0, 'more than due is none lost, never below 0');
});

t.test('sampled once a second however often it ticks', async (t) => {
  const l = new LinkLoss(100);
  for (let at = 0, count = 0; at <= 10_000; at += 100, count += 1) l.tick([{ key: 'k', heardCount: count, heard: true }], at);
  t.equal(l.loss('k'), 0);
});

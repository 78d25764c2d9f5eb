// The heartbeat loss per link (src/daemon/link-loss.ts): heard counts against the heartbeats the peer
// numbered for the link (its sequence advances by `perRound` each round), over the last ten seconds.
import t from 'tap';

import { LinkLoss } from '../../src/daemon/link-loss.js';

/**
 * `seconds` of readings, one a second, of a peer sending `rounds(s)` rounds in second s (2 datagrams a
 * round: one peer, two networks) of which this node hears `heard(s)` on the link.
 */
function feed(l: LinkLoss, seconds: number, rounds: (s: number) => number, heard: (s: number) => number, from = { at: 0, count: 0, seq: 1 }) {
  let { at, count, seq } = from;
  for (let s = 0; s < seconds; s++) {
    l.tick([{ key: 'k', heardCount: count, peerSeq: seq }], at);
    seq += 2 * rounds(s);
    count += heard(s);
    at += 1000;
  }
  return { at, count, seq };
}

t.test('every heartbeat heard: no loss; a tenth missing: 0.1; none for 3 s of 10: 0.3', async (t) => {
  // One tracker per case: it samples all links at once, once a second.
  const all = new LinkLoss(2);
  feed(all, 12, () => 10, () => 10);
  t.equal(all.loss('k'), 0);
  const tenth = new LinkLoss(2);
  feed(tenth, 12, () => 10, () => 9);
  t.equal(tenth.loss('k'), 0.1);
  const gap = new LinkLoss(2);
  feed(gap, 11, () => 10, (s) => (s >= 7 ? 0 : 10));
  t.equal(gap.loss('k'), 0.3, 'the window is the last 10 s');
});

t.test('a sender that skipped rounds (descheduled, its lease lapsed) lost nothing: its numbers say what it sent', async (t) => {
  const l = new LinkLoss(2);
  feed(l, 12, (s) => (s % 2 === 0 ? 10 : 3), (s) => (s % 2 === 0 ? 10 : 3));
  t.equal(l.loss('k'), 0);
});

t.test('the window moves: a loss long past no longer counts', async (t) => {
  const l = new LinkLoss(2);
  const end = feed(l, 6, () => 10, () => 5);
  t.equal(l.loss('k'), 0.5);
  feed(l, 12, () => 10, () => 10, end);
  t.equal(l.loss('k'), 0);
});

t.test('too few rounds, a link never heard, a peer that restarted', async (t) => {
  const l = new LinkLoss(2);
  feed(l, 3, () => 5, () => 5);
  t.equal(l.loss('k'), null, 'ten rounds: too few to say');
  t.equal(l.loss('unknown'), null);
  const silent = new LinkLoss(2);
  silent.tick([{ key: 'k', heardCount: 0, peerSeq: 0 }], 0);
  silent.tick([{ key: 'k', heardCount: 0, peerSeq: 0 }], 5000);
  t.equal(silent.loss('k'), null, 'never heard: no loss to speak of');
  const restarted = new LinkLoss(2);
  const before = feed(restarted, 5, () => 10, () => 5, { at: 0, count: 0, seq: 5001 });
  feed(restarted, 5, () => 10, () => 10, { at: before.at, count: before.count, seq: 1 });
  t.equal(restarted.loss('k'), 0, 'its numbers went back (a new incarnation): counted afresh');
});

t.test('sampled once a second however often it ticks', async (t) => {
  const l = new LinkLoss(2);
  for (let at = 0, count = 0, seq = 1; at <= 10_000; at += 100, count += 1, seq += 2) l.tick([{ key: 'k', heardCount: count, peerSeq: seq }], at);
  t.equal(l.loss('k'), 0);
});

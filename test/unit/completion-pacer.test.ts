// The completion pacer settles directly within its time budget and defers the rest to the next turn of
// the loop, a budget at a time, so a stream of completions cannot hold the event loop.
import t from 'tap';

import { CompletionPacer } from '../../src/scsi/completion-pacer.js';

function harness(budget = 2) {
  let clock = 0;
  const scheduled: (() => void)[] = [];
  const pacer = new CompletionPacer(budget, () => clock, (fn) => scheduled.push(fn));
  const ran: number[] = [];
  return {
    pacer, ran, scheduled,
    advance: (ms: number) => { clock += ms; },
    /** Each settled job takes `cost` ms of JS time. */
    job: (n: number, cost = 0) => () => { ran.push(n); clock += cost; },
    turn: () => scheduled.shift()!(),
  };
}

t.test('within the budget, completions settle at once', async (t) => {
  const h = harness();
  for (let i = 0; i < 5; i++) h.pacer.settle(h.job(i, 0.1));
  t.same(h.ran, [0, 1, 2, 3, 4]);
  t.equal(h.pacer.waiting, 0);
  t.equal(h.scheduled.length, 1, 'one end-of-burst check scheduled');
});

t.test('past the budget they wait for the next turn, and keep their order', async (t) => {
  const h = harness();
  for (let i = 0; i < 10; i++) h.pacer.settle(h.job(i, 0.5));
  t.same(h.ran, [0, 1, 2, 3], '2 ms of work settled directly');
  t.equal(h.pacer.waiting, 6);
  h.turn();
  t.same(h.ran, [0, 1, 2, 3, 4, 5, 6, 7], 'the next turn settles another budget');
  t.equal(h.scheduled.length, 1, 'and schedules itself again');
  h.turn();
  t.same(h.ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.equal(h.pacer.waiting, 0);
  t.equal(h.scheduled.length, 0, 'quiet again');
});

t.test('once something waits, later completions queue behind it even if time allows', async (t) => {
  const h = harness();
  h.pacer.settle(h.job(0, 3));
  h.pacer.settle(h.job(1));
  h.advance(-10); // a clock oddity must not let job 2 overtake job 1
  h.pacer.settle(h.job(2));
  t.same(h.ran, [0]);
  h.turn();
  t.same(h.ran, [0, 1, 2]);
});

t.test('a new burst after a quiet turn gets a fresh budget', async (t) => {
  const h = harness();
  h.pacer.settle(h.job(0, 5));
  h.turn();
  h.advance(100);
  h.pacer.settle(h.job(1, 0.1));
  t.same(h.ran, [0, 1]);
});

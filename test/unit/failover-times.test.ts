// FailoverTimes (src/daemon/failover-times.ts): the last completed failover of each app by phase, from the
// membership's silence and the flow runner's timed steps, on a fake clock.
import t from 'tap';

import { FailoverTimes, stepPhase } from '../../src/daemon/failover-times.js';

function clocked() {
  let now = 10_000;
  const times = new FailoverTimes(() => now, () => 1_700_000_000_000 + now);
  return { times, advance: (ms: number) => { now += ms; } };
}

t.test('a failover after a peer failure: detection is its silence plus the wait to the takeover, the steps add up by phase', async (t) => {
  const { times, advance } = clocked();
  times.peerFailed('a', 1200);
  advance(50); // the priority write before the flows hear of it
  times.started('web', 'a', true);
  times.step('web', 'fence', 800);
  times.step('web', 'fence', 100); // a second attempt's fence
  times.step('web', 'address', 12);
  times.step('web', 'app_start', 30);
  advance(1000);
  t.same(times.list(), [], 'nothing until it completes');
  times.completed('web');
  t.same(times.list(), [{ tag: 'web', from: 'a', completedAt: 1_700_000_011_050, phases: { detection: 1250, fence: 900, address: 12, app_start: 30, total: 2250 } }]);
});

t.test('an app fault on a live host has no detection; a failover that ends without completing keeps the last record', async (t) => {
  const { times, advance } = clocked();
  times.peerFailed('a', 1200);
  times.started('web', 'a', false);
  advance(300);
  times.completed('web');
  t.same(times.list()[0]?.phases, { total: 300 }, 'host-faulted: total only');
  times.started('web', 'a', true);
  times.step('web', 'fence', 5);
  times.ended('web');
  times.step('web', 'address', 5);
  times.completed('web');
  t.same(times.list()[0]?.phases, { total: 300 }, 'the aborted failover left nothing, and steps outside a failover are ignored');
});

t.test('the phases of the timed steps are those of vigil timeline', async (t) => {
  t.equal(stepPhase('peer powered off', 'a'), 'fence');
  t.equal(stepPhase('peer self-fenced', 'a'), 'fence');
  t.equal(stepPhase('resource started', 'disk shared0'), 'fence');
  t.equal(stepPhase('resource started', 'mount /srv'), 'mount');
  t.equal(stepPhase('resource started', 'ip 10.0.0.9/24'), 'address');
  t.equal(stepPhase('resource stopped', 'ip 10.0.0.9/24'), undefined);
});

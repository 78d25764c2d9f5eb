// Membership: failure only when every channel is silent; channel faults alert only; recovery hysteresis;
// our own stall never counts against a peer (the liveness clock).
import t, { type Test } from 'tap';

import { Membership, type MembershipEvent, type MembershipOptions } from '../../src/membership/membership.js';

const CHANNELS = ['net:lan1', 'net:lan2', 'disk:shared0'];
const BASE: MembershipOptions = {
  peers: [{ name: 'b', channels: CHANNELS }],
  failAfterMs: 400,
  recoverAfterMs: 2000,
  tickMs: 100,
  stallSlackMs: 50,
};

interface Scenario {
  until: number;
  /** Is the peer sending on this channel at real time t? (default: always) */
  sending?: (channel: string, t: number) => boolean;
  /** Periods (start, end) when our own event loop does not run: no tick, nothing delivered. */
  stalls?: Array<[number, number]>;
  /** Heartbeat period per channel (default 50 ms). */
  every?: (channel: string) => number;
  options?: Partial<MembershipOptions>;
}

interface Stamped { t: number; e: MembershipEvent }

/**
 * Real time in 10 ms steps. Heartbeats are stamped when sent (as the native receive thread stamps them)
 * and delivered when our loop runs, AFTER that step's tick: after a stall the tick that ends it runs
 * before the queued heartbeats are read (timers come before I/O in a loop turn), the worst case.
 */
function simulate(s: Scenario): { events: Stamped[]; m: Membership } {
  const options = { ...BASE, ...s.options };
  const m = new Membership(options, 0);
  const events: Stamped[] = [];
  const queue: Array<{ channel: string; t: number }> = [];
  const channels = options.peers[0]!.channels;
  for (let t = 10; t <= s.until; t += 10) {
    for (const c of channels) {
      if (t % (s.every?.(c) ?? 50) === 0 && (s.sending?.(c, t) ?? true)) queue.push({ channel: c, t });
    }
    const running = !(s.stalls ?? []).some(([a, b]) => a < t && t < b);
    if (!running) continue;
    if (t % options.tickMs === 0) for (const e of m.tick(t)) events.push({ t, e });
    for (const h of queue.splice(0)) m.observe('b', h.channel, h.t);
  }
  return { events, m };
}

const kinds = (events: Stamped[]): string[] => events.map(({ e }) => e.kind + ('channel' in e ? ` ${e.channel}` : ''));
const only = (events: Stamped[], kind: MembershipEvent['kind']): Stamped[] => events.filter(({ e }) => e.kind === kind);

t.test('behaviours', async (t) => {
  const cases: Array<{ name: string; scenario: Scenario; check: (t: Test, events: Stamped[], m: Membership) => void }> = [
    {
      name: 'one channel silent: channelDown only, channelUp when it returns',
      scenario: { until: 5000, sending: (c, t) => c !== 'net:lan2' || t < 1000 || t >= 3000 },
      check: (t, events) => {
        t.same(kinds(events), ['peerAlive', 'channelDown net:lan2', 'channelUp net:lan2']);
        const [, down, up] = events;
        // last heard 950; ticks every 100: silent 350 at 1300, 450 at 1400
        t.equal(down!.t, 1400);
        t.match(down!.e, { silentMs: 450, neverHeard: false });
        t.equal(up!.t, 3100, 'heard at 3000, delivered after that tick, reported by the next');
        t.match(up!.e, { silentMs: 2050 });
      },
    },
    {
      name: 'all channels silent: peerFailed exactly once, at failAfterMs (not before, at most one tick later)',
      scenario: { until: 6000, sending: (_c, t) => t < 1000 },
      check: (t, events) => {
        t.same(kinds(events), ['peerAlive', 'peerFailed'], 'no channelDown: the peer failed as a whole');
        const failed = only(events, 'peerFailed')[0]!;
        const lastHeard = 950;
        t.ok(failed.t - lastHeard >= 400, 'not before failAfterMs');
        t.ok(failed.t - lastHeard <= 400 + 100, 'not later than one tick after');
        t.same(failed.e, { kind: 'peerFailed', peer: 'b', silentMs: 450, channels: { 'net:lan1': 450, 'net:lan2': 450, 'disk:shared0': 450 } });
      },
    },
    {
      name: 'the disk channel alone keeps a peer alive',
      scenario: { until: 6000, every: (c) => (c === 'disk:shared0' ? 200 : 50), sending: (c, t) => (c === 'disk:shared0' ? t < 4000 : t < 1000) },
      check: (t, events) => {
        t.same(kinds(events), ['peerAlive', 'channelDown net:lan1', 'channelDown net:lan2', 'peerFailed']);
        t.equal(only(events, 'peerFailed')[0]!.t, 4200, 'only once the disk fell silent too (last heard 3800)');
      },
    },
    {
      name: 'our own 3 s stall: ownStall reported, no peer failed, no channel down',
      scenario: { until: 8000, stalls: [[1000, 4000]] },
      check: (t, events, m) => {
        t.same(kinds(events), ['peerAlive', 'ownStall']);
        t.same(only(events, 'ownStall')[0], { t: 4000, e: { kind: 'ownStall', stallMs: 2850, gapMs: 3000 } });
        t.equal(m.snapshot(8000).ownStallMs, 2850);
        t.equal(m.livenessMs, 8000 - 2850);
      },
    },
    {
      name: 'our own 3 s stall while every heartbeat sent during it is lost: still no failure',
      scenario: { until: 8000, stalls: [[1000, 4000]], sending: (_c, t) => t <= 1000 || t >= 4000 },
      check: (t, events) => t.same(kinds(events), ['peerAlive', 'ownStall']),
    },
    {
      name: 'a peer that dies during our stall is declared failed soon after it',
      scenario: { until: 8000, stalls: [[1000, 4000]], sending: (_c, t) => t < 2000 },
      check: (t, events) => {
        t.same(kinds(events), ['peerAlive', 'ownStall', 'peerFailed']);
        const failed = only(events, 'peerFailed')[0]!;
        t.ok(failed.t > 4000 && failed.t <= 4000 + 400, `within failAfterMs of liveness after the stall (at ${failed.t})`);
      },
    },
    {
      name: 'a peer that died just before our stall is declared failed soon after it',
      scenario: { until: 8000, stalls: [[1000, 4000]], sending: (_c, t) => t < 900 },
      check: (t, events) => {
        t.same(kinds(events), ['peerAlive', 'ownStall', 'peerFailed']);
        // last heard 850; 150 of silence credited by tick 1000, 150 by the stall, 100 more at 4100
        t.equal(only(events, 'peerFailed')[0]!.t, 4100);
      },
    },
    {
      name: 'flapping: a failed peer heard in short bursts never comes back',
      scenario: { until: 30000, sending: (_c, t) => t < 1000 || (t >= 3000 && t % 1000 < 500) },
      check: (t, events) => t.same(kinds(events), ['peerAlive', 'peerFailed']),
    },
    {
      name: 'recovery: heard continuously for recoverAfterMs (gaps under failAfterMs do not break the run)',
      scenario: { until: 8000, sending: (c, t) => t < 1000 || (c === 'net:lan1' && t >= 3000 && t % 600 < 300) },
      check: (t, events) => {
        t.same(kinds(events), ['peerAlive', 'peerFailed', 'peerAlive', 'channelDown net:lan2', 'channelDown disk:shared0']);
        const back = events[2]!;
        t.match(back.e, { from: 'failed', channels: ['net:lan1'] });
        const heardFor = (back.e as { heardForMs: number }).heardForMs;
        t.ok(heardFor >= 2000, `heard for ${heardFor} ms`);
        t.ok(back.t >= 3000 + 2000 && back.t <= 3000 + 2000 + 300 + 100, `back at ${back.t}`);
      },
    },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const { events, m } = simulate(c.scenario);
      c.check(t, events, m);
    });
  }
});

t.test('peerFailed at exactly failAfterMs with any tick phase', async (t) => {
  for (const tickMs of [100, 70, 33]) {
    const m = new Membership({ ...BASE, tickMs }, 0);
    m.observe('b', 'net:lan1', 0);
    let failedAt = -1;
    for (let now = tickMs; now <= 2000; now += tickMs) {
      for (const e of m.tick(now)) if (e.kind === 'peerFailed') {
        t.equal(failedAt, -1, 'once');
        failedAt = now;
      }
    }
    t.ok(failedAt >= 400 && failedAt < 400 + tickMs, `tick ${tickMs}: failed at ${failedAt}`);
  }
});

t.test('own stall accounting: late by the slack is no stall, one more millisecond is', async (t) => {
  const m = new Membership(BASE, 1000);
  t.same(m.tick(1150), [], 'tickMs + stallSlackMs late');
  t.same(m.tick(1301), [{ kind: 'ownStall', stallMs: 1, gapMs: 151 }]);
  t.equal(m.livenessMs, 300);
  t.same(m.tick(1200), [], 'a clock going backwards credits nothing');
  t.equal(m.livenessMs, 300);
});

t.test('observations are placed on the liveness clock relative to the latest tick', async (t) => {
  const m = new Membership({ ...BASE, peers: [{ name: 'b', channels: ['net:lan1', 'net:lan2'] }] }, 0);
  m.tick(100);
  m.observe('b', 'net:lan1', 100);
  m.tick(200);
  m.tick(3200); // a 3 s stall of ours: liveness 350
  t.equal(m.livenessMs, 350);
  m.observe('b', 'net:lan2', 1500); // stamped during the stall: counts as heard at 350 - (3200 - 1500), older
  m.observe('b', 'net:lan1', 50);   // older than what lan1 already has: ignored
  const s = m.snapshot(3200);
  t.match(s.peers[0]!.channels, [
    { channel: 'net:lan1', silentMs: 250, lastHeardAgeMs: 3100 },
    { channel: 'net:lan2', silentMs: 1700, lastHeardAgeMs: 1700 },
  ]);
  m.observe('b', 'net:lan2', 99999); // stamped far ahead: capped at one tick + slack past the latest tick
  m.tick(3300);
  t.equal(m.snapshot(3300).peers[0]!.channels[1]!.silentMs, 0, 'at liveness 500: ahead of the clock (450)');
  m.tick(3400);
  t.equal(m.snapshot(3400).peers[0]!.channels[1]!.silentMs, 50);
});

t.test('unknown peers', async (t) => {
  const m = new Membership(BASE, 0);
  let now = 0;
  const run = (until: number, hear?: string[]): MembershipEvent[] => {
    const out: MembershipEvent[] = [];
    for (; now < until;) {
      now += 100;
      out.push(...m.tick(now));
      for (const c of hear ?? []) m.observe('b', c, now);
    }
    return out;
  };
  t.same(run(10000), [], 'never heard: no event, never failed');
  t.match(m.snapshot(now).peers[0], { state: 'unknown', forMs: 10000, channels: [{ state: 'unknown', lastHeardAgeMs: null }, {}, {}] });
  const first = run(10200, ['net:lan1']);
  t.same(first, [{ kind: 'peerAlive', peer: 'b', from: 'unknown', channels: ['net:lan1'], heardForMs: 0 }],
    'alive as soon as heard, without hysteresis; the channels not heard yet are not down yet');
  const later = run(11000, ['net:lan1', 'disk:shared0']);
  t.same(later, [{ kind: 'channelDown', peer: 'b', channel: 'net:lan2', silentMs: 400, neverHeard: true }],
    'a channel never heard is down failAfterMs after the peer was first heard; one heard late just comes up');
  t.match(m.snapshot(now).peers[0]!.channels.map((c) => c.state), ['up', 'down', 'up']);
});

t.test('observe ignores peers and channels not configured', async (t) => {
  const m = new Membership(BASE, 0);
  t.equal(m.observe('z', 'net:lan1', 10), false);
  t.equal(m.observe('b', 'net:lan9', 10), false);
  t.equal(m.observe('b', 'net:lan1', 10), true);
  t.throws(() => m.observe('b', 'net:lan1', Number.NaN), RangeError);
});

t.test('options are checked', async (t) => {
  const bad: Array<[string, Partial<MembershipOptions>]> = [
    ['negative', { recoverAfterMs: -1 }],
    ['zero tick', { tickMs: 0 }],
    ['failAfter below tick', { failAfterMs: 50 }],
    ['not finite', { stallSlackMs: Infinity }],
    ['no channel', { peers: [{ name: 'b', channels: [] }] }],
    ['peer twice', { peers: [{ name: 'b', channels: ['x'] }, { name: 'b', channels: ['y'] }] }],
    ['channel twice', { peers: [{ name: 'b', channels: ['x', 'x'] }] }],
  ];
  for (const [name, o] of bad) t.throws(() => new Membership({ ...BASE, ...o }, 0), RangeError, name);
});

t.test('snapshot', async (t) => {
  const { m } = simulate({ until: 3000, sending: (c, t) => c !== 'net:lan2' || t < 1000 });
  t.same(m.snapshot(3005), {
    livenessMs: 3000,
    ownStallMs: 0,
    peers: [{
      peer: 'b', state: 'alive', forMs: 2900,
      channels: [
        { channel: 'net:lan1', state: 'up', lastHeardAgeMs: 5, silentMs: 0 },
        { channel: 'net:lan2', state: 'down', lastHeardAgeMs: 2055, silentMs: 2050 },
        { channel: 'disk:shared0', state: 'up', lastHeardAgeMs: 5, silentMs: 0 },
      ],
    }],
  });
});

t.test('a peer declared failed (its distress) is failed at once and comes back only when heard anew for recoverAfterMs', async (t) => {
  const m = new Membership(BASE, 0);
  let now = 0;
  const beat = (until: number) => {
    const events: MembershipEvent[] = [];
    for (; now < until; now += 50) {
      for (const c of CHANNELS) m.observe('b', c, now);
      if (now % 100 === 0) events.push(...m.tick(now));
    }
    return events;
  };
  t.same(kinds(beat(3000).map((e) => ({ t: 0, e }))), ['peerAlive'], 'b alive after a long continuous run');
  const e = m.declareFailed('b', 'distress: power-low-battery');
  t.match(e, { kind: 'peerFailed', peer: 'b', declared: 'distress: power-low-battery' });
  t.ok(e && e.kind === 'peerFailed' && e.silentMs < 100, 'silence at the declaration is how long ago b was last heard');
  t.equal(m.snapshot(now).peers[0]!.state, 'failed');
  t.equal(m.declareFailed('b', 'again'), undefined, 'a failed peer is not declared twice');
  t.equal(m.declareFailed('nobody', 'x'), undefined, 'an unknown peer is ignored');
  // The caller ignores the old incarnation: ticks alone never bring b back, the long run it had before counts for nothing.
  const quiet: MembershipEvent[] = [];
  for (let end = now + 1000; now < end; now += 100) quiet.push(...m.tick(now));
  t.same(quiet, [], 'no event while b is not heard (no second peerFailed, no recovery from the old run)');
  const back = beat(now + 1900);
  t.same(back.filter((x) => x.kind === 'peerAlive'), [], 'heard again for less than recoverAfterMs: still failed');
  const alive = beat(now + 300);
  t.match(alive.filter((x) => x.kind === 'peerAlive'), [{ kind: 'peerAlive', peer: 'b', from: 'failed' }], 'back after a new run of recoverAfterMs');
});

/** Membership of b with its disk channel not expected, and a driver: b heard on these channels until then. */
function heardOn(): { m: Membership; events: MembershipEvent[]; run: (until: number, channels: string[]) => void } {
  const m = new Membership(BASE, 0);
  m.expect('b', 'disk:shared0', false);
  const events: MembershipEvent[] = [];
  let now = 0;
  const run = (until: number, channels: string[]) => {
    for (; now < until; now += 50) {
      for (const c of channels) m.observe('b', c, now);
      if (now % 100 === 0) events.push(...m.tick(now));
    }
  };
  return { m, events, run };
}

t.test('a channel not expected of a peer (the disk of a peer that does not hold it): silent, it is idle and raises nothing; heard, it keeps the peer alive', async (t) => {
  const { m, events, run } = heardOn();
  run(2000, ['net:lan1', 'net:lan2']);
  t.same(events.map((e) => e.kind), ['peerAlive'], 'no channelDown for the silent disk channel');
  t.equal(m.snapshot(2000).peers[0]!.channels.find((c) => c.channel === 'disk:shared0')?.state, 'idle');
  run(4000, ['disk:shared0']);
  t.same(events.filter((e) => e.kind === 'peerFailed'), [], 'both networks silent, the disk heard: alive');
  t.same(events.filter((e) => e.kind === 'channelDown').map((e) => 'channel' in e && e.channel).sort(), ['net:lan1', 'net:lan2']);
  t.equal(m.expect('b', 'disk:nothing', true), false, 'an unknown channel is refused');
});

t.test('a channel expected again (a new holder) gets failAfterMs to be heard before it is called down', async (t) => {
  const { m, events, run } = heardOn();
  run(2000, ['net:lan1', 'net:lan2']);
  m.expect('b', 'disk:shared0', true);
  run(2300, ['net:lan1', 'net:lan2']);
  t.same(events.filter((e) => e.kind === 'channelDown'), [], 'not at once');
  run(2600, ['net:lan1', 'net:lan2']);
  t.match(events.filter((e) => e.kind === 'channelDown'), [{ channel: 'disk:shared0', neverHeard: true }], 'after failAfterMs of silence as expected');
});

t.test('a failed peer heard as a new incarnation (restarted) is alive at once; one not heard stays failed; a live one is unchanged', async (t) => {
  const m = new Membership(BASE, 0);
  let now = 0;
  const beat = (until: number) => {
    for (; now < until; now += 50) {
      for (const c of CHANNELS) m.observe('b', c, now);
      if (now % 100 === 0) m.tick(now);
    }
  };
  beat(2000);
  t.equal(m.restarted('b'), undefined, 'alive: nothing to do');
  for (let end = now + 1000; now < end; now += 100) m.tick(now);
  t.equal(m.snapshot(now).peers[0]!.state, 'failed');
  t.equal(m.restarted('b'), undefined, 'failed and silent: stays failed');
  m.observe('b', 'net:lan1', now);
  m.tick(now);
  t.match(m.restarted('b'), { kind: 'peerAlive', peer: 'b', from: 'failed' }, 'heard once, as a new process: alive at once');
  t.equal(m.snapshot(now).peers[0]!.state, 'alive');
  for (let end = now + 1000; now < end; now += 100) m.tick(now);
  t.equal(m.snapshot(now).peers[0]!.state, 'failed', 'and failed again by silence, by the usual rule');
});

// The power policy, table-tested: each scenario is a configuration and a list of steps (time, input) with
// the decisions expected at each step, written `action` or `distress:reason:mode`, and the pending deadline.
import t from 'tap';

import { decide, initialPolicyState, nextDeadline, DEFAULT_MODES, type PowerPolicyConfig, type PolicyState, type PowerDecision } from '../../src/power/policy.js';
import type { PowerEvent, PowerEventKind } from '../../src/power/source.js';

function ev(kind: PowerEventKind, source = 'ups1', extra: Partial<PowerEvent['detail']> = {}): PowerEvent {
  return { kind, source, at: 0, detail: { text: kind, ...extra } };
}

type Step = [now: number, input: PowerEvent | 'tick', expect: string[], deadline?: number | null];

interface Scenario {
  name: string;
  config: PowerPolicyConfig;
  steps: Step[];
}

const short = (d: PowerDecision): string => (d.action === 'distress' ? `distress:${d.reason}:${d.mode}` : d.action);

const scenarios: Scenario[] = [
  {
    name: 'no grace: on battery only warns, never distress on time alone',
    config: {},
    steps: [
      [0, ev('online', 'ups1', { initial: true }), [], null],
      [1000, ev('on-battery'), ['warn'], null],
      [3_600_000, 'tick', [], null],
      [3_600_001, ev('online'), ['notice'], null],
    ],
  },
  {
    name: 'grace: power back before it ends cancels',
    config: { onBattery: { graceMs: 30_000 } },
    steps: [
      [0, ev('online', 'ups1', { initial: true }), [], null],
      [1000, ev('on-battery'), ['warn'], 31_000],
      [20_000, ev('online'), ['cancel'], null],
      [31_000, 'tick', [], null],
    ],
  },
  {
    name: 'grace: expires → distress (async), exactly at the deadline and not before',
    config: { onBattery: { graceMs: 30_000 } },
    steps: [
      [1000, ev('on-battery'), ['warn'], 31_000],
      [30_999, 'tick', [], 31_000],
      [31_000, 'tick', ['distress:power-on-battery-grace:async'], null],
      [40_000, 'tick', [], null],
      [50_000, ev('online'), ['notice'], null], // stays out until vigil rejoin
    ],
  },
  {
    name: 'grace 0: distress as soon as on battery',
    config: { onBattery: { graceMs: 0 } },
    steps: [[5, ev('on-battery'), ['warn', 'distress:power-on-battery-grace:async'], null]],
  },
  {
    name: 'low battery → distress at once (sync); power back after it is only a notice',
    config: { onBattery: { graceMs: 600_000 } },
    steps: [
      [0, ev('on-battery'), ['warn'], 600_000],
      [1000, ev('low-battery'), ['distress:power-low-battery:sync'], null],
      [2000, ev('on-battery'), ['notice'], null], // battery no longer low
      [3000, ev('online'), ['notice'], null],
      [4000, ev('on-battery'), ['notice'], null], // a second outage: already in distress
      [5000, ev('low-battery'), [], null],
    ],
  },
  {
    name: 'low battery already when the source starts: distress all the same (what that means before joining is the wiring\'s call)',
    config: {},
    steps: [[0, ev('low-battery', 'ups1', { initial: true }), ['distress:power-low-battery:sync'], null]],
  },
  {
    name: 'FSD → distress (sync)',
    config: {},
    steps: [
      [0, ev('online', 'ups1', { initial: true }), [], null],
      [10, ev('forced-shutdown'), ['distress:power-forced-shutdown:sync'], null],
    ],
  },
  {
    name: 'grace distress first, low battery later: one distress only',
    config: { onBattery: { graceMs: 1000 } },
    steps: [
      [0, ev('on-battery'), ['warn'], 1000],
      [1000, 'tick', ['distress:power-on-battery-grace:async'], null],
      [2000, ev('low-battery'), [], null],
      [3000, ev('forced-shutdown'), [], null],
    ],
  },
  {
    name: 'comms lost → warn only; a grace already running keeps running through the silence',
    config: { onBattery: { graceMs: 30_000 } },
    steps: [
      [0, ev('on-battery'), ['warn'], 30_000],
      [5000, ev('comms-lost'), ['warn'], 30_000],
      [10_000, ev('comms-back'), ['notice'], 30_000],
      [12_000, ev('comms-lost'), ['warn'], 30_000],
      [30_000, 'tick', ['distress:power-on-battery-grace:async'], null],
    ],
  },
  {
    name: 'comms lost while on line: warn, nothing pending, even with the DEADTIME knob',
    config: { commsLostOnBatteryMs: 15_000 },
    steps: [
      [0, ev('online', 'ups1', { initial: true }), [], null],
      [1000, ev('comms-lost'), ['warn'], null],
      [100_000, 'tick', [], null],
      [100_001, ev('comms-back'), ['notice'], null],
    ],
  },
  {
    name: 'commsLostOnBatteryMs (upsmon DEADTIME): silent while on battery that long → distress; comms back in time clears it',
    config: { commsLostOnBatteryMs: 15_000 },
    steps: [
      [0, ev('on-battery'), ['warn'], null],
      [1000, ev('comms-lost'), ['warn'], 16_000],
      [10_000, ev('comms-back'), ['notice'], null],
      [20_000, ev('comms-lost'), ['warn'], 35_000],
      [34_999, 'tick', [], 35_000],
      [35_000, 'tick', ['distress:power-comms-lost-on-battery:async'], null],
    ],
  },
  {
    name: 'the earlier of grace and DEADTIME wins',
    config: { onBattery: { graceMs: 20_000 }, commsLostOnBatteryMs: 5000 },
    steps: [
      [0, ev('on-battery'), ['warn'], 20_000],
      [1000, ev('comms-lost'), ['warn'], 6000],
      [6000, 'tick', ['distress:power-comms-lost-on-battery:async'], null],
      [20_000, 'tick', [], null],
    ],
  },
  {
    name: 'a self-test on battery is a notice: no grace, no distress',
    config: { onBattery: { graceMs: 0 } },
    steps: [
      [0, ev('on-battery', 'ups1', { selfTest: true }), ['notice'], null],
      [10_000, ev('online'), ['notice'], null],
    ],
  },
  {
    name: 'sources are independent: each its own grace; the first to expire decides',
    config: { onBattery: { graceMs: 30_000 } },
    steps: [
      [0, ev('on-battery', 'a'), ['warn'], 30_000],
      [10_000, ev('on-battery', 'b'), ['warn'], 30_000],
      [20_000, ev('online', 'a'), ['cancel'], 40_000],
      [40_000, 'tick', ['distress:power-on-battery-grace:async'], null],
    ],
  },
  {
    name: 'another source after distress: notices only',
    config: {},
    steps: [
      [0, ev('low-battery', 'a'), ['distress:power-low-battery:sync'], null],
      [1, ev('forced-shutdown', 'b'), ['notice'], null],
    ],
  },
  {
    name: 'modes are configurable per reason',
    config: { modes: { 'power-low-battery': 'async', 'power-on-battery-grace': 'sync' }, onBattery: { graceMs: 0 } },
    steps: [[0, ev('low-battery'), ['distress:power-low-battery:async'], null]],
  },
  {
    name: 'modes: grace overridden to sync',
    config: { modes: { 'power-on-battery-grace': 'sync' }, onBattery: { graceMs: 0 } },
    steps: [[0, ev('on-battery'), ['warn', 'distress:power-on-battery-grace:sync'], null]],
  },
  {
    name: 'on battery again while a grace runs does not restart it',
    config: { onBattery: { graceMs: 10_000 } },
    steps: [
      [0, ev('on-battery'), ['warn'], 10_000],
      [3000, ev('comms-lost'), ['warn'], 10_000],
      [4000, ev('comms-back'), ['notice'], 10_000],
      [10_000, 'tick', ['distress:power-on-battery-grace:async'], null],
    ],
  },
];

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

for (const sc of scenarios) {
  t.test(sc.name, async (t) => {
    let state: PolicyState = initialPolicyState();
    for (const [i, [now, input, expect, deadline]] of sc.steps.entries()) {
      deepFreeze(state); // decide() is pure: it never touches the state it is given
      const r = decide(sc.config, state, input === 'tick' ? { type: 'tick', now } : { type: 'event', event: input, now });
      const what = `step ${i} (${now} ms, ${input === 'tick' ? 'tick' : `${input.source} ${input.kind}`})`;
      t.same(r.decisions.map(short), expect, `${what}: ${expect.join(', ') || 'nothing'}`);
      for (const d of r.decisions) t.ok(d.text.length > 0 && d.source.length > 0, `${what}: says why and which source`);
      if (deadline !== undefined) t.equal(nextDeadline(r.state) ?? null, deadline, `${what}: next deadline ${deadline}`);
      state = r.state;
    }
  });
}

t.test('the distress text names the source, the reason and the time', async (t) => {
  let s = initialPolicyState();
  s = decide({ onBattery: { graceMs: 1000 } }, s, { type: 'event', event: ev('on-battery', 'nut:ups@host'), now: 0 }).state;
  const r = decide({ onBattery: { graceMs: 1000 } }, s, { type: 'tick', now: 1500 });
  t.match(r.decisions[0], { action: 'distress', source: 'nut:ups@host', reason: 'power-on-battery-grace', text: /on battery for 1500 ms \(grace 1000 ms\)/ });
  t.match(r.state.distressed, { source: 'nut:ups@host', reason: 'power-on-battery-grace', at: 1500 });
});

t.test('default modes follow seed 002 A.5: battery time left → async; the UPS says now → sync', async (t) => {
  t.same(DEFAULT_MODES, {
    'power-on-battery-grace': 'async', 'power-comms-lost-on-battery': 'async', 'power-low-battery': 'sync', 'power-forced-shutdown': 'sync',
  });
});

// The power watch between the sources and the policy: source events reach the policy, its deadline (the
// on-battery grace) is kept by a timer, decisions reach the agent in order, power back cancels, the status
// shows the grace left and the history; stop() stops the sources and no decision comes after it.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { PowerWatch } from '../../src/daemon/power-watch.js';
import type { PowerDecision } from '../../src/power/policy.js';
import type { PowerEvent, PowerEventKind, PowerSource, PowerSourceStatus } from '../../src/power/source.js';

class FakeSource extends EventEmitter implements PowerSource {
  started = 0;
  stopped = 0;
  constructor(readonly name: string) { super(); }
  start(): void { this.started++; }
  async stop(): Promise<void> { this.stopped++; }
  status(): PowerSourceStatus {
    return { source: this.name, type: 'nut', connected: true, state: undefined, raw: undefined, last: undefined, lastError: undefined, polls: 0, failedPolls: 0, reconnects: 0 };
  }
  emitPower(kind: PowerEventKind): void {
    const e: PowerEvent = { kind, source: this.name, at: Date.now(), detail: { text: kind } };
    this.emit('event', e);
  }
}

t.test('on battery past the grace: one distress, decided by the timer', async (t) => {
  const s = new FakeSource('ups');
  const got: PowerDecision[] = [];
  const w = new PowerWatch([s], { onBattery: { graceMs: 80 } }, (d) => got.push(d));
  t.teardown(() => w.stop());
  w.start();
  t.equal(s.started, 1, 'the source is started');
  s.emitPower('online');
  s.emitPower('on-battery');
  t.same(got.map((d) => d.action), ['warn'], 'on battery: a warning first');
  const left = w.status().policy[0]!.graceLeftMs;
  t.ok(left !== null && left > 0 && left <= 80, `grace left shown (${String(left)} ms)`);
  await sleep(200);
  t.match(got.at(-1), { action: 'distress', reason: 'power-on-battery-grace', mode: 'async' }, 'distress when the grace ends');
  t.equal(got.filter((d) => d.action === 'distress').length, 1, 'once');
  t.match(w.status().distressed, { source: 'ups', reason: 'power-on-battery-grace' });
  t.equal(w.status().decisions[0]!.action, 'distress', 'newest decision first');
});

t.test('power back within the grace cancels; no distress later', async (t) => {
  const s = new FakeSource('ups');
  const got: PowerDecision[] = [];
  const w = new PowerWatch([s], { onBattery: { graceMs: 80 } }, (d) => got.push(d));
  t.teardown(() => w.stop());
  w.start();
  s.emitPower('online');
  s.emitPower('on-battery');
  s.emitPower('online');
  await sleep(200);
  t.same(got.map((d) => d.action), ['warn', 'cancel']);
});

t.test('low battery is distress at once, sync by default; after stop() nothing more is decided', async (t) => {
  const s = new FakeSource('ups');
  const got: PowerDecision[] = [];
  const w = new PowerWatch([s], {}, (d) => got.push(d));
  w.start();
  s.emitPower('low-battery');
  t.match(got, [{ action: 'distress', reason: 'power-low-battery', mode: 'sync' }]);
  await w.stop();
  t.equal(s.stopped, 1, 'the source is stopped');
  s.emitPower('forced-shutdown');
  t.equal(got.length, 1, 'no decision after stop');
});

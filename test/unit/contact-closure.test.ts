// Contact-closure UPS: the genericups-style mapping, the debounce and pulse logic fed with sequences of levels
// and edge counts (pulses shorter than the debounce, edges the thread only saw as counts), the source around
// a fake watcher (events, reopen after the adapter vanished, DTR/RTS), and the native watcher's refusals on
// this host, which has no serial port with modem lines (the real TIOCMIWAIT path is test/lab/modem-lines).
import { openSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import t, { type Test } from 'tap';

import {
  ContactClosureLogic, ContactClosureSource, GENERICUPS_TYPES, genericupsMapping, nativeModemLineWatcher, parseCablePower,
  parseSignal, type ContactClosureMapping, type ContactClosureOutput, type LineCounts, type LineLevels,
  type ModemLineEvent, type ModemLineWatcherOptions,
} from '../../src/power/contact-closure.js';
import type { PowerEvent } from '../../src/power/source.js';

const LOW: LineLevels = { cts: false, dcd: false, ri: false, dsr: false };
const ZERO: LineCounts = { cts: 0, dcd: 0, ri: 0, dsr: 0 };
// Online while CTS is high, low battery while DCD is low (genericups type 6 and many others).
const MAP: ContactClosureMapping = { online: { line: 'cts', activeHigh: true }, lowBattery: { line: 'dcd', activeHigh: false }, cablePower: { dtr: true, rts: false } };

const states = (out: ContactClosureOutput[]) => out.filter((o) => o.type === 'state').map((o) => (o.type === 'state' ? o.state : ''));
const pulses = (out: ContactClosureOutput[]) => out.filter((o) => o.type === 'pulse');

t.test('mapping: signals, cable power, the genericups table', async (t) => {
  t.same(parseSignal('CTS'), { line: 'cts', activeHigh: true });
  t.same(parseSignal('-DCD'), { line: 'dcd', activeHigh: false });
  t.same(parseSignal(' -car '), { line: 'dcd', activeHigh: false });
  t.same(parseSignal('RNG'), { line: 'ri', activeHigh: true });
  t.same(parseSignal('-DSR'), { line: 'dsr', activeHigh: false });
  t.throws(() => parseSignal('DTR'), /not an input line/);
  t.throws(() => parseSignal('--CTS'), /not an input line/);
  t.same(parseCablePower('DTR+RTS'), { dtr: true, rts: true });
  t.same(parseCablePower('rts'), { dtr: false, rts: true });
  t.same(parseCablePower('none'), { dtr: false, rts: false });
  t.throws(() => parseCablePower('CTS'), /not an output line/);
  t.equal(GENERICUPS_TYPES.length, 23, 'types 0 to 22');
  GENERICUPS_TYPES.forEach((row, i) => t.equal(row.type, i));
  // Type 1, APC Back-UPS with the 940-0095A cable: DTR powers the cable, on line while RI is low, low battery on DCD.
  t.same(genericupsMapping(1), { online: { line: 'ri', activeHigh: false }, lowBattery: { line: 'dcd', activeHigh: true }, cablePower: { dtr: true, rts: false } });
  t.same(genericupsMapping(1, { OL: 'CTS', CP: 'RTS' }).online, { line: 'cts', activeHigh: true }, 'OL override');
  t.same(genericupsMapping(1, { CP: 'RTS' }).cablePower, { dtr: false, rts: true }, 'CP override');
  t.throws(() => genericupsMapping(23), /unknown genericups upstype/);
  // No cable's power state is its shutdown state (holding it would turn the UPS off).
  for (const row of GENERICUPS_TYPES) {
    if (!/^(DTR|RTS)/.test(row.sd)) continue;  // break, none, unknown
    t.notSame(parseCablePower(row.cp), parseCablePower(row.sd), `type ${row.type}: cable power ${row.cp}, shutdown ${row.sd}`);
  }
});

/** Feeds a sequence to a fresh logic; returns every output. */
function run(debounceMs: number, steps: ({ at: number; levels?: Partial<LineLevels>; counts?: Partial<LineCounts> | null } | { tick: number })[]) {
  const logic = new ContactClosureLogic(MAP, debounceMs);
  const out: ContactClosureOutput[] = [];
  let levels: LineLevels = { ...LOW };
  let counts: LineCounts | null = { ...ZERO };
  let first = true;
  for (const s of steps) {
    if ('tick' in s) {
      out.push(...logic.tick(s.tick));
      continue;
    }
    levels = { ...levels, ...s.levels };
    counts = s.counts === null ? null : { ...(counts ?? ZERO), ...s.counts };
    out.push(...logic.feed({ atMs: s.at, levels, counts, initial: first }));
    first = false;
  }
  return { logic, out };
}

t.test('the initial sample is taken as it is, without debounce', async (t) => {
  t.same(states(run(100, [{ at: 0, levels: { cts: true, dcd: true } }]).out), ['online']);
  t.same(states(run(100, [{ at: 0, levels: { cts: false, dcd: true } }]).out), ['on-battery']);
  t.same(states(run(100, [{ at: 0, levels: { cts: false, dcd: false } }]).out), ['low-battery']);
  const r = run(100, [{ at: 0, levels: { cts: true, dcd: false } }]);
  t.same(states(r.out), ['online'], 'low battery while on line is not critical (OL LB)');
  t.match(r.out[0], { type: 'state', raw: 'OL LB', initial: true });
});

t.test('a level counts once it has held for debounceMs', async (t) => {
  const { logic, out } = run(100, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 1000, levels: { cts: false }, counts: { cts: 1 } },  // mains fails
    { tick: 1099 },
  ]);
  t.same(states(out), ['online'], 'not yet at 99 ms');
  t.equal(logic.nextDeadline(), 1100);
  const later = logic.tick(1100);
  t.same(states(later), ['on-battery'], 'on battery once CTS has been low for 100 ms');
  t.match(later[0], { raw: 'OB', atMs: 1100 });
  t.equal(logic.nextDeadline(), undefined, 'nothing pending');
});

t.test('a drop shorter than the debounce, seen as two levels, changes nothing', async (t) => {
  const { logic, out } = run(100, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 1000, levels: { cts: false }, counts: { cts: 1 } },
    { at: 1040, levels: { cts: true }, counts: { cts: 2 } },
    { tick: 1100 }, { tick: 5000 },
  ]);
  t.same(states(out), ['online']);
  t.same(pulses(out), [], 'both edges were seen as levels: no pulse');
  t.equal(logic.nextDeadline(), undefined);
});

t.test('a pulse the thread saw only as counts is counted and changes nothing', async (t) => {
  const { logic, out } = run(100, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 1000, counts: { cts: 2 } },            // CTS went low and came back between two looks
    { at: 2000, counts: { cts: 4, ri: 2 } },     // again, and a ring on a line nobody maps
    { tick: 9000 },
  ]);
  t.same(states(out), ['online']);
  t.match(pulses(out), [{ line: 'cts', edges: 2, level: true, atMs: 1000 }, { line: 'cts', edges: 2, atMs: 2000 }]);
  t.equal(logic.pulses, 2, 'unmapped lines are not tracked');
});

t.test('a pulse while a change is pending makes the new level hold again from then', async (t) => {
  const { logic, out } = run(100, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 1000, levels: { cts: false }, counts: { cts: 1 } },
    { at: 1080, counts: { cts: 3 } },  // bounced back up and down again, unseen
    { tick: 1100 },
  ]);
  t.same(states(out), ['online'], 'not at 1100: the low level only holds since 1080');
  t.equal(pulses(out).length, 1);
  t.equal(logic.nextDeadline(), 1180);
  t.same(states(logic.tick(1180)), ['on-battery']);
});

t.test('missed edges on the way to a new level: one change, the extra edges as a pulse', async (t) => {
  const { logic, out } = run(50, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 500, levels: { cts: false }, counts: { cts: 3 } },  // down, up, down: the thread woke once
  ]);
  t.match(pulses(out), [{ line: 'cts', edges: 2, level: false }]);
  t.same(states(logic.tick(550)), ['on-battery']);
});

t.test('on battery, then low battery, then power back', async (t) => {
  const { logic, out } = run(20, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 100, levels: { cts: false }, counts: { cts: 1 } }, { tick: 120 },
    { at: 5000, levels: { dcd: false }, counts: { dcd: 1 } }, { tick: 5020 },
    { at: 9000, levels: { cts: true }, counts: { cts: 2 } }, { tick: 9020 },
    { at: 9500, levels: { dcd: true }, counts: { dcd: 2 } }, { tick: 9520 },
  ]);
  // Every change of the raw status is an output; the source's tracker turns only state changes into events.
  t.same(states(out), ['online', 'on-battery', 'low-battery', 'online', 'online']);
  t.same(out.filter((o) => o.type === 'state').map((o) => (o.type === 'state' ? o.raw : '')), ['OL', 'OB', 'OB LB', 'OL LB', 'OL']);
  t.same(logic.conditions(), { online: true, lowBattery: false });
});

t.test('without counters (a driver without TIOCGICOUNT) the levels alone decide', async (t) => {
  const { logic, out } = run(10, [
    { at: 0, levels: { cts: true, dcd: true }, counts: null },
    { at: 100, levels: { cts: false }, counts: null },
  ]);
  t.same(states(out), ['online']);
  t.same(states(logic.tick(110)), ['on-battery']);
});

t.test('debounce 0: a level counts at once', async (t) => {
  const { out } = run(0, [
    { at: 0, levels: { cts: true, dcd: true } },
    { at: 10, levels: { cts: false }, counts: { cts: 1 } },
  ]);
  t.same(states(out), ['online', 'on-battery']);
  t.throws(() => new ContactClosureLogic(MAP, -1), RangeError);
});

t.test('a reopened port (its counters restarted) starts afresh', async (t) => {
  const logic = new ContactClosureLogic(MAP, 100);
  logic.feed({ atMs: 0, levels: { ...LOW, cts: true, dcd: true }, counts: { ...ZERO, cts: 7 }, initial: true });
  const out = logic.feed({ atMs: 10, levels: { ...LOW, cts: false, dcd: true }, counts: { ...ZERO }, initial: true });
  t.same(states(out), ['on-battery'], 'the new port says on battery at once; counts going down are no pulse');
  t.equal(logic.pulses, 0);
});

// ---------------------------------------------------------------------------------------------------------
// The source around a fake watcher, on a fake clock.

class FakeClock {
  now = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  setTimer = (fn: () => void, ms: number) => {
    const id = ++this.ids;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  };
  clearTimer = (h: unknown) => { this.timers = this.timers.filter((x) => x.id !== h); };
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
}

class FakeWatcher {
  stopped = false;
  sets: { id: number; lines: { dtr?: boolean; rts?: boolean } }[] = [];
  private seq = 0;
  constructor(readonly device: string, readonly options: ModemLineWatcherOptions, private readonly clock: FakeClock) {}
  setLines(id: number, lines: { dtr?: boolean; rts?: boolean }) { this.sets.push({ id, lines }); }
  stop() { this.stopped = true; }
  send(kind: ModemLineEvent['kind'], levels: Partial<LineLevels> | null, counts: Partial<LineCounts> | null = {}, extra: Partial<ModemLineEvent> = {}) {
    this.options.onEvent({
      kind, seq: ++this.seq, atNs: BigInt(Math.round(this.clock.now * 1e6)),
      levels: levels ? { ...LOW, dtr: true, rts: false, ...levels } : null, tiocm: null,
      counts: counts ? { ...ZERO, ...counts } : null, dropped: 0, wakes: this.seq, polling: false, ...extra,
    });
  }
}

function rig(t: Test) {
  const clock = new FakeClock();
  const watchers: FakeWatcher[] = [];
  const events: PowerEvent[] = [];
  const src = new ContactClosureSource({ device: '/dev/ttyUSB9', mapping: MAP, debounceMs: 100, backoffMs: 250, backoffMaxMs: 1000 }, {
    watcher: (device, options) => {
      const w = new FakeWatcher(device, options, clock);
      watchers.push(w);
      return w;
    },
    now: () => clock.now, wallClock: () => 1_700_000_000_000 + clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer,
  });
  src.on('event', (e: PowerEvent) => events.push(e));
  t.teardown(() => src.stop());
  return { clock, watchers, events, src };
}

t.test('source: events from the watcher, debounced, with the cable power applied at the open', async (t) => {
  const { clock, watchers, events, src } = rig(t);
  src.start();
  t.equal(watchers.length, 1);
  const w = watchers[0]!;
  t.equal(w.device, '/dev/ttyUSB9');
  t.match(w.options, { dtr: true, rts: false, rescanMs: 500 });
  clock.advance(5);
  w.send('initial', { cts: true, dcd: true });
  t.match(events, [{ kind: 'online', source: 'contact-closure:/dev/ttyUSB9', detail: { raw: 'OL', initial: true, via: 'alert' } }]);
  clock.advance(1000);
  w.send('change', { cts: false, dcd: true }, { cts: 1 });
  clock.advance(99);
  t.equal(events.length, 1, 'debouncing');
  clock.advance(1);
  t.match(events[1], { kind: 'on-battery', detail: { raw: 'OB' } });
  const seen: ContactClosureOutput[] = [];
  src.on('pulse', (p: ContactClosureOutput) => seen.push(p));
  clock.advance(500);
  w.send('change', { cts: false, dcd: true }, { cts: 3 });
  t.match(seen, [{ type: 'pulse', line: 'cts', edges: 2 }], 'pulse while on battery');
  w.send('change', { cts: false, dcd: false }, { cts: 3, dcd: 1 });
  clock.advance(100);
  t.match(events[2], { kind: 'low-battery', detail: { raw: 'OB LB' } });
  t.match(src.status(), { type: 'contact-closure', connected: true, state: 'low-battery', raw: 'OB LB' });
  t.match(src.lines(), { open: true, pulses: 1, counts: { cts: 3, dcd: 1 } });
  await src.stop();
  t.ok(w.stopped, 'stop stops the thread');
});

t.test('source: the adapter vanishes (EIO), comms-lost, reopened with backoff, comms-back', async (t) => {
  const { clock, watchers, events, src } = rig(t);
  src.start();
  watchers[0]!.send('initial', { cts: true, dcd: true });
  watchers[0]!.send('error', null, null, { errno: 5, code: 'EIO', message: 'Input/output error', syscall: 'ioctl(TIOCMIWAIT)' });
  t.match(events.at(-1), { kind: 'comms-lost', detail: { error: /TIOCMIWAIT.*EIO/ } });
  t.match(src.lines(), { open: false, errors: 1 });
  clock.advance(249);
  t.equal(watchers.length, 1, 'not before the backoff');
  clock.advance(1);
  t.equal(watchers.length, 2, 'reopened after 250 ms');
  // Still gone: the open fails, and the next try waits twice as long.
  watchers[1]!.send('error', null, null, { errno: 2, code: 'ENOENT', message: 'No such file or directory', syscall: 'open' });
  clock.advance(499);
  t.equal(watchers.length, 2);
  clock.advance(1);
  t.equal(watchers.length, 3);
  watchers[2]!.send('initial', { cts: false, dcd: true });
  t.match(events.slice(-2), [{ kind: 'comms-back' }, { kind: 'on-battery', detail: { raw: 'OB' } }]);
  t.equal(src.status().reconnects, 2);
});

t.test('source: setLines is answered by the thread', async (t) => {
  const { watchers, src } = rig(t);
  await t.rejects(src.setLines({ dtr: true }), /not open/);
  src.start();
  const w = watchers[0]!;
  w.send('initial', { cts: true, dcd: true });
  const done = src.setLines({ rts: true });
  t.same(w.sets, [{ id: 1, lines: { rts: true } }]);
  w.send('set', { cts: true, dcd: true, rts: true } as Partial<LineLevels>, {}, { setId: 1 });
  await done;
  const failing = src.setLines({ dtr: false });
  w.send('set', { cts: true, dcd: true }, {}, { setId: 2, errno: 5, code: 'EIO', message: 'Input/output error' });
  await t.rejects(failing, /EIO/);
  const orphan = src.setLines({ dtr: true });
  await src.stop();
  await t.rejects(orphan, /stopped/);
});

t.test('source: a watcher that cannot start, a setLines the watcher refuses, events after stop', async (t) => {
  const clock = new FakeClock();
  let tries = 0;
  const events: PowerEvent[] = [];
  const src = new ContactClosureSource({ device: '/dev/ttyS7', mapping: { ...MAP, lowBattery: undefined } }, {
    watcher: (device, options) => {
      if (++tries === 1) throw new Error('signal 40 (SIGRTMIN+6) already has a handler in this process');
      const w = new FakeWatcher(device, options, clock);
      w.setLines = () => { throw new Error('the watcher\'s thread has ended'); };
      clock.setTimer(() => w.send('initial', { cts: false }), 1);
      return w;
    },
    now: () => clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer,
  });
  src.on('event', (e: PowerEvent) => events.push(e));
  t.equal(src.name, 'contact-closure:/dev/ttyS7');
  src.start();
  src.start();  // idempotent
  t.match(events, [{ kind: 'comms-lost', detail: { error: /cannot watch \/dev\/ttyS7: signal 40/ } }]);
  clock.advance(250);
  t.equal(tries, 2, 'tried again after the default backoff');
  clock.advance(1);
  t.match(events.at(-1), { kind: 'on-battery', detail: { raw: 'OB', text: /on line CTS does not hold\)$/ } });
  await t.rejects(src.setLines({ dtr: true }), /ended/);
  await src.stop();
  t.equal(src.lines().open, false);
});

// ---------------------------------------------------------------------------------------------------------
// The native watcher on this host: no modem lines anywhere, so only its refusals.

function nativeEvents(device: string, options: Partial<ModemLineWatcherOptions> = {}) {
  const got: ModemLineEvent[] = [];
  const w = nativeModemLineWatcher(device, { onEvent: (e) => got.push(e), ...options });
  return { w, got };
}

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

t.test('native: a missing port and a pty are error events from the thread', async (t) => {
  const missing = nativeEvents('/dev/vigil-no-such-port');
  await until(() => missing.got.length > 0);
  t.match(missing.got, [{ kind: 'error', code: 'ENOENT', syscall: 'open', levels: null, counts: null }]);
  t.throws(() => missing.w.setLines(1, { dtr: true }), /ended/, 'the thread is gone');
  missing.w.stop();
  missing.w.stop();

  // A pty has no modem lines: TIOCMGET answers ENOTTY (the lab notes), so the watcher refuses it.
  const master = openSync('/dev/ptmx', 'r+');
  t.teardown(() => closeSync(master));
  const pty = nativeEvents('/dev/ptmx');
  await until(() => pty.got.length > 0);
  t.match(pty.got, [{ kind: 'error', code: 'ENOTTY', syscall: 'ioctl(TIOCMGET)' }]);
  pty.w.stop();
});

t.test('native: argument checks', async (t) => {
  const { ModemLineWatcher } = (await import('../../src/native.js')).nativeAddon() as unknown as {
    ModemLineWatcher: new (...args: unknown[]) => unknown;
  };
  t.throws(() => new ModemLineWatcher('/dev/null'), TypeError);
  t.throws(() => new ModemLineWatcher('/dev/null', {}), TypeError);
  t.throws(() => new ModemLineWatcher('/dev/null', { onEvent: () => {}, rescanMs: -1 }), RangeError);
  t.throws(() => new ModemLineWatcher('/dev/null', { onEvent: () => {}, queueSize: 0 }), RangeError);
});

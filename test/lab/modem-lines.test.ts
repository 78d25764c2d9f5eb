// The contact-closure watcher against a real modem-line path: the guest's own ftdi_sio driver, bound to an
// FT232BM that hw-fixtures/lab/ftdi-gadget.c emulates on the guest's software USB bus (dummy_hcd + a
// FunctionFS gadget). A line change is a USB status packet the driver turns into a TIOCGICOUNT increment and
// a TIOCMIWAIT wake-up, exactly as with a real adapter and a real UPS cable; DTR and RTS set by the watcher
// come back to the emulator as FTDI SET_MODEM_CTRL requests. Why not QEMU: docs/lab.md, "Modem lines".
//
// Run alone (after npm run build): scripts/lab --env=TAP_TIMEOUT=600 -- node dist/test/lab/modem-lines.test.js
// (tap's default 30 s per file is too short under TCG; scripts/test-lab-guest sets the same.)

import { readdir, readFile } from 'node:fs/promises';

import t from 'tap';

import {
  ContactClosureSource, nativeModemLineWatcher, type ContactClosureOutput, type InputLine, type ModemLineEvent,
  type ModemLineWatcherHandle,
} from '../../src/power/contact-closure.js';
import type { PowerEvent } from '../../src/power/source.js';
import { startGadget, type Gadget } from '../support/ftdi-gadget.js';
import { exec } from '../support/lab.js';

const nowNs = () => process.hrtime.bigint();

/**
 * The first `kind` event at or after index `from`. Past `timeoutMs`, fails with what the source knew and
 * where this process's threads wait in the kernel: for a watcher that delivered nothing at all (twice in
 * CI, in "the adapter vanishes…", never here), the open or the ioctl it is stuck in.
 */
async function waitForEvent<E extends PowerEvent>(src: ContactClosureSource, events: E[], kind: string, from: number, timeoutMs: number): Promise<E> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const e = events.slice(from).find((x) => x.kind === kind);
    if (e) return e;
    if (Date.now() > end) {
      throw new Error(`no ${kind} event; events: ${events.map((x) => x.kind).join(', ') || 'none'}; `
        + `status ${JSON.stringify(src.status())}; lines ${JSON.stringify(src.lines(), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}\n`
        + await whereThreadsWait());
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Where this process's threads wait in the kernel, the kernel's last messages and the adapter's trace (the USB side). */
async function whereThreadsWait(): Promise<string> {
  const lines: string[] = [];
  for (const tid of await readdir('/proc/self/task').catch(() => [] as string[])) {
    const read = (f: string) => readFile(`/proc/self/task/${tid}/${f}`, 'utf8').then((x) => x.trim(), (e: unknown) => `(${String(e)})`);
    const stack = (await read('stack')).split('\n').slice(0, 8).join(' < ');
    lines.push(`thread ${tid} ${await read('comm')}: wchan ${await read('wchan')}; ${stack}`);
  }
  // With times (seconds since boot), to set beside the adapter's trace.
  const kmsg = await exec('dmesg', []).then((r) => r.stdout.trim().split('\n').slice(-15).join('\n'), (e: unknown) => String(e));
  return `${lines.join('\n')}\nkernel, last messages:\n${kmsg}\n${gadget?.traceTail() ?? ''}`;
}
const ms = (ns: bigint) => Number(ns) / 1e6;

/** A native watcher whose events a test can wait for. */
class Watched {
  readonly events: (ModemLineEvent & { jsNs: bigint })[] = [];
  private waiters: (() => void)[] = [];
  readonly w: ModemLineWatcherHandle;

  constructor(device: string, options: { dtr?: boolean; rts?: boolean; rescanMs?: number; queueSize?: number }) {
    this.w = nativeModemLineWatcher(device, {
      ...options,
      onEvent: (e) => {
        this.events.push({ ...e, jsNs: nowNs() });
        for (const w of this.waiters.splice(0)) w();
      },
    });
  }

  /** The first event after index `from` that satisfies ok. */
  async until(what: string, ok: (e: ModemLineEvent) => boolean, from = 0, timeoutMs = 10_000): Promise<ModemLineEvent & { jsNs: bigint }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(ok);
      if (found) return found;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no event: ${what}; events: ${JSON.stringify(this.events.slice(from), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  get last(): ModemLineEvent {
    return this.events.at(-1)!;
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const summary = (xs: number[]) => `median ${pct(xs, 50).toFixed(2)} ms, p90 ${pct(xs, 90).toFixed(2)}, max ${Math.max(...xs).toFixed(2)} (n=${xs.length})`;

let gadget: Gadget;

t.before(async () => {
  gadget = await startGadget();
});

t.teardown(() => gadget?.quit());

t.test('each input line: its change wakes the thread blocked in TIOCMIWAIT, with the level and the edge count', async (t) => {
  // rescanMs 0: no periodic re-read, so every event below is a return from TIOCMIWAIT.
  const w = new Watched(gadget.tty, { dtr: true, rts: false, rescanMs: 0 });
  t.teardown(() => w.w.stop());
  const initial = await w.until('initial', (e) => e.kind === 'initial');
  t.match(initial.levels, { cts: false, dcd: false, ri: false, dsr: false, dtr: true, rts: false }, 'initial snapshot, DTR up and RTS down as asked');
  t.ok(initial.counts, 'the driver has TIOCGICOUNT');
  // The tty layer raised both outputs at the open; the thread lowered RTS right after.
  await gadget.next(/^mctrl dtr=1 rts=0 /);
  const base = { ...initial.counts! };
  for (const line of ['cts', 'dsr', 'ri', 'dcd'] as InputLine[]) {
    for (const level of [true, false]) {
      const from = w.events.length;
      await gadget.command(`set ${line}=${level ? 1 : 0}`);
      base[line]++;
      const e = await w.until(`${line} ${level}`, (x) => x.levels?.[line] === level && x.counts?.[line] === base[line], from);
      t.equal(e.kind, 'change', `${line} → ${level ? 'high' : 'low'}: a TIOCMIWAIT wake, count ${base[line]}`);
    }
  }
  t.same(w.last.counts, base, 'every other counter as it was');
  t.equal(w.events.filter((e) => e.kind === 'rescan').length, 0, 'no rescans');
});

t.test('edge to event: the kernel thread and the JS callback, 40 changes', async (t) => {
  const w = new Watched(gadget.tty, { dtr: true, rts: false, rescanMs: 0 });
  t.teardown(() => w.w.stop());
  await w.until('initial', (e) => e.kind === 'initial');
  const thread: number[] = [];
  const js: number[] = [];
  for (let i = 0; i < 40; i++) {
    const level = i % 2 === 0;
    const from = w.events.length;
    const sent = gadget.command(`set cts=${level ? 1 : 0}`);
    const e = await w.until(`cts ${level}`, (x) => x.levels?.cts === level, from);
    const { t0 } = await sent;
    thread.push(ms(e.atNs - t0));
    js.push(ms(e.jsNs - t0));
  }
  t.comment(`status packet handed to the USB stack → watcher thread awake: ${summary(thread)}`);
  t.comment(`→ JS callback: ${summary(js)}`);
  t.ok(pct(thread, 50) < 50, `thread wake median ${pct(thread, 50).toFixed(2)} ms < 50 ms`);
  t.ok(pct(js, 50) < 100, `JS delivery median ${pct(js, 50).toFixed(2)} ms < 100 ms`);
});

t.test('pulses the thread cannot see as levels still show in the counts', async (t) => {
  // The default rescan (500 ms) is on: an edge in the instant between the thread's last look and its next
  // TIOCMIWAIT would otherwise wait for the next edge (see native/modem_lines.h).
  const w = new Watched(gadget.tty, { dtr: true, rts: false });
  t.teardown(() => w.w.stop());
  const initial = await w.until('initial', (e) => e.kind === 'initial');
  const from = w.events.length;
  await gadget.command('pulse dsr 5');  // ten status packets back to back: DSR up and down five times
  const e = await w.until('ten DSR edges', (x) => x.counts?.dsr === initial.counts!.dsr + 10, from);
  t.equal(e.levels?.dsr, initial.levels?.dsr, 'DSR back where it was');
  const seen = w.events.slice(from);
  t.comment(`10 edges, ${seen.length} events (${seen.filter((x) => x.levels?.dsr !== initial.levels?.dsr).length} of them with DSR at the other level; ` +
    `${seen.filter((x) => x.kind === 'rescan').length} from a rescan)`);
  t.ok(seen.length >= 1, 'at least one event');
});

t.test('a stalled event loop: events dropped and counted, every edge in the counts once it runs again', async (t) => {
  const w = new Watched(gadget.tty, { dtr: true, rts: false, queueSize: 1 });
  t.teardown(() => w.w.stop());
  const initial = await w.until('initial', (e) => e.kind === 'initial');
  const from = w.events.length;
  const sent = gadget.command('pulse cts 20');  // 40 status packets
  const end = Date.now() + 1500;
  while (Date.now() < end);  // the event loop is stuck; the thread's queue holds one event
  await sent;
  const e = await w.until('40 CTS edges', (x) => x.counts?.cts === initial.counts!.cts + 40, from);
  t.equal(e.levels?.cts, initial.levels?.cts, 'CTS back where it was');
  t.ok(e.dropped > 0, `the thread dropped ${e.dropped} events rather than wait for the loop`);
  t.comment(`40 edges while the loop was stuck: ${w.events.length - from} events delivered, ${e.dropped} dropped, ` +
    `the last by ${e.kind === 'rescan' ? 'a rescan' : 'a wake'}`);
});

t.test('DTR and RTS: set by the thread, seen by the adapter; stop ends the thread blocked in TIOCMIWAIT', async (t) => {
  await new Promise((r) => setTimeout(r, 200));  // the earlier watchers' closes have reached the adapter
  gadget.forget(/^mctrl /);
  const w = new Watched(gadget.tty, { dtr: false, rts: false, rescanMs: 0 });
  await w.until('initial', (e) => e.kind === 'initial');
  await gadget.next(/^mctrl dtr=0 rts=0 /);
  w.w.setLines(1, { rts: true });
  const set = await w.until('set 1', (e) => e.kind === 'set' && e.setId === 1);
  t.match(set.levels, { dtr: false, rts: true });
  t.notOk(set.errno, 'no error');
  await gadget.next(/^mctrl dtr=0 rts=1 /);
  w.w.setLines(2, { dtr: true });
  t.match((await w.until('set 2', (e) => e.kind === 'set' && e.setId === 2)).levels, { dtr: true, rts: true });
  await gadget.next(/^mctrl dtr=1 rts=1 /);

  // The thread is in TIOCMIWAIT now. stop() signals it; it closes the port, and the hang-up on close
  // drops DTR and RTS, which the adapter sees.
  await new Promise((r) => setTimeout(r, 200));
  gadget.forget(/^mctrl /);
  const before = w.events.length;
  const stopped = nowNs();
  w.w.stop();
  const closed = await gadget.next(/^mctrl dtr=0 rts=0 (\d+)$/);
  const stopMs = ms(BigInt(closed[1]!) - stopped);
  t.comment(`stop() → port closed (DTR/RTS dropped at the adapter): ${stopMs.toFixed(2)} ms`);
  t.ok(stopMs < 1000, 'the blocked thread ended promptly');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(w.events.length, before, 'no events after stop');
});

t.test('ContactClosureSource: online, a short pulse, on battery, low battery, back online', async (t) => {
  const events: (PowerEvent & { ns: bigint })[] = [];
  const pulses: ContactClosureOutput[] = [];
  const raw: ModemLineEvent[] = [];  // what the thread reported, to tell its share of the latency
  const src = new ContactClosureSource({
    name: 'ups', device: gadget.tty, debounceMs: 50, rescanMs: 500,
    mapping: { online: { line: 'cts', activeHigh: true }, lowBattery: { line: 'dcd', activeHigh: false }, cablePower: { dtr: true, rts: false } },
  }, {
    watcher: (device, options) => nativeModemLineWatcher(device, { ...options, onEvent: (e) => { raw.push(e); options.onEvent(e); } }),
  });
  src.on('event', (e: PowerEvent) => events.push({ ...e, ns: nowNs() }));
  src.on('pulse', (p: ContactClosureOutput) => pulses.push(p));
  t.teardown(() => src.stop());
  const waitFor = (kind: string, from: number) => waitForEvent(src, events, kind, from, 10_000);
  src.start();  // the lines are all low after the tests above
  const first = await waitFor('low-battery', 0);
  t.match(first.detail, { raw: 'OB LB', initial: true }, 'CTS low and DCD low at the start: on battery, battery low');

  let from = events.length;
  let sent = await gadget.command('set cts=1 dcd=1');
  let e = await waitFor('online', from);
  t.ok(ms(e.ns - sent.t0) >= 50, `online once held for the debounce (${ms(e.ns - sent.t0).toFixed(1)} ms)`);

  from = events.length;
  await gadget.command('pulse cts 1');  // CTS low and back within microseconds
  await new Promise((r) => setTimeout(r, 300));
  t.equal(events.length, from, 'no state change for a pulse shorter than the debounce');
  t.comment(`the pulse was seen as ${pulses.length ? `a counted pulse (${pulses.map((p) => (p.type === 'pulse' ? p.edges : 0)).join(', ')} edges)` : 'two levels within the debounce'}`);

  const latencies: number[] = [];
  const woke: number[] = [];
  const byRescan: number[] = [];
  for (let i = 0; i < 10; i++) {
    from = events.length;
    const rawFrom = raw.length;
    sent = await gadget.command('set cts=0');
    e = await waitFor('on-battery', from);
    latencies.push(ms(e.ns - sent.t0));
    const edge = raw.slice(rawFrom).find((x) => x.levels?.cts === false);
    if (edge) woke.push(ms(edge.atNs - sent.t0));
    if (edge?.kind === 'rescan') byRescan.push(i);
    t.match(e.detail, { raw: 'OB' });
    from = events.length;
    await gadget.command('set cts=1');
    await waitFor('online', from);
  }
  t.comment(`mains lost (CTS edge) → on-battery event, debounce 50 ms included: ${summary(latencies)}`);
  t.comment(`  of which edge → watcher thread: ${summary(woke)}; seen only by the periodic rescan: ${byRescan.length} of ${latencies.length}`);
  t.ok(pct(latencies, 50) < 250, 'on-battery within 250 ms at the median');

  from = events.length;
  await gadget.command('set cts=0');
  await waitFor('on-battery', from);
  from = events.length;
  await gadget.command('set dcd=0');
  t.match((await waitFor('low-battery', from)).detail, { raw: 'OB LB' });
  from = events.length;
  await gadget.command('set cts=1 dcd=1');
  await waitFor('online', from);
  t.match(src.status(), { connected: true, state: 'online', raw: 'OL' });
});

t.test('the adapter vanishes (EIO in TIOCMIWAIT) and comes back: comms-lost, reopened, comms-back', async (t) => {
  const events: (PowerEvent & { ns: bigint })[] = [];
  const src = new ContactClosureSource({
    name: 'ups', device: gadget.tty, debounceMs: 50, backoffMs: 100, backoffMaxMs: 400,
    mapping: { online: { line: 'cts', activeHigh: true }, cablePower: { dtr: true, rts: false } },
  });
  src.on('event', (e: PowerEvent) => events.push({ ...e, ns: nowNs() }));
  t.teardown(() => src.stop());
  const waitFor = (kind: string) => waitForEvent(src, events, kind, 0, 15_000);
  src.start();
  await waitFor('online');
  const unplugged = await gadget.command('unplug');
  const lost = await waitFor('comms-lost');
  t.match(lost.detail.error, /TIOCMIWAIT.*EIO|EIO|ENOENT|ENODEV/, `reported: ${lost.detail.error}`);
  t.comment(`unplug → comms-lost: ${ms(lost.ns - unplugged.t0).toFixed(1)} ms`);
  const plugged = await gadget.command('plug');
  t.comment(`re-plugged: ${plugged.rest}`);
  const back = await waitFor('comms-back');
  t.comment(`plug → comms-back: ${ms(back.ns - plugged.t0).toFixed(1)} ms (reopen backoff 100-400 ms)`);
  t.ok(src.status().connected, 'connected again');
  t.ok(src.status().reconnects >= 1, `reopened (${src.status().reconnects} attempts)`);
});

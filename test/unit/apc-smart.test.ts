// The APC smart power source against the simulator in hw-fixtures/apc-sim/ over a socat pty pair: handshake,
// alerts and their latency (with and without 2400-baud pacing), polling without alerts, self-test, garbage
// on the line, a UPS that stops answering or falls back to dumb mode, `*` before the load goes off, the
// "cable" pulled and plugged back, and a port missing at start.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { ApcSmartSource, ApcLineParser, interpretApcStatus, parseApcStatus } from '../../src/power/apc-smart.js';
import { ApcSimulator, STATUS } from '../../hw-fixtures/apc-sim/apc-sim.mjs';
import { PtyPair } from '../../hw-fixtures/apc-sim/pty-pair.mjs';
import { PowerEvents, latencyStats } from '../support/power-events.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('status byte, answers and the byte-stream parser', async (t) => {
  const table: [number, string | undefined][] = [
    [0x08, 'online'], [0x0a, 'online'], [0x0c, 'online'], [0x48, 'online'], [0x88, 'online'],
    [0x10, 'on-battery'], [0x11, 'on-battery'], [0x30, 'on-battery'],
    [0x50, 'low-battery'], [0x52, 'low-battery'],
    [0x18, undefined], [0x00, undefined], [0x40, undefined], [0xff, undefined],
  ];
  for (const [b, s] of table) t.equal(interpretApcStatus(b), s, `0x${b.toString(16)} → ${s}`);
  t.equal(parseApcStatus('08'), 8);
  t.equal(parseApcStatus('5a'), 0x5a);
  t.equal(parseApcStatus('5O'), undefined);
  t.equal(parseApcStatus('SM'), undefined);
  t.equal(parseApcStatus('008'), undefined);
  t.equal(parseApcStatus(''), undefined);

  const alerts: string[] = [];
  const lines: string[] = [];
  const p = new ApcLineParser((c) => alerts.push(c), (l) => lines.push(l), 8);
  p.push(Buffer.from('S!M\r\n'));            // an alert inside an answer
  p.push(Buffer.from('1'));
  p.push(Buffer.from('0\r'));                 // split across reads
  p.push(Buffer.from('\n%'));
  p.push(Buffer.from([0x30, 0x88, 0x38, 0x0d, 0x0a])); // a non-ASCII byte garbles the line: dropped
  p.push(Buffer.from('0123456789ABCDEF\r\n'));         // too long: dropped
  p.push(Buffer.from('08\r\n'));
  t.same(alerts, ['!', '%']);
  t.same(lines, ['SM', '10', '08']);
});

interface Rig {
  pair: PtyPair;
  sim: ApcSimulator;
  src: ApcSmartSource;
  ev: PowerEvents;
}

async function rig(t: Test, opts: { pollMs?: number; timeoutMs?: number; commsLostAfter?: number; pace?: boolean; start?: boolean } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-apc-'));
  const pair = await new PtyPair(dir).start();
  const sim = await new ApcSimulator(pair.ups, { pace: opts.pace ?? false }).open();
  const src = new ApcSmartSource({ device: pair.host, pollMs: opts.pollMs ?? 200, timeoutMs: opts.timeoutMs ?? 150, commsLostAfter: opts.commsLostAfter ?? 3, backoffMs: 50, backoffMaxMs: 400 });
  const ev = new PowerEvents(src);
  t.teardown(async () => {
    await src.stop();
    await sim.close();
    await pair.stop();
    await rm(dir, { recursive: true, force: true });
  });
  if (opts.start !== false) src.start();
  return { pair, sim, src, ev };
}

t.test('socat is there', async (t) => {
  t.doesNotThrow(() => execFileSync('socat', ['-V'], { stdio: 'ignore' }), 'socat (scripts/setup installs it)');
});

t.test('handshake: Y → SM before anything else, then the first state', async (t) => {
  const { sim, src, ev } = await rig(t);
  const first = await ev.next();
  t.equal(first.kind, 'online');
  t.equal(first.detail.initial, true);
  t.equal(first.detail.raw, '08');
  t.equal(sim.received[0], 'Y', 'the first byte sent is Y');
  t.equal(sim.smart, true);
  t.match(src.status(), { type: 'apc-smart', connected: true, state: 'online', raw: '08' });
  t.match(src.name, /^apc-smart:/);
});

t.test('alerts drive the events (poll every 60 s, so only alerts can): ! % + $ and their latency', async (t) => {
  for (const pace of [false, true]) {
    await t.test(pace ? 'paced at 2400 baud' : 'unpaced pty', async (t) => {
      const { sim, ev, src } = await rig(t, { pollMs: 60_000, timeoutMs: 500, pace });
      await ev.next('online');
      const lat: Record<string, number[]> = { '!': [], '%': [], '+': [], '$': [] };
      for (let round = 0; round < 10; round++) {
        const steps: [() => void, string, string][] = [
          [() => sim.onBattery(), '!', 'on-battery'],
          [() => sim.lowBattery(), '%', 'low-battery'],
          [() => sim.batteryOk(), '+', 'on-battery'],
          [() => sim.online(), '$', 'online'],
        ];
        for (const [act, alert, kind] of steps) {
          await sleep(20 + Math.random() * 30);
          act();
          const e = await ev.next(kind as never, 3000);
          lat[alert]!.push(ev.time(e) - sim.lastAlertAt);
          t.equal(e.detail.via, 'alert');
          t.match(e.detail.text, `after alert ${alert}`);
        }
      }
      for (const [a, xs] of Object.entries(lat)) t.comment(`APC alert ${a} → event (${pace ? '2400 baud paced' : 'pty, unpaced'}): ${latencyStats(xs, 1)}`);
      // Paced: ! needs Q (1 + 4 bytes) and G (1 + 3); % needs two Qs: about 10 bytes, 42 ms at 2400 8N1.
      // The latencies are figures (above), not assertions: a median bound failed under a load average of
      // 14 (a lab guest and helpers beside the unit suite) while every event still came by its alert.
      t.equal(src.unconfirmed, 0);
      t.same(ev.kinds().slice(0, 5), ['online', 'on-battery', 'low-battery', 'on-battery', 'online']);
    });
  }
});

t.test('the change to battery asks G: a self-test is reported as such', async (t) => {
  const { sim, ev } = await rig(t);
  await ev.next('online');
  sim.onBattery({ selfTest: true });
  const e = await ev.next('on-battery');
  t.equal(e.detail.selfTest, true);
  t.match(e.detail.text, /self-test/);
  sim.online();
  await ev.next('online');
  sim.onBattery();
  const real = await ev.next('on-battery');
  t.notOk(real.detail.selfTest, 'a mains failure (cause L) is not');
  t.ok(sim.received.filter((c) => c === 'G').length >= 2);
});

t.test('without alerts (a UPS that sends none), the poll finds the change within pollMs', async (t) => {
  const { sim, ev } = await rig(t, { pollMs: 200 });
  await ev.next('online');
  const lat: number[] = [];
  for (let i = 0; i < 6; i++) {
    await sleep(Math.random() * 200);
    sim.status = i % 2 === 0 ? STATUS.ON_BATTERY : STATUS.ONLINE; // no alert byte
    const t0 = performance.now();
    const e = await ev.next(i % 2 === 0 ? 'on-battery' : 'online', 2000);
    lat.push(ev.time(e) - t0);
    t.equal(e.detail.via, 'poll');
  }
  t.comment(`APC silent change → event (poll 200 ms): ${latencyStats(lat)}`);
  t.ok([...lat].sort((a, b) => a - b)[3]! < 200 + 50, 'within a poll interval (most of them: the machine may be busy)');
});

t.test('garbage on the line: no false events, no crash', async (t) => {
  const { sim, src, ev } = await rig(t, { pollMs: 50, timeoutMs: 150, commsLostAfter: 5 });
  await ev.next('online');
  // Alert characters as noise while on line: each makes the source look, the status says on line.
  sim.garbage(Buffer.from('%%!*%+$'));
  // An unsolicited line that looks like a status: nobody asked, so it is dropped.
  sim.garbage(Buffer.from('50\r\n'));
  await sleep(300);
  t.same(ev.kinds(), ['online'], 'no event from alert characters the status does not confirm');
  // `*` and then an answer garbled by noise (bytes came back): not the silence of a UPS turning off.
  sim.corrupt(3);
  sim.garbage(Buffer.from('*'));
  await sleep(800);
  t.notOk(ev.kinds().includes('forced-shutdown'), 'a garbled answer after * is not silence');
  t.ok(src.unconfirmed >= 1, `${src.unconfirmed} alerts not confirmed`);
  t.ok((src as unknown as { alerts: Record<string, number> }).alerts['%']! >= 3);

  // Random bytes for a second, between and over the answers.
  const noise = setInterval(() => sim.garbage(16), 20);
  await sleep(1000);
  clearInterval(noise);
  await sleep(300);
  t.notOk(ev.kinds().some((k) => k === 'on-battery' || k === 'low-battery' || k === 'forced-shutdown'), `no power event from noise (${ev.kinds().join(' ')})`);
  t.equal(src.status().state, 'online');

  // Garbled answers (noise while the UPS talks): failed polls, below the comms-lost threshold.
  const failedBefore = src.status().failedPolls;
  sim.corrupt(2);
  await sleep(600);
  t.ok(src.status().failedPolls >= failedBefore + 1, 'garbled answers fail their polls');
  t.equal(src.status().connected, true);
  // A printable but wrong answer to Q.
  const realReply = sim.reply.bind(sim) as (text: string) => void;
  let once = true;
  (sim as unknown as { reply: (text: string) => void }).reply = (text: string) => { if (once && /^[0-9A-F]{2}$/.test(text)) { once = false; realReply('5O'); } else realReply(text); };
  await sleep(300);
  t.notOk(once, 'a wrong answer was sent');
  t.equal(src.status().state, 'online');
  t.match(src.status().lastError ?? '', /answered|no answer/);

  // Noise that happens to form a low-battery status once: the second read does not confirm it.
  once = true;
  (sim as unknown as { reply: (text: string) => void }).reply = (text: string) => { if (once && /^[0-9A-F]{2}$/.test(text)) { once = false; realReply('50'); } else realReply(text); };
  await sleep(300);
  t.notOk(once);
  t.notOk(ev.kinds().includes('low-battery'), 'one stray 50 is not a low battery');
  // The real thing still gets through.
  sim.onBattery();
  sim.lowBattery();
  await ev.next('low-battery', 2000);
  t.ok(!ev.kinds().includes('comms-lost') || ev.kinds().includes('comms-back'));
});

t.test('a UPS that stops answering: comms-lost after N polls, state kept; answering again: comms-back', async (t) => {
  const { sim, src, ev } = await rig(t, { pollMs: 100, timeoutMs: 100, commsLostAfter: 3 });
  await ev.next('online');
  sim.onBattery();
  await ev.next('on-battery');
  const t0 = performance.now();
  sim.mute();
  const lost = await ev.next('comms-lost', 3000);
  t.comment(`APC mute → comms-lost: ${(performance.now() - t0).toFixed(0)} ms (Q, then Y Y twice: five 100 ms timeouts, two 100 ms poll gaps)`);
  t.match(lost.detail.error, /no answer/);
  t.equal(src.status().connected, false);
  t.equal(src.status().state, 'on-battery', 'the last known state stands');
  sim.mute(false);
  const back = await ev.next('comms-back', 3000);
  t.ok(back);
  t.equal(src.status().connected, true);
  t.same(ev.kinds(), ['online', 'on-battery', 'comms-lost', 'comms-back'], 'still on battery: no new power event');
  // After a silence the source says Y again before Q.
  const afterMute = sim.received.lastIndexOf('Y');
  t.ok(afterMute > 0 && sim.received.slice(afterMute).includes('Q'));
});

t.test('a UPS back in dumb mode (power-cycled): one unanswered poll, Y again, no comms-lost', async (t) => {
  const { sim, src, ev } = await rig(t, { pollMs: 100, timeoutMs: 100, commsLostAfter: 3 });
  await ev.next('online');
  const ys = sim.received.filter((c) => c === 'Y').length;
  sim.dumb();
  await sleep(600);
  t.equal(sim.smart, true, 'back in smart mode');
  t.ok(sim.received.filter((c) => c === 'Y').length > ys, 'the source sent Y again');
  t.notOk(ev.kinds().includes('comms-lost'));
  t.equal(src.status().connected, true);
});

t.test('* (about to turn the load off) then silence → forced-shutdown', async (t) => {
  const { sim, ev } = await rig(t, { pollMs: 60_000, timeoutMs: 200 });
  await ev.next('online');
  sim.onBattery();
  await ev.next('on-battery');
  sim.shutdown();
  const t0 = performance.now();
  const e = await ev.next('forced-shutdown', 2000);
  t.equal(e.detail.via, 'alert');
  t.match(e.detail.text, /about to turn the load off/);
  t.comment(`APC * → forced-shutdown: ${(ev.time(e) - t0).toFixed(0)} ms (Q and then Y unanswered, timeout 200 ms each)`);
  t.ok(ev.time(e) - t0 >= 2 * 200, 'two silent commands, not one');
});

t.test('* on battery but the UPS still answers: noise (a real * is followed by silence)', async (t) => {
  const { sim, src, ev } = await rig(t, { pollMs: 60_000, timeoutMs: 200 });
  await ev.next('online');
  sim.onBattery();
  await ev.next('on-battery');
  sim.send('*');
  await sleep(300);
  t.notOk(ev.kinds().includes('forced-shutdown'));
  t.equal(src.unconfirmed, 1);
  // A forced shutdown stands until the power is back, even if the UPS then answers on battery.
  sim.shutdown();
  await ev.next('forced-shutdown', 2000);
  sim.mute(false);
  sim.lowBattery();
  await sleep(1000);
  t.equal(src.status().raw, '50', 'answering again, on battery, low');
  t.equal(src.status().state, 'forced-shutdown');
  sim.online();
  await ev.next('online', 2000);
});

t.test('the cable pulled and plugged back: port closed → reopened with backoff', async (t) => {
  const { pair, src, ev } = await rig(t, { pollMs: 100, timeoutMs: 100, commsLostAfter: 2 });
  let sim = (await ev.next('online'), undefined as ApcSimulator | undefined);
  await pair.stop(); // both ptys vanish: the source's port closes
  const lost = await ev.next('comms-lost', 3000);
  t.ok(lost.detail.error);
  await sleep(500);
  const reconnects = src.status().reconnects;
  t.ok(reconnects >= 2, `${reconnects} reopen attempts while gone`);
  await pair.start(); // the same link names, new /dev/pts numbers
  sim = await new ApcSimulator(pair.ups).open();
  t.teardown(() => sim?.close());
  sim.onBattery();
  await ev.next('comms-back', 5000);
  await ev.next('on-battery', 5000);
  t.equal(src.status().connected, true);
});

t.test('a port missing at start: comms-lost, then found', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-apc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pair = new PtyPair(dir);
  const src = new ApcSmartSource({ device: pair.host, pollMs: 100, timeoutMs: 100, commsLostAfter: 2, backoffMs: 50, backoffMaxMs: 200 });
  const ev = new PowerEvents(src);
  src.start();
  t.teardown(() => src.stop());
  const lost = await ev.next('comms-lost', 3000);
  t.match(lost.detail.error, /ENOENT|No such file/);
  await pair.start();
  t.teardown(() => pair.stop());
  const sim = await new ApcSimulator(pair.ups).open();
  t.teardown(() => sim.close());
  await ev.next('comms-back', 3000);
  t.equal((await ev.next('online', 3000)).detail.initial, true);
});

// The NUT power source: the protocol pieces alone, the client against a scripted fake upsd (chunked replies,
// login, ERR answers, a server that stops answering, restarts), then against Debian's real upsd with the
// dummy-ups driver (test/support/nut-server.ts): OL → OB → OB LB → FSD, its events and their latency,
// compared with upsc; a driver that dies or freezes; upsd restarting.
import { createServer, type Server, type Socket } from 'node:net';

import t from 'tap';

import { NutSource, interpretUpsStatus, splitNutLine, quoteNut, NutConnection } from '../../src/power/nut.js';
import type { PowerEventKind } from '../../src/power/source.js';
import { NutServer, nutUnavailable, MONITOR, freePort } from '../support/nut-server.js';
import { PowerEvents as Events, latencyStats as stats } from '../support/power-events.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('protocol pieces', async (t) => {
  t.same(splitNutLine('VAR su700 ups.status "OB LB"'), ['VAR', 'su700', 'ups.status', 'OB LB']);
  t.same(splitNutLine('VAR u ups.id "say \\"hi\\" \\\\ there"'), ['VAR', 'u', 'ups.id', 'say "hi" \\ there']);
  t.same(splitNutLine('  ERR   DATA-STALE  '), ['ERR', 'DATA-STALE']);
  t.same(splitNutLine('VAR u x ""'), ['VAR', 'u', 'x', '']);
  t.equal(quoteNut('a "b" \\c'), '"a \\"b\\" \\\\c"');
  t.same(splitNutLine(`VAR u x ${quoteNut('a "b" \\c')}`)[3], 'a "b" \\c', 'quote and split are inverse');

  const table: [string, string | undefined, boolean][] = [
    ['OL', 'online', false],
    ['OL CHRG', 'online', false],
    ['OL LB', 'online', false], // recharging after an outage: upsmon does not count LB without OB
    ['OB', 'on-battery', false],
    ['OB DISCHRG', 'on-battery', false],
    ['ob lb', 'low-battery', false],
    ['OB LB DISCHRG', 'low-battery', false],
    ['OB LB CAL', 'on-battery', true], // calibrating: upsmon does not declare it critical
    ['OB CAL', 'on-battery', true],
    ['FSD OB LB', 'forced-shutdown', false],
    ['FSD OL', 'forced-shutdown', false],
    ['OL BYPASS TRIM', 'online', false],
    ['WAIT', undefined, false],
    ['', undefined, false],
    ['ALARM OL RB', 'online', false],
  ];
  for (const [status, state, selfTest] of table) {
    const r = interpretUpsStatus(status);
    t.equal(r.state, state, `"${status}" → ${state}`);
    t.equal(r.selfTest, selfTest, `"${status}" self-test ${selfTest}`);
  }
});

/** A scripted upsd: just enough of the protocol, with faults on demand. */
class FakeUpsd {
  status = 'OL';
  /** Stop answering (but keep connections open). */
  mute = false;
  /** Send replies one byte at a time. */
  dribble = false;
  /** Answer GET VAR with this ERR code instead. */
  err: string | undefined;
  /** Require USERNAME/PASSWORD before LIST/GET. */
  users: Record<string, string> | undefined;
  connections = 0;
  commands: string[] = [];
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  port = 0;

  async listen(port = 0): Promise<void> {
    this.server = createServer((s) => this.serve(s));
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    const a = this.server.address();
    this.port = a && typeof a === 'object' ? a.port : 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }

  private serve(s: Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    let user: string | undefined;
    let authed = this.users === undefined;
    s.on('data', async (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.commands.push(line);
        if (this.mute) continue;
        const w = splitNutLine(line);
        let reply: string;
        if (w[0] === 'USERNAME') { user = w[1]; reply = 'OK\n'; }
        else if (w[0] === 'PASSWORD') { authed = user !== undefined && this.users?.[user] === w[1]; reply = authed ? 'OK\n' : 'ERR ACCESS-DENIED\n'; }
        else if (!authed) reply = 'ERR ACCESS-DENIED\n';
        else if (w[0] === 'LIST' && w[1] === 'VAR') {
          reply = w[2] !== 'u1' ? 'ERR UNKNOWN-UPS\n'
            : `BEGIN LIST VAR u1\nVAR u1 device.model "Fake \\"1500\\""\nVAR u1 ups.status "${this.status}"\nEND LIST VAR u1\n`;
        } else if (w[0] === 'GET' && w[1] === 'VAR') reply = this.err ? `ERR ${this.err}\n` : `VAR u1 ups.status "${this.status}"\n`;
        else if (w[0] === 'LOGOUT') reply = 'OK Goodbye\n';
        else reply = 'ERR UNKNOWN-COMMAND\n';
        if (!this.dribble) s.write(reply);
        else for (const ch of reply) { s.write(ch); await sleep(1); }
      }
    });
  }
}

t.test('fake upsd: events on edges only, chunked replies, login', async (t) => {
  const upsd = new FakeUpsd();
  upsd.users = { mon: 'pw "x"' };
  upsd.dribble = true;
  await upsd.listen();
  t.teardown(() => upsd.close());
  const src = new NutSource({ host: '127.0.0.1', port: upsd.port, ups: 'u1', user: 'mon', password: 'pw "x"', pollMs: 50 });
  const ev = new Events(src);
  src.start();
  t.teardown(() => src.stop());
  const first = await ev.next();
  t.equal(first.kind, 'online');
  t.equal(first.detail.initial, true);
  t.equal(first.detail.raw, 'OL');
  t.match(src.status(), { connected: true, state: 'online', raw: 'OL', type: 'nut' });
  t.equal(src.name, `nut:u1@127.0.0.1:${upsd.port}`);
  // Sent quoted: upsd splits the line as a config line and wants exactly one word after PASSWORD.
  t.ok(upsd.commands.includes('USERNAME "mon"'));
  t.ok(upsd.commands.includes('PASSWORD "pw \\"x\\""'), upsd.commands.join(' | '));
  upsd.status = 'OL CHRG';
  await sleep(200);
  t.same(ev.kinds(), ['online'], 'OL → OL CHRG is no event');
  t.equal(src.status().raw, 'OL CHRG', 'but the raw status follows');
  upsd.status = 'OB DISCHRG';
  t.equal((await ev.next('on-battery')).detail.raw, 'OB DISCHRG');
  upsd.status = 'OB LB';
  await ev.next('low-battery');
  upsd.status = 'FSD OB LB';
  await ev.next('forced-shutdown');
  upsd.status = 'OL';
  const back = await ev.next('online');
  t.notOk(back.detail.initial);
  t.same(ev.kinds(), ['online', 'on-battery', 'low-battery', 'forced-shutdown', 'online']);
  t.ok(src.status().polls > 5);
});

t.test('fake upsd: wrong password and unknown UPS are failed polls, not crashes', async (t) => {
  const upsd = new FakeUpsd();
  upsd.users = { mon: 'right' };
  await upsd.listen();
  t.teardown(() => upsd.close());
  const src = new NutSource({ host: '127.0.0.1', port: upsd.port, ups: 'u1', user: 'mon', password: 'wrong', pollMs: 20, backoffMs: 10, backoffMaxMs: 40, commsLostAfter: 2 });
  const ev = new Events(src);
  src.start();
  const lost = await ev.next('comms-lost');
  t.match(lost.detail.error, /ACCESS-DENIED/);
  await src.stop();
  const src2 = new NutSource({ host: '127.0.0.1', port: upsd.port, ups: 'nope', pollMs: 20, backoffMs: 10, backoffMaxMs: 40, commsLostAfter: 2 });
  upsd.users = undefined;
  const ev2 = new Events(src2);
  src2.start();
  t.match((await ev2.next('comms-lost')).detail.error, /UNKNOWN-UPS/);
  await src2.stop();
  t.equal(src2.status().connected, false);
});

t.test('fake upsd: silence → comms-lost after N polls, ERR DATA-STALE likewise, reconnect with backoff', async (t) => {
  const upsd = new FakeUpsd();
  await upsd.listen();
  const port = upsd.port;
  const src = new NutSource({ host: '127.0.0.1', port, ups: 'u1', pollMs: 50, timeoutMs: 100, commsLostAfter: 3, backoffMs: 20, backoffMaxMs: 200 });
  const ev = new Events(src);
  src.start();
  t.teardown(() => src.stop());
  await ev.next('online');

  // A server that keeps the connection but stops answering: each poll times out (and reconnects).
  upsd.mute = true;
  const t0 = performance.now();
  const lost = await ev.next('comms-lost');
  const tookMs = performance.now() - t0;
  t.match(lost.detail.error, /no answer|TIMEOUT|within/);
  t.ok(tookMs >= 250 && tookMs < 2000, `comms-lost after ${tookMs.toFixed(0)} ms (3 polls × 100 ms timeout + backoff)`);
  t.equal(src.status().connected, false);
  t.equal(src.status().state, 'online', 'the last known state stands');
  upsd.mute = false;
  const back = await ev.next('comms-back');
  t.match(back.detail.text, /answering again/);
  t.equal(ev.all.filter((e) => e.kind === 'online').length, 1, 'still online: no second online event');

  // ERR DATA-STALE (a driver that stopped updating) counts the same.
  upsd.err = 'DATA-STALE';
  t.match((await ev.next('comms-lost')).detail.error, /DATA-STALE/);
  upsd.err = undefined;
  await ev.next('comms-back');

  // upsd goes away altogether, the mains fail meanwhile, upsd returns on the same port.
  const before = upsd.connections;
  await upsd.close();
  await ev.next('comms-lost');
  await sleep(300);
  const reconnectsWhileDown = src.status().reconnects;
  t.ok(reconnectsWhileDown >= 2, `kept retrying (${reconnectsWhileDown} reconnects)`);
  const upsd2 = new FakeUpsd();
  upsd2.status = 'OB';
  await upsd2.listen(port);
  t.teardown(() => upsd2.close());
  await ev.next('comms-back');
  await ev.next('on-battery');
  t.ok(upsd2.connections >= 1 && before >= 1);
  t.same(ev.kinds(), ['online', 'comms-lost', 'comms-back', 'comms-lost', 'comms-back', 'comms-lost', 'comms-back', 'on-battery']);
});

t.test('backoff grows to its ceiling while nothing listens', async (t) => {
  const port = await freePort();
  const src = new NutSource({ host: '127.0.0.1', port, ups: 'u1', pollMs: 10, backoffMs: 20, backoffMaxMs: 160, commsLostAfter: 1 });
  const ev = new Events(src);
  src.start();
  await ev.next('comms-lost');
  await sleep(1000);
  await src.stop();
  const n = src.status().reconnects;
  // 20, 40, 80, 160, 160, 160 … ms: about 8 attempts in a second, far fewer than 1000/10.
  t.ok(n >= 4 && n <= 12, `${n} reconnects in ~1 s with backoff 20 → 160 ms`);
});

t.test('NutConnection: one request at a time, closed connections reject', async (t) => {
  const upsd = new FakeUpsd();
  await upsd.listen();
  t.teardown(() => upsd.close());
  const c = await NutConnection.open('127.0.0.1', upsd.port, 500);
  const p = c.command('GET VAR u1 ups.status');
  await t.rejects(c.command('GET VAR u1 ups.status'), /one request at a time/);
  t.equal(await p, 'VAR u1 ups.status "OL"');
  t.same(await c.request('LIST VAR u1'), ['VAR u1 device.model "Fake \\"1500\\""', 'VAR u1 ups.status "OL"']);
  await t.rejects(c.command('FOO'), { code: 'UNKNOWN-COMMAND' });
  c.close();
  await t.rejects(c.command('GET VAR u1 ups.status'), /closed/);
});

// ---------------------------------------------------------------------------------------------------------
// Against Debian's nut-server (upsd + dummy-ups).

const why = nutUnavailable();

t.test('real upsd + dummy-ups', { skip: why }, async (t) => {
  const nut = await NutServer.start();
  t.teardown(() => nut.close());
  t.equal(await nut.upsc(), 'OL');

  const src = new NutSource({ host: '127.0.0.1', port: nut.port, ups: nut.ups, user: MONITOR.user, password: MONITOR.password });
  const ev = new Events(src);
  src.start();
  t.teardown(() => src.stop());
  const first = await ev.next('online');
  t.equal(first.detail.initial, true);
  t.equal(src.name, `nut:vigil-ups@127.0.0.1:${nut.port}`);
  t.equal(src.status().raw, await nut.upsc(), 'the client and upsc agree');

  await t.test('upsd wants one word after PASSWORD: a password with a space only passes quoted', async (t) => {
    const c = await NutConnection.open('127.0.0.1', nut.port, 2000);
    t.teardown(() => c.close());
    t.equal(await c.command(`USERNAME ${MONITOR.user}`), 'OK');
    await t.rejects(c.command(`PASSWORD ${MONITOR.password}`), { code: 'INVALID-ARGUMENT' });
    t.equal(await c.command(`PASSWORD ${quoteNut(MONITOR.password)}`), 'OK');
  });

  await t.test('OL → OB → OB LB → OL through SET VAR (upsrw), latency at the default 1 s poll', async (t) => {
    // dummy-ups and a 1 s client both run ~1 s cycles, so one client's phase against the driver drifts only
    // slowly; four more clients started 250 ms apart sample the whole poll cycle.
    const others: NutSource[] = [];
    const otherEvents: Events[] = [];
    for (let i = 1; i <= 4; i++) {
      await sleep(250);
      const o = new NutSource({ host: '127.0.0.1', port: nut.port, ups: nut.ups, name: `phase-${i}` });
      otherEvents.push(new Events(o));
      o.start();
      others.push(o);
    }
    t.teardown(() => Promise.all(others.map((o) => o.stop())));
    await Promise.all(otherEvents.map((e) => e.next('online')));
    const fromSet: number[] = [];
    const fromServed: number[] = [];
    for (let round = 0; round < 2; round++) {
      const steps: [string, PowerEventKind][] = [['OB DISCHRG', 'on-battery'], ['OB LB DISCHRG', 'low-battery'], ['OL CHRG', 'online']];
      for (const [status, kind] of steps) {
        await sleep(Math.random() * 1000);
        const served = nut.whenServed(status);
        const t0 = await nut.setStatus(status);
        const e = await ev.next(kind, 5000);
        const rest = await Promise.all(otherEvents.map((o) => o.next(kind, 5000)));
        const t1 = await served;
        fromSet.push(ev.time(e) - t0);
        for (const [i, x] of [[ev, e] as const, ...rest.map((r, j) => [otherEvents[j]!, r] as const)].entries()) {
          fromServed.push(x[0].time(x[1]) - t1);
          if (i === 0) t.equal(x[1].detail.raw, status);
        }
        t.equal(await nut.upsc(), status, `upsc agrees: ${status}`);
        t.equal(src.status().raw, status, 'and so does status()');
      }
    }
    // SET → event includes dummy-ups's own delay (it sleeps 1 s in each update cycle and handles SET between
    // them); upsd serving it → event is the client's share: the phase of its 1 s poll.
    t.comment(`NUT upsd serves the new status → event (poll 1000 ms, 5 clients): ${stats(fromServed)}`);
    t.comment(`NUT SET VAR → event, driver delay included: ${stats(fromSet)}`);
    // The figures are for docs/power.md; how fast is not asserted here (a loaded machine stretches it), only
    // that every client saw every change, above.
  });

  await t.test('the .dev file path: rewrite → dummy-ups re-reads → upsd → event', async (t) => {
    const lat: number[] = [];
    const driver: number[] = [];
    for (const [status, kind] of [['OB', 'on-battery'], ['OL', 'online'], ['OB', 'on-battery'], ['OL', 'online']] as [string, PowerEventKind][]) {
      await sleep(Math.random() * 2000);
      const served = nut.whenServed(status, 8000);
      const t0 = await nut.writeDevStatus(status);
      const e = await ev.next(kind, 8000);
      lat.push(ev.time(e) - t0);
      driver.push((await served) - t0);
      t.equal(await nut.upsc(), status);
    }
    t.comment(`NUT .dev rewrite → upsd serves it (dummy-ups's file check): ${stats(driver)}`);
    t.comment(`NUT .dev rewrite → event: ${stats(lat)}`);
  });

  await t.test('FSD from upsd (the primary upsmon\'s command) → forced-shutdown', async (t) => {
    await nut.upsrw('OB LB'); // through the real upsrw this time
    await ev.next('low-battery');
    await sleep(Math.random() * 1000);
    const t0 = await nut.setFsd();
    const e = await ev.next('forced-shutdown', 3000);
    t.equal(e.detail.raw, 'FSD OB LB');
    t.equal(await nut.upsc(), 'FSD OB LB');
    t.comment(`NUT FSD → event latency: ${(ev.time(e) - t0).toFixed(0)} ms`);
  });

  await t.test('the driver dies: DRIVER-NOT-CONNECTED → comms-lost; it returns → comms-back', async (t) => {
    await nut.stopDriver();
    const lost = await ev.next('comms-lost', 10_000);
    t.match(lost.detail.error, /DRIVER-NOT-CONNECTED|DATA-STALE/);
    t.equal(src.status().connected, false);
    await nut.startDriver();
    await ev.next('comms-back', 15_000);
    // FSD is upsd's latch: it outlives the driver.
    t.equal(src.status().raw?.startsWith('FSD'), true);
  });

  await t.test('upsd restarts (clears FSD): reconnect, comms-back, online from the .dev file', async (t) => {
    await nut.writeDevStatus('OL');
    await nut.stopUpsd();
    await ev.next('comms-lost', 10_000);
    await nut.startUpsd();
    await ev.next('comms-back', 15_000);
    const e = await ev.next('online', 5000);
    t.equal(e.detail.raw, 'OL');
    t.ok(src.status().reconnects >= 1);
  });

  await t.test('a frozen driver: upsd says DATA-STALE after MAXAGE → comms-lost; thawed → comms-back', async (t) => {
    nut.freezeDriver();
    const lost = await ev.next('comms-lost', 15_000);
    t.match(lost.detail.error, /DATA-STALE/);
    nut.thawDriver();
    await ev.next('comms-back', 15_000);
  });

  t.comment(`events: ${ev.kinds().join(' ')}`);
});

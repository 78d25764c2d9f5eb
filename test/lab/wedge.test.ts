// A command the kernel never returns: PREEMPT AND ABORT through tcm_loop wedges the logical unit on Linux
// 6.1 (even the SG_IO timeout never fires). vigil must report it, keep its event loop ticking, keep other
// units working, refuse further work on the wedged path at once, and still exit.
// This test wedges the lab's "wedge" unit for good: it runs last.
import t from 'tap';

import { ScsiDevice } from '../../src/scsi/device.js';
import { PathWedgedError, ScsiTimeoutError } from '../../src/scsi/errors.js';
import type { SgTransport } from '../../src/scsi/sg-transport.js';
import { lab } from '../support/lab.js';

const TIMEOUT_MS = 2000;
const GRACE_MS = 1500;
const openShort = (p: string) => ScsiDevice.open(p, { defaultTimeoutMs: TIMEOUT_MS, watchdogGraceMs: GRACE_MS, unitAttentionRetries: 3 });

t.test('a wedged PREEMPT AND ABORT is reported, and nothing else stalls', async (t) => {
  const wa = await openShort(lab.wedgeA);
  const wb = await openShort(lab.wedgeB);
  const shared = await ScsiDevice.open(lab.a);
  await wa.prRegister(0xaan, { ignoreExisting: true });
  await wb.prRegister(0xbbn, { ignoreExisting: true });
  await wa.prReserve(0xaan, 'wero');

  let ticks = 0;
  const ticker = setInterval(() => ticks++, 50);
  const started = performance.now();
  const preempt = wb.prPreempt(0xbbn, 0xaan, 'wero', { abort: true }).then(() => undefined, (e: unknown) => e);

  let sharedCommands = 0;
  const until = started + TIMEOUT_MS + GRACE_MS + 500;
  while (performance.now() < until) {
    await shared.testUnitReady();
    sharedCommands++;
  }
  const error = await preempt;
  const elapsed = performance.now() - started;
  clearInterval(ticker);

  t.type(error, ScsiTimeoutError, 'the stuck command is reported as a timeout');
  t.equal((error as ScsiTimeoutError).wedged, true, 'by vigil\'s watchdog: the kernel never returned it');
  t.match((error as Error).message, /PERSISTENT RESERVE OUT \(PREEMPT AND ABORT\): no answer from the kernel 3\.5 s after sending/);
  t.ok(elapsed >= TIMEOUT_MS + GRACE_MS && elapsed < TIMEOUT_MS + GRACE_MS + 2000, `reported after ${elapsed.toFixed(0)} ms`);
  t.ok(sharedCommands > 10, `another unit kept answering meanwhile (${sharedCommands} commands)`);
  t.ok(ticks >= (TIMEOUT_MS + GRACE_MS) / 50 / 2, `the event loop kept ticking (${ticks} ticks of 50 ms)`);
  t.equal((wb.transport as SgTransport).isWedged, true, 'the path knows it is wedged');

  const t1 = performance.now();
  await t.rejects(wb.testUnitReady(), PathWedgedError, 'the next command on the wedged path is refused unsent');
  t.ok(performance.now() - t1 < 100, 'at once');
  wa.close();
  wb.close();
  shared.close();
});

// The TEST UNIT READY benchmark's arithmetic, over a scripted transport.
import t from 'tap';

import { benchTestUnitReady } from '../../src/scsi/bench.js';
import { FakeTransport } from '../support/fake-transport.js';

t.test('counts every command, keeps depth in flight, and splits the time', async (t) => {
  const answers = Array.from({ length: 30 }, (_, i) => (i % 7 === 3 ? { status: 0x18 } : {}));
  const fake = new FakeTransport(answers);
  let inFlight = 0, maxInFlight = 0;
  const execute = fake.execute.bind(fake);
  fake.execute = async (req) => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    await new Promise((r) => setImmediate(r));
    try { return await execute(req); } finally { inFlight--; }
  };
  const r = await benchTestUnitReady(fake, 25, 4, 5);
  t.equal(fake.requests.length, 30, '5 warm-up + 25 timed');
  t.equal(r.count, 25);
  t.equal(maxInFlight, 4);
  t.equal(r.failures, answers.slice(5).filter((a) => 'status' in a).length, 'non-GOOD answers counted');
  t.same([r.breakdown.waitUs, r.breakdown.ioctlUs, r.breakdown.deliverUs], [1, 2, 3], 'means of the transport timings');
  t.ok(r.perCommandUs > 0 && Math.abs(r.perCommandUs - (r.seconds * 1e6) / 25) < 1e-6);
  t.ok(fake.requests.every((q) => q.cdb.equals(Buffer.alloc(6))), 'TEST UNIT READY every time');
});

t.test('refuses a count or depth below 1', async (t) => {
  await t.rejects(benchTestUnitReady(new FakeTransport([]), 0), RangeError);
  await t.rejects(benchTestUnitReady(new FakeTransport([]), 5, 0), RangeError);
});

// TEST UNIT READY in a loop through a transport: per-command time and where it went. `depth` commands
// are kept in flight (1 measures latency, the way `sg_turs -n` does; more measures throughput).
import { testUnitReady } from './cdb.js';
import type { ScsiTransport } from './transport.js';

export interface BenchResult {
  count: number;
  depth: number;
  seconds: number;
  perCommandUs: number;
  /** Commands that did not come back GOOD (status, host or driver). */
  failures: number;
  /** Mean per command, in microseconds: see CommandTiming. jsUs is what is left at depth 1. */
  breakdown: { waitUs: number; ioctlUs: number; deliverUs: number; jsUs: number };
}

export async function benchTestUnitReady(transport: ScsiTransport, count: number, depth = 1, warmup = Math.min(500, Math.ceil(count / 10))): Promise<BenchResult> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`depth must be a positive integer, got ${depth}`);
  const cdb = testUnitReady();
  // Warm-up, not counted: the first thousand calls run through V8's tiers and, in the lab, TCG's
  // translation cache; sg_turs, being C, has neither.
  for (let i = 0; i < warmup; i++) await transport.execute({ cdb });

  let waitUs = 0, ioctlUs = 0, deliverUs = 0, failures = 0, started = 0;
  const one = async (): Promise<void> => {
    while (started < count) {
      started++;
      const r = await transport.execute({ cdb });
      waitUs += r.timing.waitUs;
      ioctlUs += r.timing.ioctlUs;
      deliverUs += r.timing.deliverUs;
      if (r.status !== 0 || r.hostStatus !== 0 || (r.driverStatus & 0x0f & ~0x08) !== 0) failures++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(depth, count) }, one));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const per = (seconds * 1e6) / count;
  const mean = (x: number) => x / count;
  return {
    count, depth, seconds, perCommandUs: per, failures,
    breakdown: {
      waitUs: mean(waitUs), ioctlUs: mean(ioctlUs), deliverUs: mean(deliverUs),
      jsUs: Math.max(0, per - mean(waitUs + ioctlUs + deliverUs)),
    },
  };
}

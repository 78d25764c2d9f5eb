// Everything logged so far written out before the process image is replaced (the rejuvenation's agent
// rung re-executes vigild in place). pino's stream (sonic-boom) writes asynchronously on libuv's thread
// pool, and its flush(cb) answers at once while a write is still in flight: an exec then loses it, and
// the lines queued behind it (fc18 lost the rung's own line). So: wait for the write in flight (the
// stream's `_writing`, which sonic-boom does not otherwise expose; at most `waitMs`), then write the rest
// synchronously here.
import type { pino } from 'pino';

export async function drainLog(out: ReturnType<typeof pino.destination>, waitMs = 2000): Promise<void> {
  const inFlight = () => (out as unknown as { _writing?: boolean })._writing === true;
  for (const until = Date.now() + waitMs; inFlight() && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 5));
  try {
    out.flushSync();
  } catch {
    // Not ready, or destroyed: nothing more can be written.
  }
}

// A process that keeps the node's watchdog as vigild does (src/daemon/watchdog.ts NodeWatchdog: armed,
// renewed every 100 ms), for the lab's watchdog test. argv: device, timeoutMs, action, leaseMs. With
// VIGIL_HANG_AFTER_MS its event loop wedges for good after that long (the keeper thread lives on); on
// SIGTERM it stops cleanly (disarms) and exits.
import { NodeWatchdog } from '../../src/daemon/watchdog.js';

const [device = 'ipmi', timeoutMs = '3000', action = 'none', leaseMs = '1000'] = process.argv.slice(2);
const log = { info() {}, warn(o: object, m: string) { process.stderr.write(`${m}\n`); }, error(o: object, m: string) { process.stderr.write(`${m}\n`); }, debug() {} };
const w = new NodeWatchdog({ device, timeoutMs: Number(timeoutMs), action: action as 'none', vouchTimeout: false }, Number(leaseMs), log as never);
await w.start();
process.stdout.write(`${JSON.stringify({ armed: true, ...w.snapshot() })}\n`);
const timer = setInterval(() => w.renew(), 100);
const hang = Number(process.env.VIGIL_HANG_AFTER_MS ?? 0);
if (hang > 0) setTimeout(() => { for (;;) { /* a wedged event loop */ } }, hang);
process.on('SIGTERM', () => {
  clearInterval(timer);
  void w.stop().then(() => process.exit(0));
});

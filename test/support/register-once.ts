// A child for test/lab/interrupted.test.ts: opens PATH, says "ready", waits for a line on stdin, says
// "sending", sends one PERSISTENT RESERVE OUT REGISTER AND IGNORE EXISTING KEY (KEY, hex), and prints
// "done ok" or "done CODE: message". A child, so that the test can stop and continue it (SIGSTOP,
// SIGCONT) while the command is in flight without stopping itself.
//
//   node register-once.js PATH KEY
import { createInterface } from 'node:readline';

import { ScsiDevice } from '../../src/scsi/device.js';

const [path, key] = process.argv.slice(2);
if (!path || !key) {
  process.stderr.write('usage: register-once.js PATH KEY\n');
  process.exit(2);
}
const dev = await ScsiDevice.open(path, { defaultTimeoutMs: 20_000 });
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();
process.stdout.write('sending\n');
const outcome = await dev.prRegister(BigInt(`0x${key}`), { ignoreExisting: true }).then(
  () => 'ok',
  (e: unknown) => `${(e as { code?: string }).code ?? 'error'}: ${e instanceof Error ? e.message : String(e)}`,
);
process.stdout.write(`done ${outcome}\n`);
dev.close();

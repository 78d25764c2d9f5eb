// Child of test/unit/drain-log.test.ts: logs LINES lines through pino's asynchronous stdout stream, then
// replaces itself (the native reexec, as the rejuvenation's agent rung does) after draining the log the
// way argv[2] says ('drain': drainLog; 'flush': pino's own flush(cb)); the new image logs one last line.
import { pino } from 'pino';

import { reexec } from '../../src/native.js';
import { drainLog } from '../../src/util/drain-log.js';

const LINES = 3000;
const out = pino.destination({ dest: 1, sync: false });
const log = pino({ base: null, timestamp: false }, out);
if (process.env.VIGIL_REEXECED) {
  log.info({}, 'the new image');
  await drainLog(out);
} else {
  for (let i = 0; i < LINES; i++) log.info({ i }, 'x'.repeat(80));
  if (process.argv[2] === 'drain') await drainLog(out);
  else await new Promise<void>((resolve) => log.flush(() => resolve()));
  process.env.VIGIL_REEXECED = '1';
  reexec(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)]);
}

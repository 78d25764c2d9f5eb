// The log before the agent re-executes itself (src/util/drain-log.ts): every line written, also while
// the reader of stdout is slow and the pipe full, which pino's own flush(cb) does not wait for.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { moduleBeside } from '../support/paths.js';

/** Runs the child with a reader that starts late (the pipe fills); resolves with the lines it wrote. */
async function linesThrough(how: 'drain' | 'flush'): Promise<string[]> {
  const child = spawn(process.execPath, [...process.execArgv, moduleBeside(import.meta.url, '../support/reexec-log-child'), how], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pause();
  await sleep(500);
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { text += d; });
  child.stdout.resume();
  await new Promise((resolve) => child.on('close', resolve));
  return text.split('\n').filter(Boolean);
}

t.test('drainLog: every line logged before the re-exec arrives, then the new image\'s, though the pipe was full', async (t) => {
  const lines = await linesThrough('drain');
  t.equal(lines.filter((l) => l.includes('"i":')).length, 3000, 'all 3000 lines of the old image');
  t.match(lines[lines.length - 1], /the new image/, 'then the new image\'s');
});

// The same run with what the agent did before (fc18): most lines lost. The check above is not vacuous.
t.test('the same run with pino\'s flush(cb) instead loses what was in flight and queued behind it', async (t) => {
  const lines = await linesThrough('flush');
  const old = lines.filter((l) => l.includes('"i":')).length;
  t.ok(old < 3000, `${old} of 3000 lines of the old image arrived`);
});

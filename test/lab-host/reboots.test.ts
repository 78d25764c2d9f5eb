// scripts/lab --reboots=N seen from the host: a run whose command was to reboot the guest and did not
// fails, with a line that says so, although the command itself succeeded. (The reboot that comes back is
// test/lab/reboot.test.ts, in the guest's own run; one reboot too many, a second boot of its own, is not
// tested here: it costs two boots.)
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';

import t from 'tap';

import { repoFile } from '../support/paths.js';

t.test('a command that ends without the reboot --reboots=1 expected fails the run', async (t) => {
  const ran = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(repoFile('scripts', 'lab'), ['--reboots=1', '--timeout=300', '--', 'true'], (error, _stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }));
  });
  const kept = /guest files \(.*\) in (\S+)$/m.exec(ran.stderr)?.[1];
  if (kept) t.teardown(() => rm(kept, { recursive: true, force: true }));
  t.equal(ran.code, 1, 'scripts/lab exits 1, not the command\'s 0');
  t.match(ran.stderr, /^lab: the command ended \(exit 0\) at boot 1 without rebooting the guest, where --reboots=1 expected 1 reboot\(s\)/m, ran.stderr);
});

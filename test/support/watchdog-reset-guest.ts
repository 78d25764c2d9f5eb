// The lab's destructive watchdog case, the last step of scripts/test-lab-guest (watchdog-reset): a keeper
// process arms QEMU's BMC watchdog as vigild does (action reset, 5 s; test/support/watchdog-child.ts), and
// 3 s after this command has ended it is stopped (SIGSTOP, a hung agent: its keeper thread stops with it).
// The guest then waits instead of restarting itself (hw-fixtures/lab/guest-init, expect-reset), and the host
// passes the run only if the BMC's reset ends QEMU within 12 s of the hang (scripts/lab). The delay lets
// the guest record this run's exit code before the reset can cut it short.
import { spawn } from 'node:child_process';

import { leaveWordForHost } from './lab-word.js';
import { moduleBeside } from './paths.js';

const TIMEOUT_MS = 5000;
const LIMIT_S = 12;
const run = process.env.VIGIL_LAB_RUN;
if (!run || !process.env.VIGIL_LAB_IPMI) {
  console.log('not ok 1 - the destructive watchdog case needs the lab with its BMC (scripts/lab --ipmi)');
  process.exit(1);
}
const child = spawn(process.execPath, [moduleBeside(import.meta.url, 'watchdog-child'), 'ipmi', String(TIMEOUT_MS), 'reset', '1000'], {
  detached: true, stdio: ['ignore', 'pipe', 'inherit'],
});
const armed = await new Promise<string>((resolve, reject) => {
  child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
  child.once('exit', (code) => reject(new Error(`the keeper exited ${code} before arming`)));
});
leaveWordForHost(run, 'expect-reset', `${LIMIT_S}\n`);
spawn('sh', ['-c', `sleep 3; kill -STOP ${child.pid} && touch '${run}/hung'`], { detached: true, stdio: 'ignore' }).unref();
child.stdout!.destroy();
child.unref();
console.log(`ok 1 - the BMC watchdog armed to reset in ${TIMEOUT_MS} ms (${armed}); its keeper hangs in 3 s, and the host waits for the reset`);

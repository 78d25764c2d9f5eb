// The guest's half of test/lab-host/bmc-two-faces.test.ts (scripts/lab --ipmi=extern:PORT): its BMC is an
// ipmi_sim on the host. Reads the BMC's identity through /dev/ipmi0, arms its watchdog as vigild does
// (test/support/watchdog-child.ts: NodeWatchdog, action reset, 10 s), prints both as JSON lines, then
// leaves the keeper running and the guest waiting for the host to power it off (expect-off).
import { spawn } from 'node:child_process';

import { getDeviceId } from '../../src/ipmi/commands.js';
import { LocalBmc } from '../../src/ipmi/local.js';
import { leaveWordForHost } from './lab-word.js';
import { moduleBeside } from './paths.js';

const OFF_WITHIN_S = 300;
const run = process.env.VIGIL_LAB_RUN;
const path = process.env.VIGIL_LAB_IPMI;
if (!run || !path) {
  console.log('two-faces: needs the lab with a BMC (scripts/lab --ipmi=extern:PORT)');
  process.exit(1);
}
const bmc = await LocalBmc.open({ path });
const id = await getDeviceId(bmc);
await bmc.close();
console.log(`two-faces inside-id ${JSON.stringify(id)}`);

const keeper = spawn(process.execPath, [moduleBeside(import.meta.url, 'watchdog-child'), 'ipmi', '10000', 'reset', '3000'], {
  detached: true, stdio: ['ignore', 'pipe', 'inherit'],
});
const armed = await new Promise<string>((resolve, reject) => {
  keeper.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
  keeper.once('exit', (code) => reject(new Error(`the keeper exited ${code} before arming`)));
});
console.log(`two-faces inside-watchdog ${armed}`);
leaveWordForHost(run, 'expect-off', `${OFF_WITHIN_S}\n`);
keeper.stdout!.destroy();
keeper.unref();
console.log('two-faces ready');

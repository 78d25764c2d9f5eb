// The lab's reboot mode (scripts/lab --reboots=N; the first test of scripts/test-lab-guest, which
// scripts/test-lab runs with --reboots=1): the guest reboots as a node's OS-reboot step would reboot it
// (hw-fixtures/lab/reboot-guest), QEMU resets the VM, and the guest's return is the pass.
// - boot 1 (no marker on the share yet): leaves a marker on the project share, where a node's state
//   directory would be, and one in the guest's tmpfs, then reboots the guest;
// - the next boot (scripts/test-lab-guest runs this file again): the share's marker is there, the tmpfs's
//   is not, the lab counts the next boot, and the kernel is a new one: another boot id, and an uptime no
//   longer than the time since the marker was written.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import t from 'tap';

import { lab } from '../support/lab.js';
import { leaveWordForHost } from '../support/lab-word.js';
import { repoFile } from '../support/paths.js';

interface Marker { bootId: string; labBoot: number; wallMs: number; uptimeS: number }

const MARKER = 'reboot-test.json';
const IN_TMPFS = '/run/vigil-lab-reboot-test';
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const uptimeS = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
const labBoot = Number(process.env.VIGIL_LAB_BOOT);
const onShare = `${lab.run}/${MARKER}`;

if (!existsSync(onShare)) {
  if (!(Number(process.env.VIGIL_LAB_REBOOTS) >= 1)) {
    console.log('not ok 1 - this test reboots the guest: run it with scripts/lab --reboots=1 (scripts/test-lab does)');
    process.exit(1);
  }
  const marker: Marker = { bootId: bootId(), labBoot, wallMs: Date.now(), uptimeS: uptimeS() };
  writeFileSync(IN_TMPFS, 'boot 1\n');
  leaveWordForHost(lab.run, MARKER, `${JSON.stringify(marker)}\n`);
  console.log(`# boot ${labBoot} (boot id ${marker.bootId}, up ${marker.uptimeS} s): markers left on the share and in the tmpfs; rebooting the guest`);
  execFileSync(repoFile('hw-fixtures', 'lab', 'reboot-guest'), { stdio: 'inherit' });
  // Not reached when the guest restarts.
  console.log('not ok 1 - hw-fixtures/lab/reboot-guest returned: the guest did not restart');
  process.exit(1);
} else {
  t.test('the guest rebooted and came back: the share kept its marker, the tmpfs did not, the kernel is a new one', (t) => {
    const marker = JSON.parse(readFileSync(onShare, 'utf8')) as Marker;
    t.equal(labBoot, marker.labBoot + 1, `the lab counts the next boot (VIGIL_LAB_BOOT ${labBoot})`);
    t.not(bootId(), marker.bootId, `the kernel's boot id changed (${marker.bootId} before)`);
    t.notOk(existsSync(IN_TMPFS), 'the marker in the guest\'s tmpfs is gone');
    const up = uptimeS();
    const since = (Date.now() - marker.wallMs) / 1000;
    // The guest's clock starts each boot from the emulated RTC, in whole seconds: 1 s of slack.
    t.ok(up <= since + 1, `the kernel has run ${up} s, no longer than the ${since.toFixed(1)} s since the marker was written (+1 s)`);
    t.end();
  });
}

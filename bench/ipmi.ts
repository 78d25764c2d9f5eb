// IPMI figures, side by side with the reference tools (docs/ipmi.md, docs/bench.md).
//   in the lab guest (--ipmi): Get Device ID through the addon, one at a time, against `ipmitool -I open mc info`;
//   on the host: a power fence (session, Chassis Control off, status until off) through vigil's RMCP+
//     client against ipmi_sim, beside fence_ipmilan's "off" (scripts/fence-agents unpacks it; its power_wait is 2 s).
import { execFile, spawnSync } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { getDeviceId } from '../src/ipmi/commands.js';
import { LocalBmc } from '../src/ipmi/local.js';
import { DEFAULT_FENCING } from '../src/config/schema.js';
import { PowerFence } from '../src/daemon/power-fence.js';
import { IpmiSim } from '../test/support/ipmi-sim.js';

const run = promisify(execFile);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function local(): Promise<void> {
  const bmc = await LocalBmc.open({ path: process.env.VIGIL_LAB_IPMI ?? '/dev/ipmi0' });
  const times: number[] = [];
  for (let i = 0; i < 500; i++) {
    const s = performance.now();
    await getDeviceId(bmc);
    times.push(performance.now() - s);
  }
  await bmc.close();
  const tool: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s = performance.now();
    await run('ipmitool', ['-I', 'open', 'mc', 'info']);
    tool.push(performance.now() - s);
  }
  const m = quantile(times, 0.5);
  const tm = quantile(tool, 0.5);
  console.log(`ipmi local: Get Device ID ×500 through the addon: median ${m.toFixed(3)} ms, p99 ${quantile(times, 0.99).toFixed(3)} ms (goal ≤ 1 ms)`);
  console.log(`ipmi local: ipmitool -I open mc info ×5 (a process each): median ${tm.toFixed(0)} ms; ratio ${(tm / m).toFixed(0)}×`);
}

async function fence(): Promise<void> {
  const sim = await IpmiSim.start();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-bench-ipmi-'));
  try {
    const passwordFile = join(dir, 'pw');
    await writeFile(passwordFile, 'secret\n', { mode: 0o600 });
    const node = (name: string, id: number) => ({ name, id, addresses: {}, reservationKey: undefined, bmc: { host: sim.address, port: sim.port, user: 'admin', passwordFile, cipherSuite: 3 as const, kgFile: undefined } });
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      await sim.setPower(true);
      const f = new PowerFence({ self: node('a', 1), nodes: [node('a', 1), node('b', 2)], fencing: DEFAULT_FENCING, isAlive: () => false, log: { info() {}, warn() {}, error() {} } });
      const s = performance.now();
      await f.fence('b', 'bench');
      times.push(performance.now() - s);
    }
    const m = quantile(times, 0.5);
    console.log(`ipmi fence: decision → power confirmed off against ipmi_sim, ×20: median ${m.toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms (goal ≤ 300 ms)`);
    // fence_ipmilan as scripts/fence-agents unpacks it (or installed), against the same ipmi_sim.
    const unpacked = new URL('../../.lab/fence-agents/', import.meta.url).pathname;
    const agent = [`${unpacked}usr/sbin/fence_ipmilan`, '/usr/sbin/fence_ipmilan'].find((p) => spawnSync('test', ['-x', p]).status === 0);
    if (!agent) {
      console.log('ipmi fence: fence_ipmilan is not here (scripts/fence-agents unpacks it): no side-by-side figure');
    } else {
      const env = { ...process.env, PYTHONPATH: `${unpacked}usr/share/fence`, PYTHONWARNINGS: 'ignore' };
      // Its default, then with its 2 s power_wait set to 0 (what it costs apart from the sleep: ipmitool
      // processes, a session each).
      const offBy = async (extra: string[]): Promise<number> => {
        const times: number[] = [];
        for (let i = 0; i < 3; i++) {
          await sim.setPower(true);
          const s = performance.now();
          const r = spawnSync(agent, ['--ip', sim.address, '--ipport', String(sim.port), '--username', 'admin', '--password', 'secret', '--lanplus', '--cipher', '3', '--action', 'off', ...extra], { env, encoding: 'utf8' });
          times.push(performance.now() - s);
          if (r.status !== 0) throw new Error(`fence_ipmilan --action off: exit ${r.status}: ${r.stderr}`);
          if ((await sim.power()) !== 'off') throw new Error('fence_ipmilan reported success but ipmi_sim is still on');
        }
        return quantile(times, 0.5);
      };
      const tm = await offBy([]);
      const t0 = await offBy(['--power-wait', '0']);
      console.log(`ipmi fence: fence_ipmilan --lanplus --cipher 3 --action off against the same ipmi_sim, ×3: median ${tm.toFixed(0)} ms (its power_wait is 2 s by design); ratio ${(tm / m).toFixed(0)}×`);
      console.log(`ipmi fence: the same with --power-wait 0, ×3: median ${t0.toFixed(0)} ms; ratio ${(t0 / m).toFixed(0)}×`);
    }
  } finally {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.env.VIGIL_LAB) await local();
else await fence();

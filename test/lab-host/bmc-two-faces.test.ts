// One BMC seen from both sides: ipmi_sim on the host is the lab guest's BMC (QEMU's ipmi-bmc-extern,
// scripts/lab --ipmi=extern:PORT), reached from inside through /dev/ipmi0 and from outside through RMCP+.
// The guest (test/support/bmc-two-faces-guest.ts) reads its identity and arms its watchdog as vigild does;
// the host checks that RMCP+ sees the same BMC and the watchdog settings written inside, then powers the
// guest off through it, as a peer's fence would, and times QEMU's end.
//
// ipmi_sim keeps the watchdog's settings but never runs its countdown (its Get Watchdog Timer answers 6
// bytes of the 8): the guest's agent must see that and publish no bound, or peers would count a node as
// self-fenced that its watchdog will never reset.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import t from 'tap';

import { runCli } from '../support/cli.js';
import { IpmiSim, ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { repoFile } from '../support/paths.js';

/** A TCP port free on 127.0.0.1 now (QEMU connects to ipmi_sim's VM line there). */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

if (ipmiSimUnavailable()) {
  t.fail(`ipmi_sim cannot run here: ${ipmiSimUnavailable()}`);
} else {
  t.test('one BMC, two faces: the guest arms it through /dev/ipmi0, the host reads it and powers the guest off through RMCP+', async (t) => {
    const vmPort = await freeTcpPort();
    const sim = await IpmiSim.start({ vmPort });
    const dir = await mkdtemp(join(tmpdir(), 'vigil-two-faces-'));
    const pw = join(dir, 'password');
    await writeFile(pw, 'secret\n', { mode: 0o600 });
    const remote = ['--host', sim.address, '--port', String(sim.port), '--user', 'admin', '--password-file', pw, '--cipher', '3'];

    const lab = spawn(repoFile('scripts', 'lab'), [`--ipmi=extern:${vmPort}`, '--timeout=600', '--', process.execPath, repoFile('dist', 'test', 'support', 'bmc-two-faces-guest.js')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ended = new Promise<number | null>((r) => lab.once('exit', (code) => r(code)));
    let endedAt = 0;
    void ended.then(() => { endedAt = Date.now(); });
    t.teardown(async () => {
      if (lab.exitCode === null) lab.kill('SIGTERM');
      await ended;
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    });

    // The guest's lines, as they come (its console reaches scripts/lab's stdout live).
    const said = new Map<string, string>();
    const lines = createInterface({ input: lab.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        process.stdout.write(`# guest: ${line}\n`);
        const m = /^two-faces (\S+) ?(.*)$/.exec(line);
        if (m) said.set(m[1]!, m[2]!);
        if (line === 'two-faces ready') resolve();
      });
      void ended.then((code) => reject(new Error(`the lab ended (exit ${code}) before the guest was ready`)));
    });
    await ready;

    // The same BMC from both sides.
    const inside = JSON.parse(said.get('inside-id')!) as Record<string, unknown>;
    const info = await runCli('vigil', ['--json', 'ipmi', 'info', ...remote]);
    t.equal(info.code, 0, info.stderr);
    const outside = JSON.parse(info.stdout) as Record<string, unknown>;
    for (const k of ['deviceId', 'firmware', 'ipmiVersion', 'manufacturerId', 'productId']) t.equal(outside[k], inside[k], `${k}: ${String(outside[k])} outside, as inside`);

    // The watchdog's settings, written inside, read outside (ipmitool: vigil's own reader refuses the short answer).
    const wd = (await sim.ipmitool(['mc', 'watchdog', 'get'])).stdout;
    t.match(wd, /Watchdog Timer Use:\s+SMS\/OS/, 'timer use SMS/OS, as the guest set it');
    t.match(wd, /Watchdog Timer Action:\s+Hard Reset/, 'action hard reset, as the guest set it');
    t.match(wd, /Initial Countdown:\s+10\.0 sec/, 'timeout 10 s, as the guest set it');
    const own = await runCli('vigil', ['--json', 'ipmi', 'watchdog', 'status', ...remote]);
    t.not(own.code, 0, 'vigil refuses the short Get Watchdog Timer answer from outside too');
    t.match(own.stderr, /Get Watchdog Timer: 6 bytes of response data \(at least 8\)/);

    // The guest's agent did not take the watchdog on trust.
    const armed = JSON.parse(said.get('inside-watchdog')!) as { armed: boolean; resets: boolean; countdown?: { counts: boolean; why: string } };
    t.equal(armed.armed, true, 'the keeper armed it (Set and Reset Watchdog Timer answered)');
    t.equal(armed.countdown?.counts, false, `but saw it does not count down: ${armed.countdown?.why}`);
    t.equal(armed.resets, false, 'so it claims no reset, and publishes no bound');

    // A peer's fence: power off through the BMC; QEMU ends.
    const offAt = Date.now();
    const off = await runCli('vigil', ['ipmi', 'power', 'off', ...remote]);
    const offDone = Date.now();
    t.equal(off.code, 0, off.stderr);
    const code = await Promise.race([ended, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000))]);
    t.not(code, 'late', 'QEMU ended after the power off');
    t.equal(code, 0, 'scripts/lab: the guest was powered off as expected (expect-off)');
    t.comment(`vigil ipmi power off (a node process's start-up included) took ${offDone - offAt} ms; scripts/lab ended ${endedAt - offAt} ms after it started`);
    const status = await runCli('vigil', ['--json', 'ipmi', 'power', 'status', ...remote]);
    t.equal(status.code, 0, status.stderr);
    t.same(JSON.parse(status.stdout), { power: 'off' }, 'and the BMC says it is off');
  });
}

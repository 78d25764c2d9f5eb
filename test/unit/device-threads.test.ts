// The native device objects (SgDevice, IpmiDevice, ModemLineWatcher) each own a thread that reports through
// a thread-safe function. Whatever ends them, close() (once or twice), the garbage collector, or the end
// of their environment (a worker terminated, returning, exiting or throwing, with work in flight), their
// threads end, their descriptors close, and nothing crashes. No real device is needed: the threads fail
// their opens and then wait for work or stop like any other.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t, { type Test } from 'tap';

import { nativeAddon } from '../../src/native.js';
import { moduleBeside } from '../support/paths.js';

const child = moduleBeside(import.meta.url, '../support/device-threads-child');

function runChild(t: Test, mode: string, extraArgs: string[] = []): void {
  const r = spawnSync(process.execPath, [...process.execArgv, ...extraArgs, child, mode], { encoding: 'utf8', timeout: 120_000 });
  t.same([r.status, r.signal], [0, null], `the child ended normally (stderr: ${r.stderr.trim().slice(-300)})`);
  const got = JSON.parse(r.stdout.trim() || '{}') as { before?: { threads: number; fds: number }; after?: { threads: number; fds: number } };
  t.ok(got.before && got.after, `the child reported (stdout: ${r.stdout.trim().slice(-300)})`);
  // At most as many as before: Node's own threads and descriptors may come and go meanwhile, not more.
  t.ok((got.after?.threads ?? Infinity) <= (got.before?.threads ?? 0), 'no thread left behind');
  t.ok((got.after?.fds ?? Infinity) <= (got.before?.fds ?? 0), 'no descriptor left behind');
}

t.test('workers that end (terminated, returning, exiting, throwing) with devices open and work in flight leave no thread or descriptor behind', async (t) => {
  runChild(t, 'worker');
});

t.test('devices dropped without close() stop their threads once collected', async (t) => {
  runChild(t, 'gc', ['--expose-gc']);
});

/**
 * Runs `script` (an ES module's text) under strace, seeing only failed writes (-Z): no eight-byte wake-up
 * may have gone to a closed descriptor (EBADF). scripts/setup installs strace; without it this fails.
 */
function expectNoStaleWakeUps(t: Test, script: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const trace = join(dir, 'trace');
  const r = spawnSync('strace', ['-f', '-qq', '-Z', '-e', 'trace=write', '-o', trace, process.execPath, ...process.execArgv, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.same([r.status, r.signal], [0, null], `exit 0 (stderr: ${r.stderr.trim().slice(-200)})`);
  const stale = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('write(') && l.includes('"\\1\\0\\0\\0\\0\\0\\0\\0", 8') && l.includes('EBADF'));
  t.same(stale, [], 'no wake-up written to a closed descriptor');
}

t.test('nothing writes to a BMC thread\'s wake-up descriptor after it is closed, not even the object collected at exit after its thread ended', async (t) => {
  // Natural exit with open devices: the teardown hook wakes each thread, which ends; then Node collects
  // the objects, and each one's stop wakes its thread again. The descriptor used to be closed by the
  // thread, so that last write went to a closed descriptor (EBADF), or to whatever had reused its number.
  const script = `
    const { nativeAddon } = await import(${JSON.stringify(new URL('../../src/native.js', import.meta.url).href)});
    const { IpmiDevice } = nativeAddon();
    let opened = 0;
    for (let i = 0; i < 8; i++) new IpmiDevice('/dev/vigil-no-such-bmc', (id) => { if (id === 0) opened++; });
    while (opened < 8) await new Promise((r) => setTimeout(r, 5));`;
  expectNoStaleWakeUps(t, script);
});

t.test("nothing writes to the watchdog keeper's wake-up descriptor after it is closed: a keeper whose open failed, then stopped", async (t) => {
  // The keeper's thread ends by itself when its open fails (vigild then calls stop(false)); it used to
  // close the descriptor as it ended, and the stop wrote its eight bytes to it (EBADF, or a reused number).
  const script = `
    const { nativeAddon } = await import(${JSON.stringify(new URL('../../src/native.js', import.meta.url).href)});
    const { WatchdogKeeper } = nativeAddon();
    const keepers = [];
    for (let i = 0; i < 4; i++) keepers.push(new WatchdogKeeper({ kind: 'device', path: '/dev/vigil-no-such-watchdog', timeoutMs: 3000, tickleMs: 750, leaseMs: 1000, action: 1 }));
    while (!keepers.every((k) => k.snapshot().ended)) await new Promise((r) => setTimeout(r, 5));
    for (const k of keepers) k.stop(false);`;
  expectNoStaleWakeUps(t, script);
});

t.test('an IpmiDevice on a readable file that is no IPMI device (/dev/null) gives it up instead of spinning its thread', async (t) => {
  // poll says /dev/null is readable, and the receive fails (ENOTTY) every time: the thread used to loop on
  // it at full speed (55% of a CPU measured) until close(). Measured here as this process's CPU time over
  // a second of idling: a spinning thread takes hundreds of ms of it, an idle one next to nothing.
  const { IpmiDevice } = nativeAddon() as unknown as { IpmiDevice: new (path: string, dispatch: (id: number, errno: number) => void) => { submit(id: number, netfn: number, cmd: number, data: Buffer, timeoutMs: number): void; close(): void } };
  const answers = new Map<number, number>();
  const dev = new IpmiDevice('/dev/null', (id, errno) => { answers.set(id, errno); });
  t.teardown(() => dev.close());
  while (!answers.has(0)) await sleep(5);
  t.equal(answers.get(0), 0, '/dev/null opens');
  await sleep(200);
  const before = process.cpuUsage();
  await sleep(1000);
  const used = process.cpuUsage(before);
  const ms = (used.user + used.system) / 1000;
  t.ok(ms < 300, `the process used ${ms.toFixed(0)} ms of CPU in a second of idling`);
  dev.submit(1, 0x06, 0x01, Buffer.alloc(0), 1000);
  while (!answers.has(1)) await sleep(5);
  t.not(answers.get(1), 0, `a request fails at once (errno ${answers.get(1)}), not after its timeout`);
});

t.test('close() twice is a no-op, and a closed object refuses work with its own message', async (t) => {
  const addon = nativeAddon() as unknown as {
    SgDevice: new (path: string, dispatch: () => void) => { submit(...a: unknown[]): void; reset(...a: unknown[]): void; cancelQueued(): void; close(): void };
    IpmiDevice: new (path: string, dispatch: () => void) => { submit(...a: unknown[]): void; strays(): number; close(): void };
    ModemLineWatcher: new (path: string, o: object) => { setLines(...a: unknown[]): void; stop(): void };
  };
  const sg = new addon.SgDevice('/dev/null', () => {});
  sg.close();
  sg.close();
  t.throws(() => sg.submit(1, Buffer.alloc(6), 0, undefined, 1000), { message: 'device is closed' });
  t.throws(() => sg.reset(1, 'lun'), { message: 'device is closed' });
  sg.cancelQueued();

  const ipmi = new addon.IpmiDevice('/dev/vigil-no-such-bmc', () => {});
  ipmi.close();
  ipmi.close();
  t.throws(() => ipmi.submit(1, 6, 1, Buffer.alloc(0), 1000), { message: 'the IPMI device is closed' });
  t.equal(ipmi.strays(), 0);

  const events: unknown[] = [];
  const modem = new addon.ModemLineWatcher('/dev/vigil-no-such-port', { onEvent: (e: unknown) => events.push(e) });
  modem.stop();
  modem.stop();
  t.throws(() => modem.setLines(1, { dtr: true }), { message: 'the watcher is stopped' });
  // Events already queued are still delivered after stop(): here the failed open.
  while (events.length === 0) await sleep(5);
  t.match(events, [{ kind: 'error', code: 'ENOENT', syscall: 'open' }]);
});

// The native device objects (SgDevice, IpmiDevice, ModemLineWatcher) each own a thread that reports through
// a thread-safe function. Whatever ends them, close() (once or twice), the garbage collector, or the end
// of their environment (a worker terminated, returning, exiting or throwing, with work in flight), their
// threads end, their descriptors close, and nothing crashes. No real device is needed: the threads fail
// their opens and then wait for work or stop like any other.
import { spawnSync } from 'node:child_process';
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

// The addon's threads are started with pthread_create: a thread that cannot be created is an error
// JavaScript sees (errno EAGAIN), not an abort. std::thread throws, and with C++ exceptions off that is
// std::terminate: SIGABRT, which in vigild runs the fatal-signal handler, sends distress and writes the
// stay-out record for a node that merely could not start a thread.
import { spawnSync } from 'node:child_process';

import t from 'tap';
import { moduleBeside } from '../support/paths.js';

const child = moduleBeside(import.meta.url, '../support/thread-start-child');

for (const which of ['sg', 'ipmi', 'modem', 'heartbeat']) {
  t.test(`${which}: a thread that cannot be created is an EAGAIN error from the constructor, not an abort`, async (t) => {
    // Threads get 64 MiB stacks (glibc takes the default from RLIMIT_STACK at start), and the child leaves
    // itself 32 MiB of address space: room for any allocation on the way (coverage adds some), none for
    // a stack.
    const r = spawnSync('prlimit', [`--stack=${64 << 20}`, '--', process.execPath, ...process.execArgv, child, which], { encoding: 'utf8', timeout: 60_000 });
    t.equal(r.signal, null, `the child was not killed by a signal (${r.signal ?? 'none'}; stderr: ${r.stderr.trim().slice(-300)})`);
    t.equal(r.stdout.trim(), 'error EAGAIN pthread_create', 'the constructor threw the errno of pthread_create');
    t.equal(r.status, 0);
  });
}

t.test('devices closed with their open still in flight let the process end normally: a completion that arrives while Node tears the environment down is dropped, not fatal', async (t) => {
  // Closed at once, each device's open completes on its thread after the event loop has nothing left to
  // do; Node delivers it while it closes its handles, when no JavaScript can run. node-addon-api's
  // Function::Call made that failure fatal: SIGABRT, 10 runs out of 10 before the fix. Building the
  // arguments is refused the same way, and was as fatal (the modem watcher's event object: SIGABRT 3 runs
  // out of 3 before the deliveries asked JsCanRun first).
  const script = `
    const { nativeAddon } = await import(${JSON.stringify(new URL('../../src/native.js', import.meta.url).href)});
    const { SgDevice, IpmiDevice, ModemLineWatcher } = nativeAddon();
    for (let i = 0; i < 32; i++) {
      new SgDevice('/dev/null', () => {}).close();
      new IpmiDevice('/dev/vigil-no-such-bmc', () => {}).close();
      new ModemLineWatcher('/dev/null', { onEvent() {} }).stop();
    }`;
  for (let run = 0; run < 3; run++) {
    const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    t.same([r.status, r.signal], [0, null], `run ${run + 1}: exit 0 (stderr: ${r.stderr.trim().slice(-200)})`);
  }
});

// The application health probe: TCP and command probes against real listeners and programs; the monitor
// reports a failure only after `failures` failed probes in a row, and a success resets the count.
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import type { MonitorConfig } from '../../src/config/schema.js';
import { HealthMonitor, probeOnce } from '../../src/daemon/health.js';

const tcp = (port: number): MonitorConfig => ({ probe: { kind: 'tcp', host: '127.0.0.1', port }, intervalMs: 10, timeoutMs: 200, failures: 3 });
const command = (argv: string[], timeoutMs = 500): MonitorConfig => ({ probe: { kind: 'command', command: argv }, intervalMs: 10, timeoutMs, failures: 1 });

t.test('a TCP probe passes while something listens and fails, saying where, when nothing does', async (t) => {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  t.equal(await probeOnce(tcp(port)), undefined);
  await new Promise<void>((r) => server.close(() => r()));
  t.match(await probeOnce(tcp(port)), new RegExp(`no TCP connection to 127\\.0\\.0\\.1:${port}`));
});

t.test('a command probe passes on exit 0 and fails on another exit, a missing program or a timeout', async (t) => {
  t.equal(await probeOnce(command(['/bin/true'])), undefined);
  t.match(await probeOnce(command(['/bin/sh', '-c', 'exit 3'])), /exited 3/);
  t.match(await probeOnce(command(['/nonexistent/probe'])), /ENOENT/);
  t.match(await probeOnce(command(['/bin/sleep', '5'], 100)), /took over 100 ms/);
});

t.test('a command probe runs as the app\'s account when it has one', { skip: process.getuid?.() !== 0 && 'needs root (setpriv)' }, async (t) => {
  const asNobody = command(['/bin/sh', '-c', 'test "$(id -un)" = nobody']);
  t.equal(await probeOnce(asNobody, { user: 'nobody' }), undefined, 'as nobody');
  t.match(await probeOnce(asNobody), /exited 1/, 'without an account, as vigild (root)');
  t.match(await probeOnce(asNobody, { user: 'no-such-user-here' }), /no user no-such-user-here/, 'an account missing here fails the probe, saying so');
});

t.test('the monitor reports a failure only after `failures` in a row, once, and a success resets the count', async (t) => {
  const answers = [undefined, 'x', 'x', undefined, 'x', 'x', 'x', 'x'];
  let asked = 0;
  const failures: string[] = [];
  const m = new HealthMonitor(tcp(1), (d) => failures.push(d), async () => answers[asked++], 0);
  m.start();
  await sleep(300);
  t.same(failures, ['health probe failed 3 times in a row (x)'], 'two failures, a success, then three: one report');
  t.equal(asked, 7, 'no probe after the report');
  const quiet: string[] = [];
  const stopped = new HealthMonitor(tcp(1), (d) => quiet.push(d), async () => 'x', 0);
  stopped.start();
  stopped.stop();
  await sleep(100);
  t.same(quiet, [], 'a stopped monitor reports nothing');
});

t.test('before the app first answers, failures count only once the start grace is over', async (t) => {
  const failures: string[] = [];
  let asked = 0;
  const m = new HealthMonitor(tcp(1), (d) => failures.push(d), async () => { asked++; return 'not yet'; }, 150);
  m.start();
  await sleep(100);
  t.ok(asked >= 3 && failures.length === 0, `${asked} failed probes within the grace: none counted`);
  await sleep(200);
  t.equal(failures.length, 1, 'after the grace, three in a row fail it');
  m.stop();
});

// sd_notify over real unix datagram sockets. Node cannot bind one (dgram has no AF_UNIX), so a small python3
// receiver binds it (a path, or an abstract name) and prints each datagram it gets as a JSON line.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import t, { type Test } from 'tap';

import { DEFAULT_TIMING } from '../../src/config/schema.js';
import {
  notifyReady, notifyStatus, notifyStopping, notifyWatchdog, startWatchdog, watchdogIntervalMs, watchdogToleratesMs, watchdogWarning,
} from '../../src/daemon/systemd.js';
import { packageRoot } from '../../src/util/package-root.js';
import { sdNotify, type NativeSystemError } from '../../src/native.js';

const RECEIVER = `
import json, socket, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print('bound', flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode()), flush=True)
`;

interface Receiver {
  /** The next datagram received (in order). */
  next(): Promise<string>;
}

async function receiver(t: Test, name: string): Promise<Receiver> {
  const child = spawn('python3', ['-c', RECEIVER, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill());
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'bound') throw new Error(`receiver did not bind ${name}: ${String(first.value)}`);
  return {
    async next() {
      const r = await lines.next();
      if (r.done) throw new Error('receiver exited');
      return JSON.parse(r.value as string) as string;
    },
  };
}

function withNotifySocket(t: Test, value: string | undefined): void {
  const saved = process.env['NOTIFY_SOCKET'];
  if (value === undefined) delete process.env['NOTIFY_SOCKET'];
  else process.env['NOTIFY_SOCKET'] = value;
  t.teardown(() => {
    if (saved === undefined) delete process.env['NOTIFY_SOCKET'];
    else process.env['NOTIFY_SOCKET'] = saved;
  });
}

t.test('a path socket gets each notification as one datagram', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-notify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'notify');
  const r = await receiver(t, path);
  withNotifySocket(t, path);
  t.equal(notifyReady(), true);
  t.equal(await r.next(), 'READY=1');
  t.equal(notifyReady('3 peers alive'), true);
  t.equal(await r.next(), 'READY=1\nSTATUS=3 peers alive');
  t.equal(notifyStatus('line one\nline two'), true);
  t.equal(await r.next(), 'STATUS=line one line two', 'STATUS stays one line');
  t.equal(notifyWatchdog(), true);
  t.equal(await r.next(), 'WATCHDOG=1');
  t.equal(notifyStopping(), true);
  t.equal(await r.next(), 'STOPPING=1');
});

t.test("a leading '@' names an abstract socket", async (t) => {
  const name = `@vigil-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const r = await receiver(t, name);
  withNotifySocket(t, name);
  t.equal(sdNotify('READY=1'), true);
  t.equal(await r.next(), 'READY=1');
  t.equal(sdNotify('STATUS=ünïcode'), true);
  t.equal(await r.next(), 'STATUS=ünïcode', 'sent as UTF-8');
});

t.test('NOTIFY_SOCKET unset or empty: false, nothing sent', async (t) => {
  withNotifySocket(t, undefined);
  t.equal(notifyReady(), false);
  t.equal(notifyWatchdog(), false);
  process.env['NOTIFY_SOCKET'] = '';
  t.equal(notifyStopping(), false);
});

t.test('a failed send throws a SystemError', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-notify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  withNotifySocket(t, join(dir, 'nobody'));
  t.throws(() => notifyReady(), { code: 'ENOENT', errno: 2, syscall: 'sendto', message: /sd_notify to .*nobody/ });
  process.env['NOTIFY_SOCKET'] = `@vigil-test-nobody-${process.pid}-${Math.random().toString(36).slice(2)}`;
  t.throws(() => notifyReady(), { code: 'ECONNREFUSED', syscall: 'sendto' }, 'no abstract socket of that name');
  process.env['NOTIFY_SOCKET'] = 'relative/path';
  t.throws(() => notifyReady(), { code: 'EAFNOSUPPORT' });
  process.env['NOTIFY_SOCKET'] = `/${'x'.repeat(200)}`;
  t.throws(() => notifyReady(), { code: 'ENAMETOOLONG' });
  try {
    notifyReady();
  } catch (e) {
    const err = e as NativeSystemError;
    t.type(err, Error);
    t.type(err.errno, 'number');
  }
  t.throws(() => (sdNotify as (m?: unknown) => boolean)(42), TypeError);
});

t.test('watchdogIntervalMs: a tenth of WATCHDOG_USEC, at most a second, only for this process', async (t) => {
  t.equal(watchdogIntervalMs({}, 100), undefined, 'no watchdog');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '5000000' }, 100), 500);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '15000000' }, 100), 1000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '60000000' }, 100), 1000, 'at most a second');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '5000000', WATCHDOG_PID: '100' }, 100), 500);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '5000000', WATCHDOG_PID: '' }, 100), 500);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '5000000', WATCHDOG_PID: '101' }, 100), undefined, 'meant for another process');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '5000000', WATCHDOG_PID: 'x' }, 100), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 100), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '-5' }, 100), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '5s' }, 100), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1' }, 100), 1, 'never 0');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '3000' }), 1, 'the default pid is ours');
});

t.test('startWatchdog pings while healthy, logs a failed send once, stops', async (t) => {
  t.equal(startWatchdog({ warn: () => {} }, () => true, {}), undefined, 'no WATCHDOG_USEC: no timer');

  const name = `@vigil-test-wd-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const r = await receiver(t, name);
  withNotifySocket(t, name);
  const warnings: string[] = [];
  let healthy = true;
  const wd = startWatchdog({ warn: (_f, m) => void warnings.push(m) }, () => healthy, { WATCHDOG_USEC: '200000' })!;
  t.teardown(() => wd.stop());
  t.equal(await r.next(), 'WATCHDOG=1');
  t.equal(await r.next(), 'WATCHDOG=1', 'every 20 ms');

  healthy = false;
  process.env['NOTIFY_SOCKET'] = '/nonexistent/vigil/notify';
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(warnings, [], 'unhealthy: no ping attempted');
  healthy = true;
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(warnings.length, 1, 'repeated ENOENT is logged once');
  wd.stop();
});

t.test('the shipped unit: its watchdog lets pass every stall the heartbeat lease rides out, and kills with SIGKILL (a restart, not distress)', async (t) => {
  const unit = await readFile(join(packageRoot(), 'hw-fixtures/systemd/vigild.service'), 'utf8');
  const sec = /^WatchdogSec=(\d+)s$/m.exec(unit)?.[1];
  t.ok(sec, 'WatchdogSec in whole seconds');
  const env = { WATCHDOG_USEC: String(Number(sec) * 1_000_000) };
  const tolerates = watchdogToleratesMs(env)!;
  t.ok(tolerates > DEFAULT_TIMING.agentLeaseMs, `a stall of ${tolerates} ms passes: more than the lease (${DEFAULT_TIMING.agentLeaseMs} ms), so the watchdog never kills what the cluster rides out`);
  t.equal(watchdogWarning(DEFAULT_TIMING.agentLeaseMs, env), undefined, 'vigild would not warn about it');
  t.equal(/^WatchdogSignal=(\S+)$/m.exec(unit)?.[1], 'SIGKILL', 'SIGABRT (the default) would run the fatal-signal handler: distress and a stay-out record');
  t.match(watchdogWarning(5000, { WATCHDOG_USEC: '5000000' }), /kills a stall of 4500 ms, shorter than the heartbeat lease/, 'a unit with WatchdogSec=5s is warned about');
});

// A child for test/unit/owned-thread.test.ts, started with 64 MiB thread stacks: caps its own address space
// 32 MiB above what it uses now (prlimit --as), so that the next thread stack cannot be mapped, then
// constructs the native object named by argv[2], whose constructor starts a thread. Prints "started" or
// "error CODE SYSCALL" and exits 0: on its own after an error (whatever the constructor made and gave up,
// a thread-safe function above all, must not hold the event loop), with process.exit after a start.
//
//   node thread-start-child.js sg|ipmi|modem|heartbeat
import { execFileSync } from 'node:child_process';
import { writeSync } from 'node:fs';

import { nativeAddon } from '../../src/native.js';

const addon = nativeAddon();
const which = process.argv[2];
const make: Record<string, () => unknown> = {
  sg: () => new addon.SgDevice('/dev/null', () => {}),
  ipmi: () => new addon.IpmiDevice('/dev/vigil-no-such-bmc', () => {}),
  modem: () => new (addon as unknown as { ModemLineWatcher: new (path: string, o: object) => unknown }).ModemLineWatcher('/dev/null', { onEvent: () => {} }),
  heartbeat: () => new addon.HeartbeatEngine({
    key: Buffer.alloc(32, 1), clusterTag: 1, selfId: 1, incarnation: 1n, intervalMs: 100, leaseMs: 1000, priority: 0,
    networks: [{ bind: '127.0.0.1', port: 0 }], peers: [],
  }),
};
const construct = make[which ?? ''];
if (!construct) throw new Error(`usage: thread-start-child.js ${Object.keys(make).join('|')}`);
// Measured and set by a shell while this thread waits in execFileSync: nothing of ours maps meanwhile.
const pid = String(process.pid);
execFileSync('sh', ['-c', `prlimit --pid ${pid} --as=$(( $(awk '/^VmSize/ { print $2 }' /proc/${pid}/status) * 1024 + 33554432 ))`]);
try {
  construct();
  writeSync(1, 'started\n');
  process.exit(0);
} catch (e) {
  const err = e as { code?: string; syscall?: string };
  writeSync(1, `error ${err.code} ${err.syscall}\n`);
}

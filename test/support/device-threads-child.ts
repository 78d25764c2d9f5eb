// A child for test/unit/device-threads.test.ts: the device objects (SgDevice, IpmiDevice, ModemLineWatcher)
// left to the end of their environment or to the garbage collector, counted by what the process holds.
// Prints one JSON line { before, after } of { threads, fds } (from /proc/self) and exits 0.
//
//   node device-threads-child.js worker        workers that make devices and end every way a worker ends
//   node --expose-gc device-threads-child.js gc   devices dropped without close(), then collected
//
// None of the paths is a real device (no SCSI, BMC or serial port here): each thread fails its open, or
// its open succeeds on /dev/null and its first ioctl fails, and then waits for work or stop like any other.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

import { packageRoot } from '../../src/util/package-root.js';

const addonPath = `${packageRoot()}/build/Release/vigil_native.node`;

function held(): { threads: number; fds: number } {
  return { threads: readdirSync('/proc/self/task').length, fds: readdirSync('/proc/self/fd').length };
}

// Runs in each worker (CommonJS, eval: no loader needed): a device of each kind with work in flight, one
// of each closed with its open still in flight, then the end that workerData names.
const workerBody = `
  const { parentPort, workerData } = require('node:worker_threads');
  const addon = require(workerData.addonPath);
  const keep = [];
  const sg = new addon.SgDevice('/dev/null', () => {});
  sg.submit(1, Buffer.alloc(6), 0, undefined, 1000);
  keep.push(sg);
  new addon.SgDevice('/dev/null', () => {}).close();
  const ipmi = new addon.IpmiDevice('/dev/vigil-no-such-bmc', () => {});
  ipmi.submit(1, 6, 1, Buffer.alloc(0), 1000);
  keep.push(ipmi);
  new addon.IpmiDevice('/dev/vigil-no-such-bmc', () => {}).close();
  keep.push(new addon.ModemLineWatcher('/dev/null', { onEvent: () => {} }));
  new addon.ModemLineWatcher('/dev/vigil-no-such-port', { onEvent: () => {} }).stop();
  globalThis.keep = keep;
  parentPort.postMessage('made');
  if (workerData.end === 'exit') process.exit(0);
  if (workerData.end === 'throw') throw new Error('the worker ends by an exception');
  // 'return': the loop ends once the answers are in; 'terminate': the parent ends it now.
`;

async function runWorker(end: string): Promise<void> {
  const w = new Worker(workerBody, { eval: true, workerData: { addonPath, end } });
  w.on('error', () => {});
  w.on('message', () => {
    if (end === 'terminate') void w.terminate();
  });
  await new Promise((resolve) => w.once('exit', resolve));
}

async function settled(before: { threads: number; fds: number }): Promise<{ threads: number; fds: number }> {
  // Threads end and descriptors close a little after the environment or the object is gone.
  let now = held();
  for (let i = 0; i < 200 && (now.threads > before.threads || now.fds > before.fds); i++) {
    if (typeof globalThis.gc === 'function') globalThis.gc();
    await sleep(25);
    now = held();
  }
  return now;
}

const mode = process.argv[2];
const require = createRequire(import.meta.url);
const addon = require(addonPath) as Record<string, new (...args: unknown[]) => { close?(): void }>;

if (mode === 'worker') {
  await runWorker('return');  // the first worker starts what stays for the process's life
  await sleep(200);
  const before = held();
  for (let round = 0; round < 3; round++) {
    for (const end of ['terminate', 'return', 'exit', 'throw']) await runWorker(end);
  }
  const after = await settled(before);
  process.stdout.write(`${JSON.stringify({ before, after })}\n`);  // after: stdout, a pipe, opens a descriptor
} else if (mode === 'gc') {
  await sleep(200);
  const before = held();
  let answered = 0;
  (() => {
    for (let i = 0; i < 4; i++) {
      new addon.SgDevice!('/dev/null', () => { answered++; });
      new addon.IpmiDevice!('/dev/vigil-no-such-bmc', () => { answered++; });
    }
  })();
  while (answered < 8) await sleep(5);
  const after = await settled(before);
  process.stdout.write(`${JSON.stringify({ before, after })}\n`);
} else {
  throw new Error('usage: device-threads-child.js worker|gc');
}

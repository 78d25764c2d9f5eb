// The native SG_IO path where no SCSI device is needed: how it refuses what is not a SCSI device, and that
// a failed open leaves nothing behind that holds the process or crashes it at exit. (The teardown race
// with Node's thread-safe functions is too narrow to hit natively; the lab's CLI test catches it.)
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import t from 'tap';

import { DeviceOpenError } from '../../src/scsi/errors.js';
import { SgTransport } from '../../src/scsi/sg-transport.js';

t.test('a path that does not exist is a DeviceOpenError with ENOENT', async (t) => {
  const e = await SgTransport.open('/dev/no-such-sg-device').catch((x: unknown) => x);
  t.type(e, DeviceOpenError);
  t.match(e, { code: 'ENOENT', syscall: 'open', path: '/dev/no-such-sg-device' });
  t.match((e as Error).message, /^\/dev\/no-such-sg-device: no such device \(ENOENT\)$/);
});

t.test('a character device that is not SCSI is refused as such', async (t) => {
  const e = await SgTransport.open('/dev/null').catch((x: unknown) => x);
  t.type(e, DeviceOpenError);
  t.match(e, { code: 'ENOTTY', syscall: 'ioctl' });
  t.match((e as Error).message, /not a SCSI device/);
});

t.test('a regular file is refused as not a SCSI device', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-'));
  const file = join(dir, 'disk.img');
  await writeFile(file, Buffer.alloc(4096));
  await t.rejects(SgTransport.open(file), { name: 'DeviceOpenError', code: 'ENOTTY' });
});

t.test('a directory is refused', async (t) => {
  await t.rejects(SgTransport.open(tmpdir()), { name: 'DeviceOpenError', code: 'EISDIR' });
});

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));

t.test('processes that fail a dozen opens and exit at once end with exit 0', async (t) => {
  // Each child opens (and fails on) a dozen paths and leaves without waiting for the device threads.
  const script = `
    import { SgTransport } from ${JSON.stringify(join(here, '../../src/scsi/sg-transport.js'))};
    const opens = [];
    for (let i = 0; i < 12; i++) opens.push(SgTransport.open(i % 2 ? '/dev/null' : '/dev/no-such').catch(() => 0));
    await Promise.all(opens);
  `;
  const runs = Array.from({ length: 8 }, () =>
    run(process.execPath, [...process.execArgv, '--input-type=module', '-e', script]).then(
      () => 'exit 0',
      (e: { code?: number; signal?: string }) => `exit ${e.code} signal ${e.signal}`,
    ));
  t.same(await Promise.all(runs), Array(8).fill('exit 0'));
});

t.test('a path that failed to open does not keep the event loop alive', async (t) => {
  // The child must end on its own: its device thread and thread-safe function are gone or unreferenced.
  const script = `
    import { SgTransport } from ${JSON.stringify(join(here, '../../src/scsi/sg-transport.js'))};
    await SgTransport.open('/dev/null').catch(() => {});
    setTimeout(() => {}, 10);
  `;
  const started = Date.now();
  await run(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { timeout: 20_000 });
  t.ok(Date.now() - started < 20_000);
});

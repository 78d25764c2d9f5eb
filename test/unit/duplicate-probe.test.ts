// The duplicate address probe before a service address is added (answeredBy): its short wait for a reply
// starts when arping is probing, not when it is spawned, so a machine too loaded to start arping within the
// wait does not take "no answer yet" for "nobody holds the address". arping is replaced on PATH by scripts
// that behave as a slow or silent one would; the real arping is exercised by the cluster tests.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { answeredBy, DUPLICATE_PROBE_MS } from '../../src/resources/ip-address.js';

const SPEC = { address: '10.0.0.1', prefixLength: 24, interface: 'svc' };
const MAC = 'AA:BB:CC:DD:EE:FF';

/** Puts an `arping` running `body` (sh) first on PATH for the test. */
async function fakeArping(t: Test, body: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-arping-'));
  await writeFile(join(dir, 'arping'), `#!/bin/sh\n${body}\n`);
  await chmod(join(dir, 'arping'), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  t.teardown(async () => {
    process.env.PATH = path;
    await rm(dir, { recursive: true, force: true });
  });
}

t.test('an arping slower to start than the wait still reports the host that answers', async (t) => {
  const startupMs = 3 * DUPLICATE_PROBE_MS;
  await fakeArping(t, `sleep ${startupMs / 1000}\necho "ARPING 10.0.0.1 from 0.0.0.0 svc"\nsleep 0.02\necho "Unicast reply from 10.0.0.1 [${MAC}]  0.6ms"\nexit 1`);
  t.equal(await answeredBy(SPEC), MAC);
});

t.test('nobody answers: the address is free once the wait after the probe went out is over', async (t) => {
  await fakeArping(t, 'echo "ARPING 10.0.0.1 from 0.0.0.0 svc"\nsleep 5');
  const began = performance.now();
  t.equal(await answeredBy(SPEC), undefined);
  t.ok(performance.now() - began < 5000, 'arping\'s own deadline is not waited for');
});

t.test('an arping that never starts probing counts the address free after its start limit, with a warning', async (t) => {
  await fakeArping(t, 'sleep 5');
  const warnings: string[] = [];
  const warn = (w: Error) => warnings.push(w.message);
  process.on('warning', warn);
  t.teardown(() => { process.off('warning', warn); });
  t.equal(await answeredBy(SPEC, DUPLICATE_PROBE_MS, 300), undefined);
  await new Promise((r) => setImmediate(r));
  t.match(warnings, [/did not start probing within 300 ms/]);
});

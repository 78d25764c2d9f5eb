// The replicated database between real agents (namespace rig): a replica far larger than one agent message
// (the full sync of a node that lost its state) arrives whole, in as many messages as it takes.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import t from 'tap';

import { createCluster, until } from '../support/cluster.js';

t.test('a node that lost its replica gets the whole database back, though it is many times one message', async (t) => {
  // 60 apps with a note each: about 90 KB of records, more than twice what one message carries.
  const apps = Array.from({ length: 60 }, (_, i) => ({
    tag: `svc${i}`, primary: 'a', backup: 'b', command: ['/bin/sleep', '600'], attributes: { note: `${i} `.repeat(300) },
  }));
  const c = await createCluster(t, ['a', 'b'], apps);
  const b = c.start('b');
  c.start('a');
  const digest = async (node: string) => ((await c.request(node, 'db.show')) as { digest: number; apps: unknown[] });
  await until('b has every app', async () => ((await digest('b')).apps.length === 60 ? true : undefined), 30_000, 200);
  // b loses its state (a replaced disk): it comes back empty and must learn everything from a.
  b.kill('SIGKILL');
  await new Promise((resolve) => b.once('exit', resolve));
  await rm(join(c.dir, 'b', 'db.json'), { force: true });
  c.start('b');
  await until('b converges with a', async () => {
    const [da, db] = [await digest('a'), await digest('b')];
    return da.digest === db.digest && db.apps.length === 60 ? true : undefined;
  }, 30_000, 200);
  t.pass('b holds what a holds');
});

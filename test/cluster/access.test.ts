// Who may do what, against a running vigild (docs/cli.md, "Who may do what"): a member of the control group
// who is not root reads the status and is refused every mutation with `forbidden` (exit 63); root acts. The
// reader is the system's own nobody:nogroup, through setpriv: nothing on the host is changed.
import { execFile } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { packageRoot } from '../../src/util/package-root.js';
import { createCluster, until } from '../support/cluster.js';

const VIGIL = join(packageRoot(), 'dist', 'src', 'cli', 'vigil.js');

async function vigil(argv: string[], asReader: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  // env -i: a plain environment (the test runner adds hooks to the children it sees, which write under the
  // project, where nobody may not).
  const plain = ['env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`];
  const cmd = asReader ? [...plain, 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, VIGIL, ...argv] : [...plain, process.execPath, VIGIL, ...argv];
  return promisify(execFile)(cmd[0]!, cmd.slice(1)).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

t.test('a member of the control group reads the status of a running vigild and is refused a mutation (exit 63); root is not', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b' }], { controlGroup: 'nogroup' });
  c.start('a');
  c.start('b');
  await until('a hosts web', async () => ((await c.status('a').catch(() => undefined))?.apps.find((x) => x.tag === 'web')?.host === 'a' ? true : undefined), 30_000);
  // The test's directories are private (mkdtemp): let the reader reach the socket, which vigild made 0660 root:nogroup.
  await chmod(c.dir, 0o755);
  await chmod(join(c.dir, 'a'), 0o755);
  const socket = ['--socket', c.socket('a')];

  const status = await vigil(['status', ...socket], true);
  t.equal(status.code, 0, `status as nobody:nogroup: exit 0 (${status.stderr.trim()})`);
  t.match(status.stdout, /web \(cluster-capable\)\s+HOST a/, 'and it shows the app');

  const unload = await vigil(['app', 'unload', 'web', ...socket], true);
  t.equal(unload.code, 63, 'app unload as a reader: exit 63');
  t.match(unload.stderr, /app\.unload changes the cluster: for root or the admin group \(control\.adminGroup\); uid 65534 \(pid \d+\) is a reader/, `and says why (${unload.stderr.trim()})`);
  t.equal((await c.status('a')).apps.find((x) => x.tag === 'web')?.host, 'a', 'nothing was unloaded');

  const byRoot = await vigil(['app', 'unload', 'web', ...socket], false);
  t.equal(byRoot.code, 0, 'root unloads it');
  await until('HOST none', async () => ((await c.status('a')).apps.find((x) => x.tag === 'web')?.host === null ? true : undefined), 10_000);
});

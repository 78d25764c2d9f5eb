// The Debian package (scripts/package, docs/package.md), built and checked as an operator would meet it:
// lintian, then installed on this machine with dpkg, run from elsewhere on its own Node runtime, removed
// (only the configuration stays) and purged. Needs root (dpkg), as npm test's set-up does.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { packageRoot, packageVersion } from '../../src/util/package-root.js';

interface Ran { code: number; stdout: string; stderr: string }

/** Runs a program; never throws on a non-zero exit. */
function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...opts, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

const sudo = (argv: string[]) => (process.getuid?.() === 0 ? argv : ['sudo', ...argv]);
const dpkg = (...args: string[]) => { const [file, ...rest] = sudo(['dpkg', ...args]); return run(file!, rest); };
const installed = async () => (await run('dpkg-query', ['-W', '-f=${Status}', 'vigil'])).stdout;

// What the operator's shell would find, with one trap ahead of it: a `node` that fails. The installed
// commands must not run on any node but the one the package carries (this machine's /usr/bin/node is
// nodesource's, the repository's is not on this PATH either).
const trap = await mkdtemp(join(tmpdir(), 'vigil-package-'));
await writeFile(join(trap, 'node'), '#!/bin/sh\necho "a node from PATH ran" >&2\nexit 99\n');
await chmod(join(trap, 'node'), 0o755);
const env = { PATH: `${trap}:/usr/sbin:/usr/bin:/sbin:/bin`, LANG: 'C.UTF-8' };
const elsewhere = (cmd: string, ...args: string[]) => run(cmd, args, { cwd: '/tmp', env });
t.teardown(() => rm(trap, { recursive: true, force: true }));

// A copy an interrupted run left (installed, or its configuration kept) is purged. A /etc/vigil that no
// vigil package owns is someone's: the test stops rather than let dpkg's purge take it at the end.
if (await installed()) await dpkg('--purge', 'vigil');
if (existsSync('/etc/vigil')) throw new Error('/etc/vigil exists and no vigil package owns it: not installing over it');

const built = await run(join(packageRoot(), 'scripts', 'package'), ['--no-build']);
const deb = built.stdout.trim();
// lintian reads only the .deb: it runs while the package is installed and removed (its check comes last).
const linted = run('lintian', [deb]);

t.test('npm run package builds vigil_VERSION_amd64.deb in dist-pkg/ and prints its path', async (t) => {
  t.equal(built.code, 0, `scripts/package: ${built.stderr}`);
  t.equal(deb, join(packageRoot(), 'dist-pkg', `vigil_${packageVersion()}_amd64.deb`));
  const depends = (await run('dpkg-deb', ['-f', deb, 'Depends'])).stdout;
  t.match(depends, /libc6/, 'its library dependencies are computed');
  t.notMatch(depends, /nodejs/, 'it does not depend on a system node');
});

t.test('installed, vigil and vigild run from another directory on the node the package carries', async (t) => {
  const r = await dpkg('--install', deb);
  t.equal(r.code, 0, `dpkg --install: ${r.stderr}`);
  t.match(await installed(), 'install ok installed');

  t.same(await elsewhere('vigil', '--version'), { code: 0, stdout: `${packageVersion()}\n`, stderr: '' });
  const help = await elsewhere('vigild', '--help');
  t.equal(help.code, 0, `vigild --help: ${help.stderr}`);
  t.match(help.stdout, /^Usage: vigild /);

  // /dev/null opens, and the addon's SG_IO probe (an ioctl) is refused with ENOTTY: exit 50 + 25.
  const inquiry = await elsewhere('vigil', '--json', 'scsi', 'inquiry', '/dev/null');
  t.equal(inquiry.code, 75, `exit 50 + ENOTTY: ${inquiry.stderr}`);
  t.match(JSON.parse(inquiry.stdout), { error: { name: 'DeviceOpenError', code: 'ENOTTY' } }, 'the native addon answered');

  // serialport's prebuilt binding (the one kept of its prebuilds) loads under the carried runtime.
  const serial = await run('/usr/lib/vigil/node', ['-e', 'require("@serialport/bindings-cpp")'], { cwd: '/usr/lib/vigil', env });
  t.equal(serial.code, 0, `serialport's binding: ${serial.stderr}`);

  const check = await elsewhere('vigil', 'config', 'check', '/etc/vigil/cluster.yaml');
  t.equal(check.code, 0, `the example configuration is valid: ${check.stderr}`);
  t.ok(existsSync('/lib/systemd/system/vigild.service'), 'the systemd unit is installed');
  t.match(await readFile('/lib/systemd/system/vigild.service', 'utf8'), 'ExecStart=/usr/bin/vigild --config /etc/vigil/cluster.yaml',
    'the unit runs the installed vigild on the installed configuration');
});

t.test('removed, only the configuration stays; purged, nothing does', async (t) => {
  const removed = await dpkg('--remove', 'vigil');
  t.equal(removed.code, 0, `dpkg --remove: ${removed.stderr}`);
  t.match(await installed(), 'deinstall ok config-files');
  for (const gone of ['/usr/bin/vigil', '/usr/bin/vigild', '/usr/lib/vigil', '/lib/systemd/system/vigild.service']) {
    t.notOk(existsSync(gone), `${gone} is gone`);
  }
  t.ok(existsSync('/etc/vigil/cluster.yaml'), 'the configuration stays');

  const purged = await dpkg('--purge', 'vigil');
  t.equal(purged.code, 0, `dpkg --purge: ${purged.stderr}`);
  t.equal(await installed(), '', 'dpkg knows no vigil package');
  t.notOk(existsSync('/etc/vigil/cluster.yaml'), 'the configuration is gone');
});

t.test('lintian reports no error in the package', async (t) => {
  const r = await linted;
  const lines = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
  for (const l of lines.filter((l) => l.startsWith('W: '))) t.comment(l);
  t.same(lines.filter((l) => l.startsWith('E: ')), [], 'no E: lines');
  t.equal(r.code, 0, `lintian's exit: ${r.stderr}`);
});

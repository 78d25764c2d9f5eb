// `vigil collect` for real: the compiled CLI as a process, against a running vigild (namespace rig) with a
// cluster key, a BMC password file and an app whose environment holds a password; the archive extracted
// with the system tar. No secret may be anywhere in it: not in any extracted file, not in the tar stream
// itself, not even where a log line quoted one. And a node whose agent is not running still gets its bundle,
// with that noted, and its stay-out record.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

import t from 'tap';

import { writeStayOut } from '../../src/daemon/stay-out.js';
import { packageRoot } from '../../src/util/package-root.js';
import { createCluster, until } from '../support/cluster.js';

const run = promisify(execFile);
const VIGIL = join(packageRoot(), 'dist', 'src', 'cli', 'vigil.js');

/** The compiled CLI in a plain environment: the test runner's hooks in a child cost it seconds. */
async function vigil(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [VIGIL, ...argv], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

interface Manifest {
  bundle: string;
  items: { item: string; state: string; files: string[]; note?: string }[];
  secrets: { secretFiles: string[]; scrubbed: { file: string; count: number }[]; notes: string[] };
}

/** Every file under `dir`, relative path → content. */
async function tree(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await tree(dir, rel)) out.set(k, v);
    else out.set(rel, await readFile(join(dir, rel)));
  }
  return out;
}

t.test('vigil collect: every expected file, no secret anywhere, the agent\'s status; without an agent, a note and the stay-out record', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', command: ['/bin/sleep', '600'] }], {
    bmc: () => '{ host: 192.0.2.1, user: admin, passwordFile: "@password" }',
  });
  const bmcPassword = `bmc-Pw-${randomBytes(6).toString('hex')}`;
  const envPassword = `env-Pw-${randomBytes(6).toString('hex')}`;
  const clusterKey = (await readFile(join(c.dir, 'cluster.key'), 'utf8')).trim();
  await writeFile(join(c.dir, 'bmc.pw'), `${bmcPassword}\n`, { mode: 0o600 });
  for (const node of ['a', 'b']) {
    const file = join(c.dir, `${node}.yaml`);
    const yaml = (await readFile(file, 'utf8')).replaceAll('"@password"', join(c.dir, 'bmc.pw'))
      .replace('  - tag: web\n', `  - tag: web\n    env: { DB_PASSWORD: "${envPassword}", MODE: test }\n`);
    await writeFile(file, yaml);
  }
  const secrets = [bmcPassword, envPassword, clusterKey, clusterKey.toUpperCase()];
  const noSecret = (what: string, bytes: Buffer) => {
    for (const s of secrets) if (bytes.includes(s)) t.fail(`${what} holds the secret ${s.slice(0, 10)}…`);
  };

  // b's agent is not running, and b stays out after a distress it sent.
  await writeStayOut(join(c.dir, 'b'), { since: '2026-12-07T20:00:00.000Z', reason: 'low-battery', source: 'nut:rack1@ups', incarnation: '17', text: 'stays out' });
  const bOut = join(c.dir, 'b.tar.gz');
  const bRan = await vigil(['collect', '--config', join(c.dir, 'b.yaml'), '--out', bOut]);
  t.equal(bRan.code, 0, `collect without an agent: exit 0 (${bRan.stderr.trim()})`);
  t.equal(bRan.stdout.trim(), bOut, 'it prints the path');
  t.match(bRan.stderr, /absent: agent: vigil status --json: no vigild is running here/, 'and says the agent is missing');
  await run('tar', ['-xzf', bOut, '-C', c.dir]);
  const [bTop] = (await readdir(c.dir)).filter((n) => n.startsWith('vigil-collect-'));
  const bFiles = await tree(join(c.dir, bTop!));
  t.match(JSON.parse(bFiles.get('state/stay-out.json')!.toString()), { record: { reason: 'low-battery', source: 'nut:rack1@ups' } }, 'the stay-out record');
  t.notOk(bFiles.has('agent/status.json'));
  for (const [name, bytes] of bFiles) noSecret(`b's ${name}`, bytes);

  c.start('a');
  await until('a answers and has its priority record', async () => {
    await c.status('a');
    return (await stat(join(c.dir, 'a', 'priority', 'web.priority')).catch(() => undefined)) ? true : undefined;
  }, 20_000, 100);
  // vigild's stdout as a file (a node without systemd), with a line that quotes secrets, as a careless app's would.
  const log = join(c.dir, 'a.log');
  await writeFile(log, `${c.log('a')}${JSON.stringify({ time: Date.now(), msg: 'app said', line: `password=${bmcPassword} DB_PASSWORD=${envPassword} key ${clusterKey}` })}\n`);

  const out = join(c.dir, 'a.tar.gz');
  const ran = await vigil(['collect', '--config', join(c.dir, 'a.yaml'), '--node', 'a', '--log', log, '--out', out]);
  t.equal(ran.code, 0, `collect: exit 0 (${ran.stderr.trim()})`);
  t.equal(ran.stdout.trim(), out);
  t.equal((await stat(out)).mode & 0o777, 0o600, 'the archive is 0600');
  const archive = await readFile(out);
  noSecret('the tar stream', gunzipSync(archive));

  const dir = join(c.dir, 'x');
  await run('mkdir', [dir]);
  await run('tar', ['-xzf', out, '-C', dir]);
  const tops = await readdir(dir);
  t.equal(tops.length, 1, 'one top directory');
  t.match(tops[0], /^vigil-collect-[A-Za-z0-9._-]+-\d{8}T\d{6}Z$/);
  const files = await tree(join(dir, tops[0]!));
  for (const [name, bytes] of files) noSecret(name, bytes);
  for (const name of ['manifest.json', 'doctor.json', 'config/cluster.yaml', 'config/effective.json', 'versions.json', 'agent/status.json', 'agent/priority.json',
    'logs/files/a.log', 'links/table.json', 'links/scan.json', 'state/priority/web.priority.json']) {
    t.ok(files.has(name), `${name} is in the bundle`);
  }

  const manifest = JSON.parse(files.get('manifest.json')!.toString()) as Manifest;
  t.equal(manifest.bundle, tops[0]);
  const inManifest = new Set(manifest.items.flatMap((i) => i.files));
  for (const name of files.keys()) if (name !== 'manifest.json') t.ok(inManifest.has(name), `the manifest lists ${name}`);
  t.match(manifest.items.find((i) => i.item === 'logs: the journal of vigild.service'), { state: /^(collected|partial|absent)$/ }, 'the journal: collected, or its absence noted');
  t.match(manifest.items.find((i) => i.item.startsWith('doctor')), { state: 'collected', note: /^verdict (OK|WARN|FAIL)$/ });
  const doctor = JSON.parse(files.get('doctor.json')!.toString()) as { node: string; agent: boolean; checks: { id: string; verdict: string }[] };
  t.match(doctor, { node: 'a', agent: true }, "doctor's report, judged with the running agent");
  t.match(doctor.checks.find((c) => c.id === 'config'), { verdict: 'OK' }, "its config check passed: the report is the node's, not an error");
  t.match(manifest.items.find((i) => i.item === 'disks: reservation state'), { state: 'absent', note: 'the configuration names no disk' });
  t.same(manifest.secrets.secretFiles.sort(), [join(c.dir, 'bmc.pw'), join(c.dir, 'cluster.key')].sort(), 'the secret files, by path');
  t.ok(manifest.secrets.scrubbed.some((s) => s.file === 'logs/files/a.log' && s.count >= 3), 'the quoted secrets were scrubbed from the log');

  const yaml = files.get('config/cluster.yaml')!.toString();
  t.match(yaml, `passwordFile: ${join(c.dir, 'bmc.pw')}`, 'the password file is named');
  t.match(yaml, `keyFile: ${join(c.dir, 'cluster.key')}`);
  t.match(yaml, 'DB_PASSWORD: <redacted>');
  t.match(JSON.parse(files.get('agent/status.json')!.toString()), { node: 'a', apps: [{ tag: 'web' }] }, "the running agent's status");
  t.match(JSON.parse(files.get('state/priority/web.priority.json')!.toString()), { newestSlot: 0, slots: [{ record: { priority: 2, cluster: 'test' } }] });
  const logged = files.get('logs/files/a.log')!.toString();
  t.match(logged, /"msg":"control socket listening|"msg":"/, "the agent's own lines are there");
  t.match(logged, 'password=<redacted> DB_PASSWORD=<redacted> key <redacted>');

  const again = await vigil(['collect', '--config', join(c.dir, 'a.yaml'), '--out', out]);
  t.equal(again.code, 1, 'an existing --out: a usage error');
  t.match(again.stderr, /exists; give another --out/);
  t.same(await readFile(out), archive, 'and the file is as it was');
});

// Pid files of app processes (src/daemon/leftovers.ts): a recorded process still running as recorded is
// stopped with its group; a pid now used by another process (another start time) is left alone.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { clearLeftovers, pidFilesOf } from '../../src/daemon/clear-leftovers.js';
import { markedLeftovers, PidFiles, processStartTime, stopMarkedLeftovers } from '../../src/daemon/leftovers.js';
import type { AppObject, ResourceSpec } from '../../src/db/object.js';

const log = { lines: [] as string[], warn(_f: object, m: string) { this.lines.push(m); } };

/** Processes of the group that are not zombies. */
async function liveMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

function detachedSleep(): { pid: number; exited: Promise<void> } {
  const child = spawn('/bin/sh', ['-c', 'sleep 60 & sleep 60; wait'], { detached: true, stdio: 'ignore' });
  return { pid: child.pid!, exited: new Promise((r) => child.once('exit', () => r())) };
}

t.test('the start time is read past a command name with spaces and parentheses', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pids-'));
  const odd = join(dir, 'x) (y z');
  await symlink('/bin/sleep', odd);
  const child = spawn(odd, ['60'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise((r) => child.once('spawn', r));
  const comm = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(' ').slice(1, 4).join(' ');
  t.equal(comm, '(x) (y z)', 'the kernel shows the name with its parentheses and spaces');
  t.match(await processStartTime(child.pid!), /^\d+$/, 'a number, not a piece of the name');
  t.equal(await processStartTime(child.pid!), await processStartTime(child.pid!));
  t.equal(await processStartTime(2 ** 22 + 1), undefined, 'no such process');
});

t.test('a leftover app is stopped with its whole process group, and its pid file forgotten', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pids-'));
  const files = new PidFiles(dir);
  const app = detachedSleep();
  t.teardown(() => { try { process.kill(-app.pid, 'SIGKILL'); } catch { /* gone */ } });
  await files.record('web', app.pid);
  t.same(await readdir(dir), ['web.pid']);
  const stopped = await files.stopLeftovers(() => 2000, log);
  await app.exited;
  t.same(stopped, ['web']);
  // SIGKILL is delivered asynchronously; give the last member a moment to die.
  let live = await liveMembers(app.pid);
  for (let i = 0; i < 50 && live.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    live = await liveMembers(app.pid);
  }
  t.same(live, [], 'nothing of its group is left alive (dead children wait for init to reap them)');
  t.same(await readdir(dir), [], 'forgotten');
});

t.test('a pid now used by another process is not touched; unreadable files are dropped', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pids-'));
  const other = detachedSleep();
  t.teardown(() => { try { process.kill(-other.pid, 'SIGKILL'); } catch { /* gone */ } });
  await writeFile(join(dir, 'web.pid'), `${other.pid} 1\n`);
  await writeFile(join(dir, 'junk.pid'), 'not a pid\n');
  const stopped = await new PidFiles(dir).stopLeftovers(() => 2000, log);
  t.same(stopped, []);
  t.doesNotThrow(() => process.kill(other.pid, 0), 'the process with the reused pid still runs');
  t.same(await readdir(dir), []);
  t.same(await new PidFiles(join(dir, 'absent')).stopLeftovers(() => 2000, log), [], 'no directory: nothing left over');
});

t.test('an app left by an agent killed before it recorded the pid is found by its environment: this node\'s socket only', async (t) => {
  const ours = '/run/vigil-test-ours/ctl.sock';
  const mine = spawn('/bin/sh', ['-c', 'sleep 60 & sleep 60; wait'], { detached: true, stdio: 'ignore', env: { ...process.env, VIGIL_APP: 'web', VIGIL_SOCKET: ours } });
  const other = spawn('/bin/sleep', ['60'], { detached: true, stdio: 'ignore', env: { ...process.env, VIGIL_APP: 'web', VIGIL_SOCKET: '/run/another-node/ctl.sock' } });
  t.teardown(() => { for (const p of [mine, other]) { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } } });
  const exited = new Promise((r) => mine.once('exit', r));
  await new Promise((r) => setTimeout(r, 100)); // the shell has execed its children
  const found = await markedLeftovers(ours);
  t.ok(found.some((p) => p.pid === mine.pid && p.tag === 'web'), 'the leader found, with its tag');
  t.notOk(found.some((p) => p.pid === other.pid), 'another node\'s app is not');
  const lines: string[] = [];
  t.ok((await stopMarkedLeftovers(ours, () => 2000, { warn: (_f, m) => void lines.push(m) })).includes('web'));
  await exited;
  t.match(lines[0], /no pid file/);
  t.equal(other.exitCode, null, 'the other node\'s app still runs');
});

t.test('clearing a dead agent\'s leftovers removes the addresses before it stops the apps (which can take their whole stop timeout)', async (t) => {
  const state = await mkdtemp(join(tmpdir(), 'vigil-state-'));
  const config = parseConfig(`
cluster: unit
keyFile: /etc/vigil/cluster.key
stateDir: ${state}
control: { socket: ${join(state, 'ctl.sock')} }
networks: [ { name: lan1, port: 7400 } ]
nodes:
  - { name: a, id: 1, addresses: { lan1: 10.1.0.1 } }
  - { name: b, id: 2, addresses: { lan1: 10.1.0.2 } }
apps:
  - { tag: web, type: cluster-capable, primary: a, backup: b, command: [/bin/true], stopTimeoutMs: 1000, resources: [ { ip: { address: 10.9.0.1/24, interface: svc } } ] }
`, '/etc/vigil/cluster.yaml');
  // An app that ignores SIGTERM: stopping it takes the stop timeout. Once it says so: 'spawn' comes before
  // the shell has run its trap, and a SIGTERM in between killed it (a loaded machine, stop 24).
  const child = spawn('/bin/sh', ['-c', 'trap "" TERM; echo ignoring; sleep 60 & wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } });
  await once(child.stdout!, 'data');
  const pidFiles = pidFilesOf(config);
  await pidFiles.record('web', child.pid!);
  const removedWhile: boolean[] = [];
  const resources = {
    removeStaleAddress: async (r: ResourceSpec) => {
      if (r.kind === 'ip') removedWhile.push(await processStartTime(child.pid!) !== undefined);
      return true;
    },
  };
  const apps = [{ tag: 'web', resources: config.apps[0]!.resources }] as unknown as AppObject[];
  await clearLeftovers({ config, pidFiles, apps, resources, log: { warn() {}, error() {} } });
  t.same(removedWhile, [true], 'the address went while the app was still being stopped');
  // The app is this test's own child: killed, it stays a zombie in /proc until Node reaps it, so its exit
  // is what tells (reading /proc raced with the reaping: CI, stop 18). Bounded so a miss fails, not hangs.
  const exited = child.exitCode !== null || child.signalCode !== null
    || await Promise.race([once(child, 'exit').then(() => true), sleep(5000).then(() => false)]);
  t.ok(exited, 'and the app was stopped');
  t.equal(child.signalCode, 'SIGKILL', 'by SIGKILL after the stop timeout (it ignores SIGTERM)');
});

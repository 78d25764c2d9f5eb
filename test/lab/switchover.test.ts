// A planned switchover of an app with its shared disk, in the lab guest: two agents, each on its own
// tcm_loop nexus to the shared LIO unit, an app that owns the disk, mounts its ext4 file system and serves a
// virtual IP. vigil switchover moves it a → b: a releases the reservation and its registration itself (no
// fencing, no PREEMPT: b's log has no trespass), b reserves the unit, mounts the same file system (a's
// writes are there) and serves; afterwards the unit's persistent reservation names b alone and a's nexus is
// refused writes. Then back b → a the same way.
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { controlRequest } from '../../src/control/client.js';
import { until, type TestCluster } from '../support/cluster.js';
import { disks, startSharedDiskCluster } from '../support/lab-cluster.js';
import { lab, refusesWrites } from '../support/lab.js';

const run = promisify(execFile);

async function fsLog(agent: ChildProcess, c: TestCluster): Promise<string> {
  return (await run('nsenter', ['-t', String(agent.pid), '-m', 'cat', `${c.dir}/mnt/log`])).stdout;
}

/** vigil switchover, waited for (a move under TCG takes seconds). */
async function switchover(c: TestCluster, node: string, to: string): Promise<{ outcome: string; gapMs?: number; host: string }> {
  return controlRequest(c.socket(node), 'switchover', { tag: 'web', to, waitMs: 240_000 }, { timeoutMs: 250_000 }) as Promise<{ outcome: string; gapMs?: number; host: string }>;
}

t.test('a planned switchover moves the disk, its file system and the address, releasing the reservation without a preempt, both ways', async (t) => {
  const { c, agents } = await startSharedDiskCluster(t);
  t.match(disks(await c.status('a'))[0], { holder: 'a', registered: ['a'] });

  const there = await switchover(c, 'a', 'b');
  t.match(there, { outcome: 'complete', host: 'b' }, `a → b, service gap ${there.gapMs} ms`);
  await until('b serves the VIP', async () => ((await c.probe(c.vip())) === 'b' ? true : undefined), 120_000, 500);
  const sb = await c.status('b');
  t.match(disks(sb)[0], { holder: 'b', registered: ['b'], fenced: false }, 'the reservation is b\'s alone: a unregistered itself');
  t.equal(await fsLog(agents.b, c), 'a\nb\n', 'the file system a wrote to is mounted on b');
  t.notMatch(c.log('b'), /trespass: preempting/, 'b took a free unit: no preempt');
  t.notOk((await c.status('a')).notices.some((n) => n.notice === 'fenced'), 'a was not fenced');
  t.ok(await refusesWrites(lab.a), 'a write through a\'s nexus is refused (it holds no registration)');

  const back = await switchover(c, 'b', 'a');
  t.match(back, { outcome: 'complete', host: 'a' }, `b → a, service gap ${back.gapMs} ms`);
  await until('a serves the VIP again', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 120_000, 500);
  t.match(disks(await c.status('a'))[0], { holder: 'a', registered: ['a'], fenced: false });
  t.equal(await fsLog(agents.a, c), 'a\nb\na\n', 'and back: every node\'s write is on the file system');
  t.notMatch(c.log('a'), /trespass: preempting/, 'a took it back without a preempt');
  t.comment(`service gap (agents): a → b ${there.gapMs} ms, b → a ${back.gapMs} ms`);
});

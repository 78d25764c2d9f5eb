// An agent that dies without its machine (kill -9 of vigild alone) leaves its app running and its virtual
// IP on the interface. The backup declares the node failed, but the address is still answered there, so it
// does not add it (nor start a second copy): the orphan serves alone. When the agent is started again it
// stops that copy and drops the address before anything else, and one node serves again. Under systemd the
// unit's ExecStopPost (`vigild --clear-leftovers`) does that clearing as soon as the agent is gone.
import { join } from 'node:path';

import t from 'tap';

import { packageRoot } from '../../src/util/package-root.js';
import { createCluster, until, settled, type TestCluster } from '../support/cluster.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const running = async (c: TestCluster, node: string) => (await c.status(node)).apps[0]?.here?.app === 'up';
const vipOnA = async (c: TestCluster) => (await c.rig.exec('a', ['ip', '-o', 'addr', 'show', 'dev', 'svc'])).stdout.includes(`${c.vip()}/24`);

/** a serves web (b its backup, settled), then a's agent alone is killed: the app's pid on a. */
async function orphanOnA(t: Parameters<typeof createCluster>[0]): Promise<{ c: TestCluster; pid: number }> {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  const agentA = c.start('a');
  c.start('b');
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 20_000);
  const pid = (await c.status('a')).apps[0]?.here?.pid;
  if (!pid) throw new Error('web runs on a without a pid');
  await settled(c, ['a', 'b']);
  agentA.kill('SIGKILL');
  return { c, pid };
}

t.test('a dead agent\'s app keeps its address, so the backup starts no second copy; the restarted agent stops that copy and drops the address first, and one node serves', async (t) => {
  const { c, pid } = await orphanOnA(t);
  await until('b finds the address still answered by a', async () => {
    const n = (await c.status('b')).notices.find((x) => x.notice === 'resource-error');
    return n && /still answered by another host/.test(n.message) ? true : undefined;
  }, 15_000);
  t.ok(alive(pid), 'the old copy still runs on a: its agent died, not the machine');
  t.ok(await vipOnA(c), 'and a still holds the address');
  t.notOk(await running(c, 'b'), 'b started no second copy');
  t.equal(await c.probe(c.vip()), 'a', 'the orphan serves alone');

  c.start('a');
  await until('a\'s agent answers', async () => ((await c.status('a').catch(() => undefined)) ? true : undefined), 20_000);
  t.notOk(alive(pid), 'the restarted agent stopped the leftover copy before it answered');
  t.match(c.log('a'), /application left running by an earlier agent: stopping it/);
  const server = await until('one node serves again', async () => {
    const who = await c.probe(c.vip());
    return who === 'a' || who === 'b' ? who : undefined;
  }, 30_000, 200);
  const other = server === 'a' ? 'b' : 'a';
  t.notOk(await running(c, other), `${server} serves and ${other} runs nothing`);
});

t.test('after a crash, `vigild --clear-leftovers` (the systemd unit\'s ExecStopPost) stops the orphan and removes its address at once; the backup then takes over and serves alone', async (t) => {
  const { c, pid } = await orphanOnA(t);
  const r = await c.rig.exec('a', [process.execPath, join(packageRoot(), 'dist/src/cli/vigild.js'), '--config', join(c.dir, 'a.yaml'), '--node', 'a', '--clear-leftovers']);
  t.equal(r.code, 0, `vigild --clear-leftovers exits 0${r.code === 0 ? '' : `: ${r.stderr}`}`);
  t.notOk(alive(pid), 'the orphan is stopped');
  t.notOk(await vipOnA(c), 'its address is gone from a');
  t.match(r.stdout, /address left by an earlier agent removed/, 'and it says so');
  const server = await until('b serves', async () => ((await c.probe(c.vip())) === 'b' ? 'b' : undefined), 30_000, 200);
  t.equal(server, 'b', 'b took the app over: nothing answered for its address any more');
  t.notOk(await vipOnA(c), 'a holds no address meanwhile');
});

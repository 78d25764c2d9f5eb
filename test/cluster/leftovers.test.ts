// An agent that dies without its machine (kill -9 of vigild alone) leaves its app running and its virtual
// IP on the interface; the backup takes the app over meanwhile. When the agent is started again it must
// stop that copy and drop the address before anything else, so that one copy answers.
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { createCluster, until, settled } from '../support/cluster.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('a restarted agent stops the app its dead predecessor left running and removes the address of an app hosted elsewhere', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  const agentA = c.start('a');
  c.start('b');
  await until('a serving', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 20_000);
  const pid = (await c.status('a')).apps[0]?.here?.pid;
  t.ok(pid, 'web runs on a');

  await settled(c, ['a', 'b']);
  agentA.kill('SIGKILL');
  await until('b hosts web', async () => ((await c.status('b')).apps[0]?.host === 'b' ? true : undefined), 15_000);
  t.ok(alive(pid!), 'the old copy still runs on a: its agent died, not the machine');
  const vipOnA = async () => (await c.rig.exec('a', ['ip', '-o', 'addr', 'show', 'dev', 'svc'])).stdout.includes(`${c.vip()}/24`);
  t.ok(await vipOnA(), 'and a still holds the address');

  c.start('a');
  await until('a\'s agent answers', async () => ((await c.status('a').catch(() => undefined)) ? true : undefined), 20_000);
  t.notOk(alive(pid!), 'the restarted agent stopped the leftover copy before it answered');
  t.notOk(await vipOnA(), 'and removed the address (web is hosted on b, though a\'s own replica still said a)');
  t.match(c.log('a'), /application left running by an earlier agent: stopping it/);
  await sleep(500);
  t.equal(await c.probe(c.vip()), 'b', 'the client reaches b');
  t.equal((await c.status('a')).apps[0]?.here?.app, 'down', 'a runs nothing');
});

// A start decided before the agent was stopped is not carried out after it (namespace rig). The agent is
// stopped (SIGSTOP, as a debugger or a frozen cgroup would) in the middle of starting its app, while its
// duplicate address probe runs: the probe finds the address free, the peer fails the stopped node over
// and adds the address. When the agent continues, the probe's answer and the decision behind it are
// stale: it must not add the address the peer now holds (nemesis seed 722293029 found this).
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { createCluster, primaryServing, until, type TestCluster } from '../support/cluster.js';

const hasVip = async (c: TestCluster, node: string) => (await c.rig.exec(node, ['ip', '-o', 'addr', 'show', 'dev', 'svc'])).stdout.includes(`${c.vip()}/24`);

/** The argv of each child of `pid`'s main thread (the agent spawns from it). */
async function children(pid: number): Promise<string[][]> {
  const kids = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean);
  return Promise.all(kids.map(async (k) => (await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '')).split('\0')));
}

t.test('an agent stopped while it probes its address does not add it after its peer took the app over', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'x', primary: 'a', backup: 'b', vip: true }]);
  let agentA = 0;
  await primaryServing(c, (n) => {
    const child = c.start(n);
    if (n === 'a') agentA = child.pid!;
  });
  await c.request('a', 'app.unload', { tag: 'x' });
  await until('x down on a', async () => {
    const x = (await c.status('a')).apps.find((a) => a.tag === 'x');
    return x?.here?.app === 'down' && x.here.resources === 'down' && !(await hasVip(c, 'a')) ? true : undefined;
  }, 15_000);

  // Stop a the moment its probe for x's address is under way (arping -D, through stdbuf; not the arping -U
  // that may still be announcing the address from the first start).
  let stopped = false;
  const watch = (async () => {
    const end = performance.now() + 15_000;
    while (performance.now() < end) {
      if ((await children(agentA)).some((argv) => argv.includes('arping') && argv.includes('-D'))) {
        process.kill(agentA, 'SIGSTOP');
        stopped = true;
        return;
      }
      await sleep(1);
    }
  })();
  t.teardown(() => { try { process.kill(agentA, 'SIGCONT'); } catch { /* gone */ } });
  // Its answer may come only after a continues.
  const load = c.request('a', 'app.load', { tag: 'x' }).catch(() => undefined);
  await watch;
  t.ok(stopped, 'a was stopped while it probed x\'s address');

  await until('b takes x over and adds its address', async () => ((await c.status('b')).apps.find((a) => a.tag === 'x')?.host === 'b' && (await hasVip(c, 'b')) ? true : undefined), 20_000, 100);
  // Every address a adds from here on, as the kernel reports it.
  const monitor = c.rig.spawn('a', ['ip', '-o', 'monitor', 'address', 'dev', 'svc'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => void monitor.kill());
  let added = '';
  monitor.stdout!.setEncoding('utf8').on('data', (d: string) => { for (const l of d.split('\n')) if (l.includes(`${c.vip()}/24`) && !l.startsWith('Deleted')) added += `${l}\n`; });
  await sleep(300); // ip monitor subscribes
  process.kill(agentA, 'SIGCONT');
  await load;

  await until('a learns that b hosts x', async () => {
    const x = (await c.status('a')).apps.find((a) => a.tag === 'x');
    return x?.host === 'b' && x.here?.app === 'down' && x.here.resources === 'down' ? true : undefined;
  }, 20_000, 100);
  await sleep(500);
  t.equal(added, '', 'a never added x\'s address after it continued');
  t.ok(await hasVip(c, 'b'), 'b keeps it');
  const notices = (await c.status('a')).notices;
  t.match(notices.find((n) => n.notice === 'start-stale')?.message ?? '', /stalled \d+ ms/, 'a says why it did not go on with the start', { notices });
  t.notOk(notices.some((n) => n.notice === 'start-failed'), 'and counted no failed attempt');
});

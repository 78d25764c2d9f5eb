// An app with `user:` runs as that account, and so does its command health probe (namespace rig): the
// probe is the app's code, not vigild's. Its probe here passes only when it runs as the app's user.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { createCluster, primaryServing } from '../support/cluster.js';
import { START_GRACE_MS } from '../../src/daemon/health.js';

t.test('an app with a user runs as it, and its command probe too: it stays up and healthy on its primary', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{
    tag: 'x', primary: 'a', backup: 'b', vip: true, user: 'nobody',
    monitorCommand: ['/bin/sh', '-c', 'test "$(id -un)" = nobody'],
  }]);
  await primaryServing(c);
  const x = (await c.status('a')).apps.find((a) => a.tag === 'x');
  const pid = x?.here?.pid;
  t.ok(pid, 'a runs x');
  const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  t.equal(uid, '65534', 'as nobody');
  // A probe that fails from the start counts only after the start grace; wait past it and three probes.
  await sleep(START_GRACE_MS + 3 * 500 + 1000);
  const s = await c.status('a');
  t.notOk(s.notices.some((n) => n.notice === 'app-fault' || n.notice === 'app-restarted'), `no health fault (notices: ${s.notices.map((n) => n.notice).join(' ') || 'none'})`);
  t.equal(s.apps.find((a) => a.tag === 'x')?.host, 'a', 'x still hosted on a');
  t.equal(await c.probe(c.vip()), 'a', 'and serving there');
});

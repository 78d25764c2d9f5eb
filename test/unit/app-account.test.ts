// Apps run under their own accounts (issue 12 B2): `user`, `group` and `groups` per app, applied by vigild
// through setpriv(1) on the node that runs the app, with root's capabilities gone. Real processes; the
// tests run as root, as vigild does (the whole suite needs root: namespaces, SG_IO).
import { chmod, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { NO_DISKS, Resources } from '../../src/daemon/resources.js';
import { parseAppSpec } from '../../src/db/object.js';
import { AppProcess } from '../../src/resources/app-process.js';
import { MINIMAL_CONFIG } from '../support/minimal-config.js';


async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

t.test('an app with a user runs as that user, its primary group, the groups given, without root\'s capabilities', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-account-'));
  await chmod(dir, 0o777);
  const out = join(dir, 'id');
  const app = new AppProcess('web', {
    argv: ['/bin/sh', '-c', `{ id -u; id -g; id -G; echo "$HOME $USER"; grep CapEff /proc/self/status; } > ${out}; exec sleep 60`],
    user: 'nobody', groups: [],
  }, 'ignore');
  t.teardown(() => app.stop(1000));
  await app.start();
  const lines = (await until('the app wrote its ids', async () => {
    const text = await readFile(out, 'utf8').catch(() => '');
    return text.split('\n').length >= 6 ? text : undefined;
  })).split('\n');
  t.same(lines.slice(0, 4), ['65534', '65534', '65534', '/nonexistent nobody'], 'uid, gid, no supplementary group but its own, its HOME and USER');
  t.match(lines[4], /^CapEff:\s+0+$/, 'no capabilities left');
  t.ok(app.pid !== undefined && (await readFile(`/proc/${app.pid}/status`, 'utf8')).includes('Uid:\t65534'), 'the pid vigild records is the app\'s own (setpriv execs it)');
});

t.test('an app whose user does not exist on this node does not start, and the resource check says so first', async (t) => {
  const app = new AppProcess('web', { argv: ['/bin/true'], user: 'no-such-user-here' }, 'ignore');
  await t.rejects(app.start(), /web: cannot start \/bin\/true: no user no-such-user-here on this node/);
  const missing = await new Resources('x', NO_DISKS).missing([], { argv: ['/bin/true'], user: 'no-such-user-here', group: 'no-such-group', groups: ['nogroup'] });
  t.same(missing, ['command: no user no-such-user-here on this node', 'command: no group no-such-group on this node']);
});

t.test('user, group and groups in the configuration and in a registration are account names, checked', async (t) => {
  const config = (app: string) => parseConfig(`${MINIMAL_CONFIG}apps:\n  - { tag: web, type: cluster-capable, command: [/bin/true], primary: x, backup: y, ${app} }\n`, 'c.yaml', { baseDir: '/etc/vigil' });
  t.match(config('user: www-data, group: www-data, groups: [ssl-cert]').apps[0], { user: 'www-data', group: 'www-data', groups: ['ssl-cert'] });
  t.match(config('').apps[0], { user: undefined, group: undefined, groups: undefined }, 'absent: root, as before');
  t.throws(() => config('user: "root; reboot"'), /user/);
  const spec = { tag: 'web', type: 'cluster-aware', primary: 'x', backup: 'y' };
  t.match(parseAppSpec({ ...spec, command: { argv: ['/opt/web'], user: 'www-data', groups: [] } }).command, { user: 'www-data', groups: [] });
  t.throws(() => parseAppSpec({ ...spec, command: { argv: ['/opt/web'], user: '../x' } }), /command.user: expected a user name/);
});

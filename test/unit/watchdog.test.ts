// Which watchdog a node arms (src/daemon/watchdog.ts chooseWatchdog), and its configuration. The keeper
// itself runs against real devices in the lab (test/lab/watchdog.test.ts): never on this host, where
// arming one would reset the machine running the tests.
import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import { checkCountdown, checkDriverTimeout, chooseWatchdog } from '../../src/daemon/watchdog.js';
import { MINIMAL_CONFIG } from '../support/minimal-config.js';

const has = (...paths: string[]) => (p: string) => paths.includes(p);

t.test('auto: the BMC when there is one, else /dev/watchdog, else none', async (t) => {
  t.same(chooseWatchdog('auto', has('/dev/ipmi0', '/dev/watchdog')), { kind: 'ipmi', path: '/dev/ipmi0' });
  t.same(chooseWatchdog('auto', has('/dev/ipmi/0')), { kind: 'ipmi', path: '/dev/ipmi/0' });
  t.same(chooseWatchdog('auto', has('/dev/watchdog')), { kind: 'device', path: '/dev/watchdog' });
  t.equal(chooseWatchdog('auto', has()), undefined);
});

t.test('none arms nothing; ipmi or a path that is missing is an error, not a silent "none"', async (t) => {
  t.equal(chooseWatchdog('none', has('/dev/ipmi0')), undefined);
  t.throws(() => chooseWatchdog('ipmi', has('/dev/watchdog')), /watchdog.device ipmi: no local BMC/);
  t.throws(() => chooseWatchdog('/dev/watchdog1', has('/dev/watchdog')), /watchdog.device \/dev\/watchdog1: no such device/);
  t.same(chooseWatchdog('/dev/watchdog1', has('/dev/watchdog1')), { kind: 'device', path: '/dev/watchdog1' });
});

// What QEMU's BMC answers right after arming (its "running" bit stays clear), and what ipmi_sim answers
// as QEMU's external BMC (the settings kept, the countdown never runs; test/lab-host/bmc-two-faces.test.ts).
const QEMU_READ = { running: false, timerUse: 4, action: 'reset' as const, initialMs: 10_000, presentMs: 9_900, expiredSmsOs: false };

t.test('a BMC watchdog counts only when its settings read back and its countdown runs', async (t) => {
  t.same(checkCountdown(QEMU_READ, 10_000, 'reset'), { counts: true, why: 'counting down: 9900 ms of 10000' });
  t.same(checkCountdown({ ...QEMU_READ, initialMs: 10_000 }, 9_950, 'reset').counts, true, 'the BMC counts in 100 ms: rounded up');
  const no = (read: Parameters<typeof checkCountdown>[0], why: RegExp) => {
    const c = checkCountdown(read, 10_000, 'reset');
    t.equal(c.counts, false, c.why);
    t.match(c.why, why);
  };
  no({ ...QEMU_READ, presentMs: 0 }, /stopped/);
  no({ ...QEMU_READ, presentMs: 418_920 }, /more than its 10000 ms timeout/);
  no({ ...QEMU_READ, timerUse: 3 }, /not SMS\/OS/);
  no({ ...QEMU_READ, action: 'none' }, /action reads none, not reset/);
  no({ ...QEMU_READ, initialMs: 5_000 }, /timeout reads 5000 ms, not 10000/);
  no(new Error('open /dev/ipmi0: EACCES'), /^Get Watchdog Timer: open \/dev\/ipmi0: EACCES$/);
  no(new Error('Get Watchdog Timer: 6 bytes of response data (at least 8)'), /^Get Watchdog Timer: 6 bytes of response data \(at least 8\)$/);
});

const MINIMAL = MINIMAL_CONFIG;

t.test('the watchdog section: off by default; a bad device or timeout named', async (t) => {
  t.same(parseConfig(MINIMAL, '/etc/vigil/c.yaml').watchdog, { device: 'none', timeoutMs: 10000, action: 'reset', vouchTimeout: false });
  t.same(parseConfig(`${MINIMAL}watchdog: { device: auto, timeoutMs: 5000, action: power-cycle }\n`, '/etc/vigil/c.yaml').watchdog, { device: 'auto', timeoutMs: 5000, action: 'power-cycle', vouchTimeout: false });
  t.throws(() => parseConfig(`${MINIMAL}watchdog: { device: watchdog0 }\n`, '/etc/vigil/c.yaml'), /expected none, auto, ipmi or the path of a watchdog device/);
  t.throws(() => parseConfig(`${MINIMAL}watchdog: { timeoutMs: 500 }\n`, '/etc/vigil/c.yaml'), /watchdog\.timeoutMs/);
});

t.test('vigil status shows the watchdog, and says when the agent let its lease run out', async (t) => {
  const { formatStatus } = await import('../../src/cli/status-format.js');
  const base = { cluster: 'lab', node: 'a', incarnation: '1', peers: [], apps: [], notices: [] };
  t.notMatch(formatStatus({ ...base, watchdog: null }), /watchdog/);
  const text = formatStatus({ ...base, watchdog: { path: '/dev/ipmi0', kind: 'ipmi', timeoutMs: 10_000, armed: true, tickles: 40, withheld: 3, tickleErrors: 0 } });
  t.match(text, /\nwatchdog \/dev\/ipmi0: armed, 10\.0 s, 40 tickles, 3 withheld \(the lease ran out: a hung agent, or a lost view\)\n/);
  t.notMatch(text, /COUNTING/);
  const dud = formatStatus({ ...base, watchdog: { path: '/dev/ipmi0', kind: 'ipmi', timeoutMs: 10_000, armed: true, resets: false, countdown: { counts: false, why: 'its countdown is stopped (0) right after a reset' }, tickles: 4, withheld: 0, tickleErrors: 0 } });
  t.match(dud, /\n  NOT COUNTING DOWN: its countdown is stopped \(0\) right after a reset; it cannot reset this node\n/);
});

t.test('vigil status shows the view behind the tickles: with a watchdog, or once lost', async (t) => {
  const { formatStatus } = await import('../../src/cli/status-format.js');
  const base = { cluster: 'lab', node: 'a', incarnation: '1', peers: [], apps: [], notices: [] };
  const view = { valid: true, bound: true, why: 'quorum: hears 3 of 3 nodes', watchdogBoundMs: 15_400, peers: {} };
  const watchdog = { path: '/dev/ipmi0', kind: 'ipmi', timeoutMs: 10_000, armed: true, tickles: 40, withheld: 0, tickleErrors: 0 };
  t.match(formatStatus({ ...base, watchdog, view }), /\nview: valid \(quorum: hears 3 of 3 nodes\); reset within 15\.4 s of a cut\n/);
  t.notMatch(formatStatus({ ...base, watchdog: null, view: { ...view, watchdogBoundMs: null } }), /view:/, 'no watchdog, a valid view: not shown');
  t.match(formatStatus({ ...base, watchdog: null, view: { ...view, valid: false, why: 'lost quorum: hears 1 of 3 nodes (a minority) and hosts apps', watchdogBoundMs: null } }),
    /\nview: LOST \(lost quorum: hears 1 of 3 nodes \(a minority\) and hosts apps\)\n/);
});

t.test('a /dev/watchdog driver: the bound told to peers is the timeout it runs at, never a shorter one', async (t) => {
  const took = (driverTimeoutS: number, refused = false) => ({ driverTimeoutS, errno: refused ? 22 : 0, failedCall: refused ? 'WDIOC_SETTIMEOUT' : '' });
  t.same(checkDriverTimeout(took(10), 10_000), { ok: true, timeoutMs: 10_000 }, 'took as asked');
  const rounded = checkDriverTimeout(took(3), 2_500);
  t.same(rounded, { ok: true, timeoutMs: 3_000, note: 'the driver runs it at 3 s, longer than watchdog.timeoutMs 2500: peers are told 3000 ms' }, 'whole seconds: rounded up, and the longer one is told');
  const own = checkDriverTimeout(took(60, true), 10_000);
  t.ok(own.ok && own.timeoutMs === 60_000, 'refused, it keeps its own 60 s: peers are told 60 s, not 10');
  t.match(own.ok ? own.note : '', /refused a 10 s timeout \(errno 22\); it runs at 60 s/);
  t.same(checkDriverTimeout(took(30, true), 40_000), { ok: false, why: 'the driver refused a 40 s timeout (errno 22); it runs at 30 s, shorter than watchdog.timeoutMs 40000: set watchdog.timeoutMs to at most 30000' },
    'shorter than configured: refused, with the fix');
  t.same(checkDriverTimeout(took(0, true), 10_000), { ok: false, why: 'the driver refused a 10 s timeout (errno 22) and does not say its own (WDIOC_GETTIMEOUT): if its timeout is fixed at most watchdog.timeoutMs (a module parameter), set watchdog.vouchTimeout: true' }, 'refused and silent: no bound at all');
  t.match(checkDriverTimeout(took(0, true), 10_000, true), { ok: true, timeoutMs: 10_000, note: /operator vouches for 10000 ms/ }, 'unless the operator vouches for it (watchdog.vouchTimeout)');
  t.same(checkDriverTimeout(took(0), 10_000), { ok: true, timeoutMs: 10_000, note: 'the driver does not say its timeout (WDIOC_GETTIMEOUT); taken as set' });
});

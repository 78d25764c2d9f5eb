// The `power:` section → the policy's configuration and the sources: each kind built with the options the
// file gives (read back from the instances, never started), the contact-closure mapping with and without a
// genericups upstype, the NUT password file read and refused; and building opens neither a socket nor a port.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import type { ContactClosureSourceConfig, PowerConfig } from '../../src/config/schema.js';
import { ApcSmartSource } from '../../src/power/apc-smart.js';
import { ContactClosureSource, type ModemLineWatcherFactory } from '../../src/power/contact-closure.js';
import { contactClosureMapping, createPowerSources, powerPolicyConfig } from '../../src/power/from-config.js';
import { NutSource } from '../../src/power/nut.js';
import { MINIMAL_CONFIG } from '../support/minimal-config.js';

const MINIMAL = MINIMAL_CONFIG;

function power(yaml: string, baseDir = '/etc/vigil'): PowerConfig {
  return parseConfig(`${MINIMAL}${yaml}`, 'cluster.yaml', { baseDir }).power!;
}

/** The options a source was built with: private fields, read only to check what the config handed over. */
const fields = (s: unknown): Record<string, unknown> => s as Record<string, unknown>;

/** A watcher factory that records every open, for proof that building a source opens nothing. */
function recordingWatcher(): { factory: ModemLineWatcherFactory; opened: string[] } {
  const opened: string[] = [];
  return { opened, factory: (device) => { opened.push(device); return { setLines: () => undefined, stop: () => undefined }; } };
}

t.test('powerPolicyConfig: graceMs, DEADTIME and the modes under their reason codes; absent keys stay absent', async (t) => {
  const full = power(`power:
  sources: [{ kind: apc-smart, device: /dev/ttyS0 }]
  onBattery: { graceMs: 120000 }
  commsLostOnBatteryMs: 15000
  modes: { lowBattery: async, forcedShutdown: sync, onBatteryGrace: sync, commsLostOnBattery: async }
`);
  t.strictSame(powerPolicyConfig(full), {
    onBattery: { graceMs: 120000 },
    commsLostOnBatteryMs: 15000,
    modes: { 'power-on-battery-grace': 'sync', 'power-comms-lost-on-battery': 'async', 'power-low-battery': 'async', 'power-forced-shutdown': 'sync' },
  });
  t.strictSame(powerPolicyConfig(power('power:\n  sources: [{ kind: apc-smart, device: /dev/ttyS0 }]\n')), {}, 'warn only, default modes');
  t.strictSame(powerPolicyConfig(power(`power:
  sources: [{ kind: apc-smart, device: /dev/ttyS0 }]
  onBattery: { graceMs: 0 }
  modes: { lowBattery: async }
`)), { onBattery: { graceMs: 0 }, modes: { 'power-low-battery': 'async' } }, 'grace 0 (distress at once) is kept');
});

t.test('createPowerSources: each kind with the options of the file, named as the file says, in order, not started', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-power-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'nut.password'), '  pass word\n');
  const watcher = recordingWatcher();
  const p = power(`power:
  sources:
    - { kind: nut, host: ups-mgmt.example, port: 3494, ups: rack1, user: vigil, passwordFile: nut.password, pollMs: 500, timeoutMs: 800, commsLostAfter: 5 }
    - { kind: nut, host: 10.0.0.5, ups: rack2 }
    - { kind: apc-smart, device: /dev/ttyUSB0, timeoutMs: 700, commsLostAfter: 2 }
    - { kind: contact-closure, name: relay, device: /dev/ttyS0, lines: { online: CTS, lowBattery: DCD }, polarity: { lowBattery: active-low }, cablePower: [DTR], debounceMs: 50 }
`, dir);
  const sources = await createPowerSources(p, { contactClosure: { watcher: watcher.factory } });

  t.same(sources.map((s) => s.name), ['nut:rack1@ups-mgmt.example:3494', 'nut:rack2@10.0.0.5', 'apc-smart:/dev/ttyUSB0', 'relay']);
  t.same(sources.map((s) => s.status().type), ['nut', 'nut', 'apc-smart', 'contact-closure']);
  t.ok(sources[0] instanceof NutSource && sources[1] instanceof NutSource && sources[2] instanceof ApcSmartSource && sources[3] instanceof ContactClosureSource);
  for (const s of sources) {
    t.match(s.status(), { source: s.name, connected: false, state: undefined, polls: 0, failedPolls: 0, reconnects: 0 }, `${s.name}: not started`);
  }

  t.match(fields(sources[0]).opts, {
    host: 'ups-mgmt.example', port: 3494, ups: 'rack1', user: 'vigil', password: 'pass word', pollMs: 500, timeoutMs: 800, commsLostAfter: 5,
  });
  t.strictSame(fields(sources[1]).opts, {
    host: '10.0.0.5', port: 3493, ups: 'rack2', user: undefined, password: undefined, pollMs: 1000, timeoutMs: 2000, commsLostAfter: 3,
    backoffMs: 250, backoffMaxMs: 5000,
  }, 'no user, no password; the defaults the schema filled in');
  t.match(fields(sources[2]).o, { device: '/dev/ttyUSB0', pollMs: 1000, timeoutMs: 700, commsLostAfter: 2 });
  t.match(fields(sources[3]).opts, {
    device: '/dev/ttyS0', debounceMs: 50,
    mapping: { online: { line: 'cts', activeHigh: true }, lowBattery: { line: 'dcd', activeHigh: false }, cablePower: { dtr: true, rts: false } },
  });
  t.same(watcher.opened, [], 'no port opened');
});

t.test('createPowerSources: building a NUT source connects to nothing', async (t) => {
  const server = createServer();
  let connections = 0;
  server.on('connection', (c) => { connections++; c.destroy(); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  await createPowerSources(power(`power:\n  sources: [{ kind: nut, host: 127.0.0.1, port: ${port}, ups: u }]\n`));
  await sleep(100);
  t.equal(connections, 0);
});

t.test('contact-closure mapping: explicit lines, or a genericups upstype with the file overriding it', async (t) => {
  const cc = (yaml: string) => power(`power:\n  sources: [${yaml}]\n`).sources[0] as ContactClosureSourceConfig;
  t.strictSame(contactClosureMapping(cc('{ kind: contact-closure, device: /dev/ttyS0, lines: { online: RI } }')),
    { online: { line: 'ri', activeHigh: true }, cablePower: { dtr: false, rts: false } }, 'no low-battery line; no cable power');
  // upstype 2: APC Back-UPS 940-0020B/C, cable power RTS, on line -CTS, low battery DCD.
  t.strictSame(contactClosureMapping(cc('{ kind: contact-closure, device: /dev/ttyS0, upstype: 2 }')),
    { online: { line: 'cts', activeHigh: false }, lowBattery: { line: 'dcd', activeHigh: true }, cablePower: { dtr: false, rts: true } });
  t.strictSame(contactClosureMapping(cc('{ kind: contact-closure, device: /dev/ttyS0, upstype: 2, lines: { online: DSR }, cablePower: [DTR, RTS] }')),
    { online: { line: 'dsr', activeHigh: true }, lowBattery: { line: 'dcd', activeHigh: true }, cablePower: { dtr: true, rts: true } },
    'a line given without a polarity is active high, as genericups\' OL=DSR');
  t.strictSame(contactClosureMapping(cc('{ kind: contact-closure, device: /dev/ttyS0, upstype: 2, polarity: { online: active-high, lowBattery: active-low }, cablePower: [] }')),
    { online: { line: 'cts', activeHigh: true }, lowBattery: { line: 'dcd', activeHigh: false }, cablePower: { dtr: false, rts: false } },
    'a polarity alone keeps the table\'s line; an empty cablePower powers nothing');
  // The docs/power.md example: upstype 2 restated in full.
  t.strictSame(contactClosureMapping(cc('{ kind: contact-closure, device: /dev/ttyS0, upstype: 2, lines: { online: CTS, lowBattery: DCD }, polarity: { online: active-low }, cablePower: [DTR, RTS] }')),
    { online: { line: 'cts', activeHigh: false }, lowBattery: { line: 'dcd', activeHigh: true }, cablePower: { dtr: true, rts: true } });
  const built: ContactClosureSourceConfig = {
    kind: 'contact-closure', name: 'cc', device: '/dev/ttyS0', upstype: undefined, lines: { online: undefined, lowBattery: undefined },
    polarity: { online: undefined, lowBattery: undefined }, cablePower: undefined, debounceMs: 100,
  };
  t.throws(() => contactClosureMapping(built), { message: 'power source cc: neither lines.online nor an upstype' });
});

t.test('createPowerSources: the password file, trimmed; missing or empty is an error naming the file and the source', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-power-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const yaml = `power:
  sources:
    - { kind: apc-smart, device: /dev/ttyS0 }
    - { kind: nut, host: ups-mgmt, ups: rack1, user: vigil, passwordFile: secret }
`;
  await t.rejects(createPowerSources(power(yaml, dir)), {
    message: `power source nut:rack1@ups-mgmt: cannot read passwordFile ${join(dir, 'secret')}: no such file`,
  });
  await writeFile(join(dir, 'secret'), '\n \n');
  await t.rejects(createPowerSources(power(yaml, dir)), { message: `power source nut:rack1@ups-mgmt: passwordFile ${join(dir, 'secret')} is empty` });
  await writeFile(join(dir, 'secret'), 's3cret\n');
  const [, nut] = await createPowerSources(power(yaml, dir));
  t.match(fields(nut).opts, { user: 'vigil', password: 's3cret' });

  const reads: string[] = [];
  await createPowerSources(power(yaml, '/etc/vigil'), { readFile: async (path) => { reads.push(path); return 'x'; } });
  t.same(reads, ['/etc/vigil/secret'], 'through deps.readFile, once');
  await t.rejects(createPowerSources(power(yaml, '/etc/vigil'), { readFile: async () => { throw Object.assign(new Error('EACCES'), { code: 'EACCES' }); } }),
    { message: 'power source nut:rack1@ups-mgmt: cannot read passwordFile /etc/vigil/secret: permission denied' });
});

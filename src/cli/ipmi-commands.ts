// `vigil ipmi …`: a BMC, local (/dev/ipmi0) or remote (RMCP+ with --host), for field engineers and scripts.
import { Command, Option } from 'commander';

import { openBmc } from '../ipmi/bmc.js';
import {
  chassisControl, getChassisStatus, getDeviceId, getSystemRestartCause, getWatchdogTimer, readSel,
  SENSOR_TYPE_WATCHDOG2, type ChassisActionName, type SelEntry,
} from '../ipmi/commands.js';
import { IpmiCompletionError } from '../ipmi/errors.js';
import { Privilege } from '../ipmi/lan-session.js';
import { openLocalBmc } from '../ipmi/local.js';
import type { IpmiTransport } from '../ipmi/message.js';
import type { Report } from './output.js';
import { act, intOption, usage } from './run.js';

interface BmcOptions {
  host?: string;
  port?: number;
  user?: string;
  passwordFile?: string;
  kgFile?: string;
  cipher?: number;
  timeout: number;
}

function withBmcOptions(c: Command): Command {
  return c
    .option('--host <address>', 'a remote BMC (RMCP+, UDP); without it, the local BMC through /dev/ipmi0')
    .option('--port <n>', 'the remote BMC\'s UDP port (default 623)', intOption(1, 65535))
    .option('--user <name>', 'the user to log in as (remote)')
    .option('--password-file <path>', 'a file holding the password, mode 0600 (remote)')
    .option('--kg-file <path>', 'a file holding the BMC key, for two-key logins (remote)')
    .addOption(new Option('--cipher <suite>', 'cipher suite: 17 (SHA-256) or 3 (SHA-1)').argParser(intOption(3, 17)).default(17))
    .option('--timeout <ms>', 'give up on the BMC after this long', intOption(100, 600_000), 5000);
}

async function withBmc<T>(cmd: Command, privilege: number, fn: (t: IpmiTransport) => Promise<T>): Promise<T> {
  const o = cmd.optsWithGlobals() as BmcOptions;
  let t: IpmiTransport;
  if (o.host !== undefined) {
    if (!o.user) usage('--host needs --user');
    if (!o.passwordFile) usage('--host needs --password-file (a password on the command line would show in ps)');
    if (o.cipher !== 3 && o.cipher !== 17) usage(`--cipher ${o.cipher}: vigil speaks cipher suites 3 and 17`);
    t = await openBmc({ host: o.host, user: o.user, passwordFile: o.passwordFile, cipherSuite: o.cipher, privilege, timeoutMs: o.timeout, ...(o.port ? { port: o.port } : {}), ...(o.kgFile ? { kgFile: o.kgFile } : {}) });
  } else {
    for (const flag of ['user', 'passwordFile', 'kgFile', 'port'] as const) if (o[flag] !== undefined) usage(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for a remote BMC: give --host too`);
    t = await openLocalBmc({ timeoutMs: o.timeout });
  }
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

async function info(_o: unknown, cmd: Command): Promise<Report> {
  return withBmc(cmd, Privilege.USER, async (t) => {
    const id = await getDeviceId(t);
    const json = { deviceId: id.deviceId, firmware: id.firmware, ipmiVersion: id.ipmiVersion, manufacturerId: id.manufacturerId, productId: id.productId };
    const human = [
      `Device ID          ${id.deviceId}`, `Firmware           ${id.firmware}`, `IPMI version       ${id.ipmiVersion}`,
      `Manufacturer ID    ${id.manufacturerId}`, `Product ID         ${id.productId} (0x${id.productId.toString(16).padStart(4, '0')})`,
    ].join('\n');
    return { json, human };
  });
}

const POWER_ACTIONS = ['status', 'on', 'off', 'cycle', 'reset', 'soft'] as const;

async function power(action: string, _o: unknown, cmd: Command): Promise<Report> {
  if (!(POWER_ACTIONS as readonly string[]).includes(action)) usage(`power ${action}: expected one of ${POWER_ACTIONS.join(', ')}`);
  return withBmc(cmd, action === 'status' ? Privilege.USER : Privilege.OPERATOR, async (t) => {
    if (action !== 'status') {
      await chassisControl(t, action as ChassisActionName);
      return { json: { action, done: true }, human: `Chassis Control: ${action} done` };
    }
    const s = await getChassisStatus(t);
    return { json: { power: s.power }, human: `Chassis power is ${s.power}` };
  });
}

async function watchdog(_o: unknown, cmd: Command): Promise<Report> {
  return withBmc(cmd, Privilege.USER, async (t) => {
    const w = await getWatchdogTimer(t);
    const json = { running: w.running, action: w.action, timeoutMs: w.initialMs, remainingMs: w.presentMs, expired: w.expiredSmsOs };
    const human = w.running
      ? `Watchdog running: ${w.action} in ${(w.presentMs / 1000).toFixed(1)} s of ${(w.initialMs / 1000).toFixed(1)} s`
      : `Watchdog stopped (action ${w.action}, timeout ${(w.initialMs / 1000).toFixed(1)} s)${w.expiredSmsOs ? '; it expired since the flag was last cleared' : ''}`;
    return { json, human };
  });
}

// IPMI 2.0 section 37: times up to 0x20000000 count from the BMC's initialisation, not from 1970; all ones: none.
const PRE_INIT_MAX = 0x20000000;
const UNSPECIFIED_TIME = 0xffffffff;
// Table 42-3, sensor type 0x23 (watchdog 2): what the expiry did, by the event's offset.
const WATCHDOG2_OFFSETS = ['timer expired', 'hard reset', 'power down', 'power cycle', , , , , 'timer interrupt'];

function selTime(ts: number | undefined): string {
  if (ts === undefined) return '(OEM, no time)';
  if (ts === UNSPECIFIED_TIME) return '(no time)';
  if (ts <= PRE_INIT_MAX) return `pre-init +${ts} s`;
  return new Date(ts * 1000).toISOString();
}

function selLine(e: SelEntry): string {
  const when = selTime(e.timestamp);
  if (e.recordType !== 0x02) return `${e.id.toString(16).padStart(4, '0')}  ${when}  OEM record type 0x${e.recordType.toString(16)}: ${e.raw.toString('hex')}`;
  const data = e.eventData!.map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const did = e.sensorType === SENSOR_TYPE_WATCHDOG2 ? WATCHDOG2_OFFSETS[e.eventData![0]! & 0x0f] : undefined;
  const what = e.sensorType === SENSOR_TYPE_WATCHDOG2 ? 'Watchdog 2' : `sensor type 0x${e.sensorType!.toString(16)}`;
  return `${e.id.toString(16).padStart(4, '0')}  ${when}  ${what} #${e.sensorNumber} ${e.eventDirection}${did ? `: ${did}` : ''} (data ${data})`;
}

async function sel(o: { last?: number }, cmd: Command): Promise<Report> {
  return withBmc(cmd, Privilege.USER, async (t) => {
    const entries = await readSel(t, o.last);
    let restart: { cause: number; text: string } | null = null;
    try {
      restart = await getSystemRestartCause(t);
    } catch (e) {
      if (!(e instanceof IpmiCompletionError) || e.transport) throw e; // a BMC without the command: no cause, not an error
    }
    const json = {
      restartCause: restart?.text ?? null,
      entries: entries.map((e) => ({ id: e.id, recordType: e.recordType, timestamp: e.timestamp ?? null, sensorType: e.sensorType ?? null, sensorNumber: e.sensorNumber ?? null, direction: e.eventDirection ?? null, eventData: e.eventData ?? null, raw: e.raw.toString('hex') })),
    };
    const human = [`Last restart: ${restart?.text ?? 'not reported by this BMC'}`, entries.length ? entries.map(selLine).join('\n') : 'SEL: no entries'].join('\n');
    return { json, human };
  });
}

export function ipmiCommand(): Command {
  const ipmi = new Command('ipmi').description('a BMC: local (/dev/ipmi0) or remote (RMCP+ with --host)');
  ipmi.addCommand(withBmcOptions(new Command('info').description('the BMC\'s device ID, firmware and IPMI version').action(act(info))));
  ipmi.addCommand(withBmcOptions(new Command('power').description('chassis power: status, on, off (hard), cycle, reset, soft (ACPI)').argument('<action>', POWER_ACTIONS.join('|')).action(act(power))));
  ipmi.addCommand(withBmcOptions(new Command('watchdog').description('the BMC watchdog (its "status")').argument('[what]', 'status', 'status').action(act((what: string, o: unknown, c: Command) => (what === 'status' ? watchdog(o, c) : usage(`watchdog ${what}: only status (the agent arms and keeps the watchdog; see watchdog: in the configuration)`))))));
  ipmi.addCommand(withBmcOptions(new Command('sel').description('the system event log, and the last restart\'s cause').option('--last <n>', 'only the last N entries', intOption(1)).action(act(sel))));
  return ipmi;
}

// What a valid cluster configuration is: the zod schema field by field (with its defaults), the checks
// that span fields (a name that must refer to another, values that must agree), and the Config the rest
// of vigil reads. Finding a problem's line in the YAML text is load.ts's job; docs/config.md is the
// reference for people.
import { isIP } from 'node:net';
import { resolve } from 'node:path';

import { z } from 'zod';

import { GENERICUPS_TYPES, parseSignal } from '../power/contact-closure.js';
import { NUT_DEFAULT_PORT } from '../power/nut.js';
import type { SendMode } from '../power/policy.js';
import { LADDER_STEPS, type LadderStep } from '../db/node-record.js';

import { DEFAULT_CONTROL_SOCKET } from './defaults.js';
import { accountName, fsType, ifname, mountOption, mountPath, validPrefix } from './resource-rules.js';

export { DEFAULT_CONTROL_SOCKET };

/** A path into the configuration: keys and list indexes, as zod reports them. */
export type FieldPath = (string | number)[];

/** A cross-field problem, located by the path of the field to fix. */
export interface FieldIssue {
  path: FieldPath;
  message: string;
}

// ---------------------------------------------------------------------------------------------------
// Values

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const NAME_RULE = "1 to 32 of a-z, 0-9 and '-', starting with a letter or digit";

/** A schema-level message for a value of the wrong type; a missing one stays "required" (load.ts). */
function wrongType(message: string) {
  return { error: (iss: { input?: unknown }) => (iss.input === undefined ? undefined : message) };
}

function name(what: string) {
  return z.string().regex(NAME, `expected ${what}: ${NAME_RULE}`);
}

const port = z.int().min(1, 'expected a port from 1 to 65535').max(65535, 'expected a port from 1 to 65535');

function ms(min: number) {
  const rule = `expected a whole number of milliseconds, at least ${min}`;
  return z.int(wrongType(rule)).min(min, rule);
}

/** A whole number in [min, max], with one message for the type and the range. */
function count(min: number, max: number, rule = `expected a whole number from ${min} to ${max}`) {
  return z.int(wrongType(rule)).min(min, rule).max(max, rule);
}

const ipAddress = z.string().refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address');

/** A file or directory; a relative one resolves against the configuration file's directory. */
const filePath = z.string().min(1, 'expected a path').refine((s) => !s.includes('\0'), 'a path cannot hold a NUL');
const groupName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, 'expected a group name');

const absolutePath = z.string().startsWith('/', 'expected an absolute path (starting with /)');


export interface Endpoint {
  host: string;
  port: number;
}

/** "127.0.0.1:9642", "[::1]:9642" or "host.example:9642". */
export function parseEndpoint(text: string): Endpoint | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const portNumber = Number(m[3]);
  if (portNumber < 1 || portNumber > 65535) return undefined;
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  if (m[2] !== undefined && isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(host)) {
    return undefined;
  }
  return { host, port: portNumber };
}

const endpoint = z.string().transform((s, ctx) => {
  const e = parseEndpoint(s);
  if (e) return e;
  ctx.issues.push({ code: 'custom', input: s, message: 'expected host:port, e.g. "127.0.0.1:9642" or "[::1]:9642"' });
  return z.NEVER;
});

/**
 * Why a unit identity is not in the canonical VPD 0x83 text that `vigil scsi scan` prints and the link
 * table stores (identities are compared as strings, so the form must be exact), or undefined if it is.
 */
export function identityProblem(s: string): string | undefined {
  const lower = 'lowercase hex digits, as vigil scsi scan prints it';
  if (s.startsWith('naa.')) {
    return /^naa\.(?:[235][0-9a-f]{15}|6[0-9a-f]{31})$/.test(s) ? undefined
      : `naa. takes 16 (NAA 2, 3, 5) or 32 (NAA 6) ${lower}`;
  }
  if (s.startsWith('eui.')) {
    return /^eui\.(?:[0-9a-f]{16}|[0-9a-f]{24}|[0-9a-f]{32})$/.test(s) ? undefined : `eui. takes 16, 24 or 32 ${lower}`;
  }
  if (s.startsWith('uuid.')) return /^uuid\.[0-9a-f]{32}$/.test(s) ? undefined : `uuid. takes 32 ${lower}`;
  if (s.startsWith('t10.')) return /^t10\.\S(?:[\x20-\x7e]*\S)?$/.test(s) ? undefined : 't10. takes printable ASCII text';
  if (s.startsWith('iqn.')) return /^iqn\.\d{4}-\d{2}\.\S+$/.test(s) ? undefined : 'an iqn. SCSI name is iqn.yyyy-mm.reversed.domain[:name]';
  return 'expected a unit identity as VPD page 0x83 gives it: naa.…, eui.…, uuid.…, t10.… or an iqn.… SCSI name';
}

const identity = z.string().superRefine((s, ctx) => {
  const problem = identityProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', input: s, message: problem });
});

// A 64-bit value must stay a string: YAML reads an unquoted 0x… as a number, which loses precision.
const reservationKey = z.string(wrongType('expected a hex string in quotes, e.g. "0x1a2b" (an unquoted number loses precision)'))
  .regex(/^0x[0-9a-fA-F]{1,16}$/, 'expected 0x and 1 to 16 hex digits')
  .transform((s) => BigInt(s))
  .refine((k) => k !== 0n, 'key 0 is not a reservation key (it means "unregister")');

const argv = z.union([
  z.string().min(1, 'expected a non-empty command'),
  z.array(z.string().min(1, 'expected a non-empty argument')).min(1, 'expected at least the program to run'),
], wrongType('expected a command: a list [program, arg, …], or one string for /bin/sh -c'))
  // A plain string is a shell command line.
  .transform((c) => (typeof c === 'string' ? ['/bin/sh', '-c', c] : c));

/** At most one of `keys` given, and (unless `optional`) one. */
function oneOf(keys: string[], what: string) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const given = keys.filter((k) => value[k] !== undefined);
    if (given.length === 1) return;
    ctx.addIssue({
      code: 'custom',
      input: value,
      path: given.length > 1 ? [given[1]!] : [],
      message: given.length > 1 ? `${what} is one of ${keys.join(', ')}, not both ${given[0]} and ${given[1]} (use two list items)`
        : `${what} needs one of ${keys.join(', ')}`,
    });
  };
}

// ---------------------------------------------------------------------------------------------------
// The file

export const DEFAULT_STATE_DIR = '/var/lib/vigil';

export const DEFAULT_TIMING = {
  heartbeatIntervalMs: 100,
  failAfterMs: 400,
  recoverAfterMs: 1000,
  diskHeartbeatIntervalMs: 200,
  agentLeaseMs: 5000,
  failbackDwellMs: 10000,
  failbackPromptRepeatMs: 60000,
  peerProbeMs: 10000,
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const networkSchema = z.strictObject({
  name: name('a network name'),
  // port + 1 carries the agents' database messages (src/daemon/messenger.ts).
  port: z.int().min(1, 'expected a port from 1 to 65534 (port + 1 is used too)').max(65534, 'expected a port from 1 to 65534 (port + 1 is used too)'),
});

// The node's BMC, for power fencing (src/daemon/power-fence.ts, docs/ipmi.md): RMCP+ only, with the
// password in a file (mode 0600, like the key file), never in the configuration.
const bmcSchema = z.strictObject({
  host: z.string().min(1, 'expected the BMC\'s address or host name'),
  port: port.default(623),
  user: z.string().min(1, 'expected an IPMI user name').max(16, 'an IPMI user name is at most 16 bytes'),
  passwordFile: filePath,
  cipherSuite: z.literal([3, 17], { error: 'expected cipher suite 17 (SHA-256) or 3 (SHA-1)' }).default(17),
  kgFile: filePath.optional(),
});

const nodeSchema = z.strictObject({
  name: name('a node name'),
  id: z.int(wrongType('expected a node id from 1 to 65535')).min(1, 'expected a node id from 1 to 65535').max(65535, 'expected a node id from 1 to 65535'),
  addresses: z.record(z.string(), ipAddress),
  reservationKey: reservationKey.optional(),
  bmc: bmcSchema.optional(),
});

export const DEFAULT_WATCHDOG = {
  device: 'none',
  timeoutMs: 10_000,
  action: 'reset',
  vouchTimeout: false,
} as const;

// The node's own watchdog (src/daemon/watchdog.ts, docs/ipmi.md): kept only while the agent is alive.
const watchdogSchema = z.strictObject({
  device: z.string().min(1).refine((s) => ['none', 'auto', 'ipmi'].includes(s) || s.startsWith('/'), 'expected none, auto, ipmi or the path of a watchdog device').default(DEFAULT_WATCHDOG.device),
  timeoutMs: ms(2000).max(6_553_500, 'expected at most 6553500 ms (the IPMI watchdog counts 100 ms to 16 bits)').default(DEFAULT_WATCHDOG.timeoutMs),
  action: z.enum(['reset', 'power-off', 'power-cycle', 'none']).default(DEFAULT_WATCHDOG.action),
  // A /dev/watchdog that can be neither set nor asked (no WDIOC_SETTIMEOUT, no WDIOC_GETTIMEOUT: a legacy
  // driver whose module parameter fixes its timeout): the operator vouches it resets within timeoutMs.
  vouchTimeout: z.boolean().default(DEFAULT_WATCHDOG.vouchTimeout),
});

export const DEFAULT_FENCING = {
  raceDelayMs: 5000,
  requestTimeoutMs: 2000,
  confirmTimeoutMs: 10_000,
  watchdogMarginMs: 5000,
  action: 'off',
} as const;

// Power fencing's timing (docs/ipmi.md). raceDelayMs: with both networks cut, each side would power the
// other off; every node but the one of the lowest id waits this long first, so that one survives.
// watchdogMarginMs: added to a silent peer's published watchdog bound before it counts as self-fenced.
// action: off leaves a fenced node off (an operator looks first); reboot powers it on again once its off
// is confirmed, so that it comes back by itself (as a spare: seed 003 decides what it may start).
const fencingSchema = z.strictObject({
  raceDelayMs: ms(0).default(DEFAULT_FENCING.raceDelayMs),
  requestTimeoutMs: ms(100).default(DEFAULT_FENCING.requestTimeoutMs),
  confirmTimeoutMs: ms(100).default(DEFAULT_FENCING.confirmTimeoutMs),
  watchdogMarginMs: ms(0).default(DEFAULT_FENCING.watchdogMarginMs),
  action: z.enum(['off', 'reboot']).default(DEFAULT_FENCING.action),
});

const diskSchema = z.strictObject({
  name: name('a disk name'),
  identity,
  reservation: z.enum(['persistent', 'scsi2']).default('persistent'),
  // The disk heartbeat through the reservation (src/daemon/disk-pulse.ts); default on.
  heartbeat: z.boolean().optional(),
  // scsi2 only: how a failed holder's reservation is broken at takeover (src/daemon/scsi2.ts).
  reset: z.enum(['lun', 'lun-then-target']).optional(),
  // persistent only (crossCheck refuses it with scsi2): every takeover preempts with PREEMPT AND ABORT
  // unless false (tcm_loop on Linux 6.1 wedges on it); the default, true, is filled in by toConfig.
  preemptAndAbort: z.boolean().optional(),
});

const timingSchema = z.strictObject({
  heartbeatIntervalMs: ms(1).default(DEFAULT_TIMING.heartbeatIntervalMs),
  failAfterMs: ms(1).default(DEFAULT_TIMING.failAfterMs),
  recoverAfterMs: ms(0).default(DEFAULT_TIMING.recoverAfterMs),
  diskHeartbeatIntervalMs: ms(1).default(DEFAULT_TIMING.diskHeartbeatIntervalMs),
  agentLeaseMs: ms(1).default(DEFAULT_TIMING.agentLeaseMs),
  failbackDwellMs: ms(0).default(DEFAULT_TIMING.failbackDwellMs),
  failbackPromptRepeatMs: ms(1).default(DEFAULT_TIMING.failbackPromptRepeatMs),
  peerProbeMs: ms(0).default(DEFAULT_TIMING.peerProbeMs),
});

const cidr = z.string().transform((s, ctx) => {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (m && validPrefix(m[1]!, Number(m[2]))) return { address: m[1]!, prefixLength: Number(m[2]) };
  ctx.issues.push({ code: 'custom', input: s, message: 'expected an address with its prefix length, e.g. 10.3.0.100/24 or fd00::10/64' });
  return z.NEVER;
});

const resourceSchema = z.strictObject({
  disk: name('a disk name').optional(),
  mount: z.strictObject({
    disk: name('a disk name'),
    path: mountPath,
    fstype: fsType,
    options: z.array(mountOption).default([]),
  }).optional(),
  ip: z.strictObject({
    address: cidr,
    // One name for every node, or node name → interface name where they differ.
    interface: z.union([ifname, z.record(z.string(), ifname)], wrongType('expected an interface name, or a mapping node → interface name')),
  }).optional(),
}).superRefine(oneOf(['disk', 'mount', 'ip'], 'a resource'));

const monitorSchema = z.strictObject({
  tcp: endpoint.optional(),
  command: argv.optional(),
  intervalMs: ms(1).default(1000),
  timeoutMs: ms(1).default(500),
  failures: z.int(wrongType('expected a whole number, at least 1')).min(1, 'expected a whole number, at least 1').default(3),
}).superRefine(oneOf(['tcp', 'command'], 'a monitor'));

const attributeValue = z.union([z.string(), z.number(), z.boolean()], wrongType('expected a string, a number or true/false'));

const appSchema = z.strictObject({
  tag: name('an app tag'),
  type: z.enum(['cluster-capable', 'cluster-aware']),
  command: argv,
  cwd: filePath.optional(),
  user: accountName('a user name').optional(),
  group: accountName('a group name').optional(),
  groups: z.array(accountName('a group name')).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
    z.union([z.string(), z.number(), z.boolean()], wrongType('expected a string (or a number or true/false, passed as text)'))).default({}),
  primary: name('a node name'),
  backup: name('a node name'),
  autoRecover: z.boolean().default(false),
  stopTimeoutMs: ms(1).default(10000),
  localRestarts: z.int(wrongType('expected a whole number, 0 or more')).min(0, 'expected a whole number, 0 or more').default(0),
  restartWindowMs: ms(1).default(600_000),
  resources: z.array(resourceSchema).default([]),
  monitor: monitorSchema.optional(),
  attributes: z.record(z.string().min(1, 'expected a non-empty name'), attributeValue).default({}),
});

// Power sources (docs/power.md). What spans fields (a password needs a user, the lines of a contact closure,
// unique names) is checked in crossCheck, on the raw document, so it is reported next to the type errors.

const upsName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected a UPS name as in upsd's ups.conf, e.g. rack1");

// upsd's own figures set the floor: its drivers read the UPS every 2 s, so polling faster than 200 ms
// only loads upsd (docs/power.md, "Poll interval").
const pollMs = ms(200).max(60_000, 'expected at most 60000 ms').default(1000);

const nutSource = z.strictObject({
  kind: z.literal('nut'),
  name: name('a source name').optional(),
  host: z.string().min(1, 'expected a host name or address'),
  port: port.default(NUT_DEFAULT_PORT),
  ups: upsName,
  user: z.string().regex(/^\S{1,64}$/, 'expected a user name from upsd.users').optional(),
  passwordFile: filePath.optional(),
  pollMs,
  timeoutMs: ms(100).default(2000),
  commsLostAfter: count(1, 100).default(3),
});

const apcSmartSource = z.strictObject({
  kind: z.literal('apc-smart'),
  name: name('a source name').optional(),
  device: absolutePath,
  pollMs,
  // apcupsd's TIMER_FAST: a Smart-UPS answers well within a second or not at all.
  timeoutMs: ms(100).default(1000),
  commsLostAfter: count(1, 100).default(3),
});

const MODEM_LINES = ['CTS', 'DCD', 'RI', 'DSR'] as const;
const modemLine = z.enum(MODEM_LINES, wrongType('expected one of the input lines CTS, DCD, RI, DSR'));
const polarity = z.enum(['active-high', 'active-low'], wrongType('expected active-high or active-low'));

const contactClosureSource = z.strictObject({
  kind: z.literal('contact-closure'),
  name: name('a source name').optional(),
  device: absolutePath,
  // NUT genericups' cable table (GENERICUPS_TYPES in src/power/contact-closure.ts).
  upstype: count(0, 22, 'expected a genericups upstype from 0 to 22').optional(),
  lines: z.strictObject({ online: modemLine.optional(), lowBattery: modemLine.optional() }).prefault({}),
  polarity: z.strictObject({ online: polarity.optional(), lowBattery: polarity.optional() }).prefault({}),
  cablePower: z.array(z.enum(['DTR', 'RTS'], wrongType('expected DTR or RTS'))).max(2, 'expected DTR, RTS or both').optional(),
  debounceMs: ms(0).max(10_000, 'expected at most 10000 ms').default(100),
});

const SOURCE_KINDS = ['nut', 'apc-smart', 'contact-closure'] as const;

// zod's own message for a kind it does not know is "Invalid discriminator value"; say what kind takes.
const powerSource = z.discriminatedUnion('kind', [nutSource, apcSmartSource, contactClosureSource], {
  error: (iss) => {
    if (iss.code !== 'invalid_union' || !isRaw(iss.input)) return undefined;
    const kind = iss.input.kind;
    return kind === undefined ? `required: one of ${SOURCE_KINDS.join(', ')}`
      : `expected one of ${SOURCE_KINDS.join(', ')}; got ${typeof kind === 'string' ? JSON.stringify(kind) : String(kind)}`;
  },
});

const sendMode = z.enum(['sync', 'async']);

const powerSchema = z.strictObject({
  sources: z.array(powerSource, wrongType('expected a list of power sources')).min(1, 'expected at least one source'),
  onBattery: z.strictObject({ graceMs: ms(0).optional() }).prefault({}),
  // Shorter than a few polls would take one slow answer for a dead UPS.
  commsLostOnBatteryMs: ms(1000).optional(),
  modes: z.strictObject({
    onBatteryGrace: sendMode.optional(), commsLostOnBattery: sendMode.optional(),
    lowBattery: sendMode.optional(), forcedShutdown: sendMode.optional(),
  }).prefault({}),
});

export const DEFAULT_DISTRESS = {
  priority: 20,
  repeats: 3,
  repeatGapUs: 1000,
  fatalSignals: true,
  lockMemory: true,
} as const;

// The ranges are the native sender's (src/native.ts DistressSenderOptions).
const distressSchema = z.strictObject({
  priority: count(0, 99, 'expected a SCHED_FIFO priority from 1 to 99, or 0 for normal scheduling').default(DEFAULT_DISTRESS.priority),
  repeats: count(1, 16).default(DEFAULT_DISTRESS.repeats),
  repeatGapUs: count(0, 100_000, 'expected a whole number of microseconds from 0 to 100000').default(DEFAULT_DISTRESS.repeatGapUs),
  fatalSignals: z.boolean().default(DEFAULT_DISTRESS.fatalSignals),
  lockMemory: z.boolean().default(DEFAULT_DISTRESS.lockMemory),
});

export const DEFAULT_AGING = {
  enabled: true,
  intervalMs: 10_000,
  holdMs: 300_000,
  windowSamples: 60,
  horizonMs: 86_400_000,
  load: { enter: 2, leave: 1.5 },
  memAvailable: { enter: 0.1, leave: 0.15 },
  swapFree: { enter: 0.25, leave: 0.35 },
  fds: { enter: 0.8, leave: 0.7 },
} as const;

/** A threshold band: instability enters at `enter` and clears at `leave` (crossCheck: on the healthy side). */
function band(rule: string, max: number, defaults: { enter: number; leave: number }) {
  const value = z.number(wrongType(rule)).min(0, rule).max(max, rule);
  return z.strictObject({ enter: value.default(defaults.enter), leave: value.default(defaults.leave) }).prefault({});
}
const FRACTION = 'expected a fraction from 0 to 1';

// The aging monitor (src/aging/, src/daemon/aging.ts, docs/rejuvenation.md): every signal judged on its
// threshold band and on its trend, and only after the condition held for holdMs (seed 000 claim 8).
const agingSchema = z.strictObject({
  enabled: z.boolean().default(DEFAULT_AGING.enabled),
  intervalMs: ms(100).max(3_600_000, 'expected at most 3600000 ms').default(DEFAULT_AGING.intervalMs),
  holdMs: ms(0).default(DEFAULT_AGING.holdMs),
  // A trend is judged from 8 samples (src/aging/judge.ts MIN_TREND_SAMPLES). Each round costs O(n²) pairs
  // per signal on the event loop: 120 samples is 0.6 ms a signal, 1000 would be 75 ms.
  windowSamples: count(8, 120).default(DEFAULT_AGING.windowSamples),
  horizonMs: ms(1000).default(DEFAULT_AGING.horizonMs),
  load: band('expected a load per CPU from 0 to 1000', 1000, DEFAULT_AGING.load),
  memAvailable: band(FRACTION, 1, DEFAULT_AGING.memAvailable),
  swapFree: band(FRACTION, 1, DEFAULT_AGING.swapFree),
  fds: band(FRACTION, 1, DEFAULT_AGING.fds),
  // Thread counts have no limit to run out of, hence no default: an app that knows its bound sets it.
  threads: z.strictObject({ enter: count(1, 4_194_304), leave: count(0, 4_194_304) }).optional(),
});

// Rejuvenation (src/rejuvenation/, src/daemon/rejuvenation.ts, docs/rejuvenation.md "Rejuvenation").
export const DEFAULT_REJUVENATION = {
  auto: false,
  mode: 'active-active' as const,
  lowLoadPerCpu: 0.5,
  deadlineMs: 3_600_000,
  headroom: { maxLoadPerCpu: 0.8, minMemAvailable: 0.2 },
  duplexTimeoutMs: 120_000,
  settleMs: 30_000,
  probationMs: 600_000,
  minIntervalMs: 3_600_000,
  ladder: ['apps', 'agent', 'caches', 'reboot', 'power-cycle'] as LadderStep[],
  absenceMs: { agent: 60_000, reboot: 600_000, powerCycle: 900_000 },
};

const rejuvenationSchema = z.strictObject({
  auto: z.boolean().default(DEFAULT_REJUVENATION.auto),
  mode: z.enum(['active-standby', 'active-active'], { error: 'expected active-standby or active-active' }).default(DEFAULT_REJUVENATION.mode),
  lowLoadPerCpu: z.number(wrongType('expected a load per CPU')).min(0).max(1000).default(DEFAULT_REJUVENATION.lowLoadPerCpu),
  deadlineMs: ms(0).default(DEFAULT_REJUVENATION.deadlineMs),
  headroom: z.strictObject({
    maxLoadPerCpu: z.number(wrongType('expected a load per CPU')).min(0).max(1000).default(DEFAULT_REJUVENATION.headroom.maxLoadPerCpu),
    minMemAvailable: z.number(wrongType(FRACTION)).min(0, FRACTION).max(1, FRACTION).default(DEFAULT_REJUVENATION.headroom.minMemAvailable),
  }).prefault({}),
  duplexTimeoutMs: ms(1000).default(DEFAULT_REJUVENATION.duplexTimeoutMs),
  settleMs: ms(0).default(DEFAULT_REJUVENATION.settleMs),
  probationMs: ms(0).default(DEFAULT_REJUVENATION.probationMs),
  minIntervalMs: ms(0).default(DEFAULT_REJUVENATION.minIntervalMs),
  ladder: z.array(z.enum(LADDER_STEPS, { error: `expected a rung: ${LADDER_STEPS.join(', ')}` })).min(1, 'expected at least one rung')
    .refine((l) => new Set(l).size === l.length, 'a rung appears twice')
    .refine((l) => l.every((x, i) => i === 0 || LADDER_STEPS.indexOf(x) > LADDER_STEPS.indexOf(l[i - 1]!)), `expected the rungs in the ladder's order: ${LADDER_STEPS.join(', ')}`)
    .default(DEFAULT_REJUVENATION.ladder),
  absenceMs: z.strictObject({
    agent: ms(1000).default(DEFAULT_REJUVENATION.absenceMs.agent),
    reboot: ms(1000).default(DEFAULT_REJUVENATION.absenceMs.reboot),
    powerCycle: ms(1000).default(DEFAULT_REJUVENATION.absenceMs.powerCycle),
  }).prefault({}),
  // What each hard rung runs. caches: absent, vigild itself syncs, drops the caches and compacts memory.
  commands: z.strictObject({ caches: argv.optional(), reboot: argv.default(['systemctl', 'reboot']) }).prefault({}),
});

export const configSchema = z.strictObject({
  cluster: name('a cluster name'),
  keyFile: filePath,
  stateDir: filePath.default(DEFAULT_STATE_DIR),
  linkTable: filePath.optional(),
  control: z.strictObject({
    socket: filePath.default(DEFAULT_CONTROL_SOCKET),
    group: groupName.optional(),
    adminGroup: groupName.optional(),
    debug: z.boolean().default(false),
  }).prefault({}),
  metrics: z.strictObject({ listen: endpoint }).optional(),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
  networks: z.array(networkSchema, wrongType('expected a list of networks')).min(1, 'expected at least one network (two or more recommended)'),
  nodes: z.array(nodeSchema, wrongType('expected a list of nodes')).min(2, 'expected 2 to 16 nodes').max(16, 'expected 2 to 16 nodes'),
  disks: z.array(diskSchema).default([]),
  timing: timingSchema.prefault({}),
  apps: z.array(appSchema).default([]),
  power: powerSchema.optional(),
  distress: distressSchema.prefault({}),
  fencing: fencingSchema.prefault({}),
  watchdog: watchdogSchema.prefault({}),
  aging: agingSchema.prefault({}),
  rejuvenation: rejuvenationSchema.prefault({}),
}, {
  error: (iss) => (iss.code === 'invalid_type' ? 'expected a mapping with cluster, keyFile, networks and nodes (see docs/config.md)' : undefined),
});

type Parsed = z.output<typeof configSchema>;

/**
 * The keys a mapping at `path` may hold (for "did you mean"), or [] if the schema has no mapping there.
 * Walks the schema's definitions, looking through optional, default and pipe wrappers. A union of
 * mappings (the power sources, told apart by `kind`) is resolved by the discriminator in `raw`, the
 * document being checked; without one, every option's keys count.
 */
export function knownKeys(path: FieldPath, raw?: unknown): string[] {
  type Def = {
    type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; shape?: Record<string, z.core.$ZodType>;
    element?: z.core.$ZodType; valueType?: z.core.$ZodType; options?: z.core.$ZodType[]; discriminator?: string;
  };
  const defOf = (s: z.core.$ZodType): Def => s._zod.def as unknown as Def;
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = defOf(s);
      if ((def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable') && def.innerType) s = def.innerType;
      else if (def.type === 'pipe' && def.in) s = def.in;
      else return s;
    }
  };
  // The object options of a union that fit `value`: the one its discriminator names, else all of them.
  const mappings = (s: z.core.$ZodType, value: unknown): z.core.$ZodType[] => {
    const def = defOf(s);
    if (def.type !== 'union') return [s];
    const options = (def.options ?? []).map(unwrap).filter((o) => defOf(o).type === 'object');
    const tag = def.discriminator !== undefined && isRaw(value) ? value[def.discriminator] : undefined;
    const chosen = options.filter((o) => {
      const literal = defOf(o).shape?.[def.discriminator ?? ''];
      return literal !== undefined && (literal._zod.def as unknown as { values?: unknown[] }).values?.includes(tag);
    });
    return chosen.length > 0 ? chosen : options;
  };
  let at: z.core.$ZodType[] = [unwrap(configSchema)];
  let value: unknown = raw;
  for (const step of path) {
    at = at.flatMap((s) => mappings(s, value)).flatMap((s) => {
      const def = defOf(s);
      const next = def.type === 'object' ? def.shape?.[String(step)]
        : def.type === 'array' ? def.element : def.type === 'record' ? def.valueType : undefined;
      return next ? [unwrap(next)] : [];
    });
    value = isRaw(value) || Array.isArray(value) ? (value as Record<string | number, unknown>)[step] : undefined;
    if (at.length === 0) return [];
  }
  const keys = at.flatMap((s) => mappings(s, value)).flatMap((s) => Object.keys(defOf(s).shape ?? {}));
  return [...new Set(keys)];
}

// ---------------------------------------------------------------------------------------------------
// Checks across fields. They read the raw document (not zod's output) so they run even when some other
// field is malformed, and every problem is reported at once; anything not of the expected shape is
// skipped here, because the schema reports it.

type Raw = Record<string, unknown>;

const isRaw = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const items = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

function formatRef(path: FieldPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Reports each value of `field` in `list` that an earlier item already used. */
function unique(list: unknown[], listName: string, field: string, what: string, issues: FieldIssue[],
  key: (v: unknown) => string | undefined = (v) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined)): void {
  const seen = new Map<string, number>();
  list.forEach((item, i) => {
    if (!isRaw(item)) return;
    const k = key(item[field]);
    if (k === undefined) return;
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else issues.push({ path: [listName, i, field], message: `duplicate ${what} ${JSON.stringify(item[field])} (also ${formatRef([listName, first])})` });
  });
}

const names = (list: unknown[], field = 'name'): string[] =>
  list.map((v) => (isRaw(v) ? str(v[field]) : undefined)).filter((v): v is string => v !== undefined);

const listed = (all: Iterable<string>): string => [...all].join(', ') || 'none declared';

export function crossCheck(raw: unknown): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (!isRaw(raw)) return issues;
  const networks = items(raw.networks);
  const nodes = items(raw.nodes);
  const disks = items(raw.disks);
  const apps = items(raw.apps);

  unique(networks, 'networks', 'name', 'network name', issues);
  unique(nodes, 'nodes', 'name', 'node name', issues);
  unique(nodes, 'nodes', 'id', 'node id', issues);
  unique(nodes, 'nodes', 'reservationKey', 'reservation key', issues,
    (v) => (typeof v === 'string' && /^0x[0-9a-f]{1,16}$/i.test(v) ? BigInt(v).toString(16) : undefined));
  unique(disks, 'disks', 'name', 'disk name', issues);
  unique(disks, 'disks', 'identity', 'disk identity', issues);
  unique(apps, 'apps', 'tag', 'app tag', issues);

  checkAddresses(nodes, names(networks), issues);
  disks.forEach((d, i) => { if (isRaw(d)) checkDisk(d, i, issues); });
  checkTiming(isRaw(raw.timing) ? raw.timing : {}, disks.some((d) => isRaw(d) && diskHeartbeat(d)), issues);
  const known = { nodes: new Set(names(nodes)), disks: new Set(names(disks)) };
  const diskOwner = new Map<string, number>();
  apps.forEach((app, a) => {
    if (isRaw(app)) checkApp(app, a, known, diskOwner, issues);
  });
  if (isRaw(raw.power)) checkPower(raw.power, issues);
  if (isRaw(raw.aging)) checkAging(raw.aging, issues);
  return issues;
}

/**
 * Each threshold band clears on its healthy side of where it enters: below for what is worse when higher
 * (load, descriptors, threads), above for what is worse when lower (available memory, free swap). A band
 * the other way round could never clear.
 */
function checkAging(aging: Raw, issues: FieldIssue[]): void {
  const bands: [string, 'rises' | 'falls', { enter: number; leave: number } | undefined][] = [
    ['load', 'rises', DEFAULT_AGING.load], ['memAvailable', 'falls', DEFAULT_AGING.memAvailable],
    ['swapFree', 'falls', DEFAULT_AGING.swapFree], ['fds', 'rises', DEFAULT_AGING.fds], ['threads', 'rises', undefined],
  ];
  for (const [field, worse, defaults] of bands) {
    const b = isRaw(aging[field]) ? aging[field] : undefined;
    if (!b) continue;
    const enter = typeof b.enter === 'number' ? b.enter : defaults?.enter;
    const leave = typeof b.leave === 'number' ? b.leave : defaults?.leave;
    if (enter === undefined || leave === undefined) continue;
    const wrong = worse === 'rises' ? leave > enter : leave < enter;
    if (wrong) {
      issues.push({
        path: ['aging', field, b.leave !== undefined ? 'leave' : 'enter'],
        message: `leave (${leave}) must be ${worse === 'rises' ? 'at or below' : 'at or above'} enter (${enter}): ${field} is worse when ${worse === 'rises' ? 'higher' : 'lower'}, and clears on the other side`,
      });
    }
  }
}

/** One address per network on every node, no unknown network, no address shared by two nodes. */
function checkAddresses(nodes: unknown[], networkNames: string[], issues: FieldIssue[]): void {
  const addressOwner = new Map<string, number>();
  nodes.forEach((node, i) => {
    if (!isRaw(node) || !isRaw(node.addresses)) return;
    const addresses = node.addresses;
    for (const net of networkNames) {
      if (addresses[net] === undefined) {
        issues.push({ path: ['nodes', i, 'addresses', net], message: 'required (every node needs an address on each network)' });
      }
    }
    for (const [net, address] of Object.entries(addresses)) {
      if (!networkNames.includes(net)) {
        issues.push({ path: ['nodes', i, 'addresses', net], message: `unknown network "${net}" (networks: ${listed(networkNames)})` });
        continue;
      }
      if (typeof address !== 'string') continue;
      const k = `${net} ${address}`;
      const first = addressOwner.get(k);
      if (first === undefined) addressOwner.set(k, i);
      else issues.push({ path: ['nodes', i, 'addresses', net], message: `${address} is also nodes[${first}]'s address on ${net}` });
    }
  });
}

/** Whether a disk carries the disk heartbeat: as configured, else on. */
function diskHeartbeat(d: { heartbeat?: unknown }): boolean {
  return typeof d.heartbeat === 'boolean' ? d.heartbeat : true;
}

/** The reset policy is for scsi2 disks only, PREEMPT AND ABORT for persistent ones only. */
function checkDisk(d: Raw, i: number, issues: FieldIssue[]): void {
  if (d.reset !== undefined && d.reservation !== 'scsi2') {
    issues.push({ path: ['disks', i, 'reset'], message: 'reset applies to reservation: scsi2 only (a persistent reservation is taken over by PREEMPT)' });
  }
  if (d.preemptAndAbort !== undefined && d.reservation === 'scsi2') {
    issues.push({
      path: ['disks', i, 'preemptAndAbort'],
      message: 'preemptAndAbort applies to reservation: persistent only (a SCSI-2 reservation has no key to preempt)',
    });
  }
}

/**
 * A power source's name in events and logs when the file gives none: NutSource's and the other sources'
 * own defaults, so that a source named or not reads the same everywhere.
 */
export function defaultSourceName(s: { kind: string; host?: string; port?: number; ups?: string; device?: string }): string {
  if (s.kind === 'nut') return `nut:${s.ups}@${s.host}${(s.port ?? NUT_DEFAULT_PORT) === NUT_DEFAULT_PORT ? '' : `:${s.port}`}`;
  return `${s.kind}:${s.device}`;
}

/** The name a raw source would get, or undefined while the fields it derives from are malformed. */
function rawSourceName(s: Raw): string | undefined {
  if (s.name !== undefined) return str(s.name);
  if (s.kind === 'nut') {
    const host = str(s.host);
    const ups = str(s.ups);
    const p = s.port === undefined ? NUT_DEFAULT_PORT : num(s.port);
    return host !== undefined && ups !== undefined && p !== undefined ? defaultSourceName({ kind: 'nut', host, ups, port: p }) : undefined;
  }
  const device = str(s.device);
  return (s.kind === 'apc-smart' || s.kind === 'contact-closure') && device !== undefined ? defaultSourceName({ kind: s.kind, device }) : undefined;
}

/**
 * Source names are unique (they key the policy's per-source state and `vigil power status`); NUT sends a
 * password only after a user name; a contact closure knows which line says "on line", and puts the two
 * conditions on two lines, its upstype's table lines included.
 */
function checkPower(power: Raw, issues: FieldIssue[]): void {
  const at = (...path: FieldPath): FieldPath => ['power', ...path];
  const seen = new Map<string, number>();
  items(power.sources).forEach((s, i) => {
    if (!isRaw(s)) return;
    const n = rawSourceName(s);
    if (n !== undefined) {
      const first = seen.get(n);
      if (first === undefined) seen.set(n, i);
      else issues.push({ path: at('sources', i, 'name'), message: `two sources named ${n} (also ${formatRef(at('sources', first))}): give one a name` });
    }
    if (s.kind === 'nut' && s.passwordFile !== undefined && s.user === undefined) {
      issues.push({ path: at('sources', i, 'passwordFile'), message: 'passwordFile needs user (upsd takes a password only after USERNAME)' });
    }
    if (s.kind === 'contact-closure') checkContactClosure(s, at('sources', i), issues);
  });
}

function checkContactClosure(s: Raw, at: FieldPath, issues: FieldIssue[]): void {
  const lines = isRaw(s.lines) ? s.lines : {};
  const polarities = isRaw(s.polarity) ? s.polarity : {};
  const upstype = num(s.upstype);
  const row = GENERICUPS_TYPES.find((r) => r.type === upstype);
  if (s.upstype === undefined && lines.online === undefined) {
    issues.push({ path: [...at, 'lines', 'online'], message: 'expected the line that says "on line" (or an upstype, whose table names it)' });
  }
  if (s.upstype === undefined) {
    for (const k of ['online', 'lowBattery'] as const) {
      if (polarities[k] !== undefined && lines[k] === undefined) {
        issues.push({ path: [...at, 'polarity', k], message: `polarity.${k} without lines.${k} (and no upstype to take the line from)` });
      }
    }
  }
  // The line each condition ends up on, as genericupsMapping will resolve it; undefined if not known here.
  const lineOf = (k: 'online' | 'lowBattery'): string | undefined => {
    const given = lines[k];
    if (given !== undefined) return MODEM_LINES.find((l) => l === given);
    const spec = row && (k === 'online' ? row.ol : row.lb);
    return spec === undefined ? undefined : parseSignal(spec).line.toUpperCase();
  };
  const online = lineOf('online');
  const lowBattery = lineOf('lowBattery');
  if (online !== undefined && online === lowBattery) {
    // Point at the line the file gives; the other one comes from the upstype's table when not given.
    const field = lines.lowBattery !== undefined ? 'lowBattery' : 'online';
    const other = field === 'online' ? 'low battery' : 'on line';
    const fromTable = lines.online === undefined || lines.lowBattery === undefined ? ` (upstype ${upstype} has ${other} on ${online})` : '';
    issues.push({ path: [...at, 'lines', field], message: `on line and low battery need two different lines, not both ${online}${fromTable}` });
  }
  const power = items(s.cablePower);
  if (power.length === 2 && power[0] === power[1]) {
    issues.push({ path: [...at, 'cablePower', 1], message: `${String(power[1])} twice` });
  }
}

/** One lost heartbeat (or disk heartbeat) must never be enough to fail a peer. */
function checkTiming(timing: Raw, diskHeartbeats: boolean, issues: FieldIssue[]): void {
  const interval = num(timing.heartbeatIntervalMs) ?? DEFAULT_TIMING.heartbeatIntervalMs;
  const diskInterval = num(timing.diskHeartbeatIntervalMs) ?? DEFAULT_TIMING.diskHeartbeatIntervalMs;
  const failAfter = num(timing.failAfterMs) ?? DEFAULT_TIMING.failAfterMs;
  // Point at failAfterMs when the file sets it, else at the interval that outgrew the default.
  const path = (intervalField: string): FieldPath => ['timing', timing.failAfterMs !== undefined ? 'failAfterMs' : intervalField];
  if (failAfter < 2 * interval) {
    issues.push({
      path: path('heartbeatIntervalMs'),
      message: `failAfterMs (${failAfter}) must be at least twice heartbeatIntervalMs (${interval}): one lost heartbeat must not fail a peer`,
    });
  }
  if (diskHeartbeats && failAfter < 2 * diskInterval) {
    issues.push({
      path: path('diskHeartbeatIntervalMs'),
      message: `failAfterMs (${failAfter}) must be at least twice diskHeartbeatIntervalMs (${diskInterval}) while a disk carries heartbeats`,
    });
  }
}

/**
 * The nodes and disks an app names exist; its backup is another node; a disk has one owning app; a
 * mount comes after its disk's ownership; an interface map covers the app's nodes; a probe's timeout
 * fits in its interval.
 */
function checkApp(app: Raw, a: number, known: { nodes: Set<string>; disks: Set<string> }, diskOwner: Map<string, number>,
  issues: FieldIssue[]): void {
  const at = (...path: FieldPath): FieldPath => ['apps', a, ...path];
  const roles = (['primary', 'backup'] as const).map((role) => ({ role, node: str(app[role]) }));
  for (const { role, node } of roles) {
    if (node !== undefined && NAME.test(node) && !known.nodes.has(node)) {
      issues.push({ path: at(role), message: `unknown node "${node}" (nodes: ${listed(known.nodes)})` });
    }
  }
  if (roles[0]!.node !== undefined && roles[0]!.node === roles[1]!.node) {
    issues.push({ path: at('backup'), message: `the backup must be another node than the primary (${roles[0]!.node})` });
  }

  const owned = new Set<string>();
  items(app.resources).forEach((resource, r) => {
    if (!isRaw(resource)) return;
    const disk = str(resource.disk);
    if (disk !== undefined) {
      const first = diskOwner.get(disk);
      if (!known.disks.has(disk)) {
        issues.push({ path: at('resources', r, 'disk'), message: `unknown disk "${disk}" (disks: ${listed(known.disks)})` });
      } else if (first !== undefined && first !== a) {
        issues.push({ path: at('resources', r, 'disk'), message: `disk "${disk}" already belongs to apps[${first}]; a disk has one owner` });
      } else {
        diskOwner.set(disk, a);
      }
      owned.add(disk);
    }

    const mountDisk = isRaw(resource.mount) ? str(resource.mount.disk) : undefined;
    if (mountDisk !== undefined && !known.disks.has(mountDisk)) {
      issues.push({ path: at('resources', r, 'mount', 'disk'), message: `unknown disk "${mountDisk}" (disks: ${listed(known.disks)})` });
    } else if (mountDisk !== undefined && !owned.has(mountDisk)) {
      issues.push({
        path: at('resources', r, 'mount', 'disk'),
        message: `mounting disk "${mountDisk}" needs its ownership first: put { disk: ${mountDisk} } earlier in this app's resources`,
      });
    }

    const byNode = isRaw(resource.ip) && isRaw(resource.ip.interface) ? resource.ip.interface : undefined;
    if (byNode) {
      for (const node of Object.keys(byNode)) {
        if (!known.nodes.has(node)) {
          issues.push({ path: at('resources', r, 'ip', 'interface', node), message: `unknown node "${node}" (nodes: ${listed(known.nodes)})` });
        }
      }
      for (const { role, node } of roles) {
        if (node !== undefined && known.nodes.has(node) && byNode[node] === undefined) {
          issues.push({ path: at('resources', r, 'ip', 'interface'), message: `no interface for node "${node}" (the app's ${role})` });
        }
      }
    }
  });

  if (isRaw(app.monitor)) {
    const interval = num(app.monitor.intervalMs) ?? 1000;
    const timeout = num(app.monitor.timeoutMs) ?? 500;
    if (timeout > interval) {
      issues.push({
        path: at('monitor', app.monitor.timeoutMs !== undefined ? 'timeoutMs' : 'intervalMs'),
        message: `a probe's timeoutMs (${timeout}) cannot exceed its intervalMs (${interval})`,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The Config that vigil reads: every default filled in, every path absolute.

export interface NetworkConfig {
  name: string;
  port: number;
}

export interface NodeConfig {
  name: string;
  /** 1..65535: the node's identity on the wire. */
  id: number;
  /** Network name → this node's address on it; one for every network. */
  addresses: Record<string, string>;
  /** undefined: derived from the cluster name and the node id (see docs/cluster.md). */
  reservationKey: bigint | undefined;
  /** The node's BMC, through which its peers power it off; undefined: no power fencing of this node. */
  bmc: BmcConfig | undefined;
}

export interface BmcConfig {
  host: string;
  port: number;
  user: string;
  /** Absolute. */
  passwordFile: string;
  cipherSuite: 3 | 17;
  /** Absolute; undefined: no BMC key (the password's key is used). */
  kgFile: string | undefined;
}

export interface WatchdogConfig {
  /** none; auto (the BMC's if /dev/ipmi0 exists, else /dev/watchdog if it exists); ipmi; or a device path. */
  device: string;
  timeoutMs: number;
  /** What the BMC's watchdog does when it expires (a /dev/watchdog driver always resets); none: only records it. */
  action: 'reset' | 'power-off' | 'power-cycle' | 'none';
  /** A /dev/watchdog whose timeout can be neither set nor read: the operator vouches it is at most timeoutMs. */
  vouchTimeout: boolean;
}

export interface FencingConfig {
  raceDelayMs: number;
  requestTimeoutMs: number;
  confirmTimeoutMs: number;
  watchdogMarginMs: number;
  action: 'off' | 'reboot';
}

export interface DiskConfig {
  name: string;
  /** Canonical VPD 0x83 text, as in the link table. */
  identity: string;
  reservation: 'persistent' | 'scsi2';
  heartbeat: boolean;
  /** scsi2 only (absent otherwise): how a failed holder's reservation is broken, see docs/config.md. */
  reset?: 'lun' | 'lun-then-target';
  /**
   * Fencing a peer in distress: PREEMPT AND ABORT (its queued commands go too) rather than PREEMPT.
   * Always false with scsi2, which has no key to preempt.
   */
  preemptAndAbort: boolean;
}

export type TimingConfig = { -readonly [K in keyof typeof DEFAULT_TIMING]: number };

export type ResourceConfig =
  | { kind: 'disk'; disk: string }
  | { kind: 'mount'; disk: string; path: string; fstype: string; options: string[] }
  /** `interface` maps a node name to its interface name; a single name in the file applies to every node. */
  | { kind: 'ip'; address: string; prefixLength: number; interface: Record<string, string> };

export interface MonitorConfig {
  probe: { kind: 'tcp'; host: string; port: number } | { kind: 'command'; command: string[] };
  intervalMs: number;
  timeoutMs: number;
  failures: number;
}

export interface AppConfig {
  tag: string;
  type: 'cluster-capable' | 'cluster-aware';
  /** argv; a string in the file becomes ["/bin/sh", "-c", string]. */
  command: string[];
  cwd: string | undefined;
  /** Numbers and booleans in the file become their text. */
  env: Record<string, string>;
  /** The account the app runs as (its primary group unless `group`); undefined: root, as vigild. */
  user: string | undefined;
  group: string | undefined;
  /** Supplementary groups; undefined: the user's own (from the group database). */
  groups: string[] | undefined;
  primary: string;
  backup: string;
  autoRecover: boolean;
  stopTimeoutMs: number;
  /** Faults restarted in place within restartWindowMs before the app fails over to the other node. */
  localRestarts: number;
  restartWindowMs: number;
  /** In start order; stopped in reverse. */
  resources: ResourceConfig[];
  monitor: MonitorConfig | undefined;
  attributes: Record<string, string | number | boolean>;
}

export type ModemLine = (typeof MODEM_LINES)[number];
export type LinePolarity = 'active-high' | 'active-low';

export interface NutSourceConfig {
  kind: 'nut';
  /** As given, else `nut:<ups>@<host>` (with `:<port>` when not 3493): the source's name in events. */
  name: string;
  host: string;
  port: number;
  ups: string;
  user: string | undefined;
  /** Absolute; read when the source is built (src/power/from-config.ts), not when the file is checked. */
  passwordFile: string | undefined;
  pollMs: number;
  timeoutMs: number;
  commsLostAfter: number;
}

export interface ApcSmartSourceConfig {
  kind: 'apc-smart';
  /** As given, else `apc-smart:<device>`. */
  name: string;
  device: string;
  pollMs: number;
  timeoutMs: number;
  commsLostAfter: number;
}

export interface ContactClosureSourceConfig {
  kind: 'contact-closure';
  /** As given, else `contact-closure:<device>`. */
  name: string;
  device: string;
  /** A genericups cable; lines, polarity and cablePower then override its table row. */
  upstype: number | undefined;
  lines: { online: ModemLine | undefined; lowBattery: ModemLine | undefined };
  polarity: { online: LinePolarity | undefined; lowBattery: LinePolarity | undefined };
  /** The outputs held high (the others low); undefined: the upstype's, or none. */
  cablePower: ('DTR' | 'RTS')[] | undefined;
  debounceMs: number;
}

export type PowerSourceConfig = NutSourceConfig | ApcSmartSourceConfig | ContactClosureSourceConfig;

export interface PowerConfig {
  sources: PowerSourceConfig[];
  /** graceMs undefined: on battery only warns. */
  onBattery: { graceMs: number | undefined };
  commsLostOnBatteryMs: number | undefined;
  /** Send mode per distress reason; undefined: the policy's default (src/power/policy.ts DEFAULT_MODES). */
  modes: { onBatteryGrace: SendMode | undefined; commsLostOnBattery: SendMode | undefined; lowBattery: SendMode | undefined; forcedShutdown: SendMode | undefined };
}

/** The armed distress sender (src/wire/distress-arming.ts distressArming) and the fatal-signal handlers. */
export interface DistressConfig {
  /** SCHED_FIFO priority of the sender's thread, 1..99; 0 normal scheduling. */
  priority: number;
  /** Copies of each distress event, 1..16. */
  repeats: number;
  /** Gap between copies, µs. */
  repeatGapUs: number;
  /** Whether SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE in the agent send distress before it dies. */
  fatalSignals: boolean;
  lockMemory: boolean;
}

/** The aging monitor (docs/rejuvenation.md, "Aging detection"). Fractions are of the signal's total or limit. */
export interface AgingConfig {
  enabled: boolean;
  intervalMs: number;
  holdMs: number;
  windowSamples: number;
  horizonMs: number;
  /** 1-minute load per CPU. */
  load: { enter: number; leave: number };
  /** Fractions of MemTotal. */
  memAvailable: { enter: number; leave: number };
  /** Fractions of SwapTotal. */
  swapFree: { enter: number; leave: number };
  /** Fractions of the process's RLIMIT_NOFILE. */
  fds: { enter: number; leave: number };
  /** Counts; undefined: threads judged on nothing but recorded. */
  threads: { enter: number; leave: number } | undefined;
}

/** Rejuvenation (docs/rejuvenation.md, "Rejuvenation"). */
export interface RejuvenationConfig {
  /** Act on the aging monitor's judgement by itself; false: plan and alert, an operator runs it. */
  auto: boolean;
  mode: 'active-standby' | 'active-active';
  lowLoadPerCpu: number;
  deadlineMs: number;
  headroom: { maxLoadPerCpu: number; minMemAvailable: number };
  duplexTimeoutMs: number;
  settleMs: number;
  probationMs: number;
  /** An automatic rejuvenation does not start sooner than this after the node's last one ended. */
  minIntervalMs: number;
  ladder: LadderStep[];
  absenceMs: { agent: number; reboot: number; powerCycle: number };
  commands: { caches: string[] | undefined; reboot: string[] };
}

export interface Config {
  /** The configuration file, absolute. */
  source: string;
  cluster: string;
  keyFile: string;
  stateDir: string;
  linkTable: string;
  control: { socket: string; group: string | undefined; adminGroup: string | undefined; debug: boolean };
  metrics: { listen: Endpoint } | undefined;
  log: { level: (typeof LOG_LEVELS)[number] };
  networks: NetworkConfig[];
  nodes: NodeConfig[];
  disks: DiskConfig[];
  timing: TimingConfig;
  apps: AppConfig[];
  /** undefined: no `power:` section, no power sources. */
  power: PowerConfig | undefined;
  distress: DistressConfig;
  fencing: FencingConfig;
  watchdog: WatchdogConfig;
  aging: AgingConfig;
  rejuvenation: RejuvenationConfig;
}

/** The schema's output (which passed crossCheck) as a Config; relative paths resolve against `baseDir`. */
export function toConfig(p: Parsed, source: string, baseDir: string): Config {
  const stateDir = resolve(baseDir, p.stateDir);
  const nodeNames = p.nodes.map((n) => n.name);
  return {
    source,
    cluster: p.cluster,
    keyFile: resolve(baseDir, p.keyFile),
    stateDir,
    linkTable: p.linkTable === undefined ? resolve(stateDir, 'links.json') : resolve(baseDir, p.linkTable),
    control: { socket: resolve(baseDir, p.control.socket), group: p.control.group, adminGroup: p.control.adminGroup, debug: p.control.debug },
    metrics: p.metrics,
    log: p.log,
    networks: p.networks,
    nodes: p.nodes.map(({ bmc, ...n }) => ({
      ...n, reservationKey: n.reservationKey,
      bmc: bmc && { ...bmc, passwordFile: resolve(baseDir, bmc.passwordFile), kgFile: bmc.kgFile === undefined ? undefined : resolve(baseDir, bmc.kgFile) },
    })),
    disks: p.disks.map(({ reset, preemptAndAbort, ...d }): DiskConfig => ({
      ...d, heartbeat: diskHeartbeat(d), ...(d.reservation === 'scsi2' ? { reset: reset ?? 'lun' } : {}),
      preemptAndAbort: d.reservation === 'persistent' && (preemptAndAbort ?? true),
    })),
    timing: p.timing,
    apps: p.apps.map((app): AppConfig => ({
      tag: app.tag,
      type: app.type,
      command: app.command,
      cwd: app.cwd === undefined ? undefined : resolve(baseDir, app.cwd),
      env: Object.fromEntries(Object.entries(app.env).map(([k, v]) => [k, String(v)])),
      user: app.user,
      group: app.group,
      groups: app.groups,
      primary: app.primary,
      backup: app.backup,
      autoRecover: app.autoRecover,
      stopTimeoutMs: app.stopTimeoutMs,
      localRestarts: app.localRestarts,
      restartWindowMs: app.restartWindowMs,
      resources: app.resources.map((r): ResourceConfig => {
        if (r.mount) return { kind: 'mount', ...r.mount };
        if (r.ip) {
          const iface = r.ip.interface;
          return {
            kind: 'ip', address: r.ip.address.address, prefixLength: r.ip.address.prefixLength,
            interface: typeof iface === 'string' ? Object.fromEntries(nodeNames.map((n) => [n, iface])) : iface,
          };
        }
        return { kind: 'disk', disk: r.disk! };
      }),
      monitor: app.monitor && {
        probe: app.monitor.tcp ? { kind: 'tcp', ...app.monitor.tcp } : { kind: 'command', command: app.monitor.command! },
        intervalMs: app.monitor.intervalMs,
        timeoutMs: app.monitor.timeoutMs,
        failures: app.monitor.failures,
      },
      attributes: app.attributes,
    })),
    power: p.power && toPowerConfig(p.power, baseDir),
    distress: p.distress,
    fencing: p.fencing,
    watchdog: p.watchdog,
    aging: { ...p.aging, threads: p.aging.threads },
    rejuvenation: { ...p.rejuvenation, commands: { caches: p.rejuvenation.commands.caches, reboot: p.rejuvenation.commands.reboot } },
  };
}

function toPowerConfig(p: NonNullable<Parsed['power']>, baseDir: string): PowerConfig {
  return {
    sources: p.sources.map((s): PowerSourceConfig => {
      const name = s.name ?? defaultSourceName(s);
      switch (s.kind) {
        case 'nut':
          return {
            kind: 'nut', name, host: s.host, port: s.port, ups: s.ups, user: s.user,
            passwordFile: s.passwordFile === undefined ? undefined : resolve(baseDir, s.passwordFile),
            pollMs: s.pollMs, timeoutMs: s.timeoutMs, commsLostAfter: s.commsLostAfter,
          };
        case 'apc-smart':
          return { kind: 'apc-smart', name, device: s.device, pollMs: s.pollMs, timeoutMs: s.timeoutMs, commsLostAfter: s.commsLostAfter };
        case 'contact-closure':
          return {
            kind: 'contact-closure', name, device: s.device, upstype: s.upstype,
            lines: { online: s.lines.online, lowBattery: s.lines.lowBattery },
            polarity: { online: s.polarity.online, lowBattery: s.polarity.lowBattery },
            cablePower: s.cablePower, debounceMs: s.debounceMs,
          };
      }
    }),
    onBattery: { graceMs: p.onBattery.graceMs },
    commsLostOnBatteryMs: p.commsLostOnBatteryMs,
    modes: {
      onBatteryGrace: p.modes.onBatteryGrace, commsLostOnBattery: p.modes.commsLostOnBattery,
      lowBattery: p.modes.lowBattery, forcedShutdown: p.modes.forcedShutdown,
    },
  };
}

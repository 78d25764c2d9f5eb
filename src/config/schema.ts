// What a valid cluster configuration is: the zod schema field by field (with its defaults), the checks
// that span fields (a name that must refer to another, values that must agree), and the Config the rest
// of vigil reads. Finding a problem's line in the YAML text is load.ts's job; docs/config.md is the
// reference for people.
import { isIP } from 'node:net';
import { resolve } from 'node:path';

import { z } from 'zod';

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

const ipAddress = z.string().refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address');

/** A file or directory; a relative one resolves against the configuration file's directory. */
const filePath = z.string().min(1, 'expected a path').refine((s) => !s.includes('\0'), 'a path cannot hold a NUL');

const absolutePath = z.string().startsWith('/', 'expected an absolute path (starting with /)');

// Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', ':' or white space.
const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "expected an interface name: 1 to 15 of A-Z, a-z, 0-9, '_', '.' and '-'");

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
export const DEFAULT_CONTROL_SOCKET = '/run/vigil/ctl.sock';

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

const nodeSchema = z.strictObject({
  name: name('a node name'),
  id: z.int(wrongType('expected a node id from 1 to 65535')).min(1, 'expected a node id from 1 to 65535').max(65535, 'expected a node id from 1 to 65535'),
  addresses: z.record(z.string(), ipAddress),
  reservationKey: reservationKey.optional(),
});

const diskSchema = z.strictObject({
  name: name('a disk name'),
  identity,
  reservation: z.enum(['persistent', 'scsi2']).default('persistent'),
  // Default: on with persistent reservations, off with scsi2 (crossCheck refuses it there).
  heartbeat: z.boolean().optional(),
  // scsi2 only: how a failed holder's reservation is broken at takeover (src/daemon/scsi2.ts).
  reset: z.enum(['lun', 'lun-then-target']).optional(),
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
  const family = m ? isIP(m[1]!) : 0;
  const prefixLength = m ? Number(m[2]) : NaN;
  if (m && family !== 0 && prefixLength <= (family === 4 ? 32 : 128)) return { address: m[1]!, prefixLength };
  ctx.issues.push({ code: 'custom', input: s, message: 'expected an address with its prefix length, e.g. 10.3.0.100/24 or fd00::10/64' });
  return z.NEVER;
});

const resourceSchema = z.strictObject({
  disk: name('a disk name').optional(),
  mount: z.strictObject({
    disk: name('a disk name'),
    path: absolutePath,
    fstype: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a file system type, e.g. ext4 or xfs'),
    options: z.array(z.string().regex(/^[^,\s]+$/, 'expected one mount option per item (no commas or spaces)')).default([]),
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

export const configSchema = z.strictObject({
  cluster: name('a cluster name'),
  keyFile: filePath,
  stateDir: filePath.default(DEFAULT_STATE_DIR),
  linkTable: filePath.optional(),
  control: z.strictObject({
    socket: filePath.default(DEFAULT_CONTROL_SOCKET),
    group: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, 'expected a group name').optional(),
  }).prefault({}),
  metrics: z.strictObject({ listen: endpoint }).optional(),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
  networks: z.array(networkSchema, wrongType('expected a list of networks')).min(1, 'expected at least one network (two or more recommended)'),
  nodes: z.array(nodeSchema, wrongType('expected a list of nodes')).min(2, 'expected 2 to 16 nodes').max(16, 'expected 2 to 16 nodes'),
  disks: z.array(diskSchema).default([]),
  timing: timingSchema.prefault({}),
  apps: z.array(appSchema).default([]),
}, {
  error: (iss) => (iss.code === 'invalid_type' ? 'expected a mapping with cluster, keyFile, networks and nodes (see docs/config.md)' : undefined),
});

type Parsed = z.output<typeof configSchema>;

/**
 * The keys a mapping at `path` may hold (for "did you mean"), or [] if the schema has no mapping there.
 * Walks the schema's definitions, looking through optional, default and pipe wrappers.
 */
export function knownKeys(path: FieldPath): string[] {
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = s._zod.def as unknown as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if ((def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable') && def.innerType) s = def.innerType;
      else if (def.type === 'pipe' && def.in) s = def.in;
      else return s;
    }
  };
  let at: z.core.$ZodType | undefined = unwrap(configSchema);
  for (const step of path) {
    if (!at) return [];
    const def = at._zod.def as unknown as {
      type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType;
    };
    const next: z.core.$ZodType | undefined = def.type === 'object' ? def.shape?.[String(step)]
      : def.type === 'array' ? def.element : def.type === 'record' ? def.valueType : undefined;
    at = next ? unwrap(next) : undefined;
  }
  const def = at?._zod.def as unknown as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
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
  return issues;
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

/** Whether a disk carries the disk heartbeat: as configured, else only with persistent reservations. */
function diskHeartbeat(d: { reservation?: unknown; heartbeat?: unknown }): boolean {
  return typeof d.heartbeat === 'boolean' ? d.heartbeat : d.reservation !== 'scsi2';
}

/**
 * No disk heartbeat on a scsi2 disk: its SCSI-2 reservation refuses every other initiator's reads and
 * writes, so the peers could never read the holder's pulse (nor write their own) while it is held. The
 * reset policy is for scsi2 disks only: a persistent reservation is taken over by PREEMPT.
 */
function checkDisk(d: Raw, i: number, issues: FieldIssue[]): void {
  if (d.reservation === 'scsi2' && d.heartbeat === true) {
    issues.push({
      path: ['disks', i, 'heartbeat'],
      message: 'no disk heartbeat with reservation: scsi2 (a SCSI-2 reservation refuses the other nodes\' reads and writes, '
        + 'so they could not see its pulse): remove heartbeat, or use reservation: persistent',
    });
  }
  if (d.reset !== undefined && d.reservation !== 'scsi2') {
    issues.push({ path: ['disks', i, 'reset'], message: 'reset applies to reservation: scsi2 only (a persistent reservation is taken over by PREEMPT)' });
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
}

export interface DiskConfig {
  name: string;
  /** Canonical VPD 0x83 text, as in the link table. */
  identity: string;
  reservation: 'persistent' | 'scsi2';
  heartbeat: boolean;
  /** scsi2 only (absent otherwise): how a failed holder's reservation is broken, see docs/config.md. */
  reset?: 'lun' | 'lun-then-target';
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

export interface Config {
  /** The configuration file, absolute. */
  source: string;
  cluster: string;
  keyFile: string;
  stateDir: string;
  linkTable: string;
  control: { socket: string; group: string | undefined };
  metrics: { listen: Endpoint } | undefined;
  log: { level: (typeof LOG_LEVELS)[number] };
  networks: NetworkConfig[];
  nodes: NodeConfig[];
  disks: DiskConfig[];
  timing: TimingConfig;
  apps: AppConfig[];
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
    control: { socket: resolve(baseDir, p.control.socket), group: p.control.group },
    metrics: p.metrics,
    log: p.log,
    networks: p.networks,
    nodes: p.nodes.map((n) => ({ ...n, reservationKey: n.reservationKey })),
    disks: p.disks.map(({ reset, ...d }): DiskConfig => ({
      ...d, heartbeat: diskHeartbeat(d), ...(d.reservation === 'scsi2' ? { reset: reset ?? 'lun' } : {}),
    })),
    timing: p.timing,
    apps: p.apps.map((app): AppConfig => ({
      tag: app.tag,
      type: app.type,
      command: app.command,
      cwd: app.cwd === undefined ? undefined : resolve(baseDir, app.cwd),
      env: Object.fromEntries(Object.entries(app.env).map(([k, v]) => [k, String(v)])),
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
  };
}

// The records of the cluster database (seed 001 §2.2): one AppObject per clustered application, a
// Tombstone where an operator removed one, and a Marker per tag (the cluster-aware resume pointer, the
// patent's "ASI file"). Types, the zod schemas that every value arriving from the network or the disk
// must pass, and the canonical form and content hash that make replicas comparable. Pure.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

import { z } from 'zod';

import { accountName, fsType, ifname, mountOption, mountPath, validPrefix } from '../config/resource-rules.js';

export type AppType = 'cluster-capable' | 'cluster-aware';
export const APP_TYPES: readonly AppType[] = ['cluster-capable', 'cluster-aware'];

/**
 * FIG. 6 step 612's "undergoing the failover/failback process", made explicit:
 *   normal        HOST is the primary (or null: unloaded)
 *   failing-over  the backup saw the primary fail and is starting the app; HOST is still the primary
 *   failed-over   HOST is the backup
 *   failing-back  the backup is handing the app back; stays until the primary runs it (F1..F7)
 *   switching-over  an operator's planned move from HOST to the other node (the object's switchover
 *                 record says how far it got): the source stops only once the target said it is ready,
 *                 and the target writes the resting phase once it runs the app (flows.ts rule 6)
 *   switched-over HOST is the backup because an operator moved it there: it stays (no failback prompt,
 *                 no auto-recover) until an operator switches it back
 * The last two are newer than the others: an agent of an older version refuses a record carrying them
 * (the schema is strict), so a cluster switches over only once every agent runs this version.
 */
export type Phase = 'normal' | 'failing-over' | 'failed-over' | 'failing-back' | 'switching-over' | 'switched-over';
export const PHASES: readonly Phase[] = ['normal', 'failing-over', 'failed-over', 'failing-back', 'switching-over', 'switched-over'];

/**
 * An operator's planned switchover of the app (the last one, kept for `vigil status` once it ended).
 * Wall-clock milliseconds, each from the clock of the node that wrote it: the service gap (the source's
 * app stop to the target's app start) spans two nodes' clocks, as exact as their synchronisation.
 */
export interface SwitchoverRecord {
  from: string;
  to: string;
  /** The node whose operator asked, and when. */
  by: string;
  requestedAt: number;
  /** The phase to go back to where the switchover is refused or aborted before the handover. */
  fromPhase: Phase;
  /** Asked by a drain of `from` (vigil drain): the app is kept off it until the drain is undone. */
  drain?: boolean;
  /** The target checked what needs no disk and is ready: the source may stop. */
  ready?: boolean;
  /** Why it did not happen (refused by the target, aborted); nothing stopped on the source then. */
  refused?: string;
  appStoppedAt?: number;
  handedOverAt?: number;
  appStartedAt?: number;
  /** appStartedAt - appStoppedAt: no copy of the app ran in between. */
  gapMs?: number;
  /** A failover moved the app since: it no longer stays where this switchover put it. */
  failedOver?: boolean;
}

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** What one resource needs ({ kind: 'disk', disk: 'shared0' }): opaque here, the resources layer reads it. */
export type ResourceSpec = { [key: string]: Json };
export type AttributeValue = string | number | boolean;

export interface AppCommand {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** The account the app runs as (vigild applies it with setpriv); absent: root. */
  user?: string;
  group?: string;
  groups?: string[];
}

/** What a registration supplies: the operator or config (cluster-capable) or the app itself (cluster-aware). */
export interface AppSpec {
  tag: string;
  type: AppType;
  command: AppCommand;
  primary: string;
  backup: string;
  /** In start order; stopped in reverse. */
  resources: ResourceSpec[];
  /** Failback without asking the operator (the patent's attribute 218A). */
  autoRecover: boolean;
  /** The API's "additional attributes" (behaviour 6). */
  attributes: Record<string, AttributeValue>;
}

/** Who wrote a record, and its place in the newer-wins order. */
export interface Stamped {
  /**
   * The ownership era (a fencing token): it grows with every change of HOST, and a node that takes the
   * app's disks raises it above the persistent-reservation generation it read after taking them
   * (database.ts, epochFor). Records order by epoch before version, so after a partition the side that
   * won the disk wins the object, however often the fenced side wrote it meanwhile.
   */
  epoch: number;
  version: number;
  updatedBy: string;
  /** Wall-clock milliseconds, for people; never used to order writes. */
  updatedAt: number;
}

/** When an attribute was last written with attr.set (or removed): wall-clock ms, kept growing, and by whom. */
export interface AttributeStamp { at: number; by: string }

export interface AppObject extends AppSpec, Stamped {
  /**
   * Per attribute written through attr.set (a removed one keeps its stamp): replicas merge attributes by
   * these, key by key, so two writes to different attributes on two nodes, or one on a replica not synced
   * yet, both survive (database.ts, mergeAttributes). Attributes from a registration have none.
   */
  attributeStamps: Record<string, AttributeStamp>;
  /** The node running the app now; null after an operator unload. */
  host: string | null;
  phase: Phase;
  /**
   * The nodes where the app faulted (exited by itself, or failed its health probe) and that an operator
   * has not cleared since (a load on that node clears it). Nothing fails over or back to such a node:
   * without the mark an app that faults on both nodes would be passed to and fro for ever.
   */
  faults: string[];
  /**
   * Per node, when its fault mark was last set or cleared (wall-clock ms, kept growing) and by whom:
   * replicas merge the marks node by node by these, so an operator's load that clears a mark is not lost
   * to a concurrent write of another field made from a view that still had it (the newer record by version
   * is otherwise taken whole; nemesis lab seed 2044464527: a backup's failover write undid the load, and
   * the app ran nowhere).
   */
  faultStamps: Record<string, AttributeStamp>;
  /** The last planned switchover (absent: none since the app was registered). */
  switchover?: SwitchoverRecord;
  /**
   * A node an operator drained (vigil drain NODE): no failback and no switchover brings the app to it
   * until the drain is undone. A failover still may: a node kept for maintenance beats running nowhere.
   */
  keepOff?: string;
}

/** The fields of an object that a write sets; version, updatedBy and updatedAt are the database's. */
export type AppFields = Omit<AppObject, keyof Stamped | 'attributeStamps' | 'faultStamps'>
  & { attributeStamps?: Record<string, AttributeStamp>; faultStamps?: Record<string, AttributeStamp> };

/**
 * A removed app. It outranks every older copy of the object, so a stale replica cannot bring it back. It
 * keeps the attributes' merge state (every attribute removed, with a stamp; one set elsewhere later stays
 * hidden in it), so that merging attributes key by key gives every replica the same result whatever the
 * order it heard of the removal in.
 */
export interface Tombstone extends Stamped {
  tag: string;
  deleted: true;
  attributes?: Record<string, AttributeValue>;
  attributeStamps?: Record<string, AttributeStamp>;
}

export type AppEntry = AppObject | Tombstone;

/**
 * The resume pointer of a cluster-aware app (claims 23/24). `seq` grows with every write to the tag;
 * null is "no pointer" (written when the app is removed, so an older pointer cannot survive it).
 */
export interface Marker {
  tag: string;
  pointer: string | number | null;
  seq: number;
  writtenBy: string;
}

export function isTombstone(e: AppEntry): e is Tombstone {
  return 'deleted' in e && e.deleted === true;
}

// ---------------------------------------------------------------------------------------------------
// Schemas. Strict: a field this version does not know is refused, not dropped, because a replica that
// dropped it would hash the object differently from the sender and the two would never agree.

/** Tags and node names: a superset of the config's names, so the patent's "CA-1" is a valid tag. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RULE = "1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit";

export function isValidName(s: string): boolean {
  return NAME.test(s);
}

const name = (what: string) => z.string().regex(NAME, `expected ${what}: ${NAME_RULE}`);
const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

const commandSchema = z.strictObject({
  argv: z.array(z.string().min(1, 'expected a non-empty argument')).min(1, 'expected a program and its arguments'),
  cwd: z.string().min(1).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'), z.string()).optional(),
  user: accountName('a user name').optional(),
  group: accountName('a group name').optional(),
  groups: z.array(accountName('a group name')).optional(),
});

const attributeValue = z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, a number or true/false' });

/**
 * A resource in its stored form (the config's ResourceConfig): checked with the file's own rules when an app
 * registers it and when a replica arrives, since vigild acts on it as root.
 */
const storedResourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('disk'), disk: name('a disk name') }),
  z.strictObject({ kind: z.literal('mount'), disk: name('a disk name'), path: mountPath, fstype: fsType, options: z.array(mountOption) }),
  z.strictObject({
    kind: z.literal('ip'),
    address: z.string().refine((a) => isIP(a) !== 0, 'expected an IPv4 or IPv6 address'),
    prefixLength: z.int().min(0),
    interface: z.record(name('a node name'), ifname),
  }).refine((r) => isIP(r.address) === 0 || validPrefix(r.address, r.prefixLength), { message: 'the prefix length is longer than the address', path: ['prefixLength'] }),
], { error: 'expected a resource of kind disk, mount or ip' });

/** Stored as plain JSON (the resources layer reads it), checked against storedResourceSchema. */
const resourceSpec = z.record(z.string(), z.json()).superRefine((r, ctx) => {
  const checked = storedResourceSchema.safeParse(r);
  if (!checked.success) for (const i of checked.error.issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
});

const specShape = {
  tag: name('an app tag'),
  type: z.enum(APP_TYPES, { error: 'expected cluster-capable or cluster-aware (an unclusterable program cannot be registered)' }),
  command: commandSchema,
  primary: name('a node name'),
  backup: name('a node name'),
  resources: z.array(resourceSpec),
  autoRecover: z.boolean(),
  attributes: z.record(z.string().min(1, 'expected a non-empty name'), attributeValue),
};

function checkRoles(o: { primary: string; backup: string; host?: string | null; faults?: string[]; keepOff?: string; switchover?: { from: string; to: string } }, ctx: z.core.$RefinementCtx): void {
  if (o.primary === o.backup) {
    ctx.addIssue({ code: 'custom', path: ['backup'], message: `the backup must be another node than the primary (${o.primary})` });
  }
  if (o.host !== undefined && o.host !== null && o.host !== o.primary && o.host !== o.backup) {
    ctx.addIssue({ code: 'custom', path: ['host'], message: `the host must be the primary, the backup or null (got ${o.host})` });
  }
  for (const [i, node] of (o.faults ?? []).entries()) {
    if (node !== o.primary && node !== o.backup) {
      ctx.addIssue({ code: 'custom', path: ['faults', i], message: `a fault mark must name the primary or the backup (got ${node})` });
    } else if (o.faults!.indexOf(node) !== i) {
      ctx.addIssue({ code: 'custom', path: ['faults', i], message: `${node} is marked twice` });
    }
  }
  const nodes = [o.primary, o.backup];
  if (o.keepOff !== undefined && !nodes.includes(o.keepOff)) {
    ctx.addIssue({ code: 'custom', path: ['keepOff'], message: `a drained node must be the primary or the backup (got ${o.keepOff})` });
  }
  const sw = o.switchover;
  if (sw !== undefined && (sw.from === sw.to || !nodes.includes(sw.from) || !nodes.includes(sw.to))) {
    ctx.addIssue({ code: 'custom', path: ['switchover'], message: `a switchover goes from one of the primary and backup to the other (got ${sw.from} to ${sw.to})` });
  }
}

/** A registration as offered; resources, autoRecover and attributes may be left out. */
export const appSpecSchema = z.strictObject({
  ...specShape,
  resources: specShape.resources.default([]),
  autoRecover: specShape.autoRecover.default(false),
  attributes: specShape.attributes.default({}),
}).superRefine(checkRoles);

// epoch: absent in a replica written before ownership epochs existed: 0.
const stampShape = { epoch: count.default(0), version: count, updatedBy: name('a node name'), updatedAt: count };

export const appObjectSchema = z.strictObject({
  ...specShape,
  ...stampShape,
  host: name('a node name').nullable(),
  phase: z.enum(PHASES),
  // Absent in a replica written before fault marks existed: none.
  faults: z.array(name('a node name')).default([]),
  // Absent in a replica written before per-node fault stamps existed: none.
  faultStamps: z.record(name('a node name'), z.strictObject({ at: count, by: name('a node name') })).default({}),
  // Absent in a replica written before per-attribute stamps existed: none.
  attributeStamps: z.record(z.string().min(1), z.strictObject({ at: count, by: name('a node name') })).default({}),
  switchover: z.strictObject({
    from: name('a node name'), to: name('a node name'), by: name('a node name'), requestedAt: count, fromPhase: z.enum(PHASES),
    drain: z.boolean().optional(), ready: z.boolean().optional(), refused: z.string().max(1000).optional(),
    appStoppedAt: count.optional(), handedOverAt: count.optional(), appStartedAt: count.optional(), gapMs: z.int().optional(), failedOver: z.boolean().optional(),
  }).optional(),
  keepOff: name('a node name').optional(),
}).superRefine(checkRoles);

export const tombstoneSchema = z.strictObject({
  tag: name('an app tag'), deleted: z.literal(true), ...stampShape,
  attributes: specShape.attributes.optional(),
  attributeStamps: z.record(z.string().min(1), z.strictObject({ at: count, by: name('a node name') })).optional(),
});

export const appEntrySchema = z.union([tombstoneSchema, appObjectSchema]);

export const markerSchema = z.strictObject({
  tag: name('an app tag'),
  pointer: z.union([z.string(), z.number()]).nullable(),
  seq: count,
  writtenBy: name('a node name'),
});

/** A value that failed a schema; the message lists every problem with its path ("command.argv: ..."). */
export class RecordError extends Error {
  constructor(what: string, readonly problems: string[]) {
    super(`${what}: ${problems.join('; ')}`);
    this.name = 'RecordError';
  }
}

function problems(error: z.ZodError): string[] {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new RecordError(what, problems(r.error));
  return r.data;
}

export function parseAppSpec(value: unknown): AppSpec {
  return parseWith(appSpecSchema, value, 'bad app registration');
}

export function parseAppObject(value: unknown): AppObject {
  return parseWith(appObjectSchema, value, 'bad app object');
}

export function parseAppEntry(value: unknown): AppEntry {
  // The union would report both branches; say which one the value claimed to be.
  const isDeleted = typeof value === 'object' && value !== null && 'deleted' in value;
  return isDeleted ? parseWith(tombstoneSchema, value, 'bad tombstone') : parseAppObject(value);
}

export function parseMarker(value: unknown): Marker {
  return parseWith(markerSchema, value, 'bad marker');
}

// ---------------------------------------------------------------------------------------------------
// Canonical form: keys sorted at every level, undefined members left out (as JSON.stringify does), so
// the same content always gives the same text whatever order its keys were built in.

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** SHA-256 of the canonical form, hex. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

// One node's replica of the cluster database (seed 001 §2.1): app objects, tombstones and markers, kept in
// memory. Pure: store.ts puts it on disk, the daemon carries it between nodes.
//
// ORDER. Every record has a stamp (epoch, version, writer, content hash). A local write takes the version
// of the record it replaces plus one; a record from another replica replaces ours only if its stamp is
// higher, comparing epoch, then version, then writer name (code units, not locale), then content hash.
// The epoch is the ownership era (object.ts): a change of HOST raises it, and so does a node that takes
// the app's disks (a fencing token from the reservation generation), so a record written by a node that
// was fenced meanwhile never beats the taker's, however many writes it made (the write count alone
// would let the busier side of a partition win). Two writes
// with the same version and writer but different content should not happen (a node that lost its disk
// and reused a version could cause it); the hash still picks the same winner on every replica, and
// merge() reports the collision. So any replicas that have seen the same set of writes, in any order,
// hold the same records: newer wins (FIG. 4E-4F), and ties cannot split the cluster.
//
// DELETION leaves a tombstone with the next version. A stale replica's older copy loses to it, so a
// removed app cannot come back; registering the tag again writes a version above the tombstone.
//
// DIGESTS. digest() is a u32 for heartbeats: equal digests mean equal replicas (with 2^-32 doubt).
// versionMap() is the full per-tag stamp list, and syncPlan() compares two of them to say what to send
// and what to ask for (the full sync on join, FIG. 4; FIG. 6 step 614).
import { createHash } from 'node:crypto';

import { z } from 'zod';

import {
  type AppEntry, type AppFields, type AppObject, type AttributeStamp, type AttributeValue, type Marker, type Tombstone,
  RecordError, contentHash, isTombstone, parseAppEntry, parseAppObject, parseMarker,
} from './object.js';
import { type NodeRecord, mergeNodeRecords, parseNodeRecord } from './node-record.js';

/** A record's place in the newer-wins order. The hash breaks ties between equal (epoch, version, by). */
export interface Stamp {
  epoch: number;
  version: number;
  by: string;
  hash: string;
}

export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  if (a.by !== b.by) return a.by < b.by ? -1 : 1;
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  return 0;
}

/**
 * Per tag, the stamp of the app record (object or tombstone) and of the marker; per node, of its node
 * record (the available-server list, node-record.ts). `nodes` is left out while there is none: an agent
 * older than node records refuses a map that has it (its schema is strict), so a cluster mixing versions
 * keeps syncing until the first record is written.
 */
export interface VersionMap {
  apps: Record<string, Stamp>;
  markers: Record<string, Stamp>;
  nodes?: Record<string, Stamp>;
}

/** The three kinds of record, by key (an app's tag, or a node's name). */
export interface RecordKeys { apps: string[]; markers: string[]; nodes: string[] }

export interface SyncPlan {
  /** Keys whose records we hold newer (or the peer lacks): send them. */
  send: RecordKeys;
  /** Keys the peer holds newer (or we lack): ask for them. */
  request: RecordKeys;
}

/** Everything a replica holds, as plain records sorted by key: what store.ts writes and a full sync sends. */
export interface DbSnapshot {
  apps: AppEntry[];
  markers: Marker[];
  /** Absent in a file or message from before node records: none. */
  nodes?: NodeRecord[];
}

export interface MergeResult {
  /** The incoming record replaced ours (or we had none). */
  applied: boolean;
  /** Same version and writer, different content: resolved by hash, worth a log line. */
  conflict: boolean;
}

/** A write that found the record missing, removed, or not as the caller expected. */
export class DbWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DbWriteError';
  }
}

/** What a write may change; tag and stamp are not among them. */
export type AppPatch = Partial<Omit<AppFields, 'tag'>>;

export interface UpdateOptions {
  /** Refuse the write unless HOST is this now: a check-and-set against the local replica. */
  ifHost?: string | null;
  /**
   * The persistent-reservation generation this node read after taking the app's disks: the epoch is
   * raised to the era it opens (epochFor), also when HOST does not change (the owner's own start).
   */
  token?: number;
}

/**
 * The largest record, in characters of JSON: every record must travel in one agent message, which holds
 * about 40 000 (src/daemon/messenger.ts, MAX_FRAGMENTS); the rest is room for the envelope.
 */
export const MAX_RECORD_CHARS = 32_768;
/**
 * The most app records (tombstones included) a cluster holds: the version map of every replica travels
 * in one message, about 130 characters a tag for the app and its marker.
 */
export const MAX_APPS = 128;

/** Eras of one token: room for this many HOST changes before the next disk takeover's token. */
const ERA = 65_536;

/**
 * The epoch of a record after a write: one more where HOST changes, and at least the era of the disk
 * token where the writer has just taken the app's disks. A reservation generation only grows (every
 * PERSISTENT RESERVE OUT bumps it), so the era of a takeover is above every era its old owner had.
 */
export function epochFor(current: number, hostChanges: boolean, token?: number): number {
  return Math.max(current + (hostChanges ? 1 : 0), token !== undefined && token > 0 ? token * ERA : 0);
}

interface Held<T> {
  record: T;
  stamp: Stamp;
}

function appStamp(e: AppEntry): Stamp {
  return { epoch: e.epoch, version: e.version, by: e.updatedBy, hash: contentHash(e) };
}

function markerStamp(m: Marker): Stamp {
  return { epoch: 0, version: m.seq, by: m.writtenBy, hash: contentHash(m) };
}

function nodeStamp(r: NodeRecord): Stamp {
  return { epoch: 0, version: r.seq, by: r.writtenBy, hash: contentHash(r) };
}

function byTag(a: { tag: string }, b: { tag: string }): number {
  return a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0;
}

function byNode(a: NodeRecord, b: NodeRecord): number {
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

const STAMP_FIELDS = ['version', 'updatedBy', 'updatedAt'] as const;

function sameFields(a: AppObject, b: AppObject): boolean {
  const strip = (o: AppObject): Record<string, unknown> => {
    const c: Record<string, unknown> = { ...o };
    for (const f of STAMP_FIELDS) delete c[f];
    return c;
  };
  return contentHash(strip(a)) === contentHash(strip(b));
}

export class ClusterDb {
  private readonly apps = new Map<string, Held<AppEntry>>();
  private readonly markers = new Map<string, Held<Marker>>();
  private readonly nodes = new Map<string, Held<NodeRecord>>();
  private cachedDigest: number | undefined;

  /** Records are trusted here: parse anything from outside with the schemas in object.ts first. */
  constructor(snapshot?: DbSnapshot) {
    for (const e of snapshot?.apps ?? []) this.merge(e);
    for (const m of snapshot?.markers ?? []) this.mergeMarker(m);
    for (const r of snapshot?.nodes ?? []) this.mergeNode(r);
  }

  /** The live object, or undefined when there is none or it was removed. */
  get(tag: string): AppObject | undefined {
    const e = this.apps.get(tag)?.record;
    return e === undefined || isTombstone(e) ? undefined : e;
  }

  /** The object or its tombstone. */
  entry(tag: string): AppEntry | undefined {
    return this.apps.get(tag)?.record;
  }

  /** Live objects, by tag. */
  list(): AppObject[] {
    const out: AppObject[] = [];
    for (const { record } of this.apps.values()) if (!isTombstone(record)) out.push(record);
    return out.sort(byTag);
  }

  /** The patent's "active memory space" of a node: the objects whose HOST is that node (behaviour 7). */
  activeSpace(node: string): AppObject[] {
    return this.list().filter((o) => o.host === node);
  }

  /**
   * Writes an object whole, one version above whatever the replica holds for the tag (object or
   * tombstone). Content equal to the live object's is not a write: the object comes back unchanged, so
   * idempotent writes (FIG. 7B 856, HOST already P) do not churn versions. Throws RecordError when the
   * result breaks an invariant (primary == backup, HOST not one of the two).
   */
  upsert(fields: AppFields, by: string, now: number, epoch?: number): AppObject {
    const held = this.apps.get(fields.tag);
    // A registration (no stamps given) writes its attributes now, over what a removed app's tombstone keeps.
    const attrs = fields.attributeStamps !== undefined ? { attributes: fields.attributes, attributeStamps: fields.attributeStamps }
      : registered(held?.record, fields.attributes, by, now);
    const next = parseAppObject({
      ...fields, ...attrs, epoch: epoch ?? held?.record.epoch ?? 0, version: (held?.record.version ?? 0) + 1, updatedBy: by, updatedAt: Math.trunc(now),
    });
    if (held && !isTombstone(held.record) && sameFields(held.record, next)) return held.record;
    const chars = JSON.stringify(next).length;
    if (chars > MAX_RECORD_CHARS) {
      throw new DbWriteError(`app "${fields.tag}": its record would be ${chars} characters, more than the ${MAX_RECORD_CHARS} one replication message carries (a large env or attributes?); not written`);
    }
    if (!held && this.apps.size >= MAX_APPS) {
      throw new DbWriteError(`app "${fields.tag}": the cluster database holds ${this.apps.size} apps (removed ones included), the most it replicates; not written`);
    }
    this.put(next);
    return next;
  }

  /** Changes some fields of a live object; see upsert. Throws DbWriteError if it is missing or ifHost fails. */
  update(tag: string, patch: AppPatch, by: string, now: number, options: UpdateOptions = {}): AppObject {
    const current = this.get(tag);
    if (!current) throw new DbWriteError(`no app "${tag}" in the database`);
    if (options.ifHost !== undefined && current.host !== options.ifHost) {
      throw new DbWriteError(`app "${tag}": HOST is ${current.host ?? 'null'}, not ${options.ifHost ?? 'null'}; not written`);
    }
    const { epoch, version: _v, updatedBy: _b, updatedAt: _a, ...fields } = current;
    const hostChanges = patch.host !== undefined && patch.host !== current.host;
    const faultStamps = patch.faults === undefined ? current.faultStamps : stampFaults(current, patch.faults, by, now);
    return this.upsert({ ...fields, ...patch, faultStamps, tag }, by, now, epochFor(epoch, hostChanges, options.token));
  }

  /**
   * Adds, changes (a value) or removes (null) additional attributes (behaviour 6). Each gets a stamp
   * (`now`, wall-clock ms, kept above its previous stamp), by which replicas merge attributes key by key.
   */
  setAttributes(tag: string, changes: Record<string, AttributeValue | null>, by: string, now: number): AppObject {
    const current = this.get(tag);
    if (!current) throw new DbWriteError(`no app "${tag}" in the database`);
    const attributes = { ...current.attributes };
    const attributeStamps = { ...current.attributeStamps };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete attributes[k];
      else attributes[k] = v;
      attributeStamps[k] = { at: Math.max(Math.trunc(now), (current.attributeStamps[k]?.at ?? 0) + 1), by };
    }
    return this.update(tag, { attributes, attributeStamps }, by, now);
  }

  /** Removes an app: a tombstone replaces it, and its marker is cleared the same way. */
  remove(tag: string, by: string, now: number): Tombstone {
    const current = this.get(tag);
    if (!current) throw new DbWriteError(`no app "${tag}" in the database`);
    const attributeStamps = { ...current.attributeStamps };
    for (const k of new Set([...Object.keys(current.attributes), ...Object.keys(current.attributeStamps)])) {
      attributeStamps[k] = { at: Math.max(Math.trunc(now), (current.attributeStamps[k]?.at ?? 0) + 1), by };
    }
    const stone: Tombstone = {
      tag, deleted: true, epoch: epochFor(current.epoch, true), version: current.version + 1, updatedBy: by, updatedAt: Math.trunc(now),
      attributes: {}, attributeStamps,
    };
    this.put(stone);
    if (this.markers.has(tag)) this.writeMarker(tag, null, by);
    return stone;
  }

  /**
   * Takes a record from another replica: the newer by stamp, with the attributes of both merged key by key
   * (mergeAttributes). Applied when that changes what this replica holds.
   */
  merge(incoming: AppEntry): MergeResult {
    const stamp = appStamp(incoming);
    const held = this.apps.get(incoming.tag);
    const conflict = held !== undefined && held.stamp.epoch === stamp.epoch && held.stamp.version === stamp.version && held.stamp.by === stamp.by
      && held.stamp.hash !== stamp.hash;
    if (!held) {
      this.put(incoming);
      return { applied: true, conflict };
    }
    const result = mergeEntries(held.record, incoming);
    if (contentHash(result) === held.stamp.hash) return { applied: false, conflict };
    this.put(result);
    return { applied: true, conflict };
  }

  marker(tag: string): Marker | undefined {
    return this.markers.get(tag)?.record;
  }

  /**
   * Writes a marker: its seq is the wall-clock time in ms, kept above the replica's seq, so a later write
   * wins over an earlier one made elsewhere, also on a replica that had not heard of that one yet.
   */
  writeMarker(tag: string, pointer: string | number | null, by: string, now = Date.now()): Marker {
    const m: Marker = { tag, pointer, seq: Math.max(Math.trunc(now), (this.markers.get(tag)?.record.seq ?? 0) + 1), writtenBy: by };
    this.markers.set(tag, { record: m, stamp: markerStamp(m) });
    this.cachedDigest = undefined;
    return m;
  }

  mergeMarker(incoming: Marker): MergeResult {
    const stamp = markerStamp(incoming);
    const held = this.markers.get(incoming.tag);
    const conflict = held !== undefined && held.stamp.version === stamp.version && held.stamp.by === stamp.by
      && held.stamp.hash !== stamp.hash;
    if (held && compareStamps(stamp, held.stamp) <= 0) return { applied: false, conflict };
    this.markers.set(incoming.tag, { record: incoming, stamp });
    this.cachedDigest = undefined;
    return { applied: true, conflict };
  }

  /** A node's record in the available-server list (node-record.ts). */
  node(name: string): NodeRecord | undefined {
    return this.nodes.get(name)?.record;
  }

  nodeRecords(): NodeRecord[] {
    return [...this.nodes.values()].map((h) => h.record).sort(byNode);
  }

  /**
   * Writes a node's record: `seq` is the wall-clock time in ms kept above the replica's (as a marker's),
   * so the later write wins; the held record's request is kept unless the write replaces it.
   */
  writeNode(fields: Omit<NodeRecord, 'seq' | 'writtenBy'>, by: string, now = Date.now()): NodeRecord {
    const held = this.nodes.get(fields.node)?.record;
    const r: NodeRecord = { ...fields, seq: Math.max(Math.trunc(now), (held?.seq ?? 0) + 1), writtenBy: by };
    if (r.request === undefined && held?.request !== undefined) r.request = held.request;
    for (const k of Object.keys(r) as (keyof NodeRecord)[]) if (r[k] === undefined) delete r[k];
    this.nodes.set(r.node, { record: r, stamp: nodeStamp(r) });
    this.cachedDigest = undefined;
    return r;
  }

  /**
   * An operator's request to a node (run, postpone, cancel), written by any node: only `request` changes,
   * not the stamp, so the owner's fields are never replaced by a copy older than its last write. The
   * request travels as a same-stamp, different-content record, which replicas exchange and merge.
   */
  requestNode(node: string, request: NonNullable<NodeRecord['request']>): NodeRecord {
    const held = this.nodes.get(node)?.record;
    if (!held) throw new DbWriteError(`${node} has published no record yet (is its agent running this version?)`);
    return this.mergeNode({ ...held, request }).applied ? this.nodes.get(node)!.record : held;
  }

  mergeNode(incoming: NodeRecord): MergeResult {
    const held = this.nodes.get(incoming.node);
    if (!held) {
      this.nodes.set(incoming.node, { record: incoming, stamp: nodeStamp(incoming) });
      this.cachedDigest = undefined;
      return { applied: true, conflict: false };
    }
    const sameWrite = held.record.seq === incoming.seq && held.record.writtenBy === incoming.writtenBy;
    const conflict = sameWrite && contentHash({ ...held.record, request: undefined }) !== contentHash({ ...incoming, request: undefined });
    const merged = mergeNodeRecords(held.record, incoming);
    if (contentHash(merged) === held.stamp.hash) return { applied: false, conflict };
    this.nodes.set(merged.node, { record: merged, stamp: nodeStamp(merged) });
    this.cachedDigest = undefined;
    return { applied: true, conflict };
  }

  /** Merges every record of a snapshot; returns how many were taken. */
  mergeSnapshot(s: DbSnapshot): number {
    let n = 0;
    for (const e of s.apps) if (this.merge(e).applied) n++;
    for (const m of s.markers) if (this.mergeMarker(m).applied) n++;
    for (const r of s.nodes ?? []) if (this.mergeNode(r).applied) n++;
    return n;
  }

  snapshot(): DbSnapshot {
    const s: DbSnapshot = {
      apps: [...this.apps.values()].map((h) => h.record).sort(byTag),
      markers: [...this.markers.values()].map((h) => h.record).sort(byTag),
    };
    if (this.nodes.size > 0) s.nodes = this.nodeRecords();
    return s;
  }

  /** The records a sync plan says to send. */
  records(keys: { apps: readonly string[]; markers: readonly string[]; nodes?: readonly string[] }): DbSnapshot {
    const apps = keys.apps.flatMap((t) => { const h = this.apps.get(t); return h ? [h.record] : []; });
    const markers = keys.markers.flatMap((t) => { const h = this.markers.get(t); return h ? [h.record] : []; });
    const nodes = (keys.nodes ?? []).flatMap((n) => { const h = this.nodes.get(n); return h ? [h.record] : []; });
    return nodes.length > 0 ? { apps, markers, nodes } : { apps, markers };
  }

  versionMap(): VersionMap {
    const map: VersionMap = { apps: {}, markers: {} };
    for (const [tag, h] of this.apps) map.apps[tag] = h.stamp;
    for (const [tag, h] of this.markers) map.markers[tag] = h.stamp;
    if (this.nodes.size > 0) {
      map.nodes = {};
      for (const [node, h] of this.nodes) map.nodes[node] = h.stamp;
    }
    return map;
  }

  /** u32 over every stamp, for heartbeats: equal digests, equal replicas. */
  digest(): number {
    if (this.cachedDigest === undefined) {
      const lines: string[] = [];
      for (const [tag, h] of this.apps) lines.push(`a\t${tag}\t${h.stamp.hash}`);
      for (const [tag, h] of this.markers) lines.push(`m\t${tag}\t${h.stamp.hash}`);
      for (const [node, h] of this.nodes) lines.push(`n\t${node}\t${h.stamp.hash}`);
      lines.sort();
      this.cachedDigest = createHash('sha256').update(lines.join('\n')).digest().readUInt32BE(0);
    }
    return this.cachedDigest;
  }

  private put(e: AppEntry): void {
    this.apps.set(e.tag, { record: e, stamp: appStamp(e) });
    this.cachedDigest = undefined;
  }
}

// A map parsed from the network is a plain object: "constructor" is a valid tag or attribute, and must not
// find Object.prototype's.
function own<T>(rec: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

const stampSchema = z.strictObject({ epoch: z.int().min(0).default(0), version: z.int().min(0), by: z.string().min(1), hash: z.string().regex(/^[0-9a-f]{64}$/) });
const versionMapSchema = z.strictObject({
  apps: z.record(z.string(), stampSchema), markers: z.record(z.string(), stampSchema), nodes: z.record(z.string(), stampSchema).optional(),
});

/** A peer's version map as it arrives from the network. */
export function parseVersionMap(value: unknown): VersionMap {
  const r = versionMapSchema.safeParse(value);
  if (!r.success) throw new RecordError('bad version map', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return r.data;
}

/**
 * A snapshot as it arrives from the network or the disk: every record checked, each problem named by
 * its place ("apps[2] (CA-1): backup: ..."), a tag twice refused.
 */
export function parseSnapshot(value: unknown, what = 'bad database snapshot'): DbSnapshot {
  const v = value as { apps?: unknown; markers?: unknown; nodes?: unknown } | null;
  if (typeof v !== 'object' || v === null || !Array.isArray(v.apps) || !Array.isArray(v.markers) || (v.nodes !== undefined && !Array.isArray(v.nodes))) {
    throw new RecordError(what, ['expected { apps: [...], markers: [...], nodes?: [...] }']);
  }
  const found: string[] = [];
  const each = <T>(list: unknown[], name: string, parse: (x: unknown) => T, keyOf: (r: T) => string, keyName = 'tag'): T[] => {
    const seen = new Set<string>();
    return list.map((x, i) => {
      const tag = typeof x === 'object' && x !== null && keyName in x ? ` (${String((x as Record<string, unknown>)[keyName])})` : '';
      try {
        const r = parse(x);
        const key = keyOf(r);
        if (seen.has(key)) found.push(`${name}[${i}]${tag}: a second record for the ${keyName}`);
        seen.add(key);
        return r;
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        found.push(...e.problems.map((p) => `${name}[${i}]${tag}: ${p}`));
        return undefined as unknown as T;
      }
    });
  };
  const apps = each(v.apps, 'apps', parseAppEntry, (r) => r.tag);
  const markers = each(v.markers, 'markers', parseMarker, (r) => r.tag);
  const nodes = v.nodes === undefined ? undefined : each(v.nodes as unknown[], 'nodes', parseNodeRecord, (r) => r.node, 'node');
  if (found.length > 0) throw new RecordError(what, found);
  return nodes !== undefined && nodes.length > 0 ? { apps, markers, nodes } : { apps, markers };
}

/**
 * What to send and what to request, given my version map and a peer's (full sync on join, FIG. 4). Two
 * app records that differ only in content under the same (epoch, version, writer) are both sent: each
 * may hold attributes the other lacks, and the merge of both is what both replicas end with.
 */
export function syncPlan(mine: VersionMap, theirs: VersionMap): SyncPlan {
  const plan: SyncPlan = { send: { apps: [], markers: [], nodes: [] }, request: { apps: [], markers: [], nodes: [] } };
  for (const kind of ['apps', 'markers', 'nodes'] as const) {
    const m = mine[kind] ?? {};
    const th = theirs[kind] ?? {};
    const tags = new Set([...Object.keys(m), ...Object.keys(th)]);
    for (const tag of [...tags].sort()) {
      const a = own(m, tag);
      const b = own(th, tag);
      const c = a === undefined ? -1 : b === undefined ? 1 : compareStamps(a, b);
      const exchange = kind !== 'markers' && a !== undefined && b !== undefined && c !== 0
        && a.epoch === b.epoch && a.version === b.version && a.by === b.by;
      if (c > 0 || exchange) plan.send[kind].push(tag);
      if (c < 0 || exchange) plan.request[kind].push(tag);
    }
  }
  return plan;
}

/** The fault stamps after a write of `faults`: each node whose mark is set or cleared by it stamped now. */
function stampFaults(current: AppObject, faults: readonly string[], by: string, now: number): Record<string, AttributeStamp> {
  const stamps = { ...current.faultStamps };
  for (const node of new Set([...current.faults, ...faults])) {
    if (current.faults.includes(node) === faults.includes(node)) continue;
    stamps[node] = { at: Math.max(Math.trunc(now), (own(current.faultStamps, node)?.at ?? 0) + 1), by };
  }
  return stamps;
}

/**
 * The fault marks of two live records of one app, node by node: the later stamped set or clear of each
 * node's mark wins; a mark neither record stamped is the newer record's. In the newer record's order,
 * then the older's.
 */
function mergeFaults(newer: AppObject, older: AppObject): Pick<AppObject, 'faults' | 'faultStamps'> {
  const faults: string[] = [];
  const faultStamps: Record<string, AttributeStamp> = {};
  for (const node of new Set([...newer.faults, ...older.faults, ...Object.keys(newer.faultStamps), ...Object.keys(older.faultStamps)])) {
    const sn = own(newer.faultStamps, node);
    const so = own(older.faultStamps, node);
    const from = so === undefined || (sn !== undefined && compareAttributeStamps(sn, so) >= 0) ? newer : older;
    if (from.faults.includes(node)) faults.push(node);
    const stamp = own(from.faultStamps, node);
    if (stamp !== undefined) faultStamps[node] = stamp;
  }
  return { faults, faultStamps };
}

/**
 * Two records of one app: the newer by stamp, with attributes merged key by key, and, between two live
 * records of one epoch, fault marks node by node (mergeFaults). A stamped attribute
 * (written through attr.set, or removed) beats an unstamped one (from a registration) and the older stamp;
 * unstamped ones come from the newer record. Commutative, associative and idempotent, so replicas that
 * have seen the same records hold the same result whatever the order. A tombstone is taken whole.
 */
export function mergeEntries(a: AppEntry, b: AppEntry): AppEntry {
  const [newer, older] = compareStamps(appStamp(a), appStamp(b)) >= 0 ? [a, b] : [b, a];
  const n = { attributes: newer.attributes ?? {}, attributeStamps: newer.attributeStamps ?? {} };
  const o = { attributes: older.attributes ?? {}, attributeStamps: older.attributeStamps ?? {} };
  const attributes: Record<string, AttributeValue> = {};
  const attributeStamps: Record<string, AttributeStamp> = {};
  const keys = new Set([...Object.keys(n.attributes), ...Object.keys(n.attributeStamps), ...Object.keys(o.attributes), ...Object.keys(o.attributeStamps)]);
  for (const k of [...keys].sort()) {
    const sn = own(n.attributeStamps, k);
    const so = own(o.attributeStamps, k);
    const from = sn === undefined && so === undefined ? n
      : so === undefined || (sn !== undefined && compareAttributeStamps(sn, so) >= 0) ? n : o;
    const value = own(from.attributes, k);
    const stamp = own(from.attributeStamps, k);
    if (value !== undefined) attributes[k] = value;
    if (stamp !== undefined) attributeStamps[k] = stamp;
  }
  if (isTombstone(newer) && Object.keys(attributes).length === 0 && Object.keys(attributeStamps).length === 0
    && newer.attributes === undefined && newer.attributeStamps === undefined) {
    return newer; // a tombstone from before attribute stamps, with nothing to keep: as it came
  }
  // Node by node only within one ownership epoch: a record of a later epoch (a takeover, a removal and
  // what was registered after it) is taken whole, which keeps the merge associative across tombstones.
  const marks = !isTombstone(newer) && !isTombstone(older) && newer.epoch === older.epoch ? mergeFaults(newer, older) : {};
  return { ...newer, ...marks, attributes, attributeStamps };
}

/**
 * The attributes of an app registered now (a new tag, or one registered again after its removal): each
 * given attribute stamped now, above what the removed app's tombstone kept for it; the tombstone's other
 * stamps kept, so a replica still holding the removed app merges to the same result.
 */
function registered(held: AppEntry | undefined, given: Record<string, AttributeValue>, by: string, now: number)
  : { attributes: Record<string, AttributeValue>; attributeStamps: Record<string, AttributeStamp> } {
  const attributes: Record<string, AttributeValue> = { ...(held && isTombstone(held) ? held.attributes : {}) };
  const attributeStamps: Record<string, AttributeStamp> = { ...(held && isTombstone(held) ? held.attributeStamps : {}) };
  for (const [k, v] of Object.entries(given)) {
    attributes[k] = v;
    attributeStamps[k] = { at: Math.max(Math.trunc(now), (own(attributeStamps, k)?.at ?? 0) + 1), by };
  }
  return { attributes, attributeStamps };
}

function compareAttributeStamps(a: AttributeStamp, b: AttributeStamp): number {
  if (a.at !== b.at) return a.at < b.at ? -1 : 1;
  return a.by < b.by ? -1 : a.by > b.by ? 1 : 0;
}

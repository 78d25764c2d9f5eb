// The available-server list of seed 000 (claims 6, 11): one NodeRecord per node in the cluster database,
// beside the app objects. It says what each node is for rejuvenation: its role (hosting apps, or a spare),
// its measured headroom, and its state (available, or duplexing/rejuvenating/probation while it is being
// rejuvenated, with the timeline of that rejuvenation). Types, schema, and the merge rule. Pure.
//
// WRITERS. The node itself writes its record; an operator's request (run, postpone, cancel) may be written
// by any node, into the record's `request`. Order: `seq` is the wall-clock ms of the write kept above the
// replica's (as markers, database.ts), so a later write wins; but a request written elsewhere must not be
// lost to the owner's next write made before it heard of it, so `request` merges on its own (the newer
// request by its time wins, whichever record wins), as fault marks and attributes do in app objects.
import { z } from 'zod';

import { RecordError, contentHash } from './object.js';

/** The order of the available-server list: who may be a switchover's target, and who is out. */
export type NodeState = 'available' | 'duplexing' | 'rejuvenating' | 'probation';
export const NODE_STATES: readonly NodeState[] = ['available', 'duplexing', 'rejuvenating', 'probation'];

/** primary: hosts at least one app; spare: hosts none (active/standby picks these as targets). */
export type NodeRole = 'primary' | 'spare';

/** The ladder's rungs, gentlest first (docs/rejuvenation.md, "The ladder"). */
export type LadderStep = 'apps' | 'agent' | 'caches' | 'reboot' | 'power-cycle';
export const LADDER_STEPS: readonly LadderStep[] = ['apps', 'agent', 'caches', 'reboot', 'power-cycle'];

/** What the node measured of itself, for a target's choice in active/active (headroom.ts). */
export interface Headroom {
  /** Wall-clock ms of the readings. */
  at: number;
  cpus: number;
  /** The 1-minute load average (not per CPU). */
  load: number;
  memTotal: number;
  memAvailable: number;
  /** Per app it hosts: its process's RSS (bytes) and its share of the load (its CPU use in CPUs). */
  apps: Record<string, { rss: number; cpu: number }>;
}

export interface StepRecord {
  step: LadderStep;
  startedAt: number;
  endedAt?: number;
  outcome?: 'healthy' | 'unhealthy' | 'failed' | 'skipped';
  detail?: string;
}

export interface RejuvenationRecord {
  /** Wall-clock ms the rejuvenation was decided: its identity. */
  startedAt: number;
  /** Who decided: 'aging' (the monitor's judgement) or the node whose operator ran it. */
  by: string;
  /** Why, in one line (the judgement's explanation, or the operator's). */
  reason: string;
  /** The apps moved off the node by the duplexing, and where to. */
  moved: { tag: string; to: string }[];
  steps: StepRecord[];
  /** The planned absence: peers expect the node back by then (a reboot's deadline); past it, failed as usual. */
  absentUntil?: number;
  /** When probation began (the ladder found the node healthy). */
  probationAt?: number;
  endedAt?: number;
  outcome?: 'spare' | 'cancelled' | 'failed';
  /** Why it was cancelled or failed. */
  why?: string;
}

export interface NodeRequest {
  action: 'run' | 'postpone' | 'cancel';
  /** The node whose operator asked, and when (wall-clock ms; also the request's merge order). */
  by: string;
  at: number;
  /** postpone: not before then. */
  until?: number;
  reason?: string;
}

export interface NodeRecord {
  node: string;
  seq: number;
  writtenBy: string;
  role: NodeRole;
  state: NodeState;
  /** Wall-clock ms the state began. */
  since: number;
  headroom?: Headroom;
  /** The aging monitor's verdict on the node and its apps: unstable (why), and the soonest estimated exhaustion. */
  aging?: { unstable: boolean; why: string; etaMs: number | null };
  /** The current rejuvenation, or the last one once it ended. */
  rejuvenation?: RejuvenationRecord;
  request?: NodeRequest;
  /** The `at` of the last request the node acted on: a request newer than this is pending. */
  handledRequestAt?: number;
  /** Rejuvenation is not started before then (an operator's postpone). */
  notBefore?: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const nodeName = z.string().regex(NAME, 'expected a node name');
const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const text = z.string().max(1000);

const stepSchema = z.strictObject({
  step: z.enum(LADDER_STEPS), startedAt: count, endedAt: count.optional(),
  outcome: z.enum(['healthy', 'unhealthy', 'failed', 'skipped']).optional(), detail: text.optional(),
});

export const nodeRecordSchema = z.strictObject({
  node: nodeName,
  seq: count,
  writtenBy: nodeName,
  role: z.enum(['primary', 'spare']),
  state: z.enum(NODE_STATES),
  since: count,
  headroom: z.strictObject({
    at: count, cpus: z.int().min(1).max(65_536), load: z.number().min(0), memTotal: count, memAvailable: count,
    apps: z.record(z.string().regex(NAME), z.strictObject({ rss: count, cpu: z.number().min(0) })),
  }).optional(),
  aging: z.strictObject({ unstable: z.boolean(), why: text, etaMs: z.number().min(0).nullable() }).optional(),
  rejuvenation: z.strictObject({
    startedAt: count, by: nodeName, reason: text,
    moved: z.array(z.strictObject({ tag: z.string().regex(NAME), to: nodeName })).max(128),
    steps: z.array(stepSchema).max(16),
    absentUntil: count.optional(), probationAt: count.optional(), endedAt: count.optional(),
    outcome: z.enum(['spare', 'cancelled', 'failed']).optional(), why: text.optional(),
  }).optional(),
  request: z.strictObject({
    action: z.enum(['run', 'postpone', 'cancel']), by: nodeName, at: count, until: count.optional(), reason: text.optional(),
  }).optional(),
  handledRequestAt: count.optional(),
  notBefore: count.optional(),
});

export function parseNodeRecord(value: unknown): NodeRecord {
  const r = nodeRecordSchema.safeParse(value);
  if (!r.success) throw new RecordError('bad node record', r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)));
  return r.data;
}

function newerRequest(a: NodeRequest | undefined, b: NodeRequest | undefined): NodeRequest | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.at !== b.at) return a.at > b.at ? a : b;
  return a.by >= b.by ? a : b;
}

/**
 * The merge of two copies of a node's record: the newer by (seq, writer), with the newer request of the
 * two. Commutative and idempotent, so replicas that saw the same writes agree in any order.
 */
export function mergeNodeRecords(a: NodeRecord, b: NodeRecord): NodeRecord {
  const newer = a.seq !== b.seq ? (a.seq > b.seq ? a : b)
    : a.writtenBy !== b.writtenBy ? (a.writtenBy > b.writtenBy ? a : b)
    : contentHash(a) >= contentHash(b) ? a : b; // one writer's seq twice: not expected; still one winner everywhere
  const request = newerRequest(a.request, b.request);
  const merged: NodeRecord = { ...newer };
  if (request) merged.request = request;
  return merged;
}

/** A request the node has not acted on yet. */
export function pendingRequest(r: NodeRecord): NodeRequest | undefined {
  return r.request && (r.handledRequestAt === undefined || r.request.at > r.handledRequestAt) ? r.request : undefined;
}

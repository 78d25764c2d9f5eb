// Merges the nodes' logs into one incident timeline: the catalogued events on one clock (each node's times
// corrected by its clock offset), split into incidents, and each incident's phases with their durations.
import { classify, type Phase } from './catalogue.js';
import { CLOCK_SAMPLE_MESSAGE } from '../daemon/clock-samples.js';
import { estimateOffsets } from './clock-offsets.js';
import type { NodeLog } from './parse.js';

export const TIMELINE_VERSION = 1;

export interface TimelineEvent {
  /** Milliseconds since 1970 on the reference node's clock (the node's own time minus its offset). */
  time: number;
  /** The time as the node logged it. */
  loggedTime: number;
  node: string;
  kind: string;
  phase: Phase;
  message: string;
  tag?: string;
  resource?: string;
  peer?: string;
  /** How long the step itself took, as the agent measured it (the `ms` of a timed step). */
  tookMs?: number;
}

export interface PhaseMark {
  phase: Phase;
  kind: string;
  node: string;
  time: number;
  /** Since the incident's first event. */
  sinceStartMs: number;
  /** Since the previous phase's mark (0 for the first): the phase's duration. */
  durationMs: number;
  tookMs?: number;
}

export interface Incident {
  start: number;
  end: number;
  durationMs: number;
  phases: PhaseMark[];
  /** Indices into Timeline.events. */
  events: number[];
}

export type OffsetSource = 'reference' | 'estimated' | 'given' | 'unknown';

export interface TimelineNode {
  node: string;
  files: string[];
  lines: number;
  malformed: number;
  /** This node's clock minus the reference node's, in ms; null when unknown (its times are used as logged). */
  offsetMs: number | null;
  offsetSource: OffsetSource;
  /** An estimated offset is within ± this many ms (half the best heartbeat round trip, plus the log's 1 ms). */
  offsetBoundMs?: number;
  /** The heartbeat clock samples the estimate is from. */
  offsetSamples?: number;
}

export interface Timeline {
  version: typeof TIMELINE_VERSION;
  reference: string | null;
  nodes: TimelineNode[];
  events: TimelineEvent[];
  incidents: Incident[];
  malformed: number;
}

export interface MergeOptions {
  /** Offsets given by the operator (node → its clock minus the reference's, ms), e.g. from chrony. */
  offsets?: Record<string, number>;
  /** A silence longer than this between agent events starts a new incident. */
  gapMs?: number;
}

export const DEFAULT_GAP_MS = 30_000;

const optional = <K extends string>(key: K, value: unknown, type: 'string' | 'number') =>
  (typeof value === type ? { [key]: value } : {}) as Partial<Record<K, never>>;

function eventsOf(log: NodeLog, offsetMs: number): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (const line of log.lines) {
    const entry = classify({ msg: line.msg, notice: line.fields.notice, resource: line.fields.resource });
    if (!entry) continue;
    out.push({
      time: line.time - offsetMs, loggedTime: line.time, node: log.node, kind: entry.kind, phase: entry.phase, message: line.msg,
      ...optional('tag', line.fields.tag, 'string'),
      ...optional('resource', line.fields.resource, 'string'),
      ...optional('peer', line.fields.peer, 'string'),
      ...optional('tookMs', line.fields.ms, 'number'),
    } as TimelineEvent);
  }
  return out;
}

function nodesOf(logs: NodeLog[], offsets: Record<string, number>): TimelineNode[] {
  const byName = new Map<string, TimelineNode>();
  for (const log of logs) {
    const n = byName.get(log.node) ?? { node: log.node, files: [], lines: 0, malformed: 0, offsetMs: null, offsetSource: 'unknown' as OffsetSource };
    n.files.push(log.file);
    n.lines += log.lines.length;
    n.malformed += log.malformed;
    byName.set(log.node, n);
  }
  const nodes = [...byName.values()].sort((a, b) => a.node.localeCompare(b.node));
  // The reference clock: the first agent (by name) that logged clock samples, so that a client's log or an
  // old agent's never becomes the clock the others are measured against; else the first node.
  const sampled = new Set(logs.filter((l) => l.lines.some((x) => x.msg === CLOCK_SAMPLE_MESSAGE)).map((l) => l.node));
  const reference = nodes.find((n) => sampled.has(n.node)) ?? nodes[0];
  const estimates = reference ? estimateOffsets(logs, reference.node) : new Map();
  for (const n of nodes) {
    const estimate = estimates.get(n.node);
    if (n === reference) Object.assign(n, { offsetMs: 0, offsetSource: 'reference' });
    else if (offsets[n.node] !== undefined) Object.assign(n, { offsetMs: offsets[n.node], offsetSource: 'given' });
    else if (estimate) Object.assign(n, { offsetMs: estimate.offsetMs, offsetSource: 'estimated', offsetBoundMs: estimate.boundMs, offsetSamples: estimate.samples });
  }
  return nodes;
}

/**
 * The phase marks of one incident: the first event of each phase, in time order. A client's answers mark
 * only the first one after an app started, from the node that started it.
 */
function phasesOf(events: TimelineEvent[]): PhaseMark[] {
  const marks: TimelineEvent[] = [];
  const seen = new Set<Phase>();
  for (const e of events) {
    if (seen.has(e.phase)) continue;
    seen.add(e.phase);
    marks.push(e);
  }
  const start = events[0]?.time ?? 0;
  return marks.map((e, i) => ({
    phase: e.phase, kind: e.kind, node: e.node, time: e.time, sinceStartMs: round(e.time - start),
    durationMs: i === 0 ? 0 : round(e.time - marks[i - 1]!.time),
    ...(e.tookMs === undefined ? {} : { tookMs: e.tookMs }),
  }));
}

const CAUSES: ReadonlySet<Phase> = new Set(['power', 'distress', 'detection']);
const isCause = (e: TimelineEvent) => CAUSES.has(e.phase) || e.kind === 'failback-started';

const round = (ms: number) => Math.round(ms * 10) / 10;

export function mergeTimeline(logs: NodeLog[], o: MergeOptions = {}): Timeline {
  const nodes = nodesOf(logs, o.offsets ?? {});
  const offsetOf = new Map(nodes.map((n) => [n.node, n.offsetMs ?? 0]));
  const all = logs.flatMap((l) => eventsOf(l, offsetOf.get(l.node) ?? 0));
  // A stable order: by time, then node, so equal times on two nodes always print the same way.
  all.sort((a, b) => a.time - b.time || a.node.localeCompare(b.node));
  const agentEvents = all.filter((e) => e.phase !== 'first client answer');
  const answers = all.filter((e) => e.phase === 'first client answer');

  // An incident begins with a cause (a power event, distress, a detection, a failback) after what the
  // previous one did, or after a silence: the agents' start and a failover a second later are two incidents.
  const groups: TimelineEvent[][] = [];
  for (const e of agentEvents) {
    const current = groups[groups.length - 1];
    const last = current?.[current.length - 1];
    const newCause = isCause(e) && current !== undefined && current.some((x) => !isCause(x));
    if (current && last && e.time - last.time <= (o.gapMs ?? DEFAULT_GAP_MS) && !newCause) current.push(e);
    else groups.push([e]);
  }
  // Each incident's first client answer: the first from a node that started an app in it, after that start.
  groups.forEach((group, i) => {
    const started = group.filter((e) => e.kind === 'app-started');
    const nextStart = groups[i + 1]?.[0]?.time ?? Infinity;
    const first = answers.find((a) => a.time < nextStart && started.some((s) => a.time >= s.time && a.peer === s.node));
    if (first) group.push(first);
  });

  const events = groups.flat().sort((a, b) => a.time - b.time || a.node.localeCompare(b.node));
  const index = new Map(events.map((e, i) => [e, i]));
  const incidents = groups.map((group): Incident => {
    const sorted = [...group].sort((a, b) => a.time - b.time);
    const start = sorted[0]!.time;
    const end = sorted[sorted.length - 1]!.time;
    return { start, end, durationMs: round(end - start), phases: phasesOf(sorted), events: sorted.map((e) => index.get(e)!) };
  });
  return {
    version: TIMELINE_VERSION, reference: nodes.find((n) => n.offsetSource === 'reference')?.node ?? null, nodes, events, incidents,
    malformed: nodes.reduce((s, n) => s + n.malformed, 0),
  };
}

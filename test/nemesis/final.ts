// The end-of-run invariants, judged once every fault is healed and the clean-up is done:
//   INV-LIVE      every app runs exactly once, exactly one node has its VIP (the node that runs it), and
//                 the client is answered by that node;
//   INV-CONVERGE  every agent's database digest is the same;
//   INV-ACK       every acknowledged write is on every replica, or superseded by a later acknowledged
//                 write to the same field (or possibly by a write whose outcome is unknown).
import type { Sample } from './ground.js';
import type { Outcome } from './faults.js';
import type { Write } from './schedule.js';

/** What keeps the cluster from INV-LIVE in this sample; [] when it holds. */
export function liveProblems(s: Sample, tags: string[]): string[] {
  const out: string[] = [];
  for (const tag of tags) {
    const copies = s.copies[tag] ?? [];
    const vips = s.vips[tag] ?? [];
    const answer = s.answer[tag];
    if (copies.length !== 1) {
      out.push(`${tag} runs ${copies.length} times${copies.length ? ` (${copies.map((c) => c.node).join(', ')})` : ''}`);
      continue;
    }
    const node = copies[0]!.node;
    if (vips.length !== 1 || vips[0] !== node) out.push(`${tag} runs on ${node} but its VIP is on ${vips.join(', ') || 'no node'}`);
    // The prober's answer must be fresh (a probe started after the previous sample's time, roughly).
    else if (!answer || answer.node !== node || answer.at < s.at - 600) out.push(`${tag}: the client is answered by ${answer?.node ?? 'nobody'}, not ${node}`);
  }
  return out;
}

export interface WriteRecord {
  w: Write;
  sentAt: number;
  doneAt: number;
  outcome: Outcome;
}

/** A replica's content as `db.show` answers it. */
export interface DbShow {
  apps: { tag: string; attributes?: Record<string, unknown>; deleted?: boolean; version: number; updatedBy: string }[];
  markers: { tag: string; pointer: unknown; seq: number; writtenBy: string }[];
  digest: number;
}

function fieldOf(w: Write): string {
  return w.kind === 'attr' ? `${w.tag}.${w.name}` : `marker(${w.tag})`;
}

/** The record that holds the field on a replica: its version and writer, for the report. */
function stampOf(db: DbShow, field: string): string {
  const m = /^marker\((.*)\)$/.exec(field);
  if (m) {
    const r = db.markers.find((x) => x.tag === m[1]);
    return r ? `marker seq ${r.seq} by ${r.writtenBy}` : 'no marker';
  }
  const r = db.apps.find((a) => a.tag === field.slice(0, field.indexOf('.')));
  return r ? `record v${r.version} by ${r.updatedBy}` : 'no record';
}

function valueIn(db: DbShow, field: string): unknown {
  const m = /^marker\((.*)\)$/.exec(field);
  if (m) return db.markers.find((x) => x.tag === m[1])?.pointer;
  const dot = field.indexOf('.');
  return db.apps.find((a) => a.tag === field.slice(0, dot))?.attributes?.[field.slice(dot + 1)];
}

/**
 * INV-ACK over every replica. For each field: the acknowledged writes not superseded by a later one
 * (sent after it was acknowledged) are its possible final values, and so is any write whose outcome is
 * unknown (a timed-out request may take effect at any time, e.g. when a frozen agent wakes).
 */
export function ackViolations(records: WriteRecord[], dbs: Record<string, DbShow>): string[] {
  const out: string[] = [];
  const fields = new Map<string, WriteRecord[]>();
  for (const r of records) {
    const f = fieldOf(r.w);
    fields.set(f, [...(fields.get(f) ?? []), r]);
  }
  for (const [field, rs] of fields) {
    const acked = rs.filter((r) => r.outcome.kind === 'ack');
    if (acked.length === 0) continue;
    const latest = acked.filter((r) => !acked.some((x) => x.sentAt > r.doneAt));
    const allowed = new Set([...latest, ...rs.filter((r) => r.outcome.kind === 'unknown')].map((r) => r.w.value));
    for (const [node, db] of Object.entries(dbs)) {
      const v = valueIn(db, field);
      if (typeof v === 'string' && allowed.has(v)) continue;
      const who = rs.find((r) => r.w.value === v);
      const lost = latest.map((r) => `w${r.w.id} ${r.w.value} (on ${r.w.node}, acked at ${(r.doneAt / 1000).toFixed(3)}s)`).join(' or ');
      out.push(`${field} on ${node} is ${v === undefined ? 'absent' : JSON.stringify(v)}${who ? ` (w${who.w.id}, ${who.outcome.kind})` : ''} in its ${stampOf(db, field)}: acknowledged ${lost} lost`);
    }
  }
  return out;
}

// The lab campaign's record checks (docs/nemesis.md, "The lab rig"): the records file the writer app
// (writer.c) appended to on the shared file system, read whole at the end, against the acknowledgement logs
// each writer instance kept on its own node. Pure: bytes and text in, violations out.
//
//   INV-REC-ORDER  epochs never decrease in file order;
//   INV-REC-EPOCH  within one epoch every record comes from one node, and one writer's records are not
//                  interleaved with another's (two writers at once);
//   INV-REC-STALE  no record of a node lands after a record of a higher epoch (a stale writer that kept
//                  writing after a takeover: its node was not fenced);
//   INV-REC-ACK    every record whose write returned is in the file, once, with the epoch it was written with;
//   INV-REC-TORN   every 4096-byte block of the file is a whole record (magic, checksum, filler);
//   INV-REC-LIVE   the copy that runs at the end acknowledges records (an app that runs but cannot write).

export const RECORD = 4096;
const MAGIC = Buffer.from('VGREC001');

export interface Rec {
  /** Index of the record in the file (block number). */
  index: number;
  node: string;
  epoch: bigint;
  seq: bigint;
  /** 16 hex digits, as the acknowledgement log names it. */
  instance: string;
  /** When its write began, epoch ms. */
  beganMs: number;
}

export interface RecViolation {
  inv: 'INV-REC-ORDER' | 'INV-REC-EPOCH' | 'INV-REC-STALE' | 'INV-REC-ACK' | 'INV-REC-TORN' | 'INV-REC-LIVE';
  /** Epoch ms the violation is about (a record's write), for the agents' log around it; undefined: none. */
  atMs: number | undefined;
  text: string;
}

function fnv1a(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) h = BigInt.asUintN(64, (h ^ BigInt(x)) * 0x100000001b3n);
  return h;
}

/** The filler writer.c puts after the header: xorshift64 seeded from (instance, seq). */
function fillerMatches(block: Buffer, instance: bigint, seq: bigint): boolean {
  let x = BigInt.asUintN(64, instance ^ BigInt.asUintN(64, seq * 0x9e3779b97f4a7c15n) ^ 1n);
  for (let off = 56; off < RECORD - 8; off += 8) {
    x = BigInt.asUintN(64, x ^ (x << 13n));
    x ^= x >> 7n;
    x = BigInt.asUintN(64, x ^ (x << 17n));
    if (block.readBigUInt64LE(off) !== x) return false;
  }
  return true;
}

/** The records of a file, and a description of every block that is not a whole record. */
export function parseRecords(file: Buffer): { records: Rec[]; bad: string[] } {
  const records: Rec[] = [];
  const bad: string[] = [];
  if (file.length % RECORD !== 0) bad.push(`the file is ${file.length} bytes, not a whole number of ${RECORD}-byte records`);
  for (let i = 0; (i + 1) * RECORD <= file.length; i++) {
    const b = file.subarray(i * RECORD, (i + 1) * RECORD);
    if (b.every((x) => x === 0)) { bad.push(`block ${i}: zeros`); continue; }
    if (!b.subarray(0, 8).equals(MAGIC)) { bad.push(`block ${i}: no magic (${b.subarray(0, 8).toString('hex')})`); continue; }
    if (fnv1a(b.subarray(0, RECORD - 8)) !== b.readBigUInt64LE(RECORD - 8)) { bad.push(`block ${i}: bad checksum`); continue; }
    const instance = b.readBigUInt64LE(40);
    const seq = b.readBigUInt64LE(32);
    if (!fillerMatches(b, instance, seq)) { bad.push(`block ${i}: filler not its own`); continue; }
    const name = b.subarray(8, 24);
    records.push({
      index: i,
      node: name.subarray(0, name.indexOf(0) < 0 ? 16 : name.indexOf(0)).toString(),
      epoch: b.readBigUInt64LE(24),
      seq,
      instance: instance.toString(16).padStart(16, '0'),
      beganMs: Number(b.readBigUInt64LE(48) / 1_000_000n),
    });
  }
  return { records, bad };
}

export interface Ack { seq: bigint; epoch: bigint; beganMs: number; ackMs: number }

/** One writer instance's acknowledgement log (writer.c: S, A and E lines). */
export interface Instance {
  node: string;
  instance: string;
  epoch: bigint;
  pid: number;
  startedMs: number;
  acks: Ack[];
  errors: { seq: bigint; errno: number; atMs: number }[];
}

const ms = (ns: string) => Number(BigInt(ns) / 1_000_000n);

export function parseAckLog(text: string): Instance | undefined {
  let inst: Instance | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[0] === 'S' && f.length === 6) {
      inst = { node: f[1]!, instance: f[2]!, epoch: BigInt(f[3]!), pid: Number(f[4]), startedMs: ms(f[5]!), acks: [], errors: [] };
    } else if (inst && f[0] === 'A' && f.length === 5) {
      inst.acks.push({ seq: BigInt(f[1]!), epoch: BigInt(f[2]!), beganMs: ms(f[3]!), ackMs: ms(f[4]!) });
    } else if (inst && f[0] === 'E' && f.length === 4) {
      inst.errors.push({ seq: BigInt(f[1]!), errno: Number(f[2]), atMs: ms(f[3]!) });
    }
    // anything else: a line torn by a kill mid-write, which acknowledged nothing
  }
  return inst;
}

const who = (r: Rec) => `${r.node}/${r.instance.slice(0, 6)} e${r.epoch} #${r.seq} (block ${r.index}, written at ${new Date(r.beganMs).toISOString().slice(11, 23)})`;

/** (a), (b), (c), (d), (e) over the file's records and every instance's log. */
export function checkRecords(file: Buffer, instances: Instance[]): RecViolation[] {
  const out: RecViolation[] = [];
  const { records, bad } = parseRecords(file);
  for (const text of bad.slice(0, 5)) out.push({ inv: 'INV-REC-TORN', atMs: undefined, text });
  if (bad.length > 5) out.push({ inv: 'INV-REC-TORN', atMs: undefined, text: `and ${bad.length - 5} more blocks that are not whole records` });

  // (a) and (c): the highest epoch so far, and who wrote it.
  let top: Rec | undefined;
  let orderReported = 0;
  for (const r of records) {
    if (top && r.epoch < top.epoch) {
      if (orderReported++ < 3) {
        const stale = r.node !== top.node;
        out.push({
          inv: stale ? 'INV-REC-STALE' : 'INV-REC-ORDER', atMs: r.beganMs,
          text: stale
            ? `${who(r)} landed after ${who(top)}: a writer of epoch ${r.epoch} on ${r.node} wrote after ${top.node} took over with epoch ${top.epoch}`
            : `epochs decrease: ${who(r)} after ${who(top)}`,
        });
      }
    }
    if (!top || r.epoch > top.epoch) top = r;
  }

  // (b): per epoch one node; one writer at a time (no instance resumes after another began).
  const byEpoch = new Map<bigint, Rec[]>();
  for (const r of records) byEpoch.set(r.epoch, [...(byEpoch.get(r.epoch) ?? []), r]);
  for (const [epoch, rs] of byEpoch) {
    const nodes = [...new Set(rs.map((r) => r.node))];
    if (nodes.length > 1) {
      const first = rs.find((r) => r.node !== rs[0]!.node)!;
      out.push({ inv: 'INV-REC-EPOCH', atMs: first.beganMs, text: `epoch ${epoch} has records of ${nodes.join(' and ')}: ${who(rs[0]!)} and ${who(first)}` });
    }
    const done = new Set<string>();
    for (let i = 1; i < rs.length; i++) {
      const [p, r] = [rs[i - 1]!, rs[i]!];
      if (p.instance === r.instance) continue;
      done.add(p.instance);
      if (done.has(r.instance)) {
        out.push({ inv: 'INV-REC-EPOCH', atMs: r.beganMs, text: `two writers interleave in epoch ${epoch}: ${who(r)} after ${who(p)}` });
        break;
      }
    }
  }

  // (d): every acknowledged record in the file, once, with its epoch; and each instance's seqs ascending.
  const found = new Map<string, Rec[]>();
  for (const r of records) found.set(`${r.instance}:${r.seq}`, [...(found.get(`${r.instance}:${r.seq}`) ?? []), r]);
  for (const inst of instances) {
    const lost = inst.acks.filter((a) => !found.has(`${inst.instance}:${a.seq}`));
    if (lost.length) {
      out.push({
        inv: 'INV-REC-ACK', atMs: lost[0]!.beganMs,
        text: `${lost.length} of ${inst.acks.length} acknowledged records of ${inst.node}/${inst.instance.slice(0, 6)} (epoch ${inst.epoch}) are not in the file: #${lost.slice(0, 8).map((a) => a.seq).join(', #')}${lost.length > 8 ? ', …' : ''} (the first acknowledged at ${new Date(lost[0]!.ackMs).toISOString().slice(11, 23)})`,
      });
    }
    for (const a of inst.acks) {
      const rs = found.get(`${inst.instance}:${a.seq}`) ?? [];
      if (rs.length > 1) out.push({ inv: 'INV-REC-ACK', atMs: a.beganMs, text: `record ${inst.node}/${inst.instance.slice(0, 6)} #${a.seq} is in the file ${rs.length} times (blocks ${rs.map((r) => r.index).join(', ')})` });
      else if (rs[0] && rs[0].epoch !== a.epoch) out.push({ inv: 'INV-REC-ACK', atMs: a.beganMs, text: `${who(rs[0])} was acknowledged with epoch ${a.epoch}` });
    }
  }
  const lastSeq = new Map<string, Rec>();
  for (const r of records) {
    const p = lastSeq.get(r.instance);
    if (p && r.seq <= p.seq) out.push({ inv: 'INV-REC-ORDER', atMs: r.beganMs, text: `${who(r)} after ${who(p)}: one writer's records out of order` });
    lastSeq.set(r.instance, r);
  }
  return out;
}

/** Counts for the report: records per epoch and node, in file order. */
export function describeRecords(file: Buffer): string {
  const { records, bad } = parseRecords(file);
  const runs: string[] = [];
  let cur: { key: string; n: number; first: Rec } | undefined;
  for (const r of records) {
    const key = `${r.node} e${r.epoch} ${r.instance.slice(0, 6)}`;
    if (cur?.key === key) { cur.n++; continue; }
    if (cur) runs.push(`${cur.key} ×${cur.n}`);
    cur = { key, n: 1, first: r };
  }
  if (cur) runs.push(`${cur.key} ×${cur.n}`);
  return `${records.length} records${bad.length ? `, ${bad.length} bad blocks` : ''}: ${runs.join(', ') || 'none'}`;
}

// The node's own records in the state directory: each app pair's priority record of seed 003 (both slots
// decoded, with their bytes, since a damaged slot is what support needs to see) and the stay-out record
// of seed 002 (docs/last-active.md, docs/distress.md).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { readStayOut, stayOutFile } from '../daemon/stay-out.js';
import { decodeSlot, RECORD_LENGTH, SLOT_COUNT, SLOT_SIZE } from '../lastactive/priority-store.js';
import { jsonFile, message, oneItem, type CollectContext, type SectionResult } from './section.js';

/** Both slots of a priority store file, each decoded or with why not, and the newest valid one. */
export function describePriorityFile(image: Buffer): unknown {
  const slots = Array.from({ length: SLOT_COUNT }, (_, slot) => {
    const bytes = image.subarray(slot * SLOT_SIZE, slot * SLOT_SIZE + SLOT_SIZE);
    const reading = decodeSlot(bytes);
    return { slot, ...(reading.ok ? { record: reading.record } : { invalid: reading.why }), recordHex: bytes.subarray(0, RECORD_LENGTH).toString('hex') };
  });
  const valid = slots.filter((s) => 'record' in s && s.record !== undefined) as { slot: number; record: { sequence: bigint } }[];
  const newest = valid.sort((a, b) => (a.record.sequence < b.record.sequence ? 1 : -1))[0];
  return { size: image.length, expectedSize: SLOT_SIZE * SLOT_COUNT, newestSlot: newest?.slot ?? null, slots };
}

async function priorityRecords(stateDir: string): Promise<SectionResult> {
  const dir = join(stateDir, 'priority');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.priority')).sort();
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return oneItem('state: priority records', missing ? 'absent' : 'failed', [], missing ? `no ${dir}: this node has no app pair's record (or never started)` : message(e));
  }
  if (names.length === 0) return oneItem('state: priority records', 'absent', [], `${dir} holds no record`);
  const files = [];
  const bad: string[] = [];
  for (const name of names) {
    try {
      files.push(jsonFile(`state/priority/${name}.json`, { file: join(dir, name), ...(describePriorityFile(await readFile(join(dir, name))) as object) }));
    } catch (e) {
      bad.push(`${name}: ${message(e)}`);
    }
  }
  return oneItem('state: priority records', bad.length ? 'partial' : 'collected', files, bad.length ? bad.join('; ') : `${files.length} app pair${files.length === 1 ? '' : 's'}`);
}

async function stayOut(stateDir: string): Promise<SectionResult> {
  const file = stayOutFile(stateDir);
  try {
    const record = await readStayOut(stateDir);
    if (!record) return oneItem('state: stay-out record', 'absent', [], `no ${file}: the node may join its cluster`);
    const raw = await readFile(file, 'utf8').catch((e: Error) => `(cannot read: ${e.message})`);
    return oneItem('state: stay-out record', 'collected', [jsonFile('state/stay-out.json', { file, record, raw })], 'the node stays out until `vigil rejoin`');
  } catch (e) {
    return oneItem('state: stay-out record', 'failed', [], message(e));
  }
}

export async function stateSection(ctx: CollectContext): Promise<SectionResult> {
  if (!ctx.config) {
    return oneItem('state: priority and stay-out records', 'absent', [], 'no loaded configuration, so no state directory to read');
  }
  const [p, s] = [await priorityRecords(ctx.config.stateDir), await stayOut(ctx.config.stateDir)];
  return { files: [...p.files, ...s.files], items: [...p.items, ...s.items] };
}

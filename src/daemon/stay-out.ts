// The record that keeps a node out of the cluster after it sent distress (seed 002 step 508): written
// right after the distress leaves, read at every start, removed only by `vigil rejoin`. Power coming
// back, the agent restarting or the machine rebooting do not bring the node back by themselves: its peers
// took its work over, and an operator decides when it is fit to return.
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../util/atomic-file.js';

export interface StayOut {
  /** ISO time the node left. */
  since: string;
  /** The distress reason (src/wire/distress.ts REASON_CODES name). */
  reason: string;
  /** What decided it: a power source, 'operator', 'fatal-signal'. */
  source: string;
  /** The incarnation that sent the distress. */
  incarnation: string;
  text: string;
}

export function stayOutFile(stateDir: string): string {
  return join(stateDir, 'stay-out.json');
}

/**
 * undefined when the node may join. A record that cannot be read or parsed still keeps the node out (its
 * text says so): the file exists only because a distress was sent, and guessing "in" could bring back a
 * node whose work the others took over.
 */
export async function readStayOut(stateDir: string): Promise<StayOut | undefined> {
  const file = stayOutFile(stateDir);
  let text: string;
  let written: Date;
  try {
    text = await readFile(file, 'utf8');
    written = (await stat(file)).mtime;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return unreadable(file, e);
  }
  try {
    const r = JSON.parse(text) as Partial<StayOut>;
    if (typeof r.since !== 'string' || typeof r.reason !== 'string') throw new Error('missing since or reason');
    // The fatal-signal handler cannot format a time: the file's own is the moment it was written.
    return { since: r.since || written.toISOString(), reason: r.reason, source: String(r.source ?? ''), incarnation: String(r.incarnation ?? ''), text: String(r.text ?? '') };
  } catch (e) {
    return unreadable(file, e);
  }
}

function unreadable(file: string, e: unknown): StayOut {
  return { since: '', reason: 'unknown', source: '', incarnation: '', text: `${file} cannot be read (${e instanceof Error ? e.message : String(e)}): staying out` };
}

export async function writeStayOut(stateDir: string, r: StayOut): Promise<void> {
  await writeFileAtomic(stayOutFile(stateDir), `${JSON.stringify(r, null, 2)}\n`, 0o640);
}

export async function clearStayOut(stateDir: string): Promise<void> {
  await rm(stayOutFile(stateDir), { force: true });
}

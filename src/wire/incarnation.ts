// A node's incarnation: the number that tells peers "this is a new process; forget my old sequence
// numbers". Peers accept only a sender's newest incarnation, so a new one must exceed every one used
// before, or peers that remember the old one refuse everything we send until they restart themselves.
//
// It is wall-clock milliseconds at start, forced above the previous one (`max(previous + 1, now)`) so
// that a clock set backwards cannot reuse one. The previous one is kept in `<stateDir>/incarnation`
// (decimal, one line), written atomically, and stored before it is returned: a crash after returning
// never lets the next start reuse it.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../util/atomic-file.js';
import { MAX_U64 } from './datagram.js';

export const INCARNATION_FILE = 'incarnation';

export interface Incarnation {
  incarnation: bigint;
  /**
   * Set when the stored file was unreadable as a number. The result is then
   * `max(now, file mtime + 1)`: the last incarnation was normally chosen at that mtime, so this exceeds
   * it unless the clock had already been set back before that start. Log it.
   */
  warning?: string;
}

const DECIMAL = /^[0-9]{1,20}$/;

export async function nextIncarnation(stateDir: string, nowMs: number): Promise<Incarnation> {
  if (!Number.isFinite(nowMs) || nowMs < 0) throw new RangeError(`nowMs must be a non-negative time, got ${nowMs}`);
  const file = join(stateDir, INCARNATION_FILE);
  const now = BigInt(Math.floor(nowMs));

  let text: string | undefined;
  try {
    text = await readFile(file, 'latin1');
  } catch (e) {
    // A first start has no file; anything else (permissions, a directory in the way) is the operator's
    // to fix, not a reason to guess.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`incarnation file ${file}: ${(e as Error).message}`);
  }

  let next: bigint;
  let warning: string | undefined;
  const trimmed = text?.trim();
  if (trimmed === undefined) {
    next = now;
  } else if (DECIMAL.test(trimmed) && BigInt(trimmed) <= MAX_U64) {
    const previous = BigInt(trimmed);
    if (previous >= MAX_U64) throw new Error(`incarnation file ${file}: ${previous} leaves no larger incarnation`);
    next = previous + 1n > now ? previous + 1n : now;
  } else {
    // Writes are atomic, so this is damage or a hand edit. Refusing to start would take the node out of
    // the cluster over a number we can nearly always recover; the mtime is the time it was written.
    const floor = BigInt(Math.ceil((await stat(file)).mtimeMs)) + 1n;
    next = floor > now ? floor : now;
    warning = `incarnation file ${file} is corrupt (${JSON.stringify(trimmed.slice(0, 40))}); using ${next}, above its modification time`;
  }
  if (next < 1n) next = 1n; // 0 is never valid on the wire

  await writeFileAtomic(file, `${next}\n`);
  return warning === undefined ? { incarnation: next } : { incarnation: next, warning };
}

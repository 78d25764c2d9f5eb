// The replica on disk (seed 001 §2.1: replicas persist across a restart, FIG. 4E): the whole database as
// one JSON file, replaced atomically, so a crash leaves the previous state or the new one. A missing file
// is an empty database (a new node; the full sync on join fills it). A file that does not parse is not
// silently treated as empty: it is moved aside as <file>.corrupt-<ms>, where an operator can read it,
// and load fails naming both paths. Started again, the daemon then finds no file and starts empty, and
// the sync on join brings the records back from the other replicas.
//
// Writes are not queued here: the daemon saves from one place, one save at a time (writeFileAtomic
// makes a fresh temporary file per call, two at once could finish in either order).
import { readFile, rename } from 'node:fs/promises';

import { writeFileAtomic } from '../util/atomic-file.js';
import { ClusterDb, parseSnapshot } from './database.js';
import { RecordError } from './object.js';

const FORMAT = 'vigil-db';
const FORMAT_VERSION = 1;

export class CorruptDatabaseError extends Error {
  constructor(readonly file: string, readonly keptAs: string, readonly reason: string) {
    const short = reason.length > 300 ? `${reason.slice(0, 300)}...` : reason;
    super(`the database ${file} is corrupt (${short}); moved aside to ${keptAs}; `
      + 'started again, this node begins empty and resyncs from the other nodes');
    this.name = 'CorruptDatabaseError';
  }
}

/** The file's text: a header, then the snapshot, sorted by tag so equal replicas give equal files. */
export function serializeDatabase(db: ClusterDb): string {
  return `${JSON.stringify({ format: FORMAT, formatVersion: FORMAT_VERSION, ...db.snapshot() }, null, 1)}\n`;
}

/** Parses the file's text; throws RecordError saying what is wrong. */
export function parseDatabase(text: string): ClusterDb {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new RecordError('not JSON', [(e as Error).message]);
  }
  const d = doc as { format?: unknown; formatVersion?: unknown } | null;
  if (typeof d !== 'object' || d === null || d.format !== FORMAT) throw new RecordError('not a vigil database', [`expected "format": "${FORMAT}"`]);
  if (d.formatVersion !== FORMAT_VERSION) {
    throw new RecordError('unknown format version', [`formatVersion ${JSON.stringify(d.formatVersion)}; this vigil reads ${FORMAT_VERSION}`]);
  }
  return new ClusterDb(parseSnapshot(doc, 'bad records'));
}

/**
 * Loads the replica. Missing: empty. Unreadable (permissions, a directory): the read error, file left
 * alone. Corrupt: moved aside and CorruptDatabaseError. `now` names the kept copy.
 */
export async function loadDatabase(file: string, now: number = Date.now()): Promise<ClusterDb> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new ClusterDb();
    throw e;
  }
  try {
    return parseDatabase(text);
  } catch (e) {
    if (!(e instanceof RecordError)) throw e;
    const keptAs = `${file}.corrupt-${Math.trunc(now)}`;
    await rename(file, keptAs);
    throw new CorruptDatabaseError(file, keptAs, e.message);
  }
}

/** Saves the replica atomically, readable by root only: commands may carry secrets in their env. */
export async function saveDatabase(file: string, db: ClusterDb): Promise<void> {
  await writeFileAtomic(file, serializeDatabase(db), 0o600);
}

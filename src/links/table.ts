// The stored link table of seed 004: which device path leads to which logical unit, saved when the
// cluster is installed so that a takeover finds its disks with one INQUIRY per disk instead of a scan.
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

import { DeviceOpenError } from '../scsi/errors.js';
import type { ScsiDevice } from '../scsi/device.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { OpenDevice, ScannedUnit } from './scan.js';
import type { LinkEntry, LinkTable } from './table-schema.js';

export const DEFAULT_LINK_TABLE = '/var/lib/vigil/links.json';

export type { LinkEntry, LinkTable };

export class LinkTableError extends Error {
  override name = 'LinkTableError';
}

export function tableFromScan(units: ScannedUnit[]): LinkTable {
  return {
    version: 1,
    savedAt: new Date().toISOString(),
    host: hostname(),
    entries: units.map((u) => {
      const e: LinkEntry = { identity: u.identity, paths: u.paths.map((p) => p.path) };
      const first = u.paths[0];
      if (first?.vendor) e.vendor = first.vendor;
      if (first?.product) e.product = first.product;
      return e;
    }),
  };
}

export async function saveLinkTable(file: string, table: LinkTable): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(table, null, 2) + '\n');
}

/** Loads and checks a link table; the error names the file and the offending field. */
export async function loadLinkTable(file: string): Promise<LinkTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LinkTableError(`${file}: no link table here (make one with: vigil links save --file ${file})`);
    throw new LinkTableError(`${file}: cannot read the link table: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LinkTableError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  // Loaded when needed: the schema library costs every `vigil` command its start-up.
  const { tableSchema } = await import('./table-schema.js');
  const parsed = tableSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new LinkTableError(`${file}: field ${where}: ${issue.message}`);
  }
  return parsed.data;
}

export type PathCheck =
  | { path: string; state: 'ok' }
  | { path: string; state: 'moved'; found: string | undefined }
  | { path: string; state: 'missing'; error: string }
  | { path: string; state: 'error'; error: string };

/** Asks `path` once (VPD 0x83) whether it still leads to `identity`; on a match the device stays open. */
async function checkPath(path: string, identity: string, open: OpenDevice): Promise<{ check: PathCheck; device?: ScsiDevice }> {
  let dev: ScsiDevice;
  try {
    dev = await open(path);
  } catch (e) {
    const missing = e instanceof DeviceOpenError && (e.code === 'ENOENT' || e.code === 'ENXIO' || e.code === 'ENODEV');
    return { check: { path, state: missing ? 'missing' : 'error', error: (e as Error).message } };
  }
  try {
    const found = await dev.identity();
    if (found === identity) return { check: { path, state: 'ok' }, device: dev };
    dev.close();
    return { check: { path, state: 'moved', found } };
  } catch (e) {
    dev.close();
    return { check: { path, state: 'error', error: (e as Error).message } };
  }
}

export class StaleLinkError extends Error {
  override name = 'StaleLinkError';
  readonly checks: PathCheck[];
  constructor(identity: string, checks: PathCheck[]) {
    const why = checks.map((c) => `${c.path}: ${describeCheck(c)}`).join('; ');
    super(`no stored path leads to ${identity} any more (${why}); rescan with: vigil links save`);
    this.checks = checks;
  }
}

export function describeCheck(c: PathCheck): string {
  switch (c.state) {
    case 'ok': return 'ok';
    case 'moved': return `now leads to ${c.found ?? 'a unit without identity'}`;
    case 'missing':
    case 'error': return c.error;
  }
}

/**
 * The fast path: opens the unit `identity` through its stored paths, trying each in turn, verified with
 * one INQUIRY (no scan). Returns the open device.
 */
export async function resolveLink(table: LinkTable, identity: string, open: OpenDevice): Promise<ScsiDevice> {
  const entry = table.entries.find((e) => e.identity === identity);
  if (!entry) throw new LinkTableError(`${identity} is not in the link table (saved ${table.savedAt} on ${table.host})`);
  const checks: PathCheck[] = [];
  for (const path of entry.paths) {
    const { check, device } = await checkPath(path, identity, open);
    if (device) return device;
    checks.push(check);
  }
  throw new StaleLinkError(identity, checks);
}

export interface EntryReport {
  identity: string;
  checks: PathCheck[];
}

/** Checks every stored path of every entry; nothing stays open. */
export async function verifyLinks(table: LinkTable, open: OpenDevice): Promise<EntryReport[]> {
  const reports: EntryReport[] = [];
  for (const entry of table.entries) {
    const checks: PathCheck[] = [];
    for (const path of entry.paths) {
      const { check, device } = await checkPath(path, entry.identity, open);
      device?.close();
      checks.push(check);
    }
    reports.push({ identity: entry.identity, checks });
  }
  return reports;
}

// `vigil collect`: one tar.gz with what support needs from a node, every file under one top directory
// vigil-collect-HOST-TIMESTAMP/, a manifest of what was collected and what could not be and why, and no
// secret in any of it (redact.ts). Written atomically, mode 0600: it holds host names and addresses.
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';

import { loadClusterKey } from '../wire/key.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { packageVersion } from '../util/package-root.js';
import { agentSection } from './agent.js';
import { configPart } from './config-part.js';
import { disksSection } from './disks.js';
import { doctorSection } from './doctor.js';
import { logsSection } from './logs.js';
import { MIN_SCRUBBED, scrub, secretForms } from './redact.js';
import { jsonFile, message, type CollectContext, type CollectedFile, type ManifestItem, type SectionResult } from './section.js';
import { stateSection } from './state.js';
import { tarGz } from './tar.js';
import { versionsSection } from './versions.js';

export interface CollectOptions {
  configFile: string;
  /** Which configured node this is (doctor's report); default: as vigild finds it. */
  node?: string;
  /** --socket; else the configuration's control.socket; else `defaultSocket`. */
  socket: string | undefined;
  defaultSocket: string;
  since: Date;
  logFiles: string[];
  timeoutMs: number;
  /** The archive's path; default ./<top directory>.tar.gz. */
  out?: string;
  now?: Date;
}

export interface CollectOutcome {
  path: string;
  top: string;
  items: ManifestItem[];
  scrubbed: { file: string; count: number }[];
}

/** A secret file's content is read to scrub it; one larger than this is no password or key. */
const MAX_SECRET_FILE = 64 * 1024;

export class CollectOutError extends Error {
  override name = 'CollectOutError';
  readonly code = 'EEXIST';
}

/** 20261207T211950Z */
export function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

export function bundleName(host: string, d: Date): string {
  return `vigil-collect-${host.replace(/[^A-Za-z0-9.-]/g, '_') || 'localhost'}-${stamp(d)}`;
}

/** The forms of every secret to scrub, and why some could not be looked for. */
async function secretsToScrub(files: string[], values: string[]): Promise<{ forms: Buffer[]; notes: string[] }> {
  const forms: Buffer[] = [];
  const notes: string[] = [];
  for (const file of files) {
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error('not a regular file');
      if (st.size > MAX_SECRET_FILE) throw new Error(`${st.size} bytes, too large to be a key or password`);
      const found = secretForms(await readFile(file));
      forms.push(...found.forms);
      if (found.tooShort) notes.push(`${file}: a part shorter than ${MIN_SCRUBBED} characters is not scrubbed from other files`);
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      // Never copied either way; only the check of the other files for its content is lost.
      notes.push(`${file}: ${missing ? 'no such file' : message(e)}; its content (never copied) could not be looked for in the other files`);
    }
  }
  for (const v of values) {
    if (v.length >= MIN_SCRUBBED) forms.push(...secretForms(v).forms);
  }
  const unique = [...new Map(forms.map((f) => [f.toString('hex'), f])).values()];
  return { forms: unique.sort((a, b) => b.length - a.length), notes };
}

async function guarded(name: string, run: () => Promise<SectionResult>): Promise<SectionResult> {
  try {
    return await run();
  } catch (e) {
    // A bug in one part costs that part, not the bundle.
    return { files: [], items: [{ item: name, state: 'failed', files: [], note: `unexpected error: ${message(e)}` }] };
  }
}

export async function collect(o: CollectOptions): Promise<CollectOutcome> {
  const now = o.now ?? new Date();
  const host = hostname();
  const top = bundleName(host, now);
  const out = o.out ?? `${top}.tar.gz`;
  // Never replace a file: an earlier bundle, or anything else of that name, stays as it was.
  if (await access(out, constants.F_OK).then(() => true, () => false)) throw new CollectOutError(`${out} exists; give another --out`);

  const config = await configPart(o.configFile);
  const clusterKey = config.config ? await loadClusterKey(config.config.keyFile).catch(() => undefined) : undefined;
  const socket = o.socket ?? config.config?.control.socket ?? o.defaultSocket;
  const ctx: CollectContext = {
    configFile: o.configFile, ...(o.node === undefined ? {} : { node: o.node }), config: config.config, clusterKey, socket, since: o.since, logFiles: o.logFiles, timeoutMs: o.timeoutMs,
  };
  const sections = [
    await guarded('versions', () => versionsSection()),
    await guarded('agent', () => agentSection(ctx)),
    await guarded('logs', () => logsSection(ctx)),
    await guarded('disks', () => disksSection(ctx)),
    await guarded('state', () => stateSection(ctx)),
    await guarded('doctor', () => doctorSection(ctx)),
  ];
  const files: CollectedFile[] = [...config.files, ...sections.flatMap((s) => s.files)];
  const items: ManifestItem[] = [...config.items, ...sections.flatMap((s) => s.items)];

  const secrets = await secretsToScrub(config.secretFiles, config.secrets);
  const scrubbed: { file: string; count: number }[] = [];
  const clean = files.map((f) => {
    const { data, count } = scrub(Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data, 'utf8'), secrets.forms);
    if (count) scrubbed.push({ file: f.path, count });
    return { path: f.path, data };
  });
  const manifest = jsonFile('manifest.json', {
    bundle: top,
    createdAt: now.toISOString(),
    host,
    vigil: packageVersion(),
    options: { config: o.configFile, socket, since: o.since.toISOString(), logs: o.logFiles },
    items,
    secrets: {
      secretFiles: config.secretFiles,
      scrubbed,
      notes: secrets.notes,
    },
  });
  const manifestBytes = scrub(Buffer.from(manifest.data), secrets.forms).data;

  const mtime = Math.floor(now.getTime() / 1000);
  const dirs = new Set<string>();
  for (const f of clean) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join('/')}/`);
  }
  const archive = tarGz([
    { name: `${top}/`, mtime },
    { name: `${top}/manifest.json`, data: manifestBytes, mtime },
    ...[...dirs].sort().map((d) => ({ name: `${top}/${d}`, mtime })),
    ...clean.map((f) => ({ name: `${top}/${f.path}`, data: f.data, mtime })),
  ]);
  await writeFileAtomic(out, archive, 0o600);
  return { path: out, top, items, scrubbed };
}

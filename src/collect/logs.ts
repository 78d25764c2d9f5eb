// The agent's recent logs. vigild writes pino JSON lines to stdout, which under systemd (the unit is
// vigild.service) land in the journal: `journalctl -u vigild` is where they are. Two files from it:
// journal.txt, everything the journal has for the unit (systemd's own lines too: starts, exits, watchdog
// kills) with precise timestamps; vigild.jsonl, the agent's JSON lines alone, which `vigil timeline`
// reads as they are. A node run without systemd (stdout to a file) names its files with --log: each is
// copied from --since on. No journal (no journalctl, no journal files, no permission) is an item noted
// absent, not a failure.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';

import { message, type CollectContext, type CollectedFile, type ManifestItem, type SectionResult } from './section.js';

export const VIGILD_UNIT = 'vigild';

/** The journal's output is read whole; beyond this the call fails and the note says so. */
const MAX_JOURNAL_BYTES = 512 * 1024 * 1024;

interface Ran { code: number | string; stdout: string; stderr: string }

function run(argv: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: MAX_JOURNAL_BYTES, env: { ...process.env, SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' } },
      (error, stdout, stderr) => {
        const code = error ? ((error as NodeJS.ErrnoException).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' || typeof code === 'string' ? code : 1, stdout, stderr });
      });
  });
}

/** journalctl's --since form: the time in UTC, as every systemd since 2xx reads it. */
export function journalTime(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

async function journal(ctx: CollectContext): Promise<SectionResult> {
  const base = ['journalctl', '--unit', VIGILD_UNIT, '--since', journalTime(ctx.since), '--no-pager', '--utc'];
  const full = await run([...base, '--output', 'short-iso-precise'], 120_000);
  const item = (state: ManifestItem['state'], files: CollectedFile[], note: string): SectionResult =>
    ({ files, items: [{ item: 'logs: the journal of vigild.service', state, files: files.map((f) => f.path), note }] });
  if (full.code === 'ENOENT') return item('absent', [], 'journalctl is not installed: no systemd journal on this node');
  const stderr = full.stderr.trim().split('\n')[0] ?? '';
  if (full.code !== 0) return item('failed', [], `journalctl failed (${full.code}): ${stderr}`);
  // journalctl exits 0 when it could open no journal file at all (no journald, or a user who may not read it).
  if (/No journal files were (found|opened)/i.test(full.stderr)) return item('absent', [], `journalctl: ${stderr}`);
  const agent = await run([...base, '--output', 'cat'], 120_000);
  const jsonLines = agent.code === 0 ? agent.stdout.split('\n').filter((l) => l.startsWith('{')) : [];
  const files: CollectedFile[] = [{ path: 'logs/journal.txt', data: full.stdout }, { path: 'logs/vigild.jsonl', data: jsonLines.map((l) => `${l}\n`).join('') }];
  const entries = full.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('-- ')).length;
  const notes = [`${entries} journal line${entries === 1 ? '' : 's'} since ${ctx.since.toISOString()}, ${jsonLines.length} of them the agent's JSON`];
  if (stderr) notes.push(`journalctl said: ${stderr}`);
  if (agent.code !== 0) notes.push(`the agent's lines alone could not be read (${agent.code}): ${agent.stderr.trim().split('\n')[0] ?? ''}`);
  return item(agent.code === 0 ? 'collected' : 'partial', files, notes.join('; '));
}

/**
 * The lines of a log file from `since` on: a JSON line by its pino `time`; a line that is not (a stack
 * trace, a cut line) goes with the line before it.
 */
export async function logSince(file: string, since: Date): Promise<{ text: string; kept: number; total: number }> {
  const from = since.getTime();
  const out: string[] = [];
  let keep = false;
  let total = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    total++;
    if (line.startsWith('{')) {
      try {
        const time = (JSON.parse(line) as { time?: unknown }).time;
        if (typeof time === 'number') keep = time >= from;
      } catch { /* a cut line: as the one before */ }
    }
    if (keep) out.push(line);
  }
  return { text: out.map((l) => `${l}\n`).join(''), kept: out.length, total };
}

async function logFiles(ctx: CollectContext): Promise<SectionResult> {
  const result: SectionResult = { files: [], items: [] };
  const used = new Set<string>();
  for (const file of ctx.logFiles) {
    let name = basename(file);
    for (let i = 2; used.has(name); i++) name = `${i}-${basename(file)}`;
    used.add(name);
    const path = `logs/files/${name}`;
    try {
      const { text, kept, total } = await logSince(file, ctx.since);
      result.files.push({ path, data: text });
      result.items.push({ item: `logs: ${file}`, state: 'collected', files: [path], note: `${kept} of ${total} lines, since ${ctx.since.toISOString()}` });
    } catch (e) {
      result.items.push({ item: `logs: ${file}`, state: 'failed', files: [], note: message(e) });
    }
  }
  return result;
}

export async function logsSection(ctx: CollectContext): Promise<SectionResult> {
  const [j, f] = [await journal(ctx), await logFiles(ctx)];
  return { files: [...j.files, ...f.files], items: [...j.items, ...f.items] };
}

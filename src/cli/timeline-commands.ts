// `vigil timeline LOG...`: the agents' logs of every node merged into one incident timeline (src/timeline),
// as text, as JSON (--json) or as a self-contained HTML page (--html FILE).
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Command, InvalidArgumentError } from 'commander';

import { DEFAULT_GAP_MS, mergeTimeline } from '../timeline/merge.js';
import { parseNodeLog, type NodeLog } from '../timeline/parse.js';
import { renderHtml } from '../timeline/render-html.js';
import { renderText } from '../timeline/render-text.js';
import type { Report } from './output.js';
import { act, intOption } from './run.js';

interface TimelineOptions {
  html?: string;
  offset: Record<string, number>;
  gap: number;
}

/** A file is one node's log; a directory gives each regular file in it, in name order. */
async function logFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    if ((await stat(p)).isDirectory()) {
      const entries = await readdir(p, { withFileTypes: true });
      out.push(...entries.filter((e) => e.isFile()).map((e) => join(p, e.name)).sort());
    } else out.push(p);
  }
  return out;
}

function offsetOption(text: string, previous: Record<string, number>): Record<string, number> {
  const m = /^([^=]+)=(-?\d+(?:\.\d+)?)$/.exec(text);
  if (!m) throw new InvalidArgumentError('expected NODE=MS (that node\'s clock minus the reference node\'s, in ms)');
  return { ...previous, [m[1]!]: Number(m[2]) };
}

async function timeline(paths: string[], o: TimelineOptions): Promise<Report> {
  const logs: NodeLog[] = [];
  for (const file of await logFiles(paths)) logs.push(parseNodeLog(file, await readFile(file, 'utf8')));
  for (const l of logs.filter((x) => x.malformed > 0)) {
    process.stderr.write(`vigil timeline: ${l.file}: ${l.malformed} malformed line${l.malformed === 1 ? '' : 's'} skipped (the first is line ${l.firstMalformedLine})\n`);
  }
  const t = mergeTimeline(logs, { offsets: o.offset, gapMs: o.gap });
  let human = renderText(t);
  if (o.html) {
    await writeFile(o.html, renderHtml(t));
    human += `\n\nHTML page: ${o.html}`;
  }
  return { json: t, human };
}

export function timelineCommand(): Command {
  return new Command('timeline')
    .description('merge the agents\' JSON logs of every node into one incident timeline, phase by phase')
    .argument('<log...>', 'one log file per node (pino JSON lines), or a directory of them')
    .option('--html <file>', 'also write a self-contained HTML page with an SVG picture of each incident')
    .option('--offset <node=ms>', 'a node\'s known clock offset from the reference node, ms; repeatable', offsetOption, {})
    .option('--gap <ms>', 'silence that separates two incidents', intOption(1), DEFAULT_GAP_MS)
    .action(act((paths: string[], o: TimelineOptions) => timeline(paths, o)));
}

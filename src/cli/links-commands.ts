// `vigil links …`: the stored link table of seed 004 (identity → device paths), so a takeover opens its
// disks with one INQUIRY each instead of scanning every device.
import { Command } from 'commander';

import { defaultOpener, groupByIdentity, scanPaths } from '../links/scan.js';
import {
  DEFAULT_LINK_TABLE, describeCheck, LinkTableError, loadLinkTable, resolveLink, saveLinkTable, tableFromScan, verifyLinks,
} from '../links/table.js';
import { Exit } from './exit-codes.js';
import type { Report } from './output.js';
import { act } from './run.js';

interface LinksOptions {
  file: string;
}

function file(cmd: Command): string {
  return (cmd.optsWithGlobals() as LinksOptions).file;
}

async function save(o: { only?: string[] }, cmd: Command): Promise<Report> {
  const paths = await scanPaths({ open: defaultOpener() });
  let units = groupByIdentity(paths);
  if (o.only?.length) {
    const missing = o.only.filter((id) => !units.some((u) => u.identity === id));
    if (missing.length) throw new LinkTableError(`no path leads to ${missing.join(', ')}; nothing saved`);
    units = units.filter((u) => o.only!.includes(u.identity));
  }
  const table = tableFromScan(units);
  await saveLinkTable(file(cmd), table);
  const failed = paths.filter((p) => p.error);
  return {
    json: { file: file(cmd), table, unidentified: failed.map((p) => ({ path: p.path, error: p.error })) },
    human: [
      `saved ${table.entries.length} unit${table.entries.length === 1 ? '' : 's'} to ${file(cmd)}`,
      ...table.entries.map((e) => `  ${e.identity}  ${e.paths.join(' ')}`),
      ...failed.map((p) => `  not identified: ${p.path}: ${p.error}`),
    ].join('\n'),
  };
}

async function show(_o: unknown, cmd: Command): Promise<Report> {
  const table = await loadLinkTable(file(cmd));
  return {
    json: table,
    human: [`${file(cmd)}: saved ${table.savedAt} on ${table.host}, ${table.entries.length} unit${table.entries.length === 1 ? '' : 's'}`,
      ...table.entries.map((e) => `  ${e.identity}  ${e.paths.join(' ')}${e.vendor ? `  (${[e.vendor, e.product].filter(Boolean).join(' ')})` : ''}`)].join('\n'),
  };
}

async function verify(_o: unknown, cmd: Command): Promise<Report> {
  const table = await loadLinkTable(file(cmd));
  const reports = await verifyLinks(table, defaultOpener());
  const bad = reports.some((r) => r.checks.some((c) => c.state !== 'ok'));
  return {
    json: { file: file(cmd), ok: !bad, units: reports },
    human: reports.map((r) => [`${r.identity}`, ...r.checks.map((c) => `  ${c.path}: ${describeCheck(c)}`)].join('\n')).join('\n') +
      (bad ? '\nsome links are stale: rescan with vigil links save' : ''),
    exitCode: bad ? Exit.LINKS_STALE : Exit.OK,
  };
}

async function resolve(identity: string, _o: unknown, cmd: Command): Promise<Report> {
  const table = await loadLinkTable(file(cmd));
  const dev = await resolveLink(table, identity, defaultOpener());
  dev.close();
  return { json: { identity, path: dev.path }, human: dev.path };
}

export function linksCommand(): Command {
  const links = new Command('links')
    .description('the stored link table: which device path leads to which logical unit')
    .option('--file <path>', 'the link table file', process.env.VIGIL_LINKS ?? DEFAULT_LINK_TABLE);
  links.command('save').description('scan every sg device and store identity → paths (the slow path, done once)')
    .option('--only <identity...>', 'store only these units')
    .action(act(save));
  links.command('show').description('print the stored table').action(act(show));
  links.command('verify').description('check every stored path with one INQUIRY; exit 4 if any is stale').action(act(verify));
  links.command('resolve').argument('<identity>').description('the fast path: the first stored path that still leads to the unit').action(act(resolve));
  return links;
}

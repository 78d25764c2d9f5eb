// The shared disks as this node sees them now: the stored link table (seed 004), every sg path's identity
// (the scan `vigil links save` makes), and for each configured disk, on each path that leads to it (stored
// or found), TEST UNIT READY, PERSISTENT RESERVE IN READ KEYS and READ RESERVATION: the same ScsiDevice
// calls `vigil scsi tur`, `pr keys` and `pr reservation` make, and the lab tests against LIO. Nothing is
// written to a disk. Each key is named by the node it belongs to where the configuration (and the cluster
// key, for derived keys) tells.
import { readFile } from 'node:fs/promises';

import { errorJson } from '../cli/output.js';
import type { Config } from '../config/schema.js';
import { reservationKey } from '../daemon/disks.js';
import { defaultOpener, groupByIdentity, scanPaths, type OpenDevice, type ScannedPath } from '../links/scan.js';
import { loadLinkTable } from '../links/table.js';
import { formatKey } from '../scsi/pr.js';
import { jsonFile, message, oneItem, type CollectContext, type CollectedFile, type SectionResult } from './section.js';

async function attempt<T>(fn: () => Promise<T>): Promise<T | { error: Record<string, unknown> }> {
  try {
    return await fn();
  } catch (e) {
    return { error: errorJson(e instanceof Error ? e : new Error(String(e))) };
  }
}

/** key (hex) → node name, for every node whose key this node can know. */
export function keyOwners(config: Config, clusterKey: Buffer | undefined): Record<string, string> {
  const owners: Record<string, string> = {};
  for (const node of config.nodes) {
    if (node.reservationKey === undefined && clusterKey === undefined) continue;
    owners[formatKey(reservationKey(config, node, clusterKey ?? Buffer.alloc(0)))] = node.name;
  }
  return owners;
}

/** One path's reservation state; every failure is recorded in place of its answer. */
export async function pathState(path: string, open: OpenDevice, owners: Record<string, string>): Promise<Record<string, unknown>> {
  const name = (k: bigint) => ({ key: formatKey(k), node: owners[formatKey(k)] ?? null });
  let dev;
  try {
    dev = await open(path);
  } catch (e) {
    return { path, open: errorJson(e as Error) };
  }
  try {
    return {
      path,
      testUnitReady: await attempt(async () => (await dev.testUnitReady(), 'GOOD')),
      keys: await attempt(async () => {
        const k = await dev.prReadKeys();
        return { generation: k.generation, keys: k.keys.map(name), truncated: k.truncated };
      }),
      reservation: await attempt(async () => {
        const r = await dev.prReadReservation();
        return { generation: r.generation, reservation: r.reservation && { ...name(r.reservation.key), type: r.reservation.type ?? `0x${r.reservation.typeCode.toString(16)}`, scope: r.reservation.scope } };
      }),
    };
  } finally {
    dev.close();
  }
}

export async function disksSection(ctx: CollectContext, open: OpenDevice = defaultOpener({ defaultTimeoutMs: 10_000 })): Promise<SectionResult> {
  const config = ctx.config;
  if (!config) return oneItem('disks: link table, paths and reservation state', 'absent', [], 'no loaded configuration: which disks and which link table are not known');
  const result: SectionResult = { files: [], items: [] };

  let stored: Map<string, string[]> = new Map();
  try {
    const text = await readFile(config.linkTable, 'utf8');
    result.files.push({ path: 'links/table.json', data: text });
    try {
      stored = new Map((await loadLinkTable(config.linkTable)).entries.map((e) => [e.identity, e.paths]));
      result.items.push({ item: 'links: the stored link table', state: 'collected', files: ['links/table.json'], note: config.linkTable });
    } catch (e) {
      result.items.push({ item: 'links: the stored link table', state: 'partial', files: ['links/table.json'], note: `copied, but vigil cannot use it: ${message(e)}` });
    }
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    result.items.push({ item: 'links: the stored link table', state: missing ? 'absent' : 'failed', files: [], note: missing ? `no ${config.linkTable} (vigil links save makes it)` : message(e) });
  }

  let scanned: ScannedPath[] = [];
  try {
    scanned = await scanPaths({ open });
    const file = jsonFile('links/scan.json', scanned);
    result.files.push(file);
    result.items.push({ item: 'links: every sg path and its unit (the scan)', state: 'collected', files: [file.path], note: `${scanned.length} sg path${scanned.length === 1 ? '' : 's'}` });
  } catch (e) {
    result.items.push({ item: 'links: every sg path and its unit (the scan)', state: 'failed', files: [], note: message(e) });
  }
  const found = new Map(groupByIdentity(scanned).map((u) => [u.identity, u.paths.map((p) => p.path)]));

  const owners = keyOwners(config, ctx.clusterKey);
  for (const disk of config.disks) {
    const paths = [...new Set([...(stored.get(disk.identity) ?? []), ...(found.get(disk.identity) ?? [])])];
    const states: Record<string, unknown>[] = [];
    for (const path of paths) {
      const state = await pathState(path, open, owners);
      states.push({ ...state, stored: stored.get(disk.identity)?.includes(path) ?? false, found: found.get(disk.identity)?.includes(path) ?? false });
    }
    const file: CollectedFile = jsonFile(`disks/${disk.name}.json`, { disk: disk.name, identity: disk.identity, reservation: disk.reservation, keyOwners: owners, paths: states });
    result.files.push(file);
    const failed = states.filter((s) => 'open' in s || (s.keys as { error?: unknown } | undefined)?.error !== undefined).length;
    result.items.push({
      item: `disks: ${disk.name} (${disk.identity})`,
      state: paths.length === 0 ? 'absent' : failed === paths.length ? 'failed' : failed ? 'partial' : 'collected',
      files: [file.path],
      note: paths.length === 0 ? 'no path leads to this unit: neither stored nor found by the scan'
        : `${paths.length} path${paths.length === 1 ? '' : 's'}${failed ? `, ${failed} of them without an answer to READ KEYS` : ''}`,
    });
  }
  const unnamed = config.nodes.filter((n) => n.reservationKey === undefined && ctx.clusterKey === undefined).map((n) => n.name);
  if (config.disks.length > 0 && unnamed.length > 0) {
    result.items.push({ item: 'disks: whose key is whose', state: 'partial', files: [], note: `the cluster key could not be read, so the derived keys of ${unnamed.join(', ')} are not named` });
  }
  if (config.disks.length === 0) result.items.push({ item: 'disks: reservation state', state: 'absent', files: [], note: 'the configuration names no disk' });
  return result;
}

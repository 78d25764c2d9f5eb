// The slow path of seed 004: find every SCSI generic node and ask each which logical unit it leads to
// (VPD page 0x83). Touches every device, so it is for building the link table and for falling back when
// a stored link has gone stale, never for a takeover's critical path.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { ScsiDevice, type ScsiDeviceOptions } from '../scsi/device.js';

export interface ScsiNode {
  /** /dev/sgN */
  path: string;
  /** host:channel:target:lun */
  hctl: string;
  /** /dev/sdX when the unit is a disk with a block driver bound */
  blockDevice?: string;
  vendor?: string;
  product?: string;
}

export interface ScannedPath extends ScsiNode {
  /** The unit's identity (unitIdentity of VPD 0x83); undefined when the path failed or has none. */
  identity?: string;
  /** Why the path could not be identified. */
  error?: string;
}

const SYSFS_SG = '/sys/class/scsi_generic';

async function attr(dir: string, name: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, name), 'latin1')).trim();
  } catch {
    return undefined;
  }
}

/** The sg nodes sysfs knows, in sg number order, with what sysfs says of each (no SCSI command sent). */
export async function listScsiNodes(sysfs = SYSFS_SG): Promise<ScsiNode[]> {
  let names: string[];
  try {
    names = await readdir(sysfs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []; // no SCSI layer at all
    throw e;
  }
  names = names.filter((n) => /^sg\d+$/.test(n)).sort((a, b) => Number(a.slice(2)) - Number(b.slice(2)));
  return Promise.all(names.map(async (name) => {
    const dev = join(sysfs, name, 'device');
    const node: ScsiNode = { path: `/dev/${name}`, hctl: basename(await readlink(dev).catch(() => '?')) };
    const block = await readdir(join(dev, 'block')).catch(() => [] as string[]);
    if (block[0]) node.blockDevice = `/dev/${block[0]}`;
    const vendor = await attr(dev, 'vendor');
    const product = await attr(dev, 'model');
    if (vendor) node.vendor = vendor;
    if (product) node.product = product;
    return node;
  }));
}

export type OpenDevice = (path: string) => Promise<ScsiDevice>;

export function defaultOpener(options: ScsiDeviceOptions = {}): OpenDevice {
  return (path) => ScsiDevice.open(path, { defaultTimeoutMs: 10_000, ...options });
}

/** Opens `path` and returns the identity of the unit behind it (one INQUIRY, VPD 0x83). */
export async function identify(path: string, open: OpenDevice): Promise<string | undefined> {
  const dev = await open(path);
  try {
    return await dev.identity();
  } finally {
    dev.close();
  }
}

/**
 * Identifies every sg node. Paths are queried `concurrency` at a time: each open path has its own thread,
 * so a slow or wedged device delays only its own slot.
 */
export async function scanPaths(opts: { open?: OpenDevice; sysfs?: string; concurrency?: number } = {}): Promise<ScannedPath[]> {
  const open = opts.open ?? defaultOpener();
  const nodes = await listScsiNodes(opts.sysfs);
  const out: ScannedPath[] = nodes.map((n) => ({ ...n }));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < out.length; i = next++) {
      const p = out[i]!;
      try {
        const identity = await identify(p.path, open);
        if (identity) p.identity = identity;
        else p.error = 'no logical-unit designator in VPD page 0x83';
      } catch (e) {
        p.error = (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return out;
}

export interface ScannedUnit {
  identity: string;
  paths: ScannedPath[];
}

/** Paths grouped by the unit they lead to, in order of first appearance. */
export function groupByIdentity(paths: ScannedPath[]): ScannedUnit[] {
  const units = new Map<string, ScannedPath[]>();
  for (const p of paths) {
    if (!p.identity) continue;
    const list = units.get(p.identity);
    if (list) list.push(p);
    else units.set(p.identity, [p]);
  }
  return [...units].map(([identity, list]) => ({ identity, paths: list }));
}

// The resources of an application object on this node: what the flows' checkResources, startResources
// and stopResources actions mean here. A resource spec in the database is plain JSON (from the config);
// each kind names what it needs on this node and how it is started and stopped.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';

import type { ResourceConfig } from '../config/schema.js';
import type { AppCommand, ResourceSpec } from '../db/object.js';
import { addAddress, answeredBy, hasAddress, removeAddress, type IpAddressSpec } from '../resources/ip-address.js';
import { getent } from '../resources/app-process.js';
import { runCommand } from '../resources/run-command.js';
import type { StaleCheck } from '../resources/stale-start.js';

/** A disk ownership resource is started and stopped by whoever owns the SCSI side (src/daemon/disks.ts). */
export interface DiskOwnership {
  check(disk: string): Promise<string | undefined>;
  /** Takes the disk; resolves with the reservation generation read after taking it (0: none, SCSI-2). */
  acquire(disk: string): Promise<number>;
  release(disk: string): Promise<void>;
  /** The block device (/dev/sdX) of the disk on this node, found through the stored link table. */
  blockDevice(disk: string): Promise<string>;
}

export class ResourceError extends Error {}

/** The disks of an agent without SCSI (tests, and `vigild --clear-leftovers`, which touches addresses only). */
export const NO_DISKS: DiskOwnership = {
  check: async (disk) => `disk ${disk}: no SCSI support in this agent`,
  acquire: async (disk) => { throw new Error(`disk ${disk}: no SCSI support in this agent`); },
  release: async () => {},
  blockDevice: async (disk) => { throw new Error(`disk ${disk}: no SCSI support in this agent`); },
};

function ipSpec(r: Extract<ResourceConfig, { kind: 'ip' }>, node: string): IpAddressSpec {
  const iface = r.interface[node];
  if (iface === undefined) throw new ResourceError(`ip ${r.address}: no interface configured for node ${node}`);
  return { address: r.address, prefixLength: r.prefixLength, interface: iface };
}

function asResource(spec: ResourceSpec): ResourceConfig {
  return spec as unknown as ResourceConfig;
}

export function resourceName(spec: ResourceSpec): string {
  const r = asResource(spec);
  switch (r.kind) {
    case 'disk': return `disk ${r.disk}`;
    case 'mount': return `mount ${r.path}`;
    case 'ip': return `ip ${r.address}/${r.prefixLength}`;
    default: return `unknown resource ${JSON.stringify(spec)}`;
  }
}

export class Resources {
  constructor(private readonly node: string, private readonly disks: DiskOwnership) {}

  /**
   * What is missing on this node for these resources and this command (seed 001 §3.5 step 4); [] =
   * sufficient. `probeAddresses`: an address another host still answers for counts as missing (a takeover
   * from a host that nothing fenced: it may be alive, cut off from the cluster but serving).
   */
  async missing(resources: ResourceSpec[], command: AppCommand, o: { probeAddresses?: boolean } = {}): Promise<string[]> {
    const out: string[] = [];
    const program = command.argv[0];
    if (program === undefined) out.push('command: empty');
    else if (program.includes('/')) {
      await access(program, constants.X_OK).catch(() => out.push(`command: ${program} is not an executable file here`));
    }
    // The account it runs as, on this node (accounts may differ between nodes).
    const accounts: ['passwd' | 'group', string | undefined][] = [['passwd', command.user], ['group', command.group], ...(command.groups ?? []).map((g): ['group', string] => ['group', g])];
    for (const [db, name] of accounts) {
      if (name !== undefined && !(await getent(db, name))) out.push(`command: no ${db === 'passwd' ? 'user' : 'group'} ${name} on this node`);
    }
    const interfaces = networkInterfaces();
    for (const spec of resources) {
      const r = asResource(spec);
      if (r.kind === 'ip') {
        const iface = r.interface[this.node];
        if (iface === undefined) out.push(`${resourceName(spec)}: no interface configured for ${this.node}`);
        else if (!(iface in interfaces)) out.push(`${resourceName(spec)}: interface ${iface} is not up here`);
        else if (o.probeAddresses) {
          const ip = ipSpec(r, this.node);
          const owner = (await hasAddress(ip).catch(() => false)) ? undefined : await answeredBy(ip);
          if (owner) out.push(`${resourceName(spec)}: still answered by another host (${owner}): its former host may be alive, cut off from the cluster but serving`);
        }
      } else if (r.kind === 'mount') {
        const s = await stat(r.path).catch(() => undefined);
        if (!s?.isDirectory()) out.push(`${resourceName(spec)}: no directory ${r.path} here`);
      } else if (r.kind === 'disk') {
        const why = await this.disks.check(r.disk);
        if (why) out.push(`${resourceName(spec)}: ${why}`);
      } else {
        out.push(resourceName(spec));
      }
    }
    return out;
  }

  /**
   * Starts a resource; a disk resolves with its fencing token (DiskOwnership.acquire), the rest with 0.
   * takeOver: an address still answered by its former host is taken all the same (ip-address.ts);
   * released: its former host removed it and said so (a planned switchover): no probe. stale:
   * whether the decision to start still holds, asked last before an address is added (stale-start.ts).
   */
  async start(spec: ResourceSpec, o: { takeOver?: boolean; released?: boolean; log?: (message: string) => void; stale?: StaleCheck } = {}): Promise<number> {
    const r = asResource(spec);
    switch (r.kind) {
      case 'ip': {
        const from = await addAddress(ipSpec(r, this.node), { takeOver: o.takeOver === true, released: o.released === true, ...(o.stale ? { stale: o.stale } : {}) });
        if (from) o.log?.(`${resourceName(spec)} taken over from ${from}, which still answered for it (it was fenced or sent distress)`);
        return 0;
      }
      case 'disk': return this.disks.acquire(r.disk);
      case 'mount': {
        const device = await this.disks.blockDevice(r.disk);
        const args = ['mount', '-t', r.fstype, ...(r.options.length ? ['-o', r.options.join(',')] : []), device, r.path];
        await runCommand(args, 60_000);
        return 0;
      }
      default: throw new ResourceError(`cannot start ${resourceName(spec)}`);
    }
  }

  /** The address this node adds for an ip resource (undefined: not an address, or none for this node). */
  address(spec: ResourceSpec): IpAddressSpec | undefined {
    const r = asResource(spec);
    return r.kind === 'ip' && r.interface[this.node] !== undefined ? ipSpec(r, this.node) : undefined;
  }

  /**
   * Removes this node's copy of the resource's service address, if it is an address and present: one left
   * by an agent that died while its app was hosted elsewhere. True if there was one.
   */
  async removeStaleAddress(spec: ResourceSpec): Promise<boolean> {
    const r = asResource(spec);
    if (r.kind !== 'ip' || r.interface[this.node] === undefined) return false;
    const ip = ipSpec(r, this.node);
    if (!(await hasAddress(ip).catch(() => false))) return false;
    await removeAddress(ip);
    return true;
  }

  async stop(spec: ResourceSpec): Promise<void> {
    const r = asResource(spec);
    switch (r.kind) {
      case 'ip': return removeAddress(ipSpec(r, this.node));
      case 'disk': return this.disks.release(r.disk);
      case 'mount': {
        const mounted = await runCommand(['mountpoint', '-q', r.path]).then(() => true, () => false);
        if (mounted) await runCommand(['umount', r.path], 60_000);
        return;
      }
      default: throw new ResourceError(`cannot stop ${resourceName(spec)}`);
    }
  }
}

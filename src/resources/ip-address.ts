// A service address (virtual IP) that moves with its application: added on the host's interface, then
// announced with gratuitous ARP so that clients and switches forget the old owner's MAC at once instead of
// after their neighbour-cache timeout; removed on stop.
import { spawn } from 'node:child_process';

import { runCommand } from './run-command.js';

export interface IpAddressSpec { address: string; prefixLength: number; interface: string }

function cidr(spec: IpAddressSpec): string {
  return `${spec.address}/${spec.prefixLength}`;
}

export async function hasAddress(spec: IpAddressSpec): Promise<boolean> {
  const { stdout } = await runCommand(['ip', '-o', 'addr', 'show', 'dev', spec.interface]);
  return stdout.split('\n').some((l) => l.includes(` ${cidr(spec)} `));
}

/** Adds the address (idempotent) and sends gratuitous ARP for it (IPv4). */
export async function addAddress(spec: IpAddressSpec, announce = true): Promise<void> {
  if (!(await hasAddress(spec))) {
    await runCommand(['ip', 'addr', 'add', cidr(spec), 'dev', spec.interface]);
  }
  if (announce && !spec.address.includes(':')) announce_(spec);
}

/**
 * Gratuitous ARP (-U: unsolicited), two announcements a second apart in case one is lost. Not awaited:
 * the first leaves at once, but arping itself lasts the whole interval, and the failover must not.
 */
function announce_(spec: IpAddressSpec): void {
  const child = spawn('arping', ['-q', '-U', '-c', '2', '-I', spec.interface, spec.address], { stdio: 'ignore' });
  child.on('error', (e) => process.emitWarning(`gratuitous ARP for ${spec.address}: ${e.message}`));
  child.unref();
}

/** Removes the address; absent already is success. */
export async function removeAddress(spec: IpAddressSpec): Promise<void> {
  if (await hasAddress(spec)) {
    await runCommand(['ip', 'addr', 'del', cidr(spec), 'dev', spec.interface]);
  }
}

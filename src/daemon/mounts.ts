// Where a shared disk is mounted on this node, from the kernel's own table (/proc/self/mountinfo): by
// device number, so a mount made under another name (/dev/disk/by-id/…, a partition, an LVM volume on the
// disk) is found too. A mount the kernel still holds writes (journal, atime) whenever the node's key is
// registered, so a node never registers with one (src/daemon/disks.ts) and never releases a disk whose file
// system it could not unmount.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';

export interface MountEntry {
  /** "major:minor" of the mounted device. */
  device: string;
  mountPoint: string;
  fstype: string;
  /** What was mounted, as mount was told (/dev/sdb1, or a by-id name). */
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The entries of a mountinfo text (proc(5)); lines that do not parse are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields.length < dash + 3) continue;
    out.push({ device: fields[2]!, mountPoint: unescape(fields[4]!), fstype: fields[dash + 1]!, source: unescape(fields[dash + 2]!) });
  }
  return out;
}

/** "major:minor" of a block device node. */
export async function deviceNumber(path: string): Promise<string> {
  const rdev = (await stat(path, { bigint: true })).rdev;
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * The device numbers of a disk (/dev/sdX), its partitions and what is stacked on them (device-mapper,
 * md): whatever of these is mounted writes to the disk.
 */
export async function diskDeviceNumbers(blockDevice: string, sys = '/sys/class/block'): Promise<Set<string>> {
  const numbers = new Set<string>();
  const seen = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    if (seen.has(name)) return;
    seen.add(name);
    const dev = await readFile(`${sys}/${name}/dev`, 'utf8').catch(() => undefined);
    if (dev) numbers.add(dev.trim());
    const entries = await readdir(`${sys}/${name}`).catch(() => [] as string[]);
    for (const e of entries) if (e.startsWith(name) && e !== name) await visit(e); // partitions: sdb1, sdb2
    for (const h of await readdir(`${sys}/${name}/holders`).catch(() => [] as string[])) await visit(h);
  };
  await visit(basename(blockDevice));
  if (numbers.size === 0) numbers.add(await deviceNumber(blockDevice));
  return numbers;
}

/** The mounts on this node of a disk (its block device node), its partitions or volumes stacked on it. */
export async function mountsOfDisk(blockDevice: string, mountinfo = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  const numbers = await diskDeviceNumbers(blockDevice);
  return parseMountInfo(await readFile(mountinfo, 'utf8')).filter((m) => numbers.has(m.device));
}

/** One line for people: "/dev/sdb1 (ext4) at /srv/data". */
export function describeMounts(mounts: readonly MountEntry[]): string {
  return mounts.map((m) => `${m.source} (${m.fstype}) at ${m.mountPoint}`).join(', ');
}

// The lab campaign's shared unit (the iSCSI one: PREEMPT AND ABORT completes there, so the product's
// default fencing is what runs) and the writer app: a fresh file system before each schedule, the writer
// compiled once, and the records file read back from the unit itself once every node is powered off.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { lab, resetUnit } from '../../support/lab.js';
import { sh } from '../../support/netns.js';
import { packageRoot } from '../../../src/util/package-root.js';

const run = promisify(execFile);

/** The sd node behind an sg node. */
export function blockOf(sg: string): string {
  const [dev] = readdirSync(`/sys/class/scsi_generic/${basename(sg)}/device/block`);
  if (!dev) throw new Error(`no block device behind ${sg}`);
  return `/dev/${dev}`;
}

export interface LabUnit {
  identity: string;
  /** Each node's path (sg node): a's and b's iSCSI sessions. */
  paths: Record<string, string>;
}

export function labUnit(): LabUnit {
  return { identity: lab.iscsiId, paths: { a: lab.iscsiA, b: lab.iscsiB } };
}

/** No reservation or registration left, and a fresh ext4 over the whole unit. */
export async function prepareUnit(u: LabUnit): Promise<void> {
  await resetUnit(u.paths.a!, u.paths.b!);
  await run('mkfs.ext4', ['-q', '-F', '-b', '4096', blockOf(u.paths.a!)]);
}

let built: string | undefined;

/** writer.c compiled with the host's cc (the guest runs the host's root), once per source version. */
export async function writerBinary(): Promise<string> {
  if (built) return built;
  const src = join(packageRoot(), 'test', 'nemesis', 'lab', 'writer.c');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `vigil-nemesis-writer-${hash}`);
  const bin = join(dir, 'writer');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    await run('cc', ['-O2', '-Wall', '-o', `${bin}.tmp`, src, '-lpthread']);
    await run('mv', [`${bin}.tmp`, bin]);
  }
  built = bin;
  return bin;
}

/**
 * The records file as the unit holds it, after every node lost power: waits until no mount of the unit is
 * left (a node's mount namespace goes with its last process), clears the reservation, mounts the file
 * system read-only in a mount namespace of its own (which replays its journal), copies the file out and
 * runs e2fsck -n. Answers the bytes (undefined: no file) and e2fsck's complaint, if any.
 */
export async function readBack(u: LabUnit, out: string): Promise<{ file: Buffer | undefined; fsck: string | undefined; mountError: string | undefined }> {
  const devs = Object.values(u.paths).map((p) => basename(blockOf(p)));
  for (let i = 0; i < 100 && devs.some((d) => existsSync(`/proc/fs/ext4/${d}`)); i++) await sleep(100);
  const still = devs.filter((d) => existsSync(`/proc/fs/ext4/${d}`));
  if (still.length) return { file: undefined, fsck: undefined, mountError: `still mounted 10 s after every node lost power: ${still.join(', ')}` };
  await resetUnit(u.paths.a!, u.paths.b!);
  const dev = blockOf(u.paths.a!);
  const mnt = `${out}.mnt`;
  mkdirSync(mnt, { recursive: true });
  const script = `mount -t ext4 -o ro ${dev} ${mnt} || exit 3; if [ -e ${mnt}/records ]; then cat ${mnt}/records > ${out}; fi; umount ${mnt}`;
  const m = await sh(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script], { timeout: 60_000 });
  if (m.code !== 0) return { file: undefined, fsck: undefined, mountError: `mount or read failed (exit ${m.code}): ${m.stderr.trim()}` };
  const fsck = await sh(['e2fsck', '-f', '-n', dev], { timeout: 60_000 });
  return {
    file: existsSync(out) ? readFileSync(out) : undefined,
    fsck: fsck.code === 0 ? undefined : `e2fsck -fn exit ${fsck.code}: ${(fsck.stdout + fsck.stderr).trim().split('\n').slice(-8).join(' | ')}`,
    mountError: undefined,
  };
}

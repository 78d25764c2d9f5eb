// What a lab test needs: the guest's device nodes (from the environment scripts/lab sets) and a way to
// put a shared unit back to a clean state between tests.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';

import { ScsiDevice } from '../../src/scsi/device.js';
import { ReservationConflictError, UnitAttentionError } from '../../src/scsi/errors.js';
import { packageRoot } from '../../src/util/package-root.js';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: lab tests run inside the lab guest (npm run test:lab), never on the host`);
  return v;
}

/** Device nodes of the lab (see hw-fixtures/lab/guest-init). */
export const lab = {
  get a() { return need('VIGIL_LAB_A'); },
  get b() { return need('VIGIL_LAB_B'); },
  get aSd() { return need('VIGIL_LAB_A_SD'); },
  get bSd() { return need('VIGIL_LAB_B_SD'); },
  get sharedId() { return need('VIGIL_LAB_SHARED_ID'); },
  get wedgeA() { return need('VIGIL_LAB_WEDGE_A'); },
  get wedgeB() { return need('VIGIL_LAB_WEDGE_B'); },
  get wedgeId() { return need('VIGIL_LAB_WEDGE_ID'); },
  get iscsiA() { return need('VIGIL_LAB_ISCSI_A'); },
  get iscsiB() { return need('VIGIL_LAB_ISCSI_B'); },
  get iscsiId() { return need('VIGIL_LAB_ISCSI_ID'); },
  /** /dev/ipmi0 of QEMU's BMC (scripts/lab --ipmi). */
  get ipmi() { return need('VIGIL_LAB_IPMI'); },
  /** The ib700 card's watchdog device (scripts/lab --ib700). */
  get ib700() { return need('VIGIL_LAB_IB700'); },
  /** The run directory on the project share (VIGIL_LAB_RUN): word for the host, and the host's (qmp/). */
  get run() { return need('VIGIL_LAB_RUN'); },
};

export const open = (path: string, unitAttentionRetries = 0) => ScsiDevice.open(path, { unitAttentionRetries, defaultTimeoutMs: 10_000 });

/** Sends TEST UNIT READY until no unit attention is left for this nexus. */
export async function drainUnitAttentions(dev: ScsiDevice): Promise<number> {
  for (let n = 0; n < 16; n++) {
    try {
      await dev.testUnitReady();
      return n;
    } catch (e) {
      if (e instanceof UnitAttentionError) continue;
      if (e instanceof ReservationConflictError) return n; // SCSI-2 reserved elsewhere: no UA pending either
      throw e;
    }
  }
  throw new Error(`${dev.path}: unit attentions do not stop`);
}

/**
 * Leaves a unit shared by two paths with no SCSI-2 reservation, no registrations, no persistent
 * reservation and no pending unit attention on either path.
 */
export async function resetUnit(pathA: string, pathB: string): Promise<void> {
  const a = await open(pathA);
  const b = await open(pathB);
  const release = async (d: ScsiDevice) => {
    try {
      await d.release6(); // GOOD with no effect unless this path holds it
    } catch (e) {
      // LIO refuses SCSI-2 RELEASE while persistent registrations exist (compatible reservation handling).
      if (!(e instanceof ReservationConflictError)) throw e;
    }
  };
  try {
    for (const d of [a, b]) {
      await drainUnitAttentions(d);
      await release(d);
    }
    await a.prRegister(0xdeadn, { ignoreExisting: true });
    await a.prClear(0xdeadn);
    for (const d of [a, b]) {
      await drainUnitAttentions(d);
      await d.release6();
    }
  } finally {
    a.close();
    b.close();
  }
}

/** True when a WRITE through this path is refused with RESERVATION CONFLICT (its node is fenced off the unit). */
export async function refusesWrites(path: string): Promise<boolean> {
  const dev = await open(path, 3);
  try {
    await dev.write16(0n, Buffer.alloc(512), 512);
    return false;
  } catch (e) {
    if (e instanceof ReservationConflictError) return true;
    throw e;
  } finally {
    dev.close();
  }
}

const run = promisify(execFile);

/** Runs the built CLI (dist/src/cli/vigil.js); never throws on a non-zero exit. */
export async function vigil(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return exec(process.execPath, [join(packageRoot(), 'dist', 'src', 'cli', 'vigil.js'), ...args]);
}

/** Runs the CLI with --json and parses what it printed (the text itself when it is not JSON). */
export async function vigilJson(...args: string[]): Promise<{ code: number; body: Record<string, any>; stderr: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await vigil('--json', ...args);
  let body: unknown;
  try {
    body = JSON.parse(r.stdout);
  } catch {
    body = r.stdout;
  }
  return { code: r.code, body: body as Record<string, any>, stderr: r.stderr }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Runs any program; never throws on a non-zero exit. */
export async function exec(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/**
 * The shared unit as the cluster lab tests and the demo want it: no reservations or registrations, and an
 * ext4 file system over the whole unit (the disk heartbeat writes no data block, src/daemon/disk-pulse.ts).
 * Returns the block device it was made on.
 */
export async function prepareSharedUnit(): Promise<string> {
  await resetUnit(lab.a, lab.b);
  await promisify(execFile)('mkfs.ext4', ['-q', '-F', '-b', '4096', lab.aSd]);
  return lab.aSd;
}

// The lab rig of the campaign (docs/nemesis.md, "The lab rig"): two agents in the lab guest, each in its
// network namespace and on its own iSCSI session to the shared unit; one app `x` a→b that owns the unit,
// mounts its ext4 file system, has a VIP and runs the writer (writer.c). The limits are the namespace
// campaign's scaled to the guest's timing; at the end, the records on the unit are checked (records.ts).
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { APP_PORT, createCluster } from '../../support/cluster.js';
import { sh } from '../../support/netns.js';
import type { Violation } from '../checker.js';
import { MARKER } from '../layout.js';
import type { Limits, Profile } from '../runner.js';
import { LabInjector } from './faults.js';
import { PathLoss } from './pathloss.js';
import { checkRecords, describeRecords, parseAckLog, type Instance } from './records.js';
import { labUnit, prepareUnit, readBack, writerBinary } from './unit.js';

/**
 * The lab cluster tests' timing (the guest is emulated: its JavaScript runs ~30× slower than on the host),
 * with a failback dwell short enough for the clean-up.
 */
export const LAB_TIMING = { heartbeatIntervalMs: 200, failAfterMs: 2000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 2000, peerProbeMs: 4000 };

/** The writer's record interval. */
export const WRITE_INTERVAL_MS = 80;

/**
 * H 300 ms: the two `ip monitor` processes' timestamps are taken when each is scheduled, later under TCG.
 * T_start 3000 ms: sync, the disk takeover (register, preempt, read back), the mount (journal replay),
 * the address, the spawn, in the guest.
 * T_resolve 12 000 ms: failAfterMs 2000 + recoverAfterMs 2000 + stopTimeoutMs 2000 + the fenced node's
 * next disk heartbeat (400) + margin for the guest.
 * T_converge 90 000 ms: an agent started again takes 15-60 s in the guest before it answers (loading its
 * modules over 9p under TCG, beside a busy peer: `vigil --version` alone takes 9 s there), the cluster
 * then forms again (recoverAfterMs), a last-active decision (peerProbeMs 4000), the failback dwell (2000),
 * the prompt and its hand-over (a disk takeover and a mount on each side).
 */
export const LAB_LIMITS: Limits = { hMs: 300, resolveMs: 12_000, startMs: 3000, convergeMs: 90_000 };

export function labProfile(): Profile {
  const unit = labUnit();
  const paths = new PathLoss(unit.paths);
  let mnt = '';
  let acks = '';
  return {
    limits: LAB_LIMITS,
    sampleMs: 500,
    stableMs: 2500,
    startupMs: 120_000,
    formMs: 60_000,
    requestMs: 3000,
    async cluster(teardown, sched) {
      await sh(['modprobe', 'nf_tables']);
      await paths.clear();
      await prepareUnit(unit);
      const writer = await writerBinary();
      const c = await createCluster({ teardown }, sched.layout.nodes, sched.layout.apps.map((a) => ({
        tag: a.tag, primary: a.primary, backup: a.backup, autoRecover: a.autoRecover, vip: true, disk: true, mount: true,
        command: (m: string, vip: string | undefined) => [writer, MARKER, a.tag, vip ?? '', String(APP_PORT), join(m, 'records'), join(dirname(m), 'acks'), String(WRITE_INTERVAL_MS)],
      })), { timing: LAB_TIMING, disk: { identity: unit.identity, paths: unit.paths } });
      mnt = join(c.dir, 'mnt');
      acks = join(c.dir, 'acks');
      mkdirSync(acks);
      return c;
    },
    injector: (c, world, tl, rules, watch) => new LabInjector(c, world, tl, rules, watch, paths, mnt, 'a'),
    async finish({ c, t0, tl, converged, host }) {
      await paths.clear();
      const out: Violation[] = [];
      const instances = readdirSync(acks).map((f) => parseAckLog(readFileSync(join(acks, f), 'utf8'))).filter((i): i is Instance => i !== undefined);
      const back = await readBack(unit, join(c.dir, 'records.bin'));
      if (back.mountError) out.push({ inv: 'INV-REC-TORN', at: Date.now() - t0, text: `the file system: ${back.mountError}` });
      if (back.fsck) out.push({ inv: 'INV-REC-TORN', at: Date.now() - t0, text: `the file system is inconsistent: ${back.fsck}` });
      const file = back.file ?? Buffer.alloc(0);
      if (!back.mountError) tl.add('note', `records file: ${describeRecords(file)}; ${instances.length} writer instance(s), ${instances.reduce((s, i) => s + i.acks.length, 0)} acknowledged records, ${instances.reduce((s, i) => s + i.errors.length, 0)} failed writes`);
      if (!back.mountError) {
        for (const v of checkRecords(file, instances)) out.push({ inv: v.inv, at: v.atMs === undefined ? Date.now() - t0 : v.atMs - t0, text: v.text });
      }
      // INV-REC-LIVE: the copy running at the end wrote during the stable period.
      if (converged && host.x) {
        const wrote = instances.some((i) => i.node === host.x && i.acks.some((a) => a.ackMs - t0 >= converged.from && a.ackMs - t0 <= converged.to));
        if (!wrote) {
          const errs = instances.filter((i) => i.node === host.x).flatMap((i) => i.errors).slice(-3).map((e) => `errno ${e.errno} at ${((e.atMs - t0) / 1000).toFixed(3)}s`);
          out.push({ inv: 'INV-REC-LIVE', at: converged.to, text: `x runs on ${host.x} but acknowledged no record in the stable period ${(converged.from / 1000).toFixed(3)}–${(converged.to / 1000).toFixed(3)}s${errs.length ? ` (last failed writes: ${errs.join(', ')})` : ''}` });
        }
      }
      return out;
    },
    replay: (sched, without) => `scripts/nemesis --lab --seed ${sched.seed}${without.length ? ` --without ${without.join(',')}` : ''}`,
  };
}

// Ownership by SCSI-2 reservation (`reservation: scsi2`), for units without persistent reservations: the
// takeover of a unit still reserved by a failed node, and the check by which a holder learns it lost it.
//
// TAKEOVER. SCSI-2 has no PREEMPT: a RESERVE(6) against another initiator's reservation is refused with
// RESERVATION CONFLICT, whatever became of that initiator. What breaks the reservation is a reset (SPC-2
// 5.5.1: a LOGICAL UNIT RESET, a TARGET RESET, a bus or power-on reset releases it), which is how the HA
// products of the SCSI-2 era took a disk from a dead node (a bus reset, then RESERVE). vigil sends a
// LOGICAL UNIT RESET (never escalated: a bus or host reset would hit every unit on the adapter), and a
// TARGET RESET only where the disk's `reset: lun-then-target` allows it (it aborts the commands of every
// unit behind the target), then RESERVE(6) at once, a bounded number of times.
//
// WHO HOLDS IT. SCSI-2 cannot say which initiator holds a reservation (there is no READ RESERVATION), so
// the holder is presumed to be any other node of the cluster: a reset is sent only when membership has
// declared every other node failed. With one of them alive the takeover is refused, as in persistent mode
// when the holder is alive: two owners are never made by this agent. A cluster without other nodes never
// resets (the holder is outside the cluster).
//
// THE FORMER HOLDER. The reset gives every I_T nexus UNIT ATTENTION 06/29/03 once (measured on LIO), and the
// reservation is gone. The holder checks its reservation every disk heartbeat interval by sending
// RESERVE(6) again: a holder's own RESERVE is GOOD and changes nothing; after a reset that nobody followed
// (e.g. the kernel's error handler reset the unit after a timeout) it takes the reservation back; after a
// takeover it is refused with RESERVATION CONFLICT, and the node is fenced (src/daemon/disks.ts). RESERVE
// rather than TEST UNIT READY because the unit attention can be consumed by the kernel's own I/O on the same
// nexus (the sd driver of a mounted file system), and a TEST UNIT READY that succeeds cannot tell a held
// reservation from a lost one. Racing a takeover (between the taker's reset and its RESERVE, a window of
// microseconds against a check every interval) makes the taker's RESERVE conflict; it then resets again.
import { setTimeout as sleep } from 'node:timers/promises';

import { ReservationConflictError, ScsiTimeoutError, TransportError } from '../scsi/errors.js';
import type { CommandTiming, ResetKind } from '../scsi/transport.js';

export type Scsi2ResetPolicy = 'lun' | 'lun-then-target';

/** What the takeover needs of a device (ScsiDevice has it). */
export interface Scsi2Device {
  readonly path: string;
  reserve6(): Promise<void>;
  reset(kind: ResetKind, opts?: { timeoutMs?: number }): Promise<CommandTiming>;
}

export interface PeerLiveness { name: string; alive: boolean }

export type ResetDecision = { reset: ResetKind } | { refuse: string };

export interface ResetDecisionInput {
  disk: string;
  /** Every other node of the cluster, as membership sees it now. */
  others: PeerLiveness[];
  policy: Scsi2ResetPolicy;
  /** 1 for the first reset of this takeover. */
  attempt: number;
  /** A LUN reset of this takeover failed (EIO: the driver could not). */
  lunResetFailed: boolean;
}

/**
 * Whether to break the reservation that refused this node's RESERVE, and with which reset. Pure.
 * A target reset only under `lun-then-target`, and only once a LUN reset failed or did not free the unit
 * (the RESERVE after it conflicted again).
 */
export function scsi2ResetDecision(i: ResetDecisionInput): ResetDecision {
  if (i.others.length === 0) {
    return { refuse: `disk ${i.disk} is reserved (SCSI-2) by an initiator outside the cluster: not resetting it` };
  }
  const alive = i.others.filter((p) => p.alive).map((p) => p.name);
  if (alive.length > 0) {
    return {
      refuse: `disk ${i.disk} is reserved (SCSI-2) by another initiator and ${alive.join(', ')} ${alive.length === 1 ? 'is' : 'are'} alive: `
        + 'not resetting it (SCSI-2 cannot say which initiator holds a reservation, so a reset waits until every other node has failed)',
    };
  }
  const escalate = i.policy === 'lun-then-target' && (i.lunResetFailed || i.attempt > 1);
  return { reset: escalate ? 'target' : 'lun' };
}

export interface Scsi2TakeoverOptions {
  disk: string;
  policy: Scsi2ResetPolicy;
  /** Membership now: read again before each reset, since a node may come back while this one tries. */
  others(): PeerLiveness[];
  /** Resets at most (default 3); the RESERVE after the last one decides. */
  maxResets?: number;
  /** Deadline of one reset (default 10 s; the kernel has none). */
  resetTimeoutMs?: number;
  /** Pause before trying again when the SCSI host is in error recovery (EAGAIN/EBUSY), default 200 ms. */
  busyRetryMs?: number;
  /** Told of each reset sent, with how long the ioctl took. */
  onReset?(kind: ResetKind, ms: number, attempt: number): void;
}

export interface Scsi2TakeoverResult {
  /** The resets sent, in order; empty when the first RESERVE was GOOD (the unit was free or already ours). */
  resets: { kind: ResetKind; ms: number }[];
}

/** RESERVE(6); on RESERVATION CONFLICT from a failed holder, reset and RESERVE(6) again (bounded). */
export async function takeOverScsi2(dev: Scsi2Device, o: Scsi2TakeoverOptions): Promise<Scsi2TakeoverResult> {
  const maxResets = o.maxResets ?? 3;
  const resets: Scsi2TakeoverResult['resets'] = [];
  let lunResetFailed = false;
  for (let attempt = 1; ; attempt++) {
    try {
      await dev.reserve6();
      return { resets };
    } catch (e) {
      if (!(e instanceof ReservationConflictError)) throw e;
    }
    if (attempt > maxResets) {
      throw new Error(`disk ${o.disk}: RESERVE(6) still refused with RESERVATION CONFLICT after ${resets.length} reset(s) `
        + `(${resets.map((r) => r.kind).join(', ') || 'none took'}): another initiator reserves the unit again, or the unit `
        + 'does not release a reservation on reset');
    }
    const decision = scsi2ResetDecision({ disk: o.disk, others: o.others(), policy: o.policy, attempt, lunResetFailed });
    if ('refuse' in decision) throw new Error(decision.refuse);
    try {
      const timing = await dev.reset(decision.reset, { timeoutMs: o.resetTimeoutMs ?? 10_000 });
      const ms = timing.ioctlUs / 1000;
      resets.push({ kind: decision.reset, ms });
      o.onReset?.(decision.reset, ms, attempt);
    } catch (e) {
      if (!(e instanceof TransportError) || e instanceof ScsiTimeoutError) throw e;
      if (e.code === 'EAGAIN' || e.code === 'EBUSY') {
        await sleep(o.busyRetryMs ?? 200);
        continue;
      }
      if (e.code === 'EIO' && decision.reset === 'lun' && o.policy === 'lun-then-target') {
        lunResetFailed = true; // the next round sends a target reset
        continue;
      }
      throw new Error(`disk ${o.disk}: cannot break the failed holder's SCSI-2 reservation: ${e.message}`
        + (e.code === 'EIO' && o.policy === 'lun' ? ' (reset: lun-then-target would try a target reset next)' : ''));
    }
  }
}

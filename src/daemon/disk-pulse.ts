// The disk heartbeat (seed 001 D2 and D3) without a single data write: the owner of a shared unit pulses
// through the reservation itself, and the other nodes watch it. Pure: what counts as a pulse; the SCSI
// commands are sent by src/daemon/disks.ts.
//
// PERSISTENT RESERVATIONS. The holder re-registers its own key every disk heartbeat interval (PERSISTENT
// RESERVE OUT REGISTER with the reservation key and the service action key both its own): the unit bumps
// its PR generation, the reservation stays as it is, and a holder whose key was preempted gets
// RESERVATION CONFLICT instead (a plain REGISTER from an unregistered nexus with a non-zero key is
// refused), which is how it learns it was fenced. Every other node reads the reservation (PERSISTENT
// RESERVE IN READ RESERVATION: the generation and the holder's key, allowed without a registration) and
// counts a generation that moved under the same holder as a sign of life of that holder. Measured on LIO
// (Linux 6.1, tcm_loop and iSCSI): REGISTER K→K and REGISTER AND IGNORE EXISTING KEY each bump the
// generation by one and keep the WERO reservation; an unregistered nexus's REGISTER K→K is refused with
// RESERVATION CONFLICT; READ KEYS and READ RESERVATION answer an unregistered nexus.
//
// Only the holder pulses: the other nodes hold no registration (src/daemon/disks.ts, OWNERSHIP), so the
// disk channel says whether the owner of the disk lives, which is what a takeover of that disk needs to
// know; the other nodes' disk channels are idle, not down (membership.ts, expect).
//
// SCSI-2. No generation, and a reservation that refuses every other initiator's commands, TEST UNIT READY
// included: the seed's own toggle. While the holder has reason to think a peer no longer hears it (no
// fresh acknowledgement of its heartbeats on any network), it RELEASEs the unit for a short window and
// RESERVEs it again, and a node that no longer hears the holder samples the unit with TEST UNIT READY
// (GOOD while free, RESERVATION CONFLICT while reserved): a change is a sign of life of the holder. The
// window is opened only then, since while it is open the unit is unreserved; a node that decides the
// holder failed and reserves it in the window simply takes it over as it would have with a reset.

/** PR: the last reading of a unit's reservation, and whether a new one is a pulse. */
export class GenerationWatch {
  private last: { generation: number; holder: bigint | null } | undefined;

  /**
   * A new reading. 'pulse': the holder is the same and the generation moved (its re-registration, or any
   * other PR OUT while it holds). 'holder': the reservation changed hands (a takeover, a release): that
   * too is a sign of life of the new holder, when there is one. 'none': nothing moved.
   */
  observe(generation: number, holder: bigint | null): 'pulse' | 'holder' | 'none' {
    const last = this.last;
    this.last = { generation, holder };
    if (last === undefined) return 'none';
    if (last.holder !== holder) return 'holder';
    return last.generation !== generation ? 'pulse' : 'none';
  }

  get holder(): bigint | null | undefined {
    return this.last?.holder;
  }

  get generation(): number | undefined {
    return this.last?.generation;
  }
}

/** SCSI-2: the sampler's last TEST UNIT READY outcome; a change is the holder's toggle. */
export class ToggleSampler {
  private last: boolean | undefined;

  /** reserved: the sample was refused with RESERVATION CONFLICT. True when it differs from the last one. */
  observe(reserved: boolean): boolean {
    const changed = this.last !== undefined && this.last !== reserved;
    this.last = reserved;
    return changed;
  }

  /** Sampling stopped: the next sample starts afresh. */
  reset(): void {
    this.last = undefined;
  }
}

/** How the SCSI-2 toggle is timed, from the disk heartbeat interval and the failure threshold. */
export interface ToggleTiming {
  /** TEST UNIT READY this often while sampling. */
  sampleMs: number;
  /** The unit stays released this long per toggle: three samples, so one always falls inside. */
  releaseMs: number;
  /** A toggle this often while the holder proves it lives: several per failAfterMs. */
  periodMs: number;
}

export function toggleTiming(diskHeartbeatIntervalMs: number, failAfterMs: number): ToggleTiming {
  const sampleMs = Math.max(10, Math.floor(diskHeartbeatIntervalMs / 8));
  const periodMs = Math.max(diskHeartbeatIntervalMs, Math.floor(failAfterMs / 3));
  return { sampleMs, releaseMs: 3 * sampleMs, periodMs };
}

/** One network's view of a peer from the heartbeat thread (ms; -1: never). */
export interface LinkView { heardAgoMs: number; ackedAgoMs: number }

/**
 * Does this peer still hear us? Yes while it acknowledged one of our heartbeats on some network within
 * `withinMs` (the heartbeat thread counts an acknowledgement only when it names a newer heartbeat of ours,
 * so a peer that stopped hearing us stops counting even while its own heartbeats arrive).
 */
export function peerHearsUs(links: readonly LinkView[], withinMs: number): boolean {
  return links.some((l) => l.ackedAgoMs >= 0 && l.ackedAgoMs < withinMs);
}

/** Do we still hear this peer on some network? */
export function weHearPeer(links: readonly LinkView[], withinMs: number): boolean {
  return links.some((l) => l.heardAgoMs >= 0 && l.heardAgoMs < withinMs);
}

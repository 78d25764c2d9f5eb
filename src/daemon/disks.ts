// The SCSI side of the agent: each configured shared logical unit, found through the stored link table
// (seed 004: no scan at takeover), its persistent reservation as the ownership arbiter, and its disk
// heartbeat channel.
//
// OWNERSHIP (issue 3 §7, "never two owners"). Every node registers its key on every shared unit at start.
// The owner of an application's disk holds a WRITE EXCLUSIVE - REGISTRANTS ONLY reservation: registered
// nodes may still write their heartbeat blocks, and everything else is refused. Taking over from a failed
// owner is a PREEMPT of its key ("trespass", seed 004): its registration goes, so a node that was only
// frozen finds its writes refused with RESERVATION CONFLICT when it wakes, and steps down. Taking a disk
// whose holder's node is alive is refused: two owners are never made by this agent. A release is the
// operator's "autotrespass": the owner gives the disk up and keeps its registration.
//
// PREEMPT AND ABORT is used only against a node that sent distress (seed 002: it may linger with commands
// queued), on disks with `preemptAndAbort` (default): through tcm_loop on Linux 6.1 it wedges the unit
// (docs/lab.md), so such disks turn it off. A takeover after silence uses plain PREEMPT, which fences the
// victim's future commands, what that takeover needs.
//
// DISTRESS. When a peer sends distress, every survivor removes its key from every persistent unit
// (fenceNode): a node about to die must not write a block more. A unit the distressed node holds is taken
// by a survivor only when it is the sole one (no other survivor can then be the app's taker); otherwise
// the app's takeover takes it, by PREEMPT AND ABORT since its holder is distressed. Operations on one unit
// run one at a time (serial), so the fence and a takeover read each other's results.
//
// FENCED. A heartbeat write refused with RESERVATION CONFLICT, or a unit attention "registrations
// preempted" (06/2a/05), means another node fenced this one: `onFenced` tells the agent, which stops the
// apps using the disk at once. A fenced node stays unregistered, as fence_scsi's nodes do until they are
// unfenced at start-up: it writes no heartbeat and cannot write anything else. It registers again when the
// agent restarts, or when the flows have it take an app over (acquire), i.e. once the cluster decided so.
//
// SCSI-2 MODE (`reservation: scsi2`, src/daemon/scsi2.ts). No keys are registered. The owner holds a
// RESERVE(6) reservation; a takeover from a failed holder resets the unit and reserves it. The disk
// heartbeat does not run on such a disk (the config refuses it: the reservation refuses the other nodes'
// reads and writes); instead the holder sends RESERVE(6) every disk heartbeat interval, and is fenced when
// it is refused with RESERVATION CONFLICT (after the unit attention 06/29/03 of the taker's reset).
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';

import type { Config, DiskConfig, NodeConfig } from '../config/schema.js';
import { defaultOpener, groupByIdentity, scanPaths } from '../links/scan.js';
import { loadLinkTable, resolveLink, saveLinkTable, tableFromScan, type LinkTable } from '../links/table.js';
import type { ScsiDevice } from '../scsi/device.js';
import { ReservationConflictError } from '../scsi/errors.js';
import { formatKey } from '../scsi/pr.js';
import type { Sense } from '../scsi/sense.js';
import { RESET_NAMES } from '../scsi/transport.js';
import { clusterTag } from '../wire/datagram.js';
import { decodeRecord, encodeRecord, HEARTBEAT_AREA_BLOCKS, PulseTracker, slotLba } from './disk-heartbeat.js';
import type { AgentLog } from './log.js';
import type { DiskOwnership } from './resources.js';
import { takeOverScsi2 } from './scsi2.js';

/**
 * A node's reservation key: the configured one, else 48 bits of SHA-256 of the cluster name above the
 * node id, so keys of two clusters sharing a target never collide and a key names its node at a glance.
 */
export function reservationKey(config: Config, node: NodeConfig): bigint {
  if (node.reservationKey !== undefined) return node.reservationKey;
  const high = createHash('sha256').update(config.cluster, 'utf8').digest().readUIntBE(0, 6);
  return (BigInt(high) << 16n) | BigInt(node.id);
}

export interface DisksHooks {
  /** Is this peer alive now (membership)? A disk held by a live node is never taken. */
  isAlive(node: string): boolean;
  /** A sign of life of `node` (that incarnation) on the disk's heartbeat channel, at performance.now() time. */
  onPulse(node: string, disk: string, at: number, incarnation: bigint): void;
  /** Did this node send distress (its key is fenced with PREEMPT AND ABORT where the disk allows)? */
  isDistressed?(node: string): boolean;
  onFenced(disk: string, detail: string): void;
}

interface Unit {
  config: DiskConfig;
  device: ScsiDevice | undefined;
  error: string | undefined;
  lastLba: bigint;
  blockSize: number;
  counter: bigint;
  fenced: boolean;
  busy: boolean;
  tracker: PulseTracker;
  /** scsi2: this node reserved the unit and has not released it nor been fenced off it. */
  holding: boolean;
  /** scsi2: the last reset unit attention (06/29/xx) seen while holding, for the fence's detail. */
  resetSense: Sense | undefined;
  /** The end of the last ownership operation queued on this unit (serial). */
  queue: Promise<unknown>;
}

export interface FenceResult { disk: string; done: string }

const FENCED_ASC = 0x2a; // PARAMETERS CHANGED, with ASCQ 05: registrations preempted, 04: reservations preempted
const RESET_ASC = 0x29; // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED: a reset released any SCSI-2 reservation

export class Disks implements DiskOwnership {
  private readonly units = new Map<string, Unit>();
  private readonly key: bigint;
  private readonly tag: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: Config,
    private readonly self: NodeConfig,
    private readonly clusterKey: Buffer,
    private readonly incarnation: bigint,
    private readonly hooks: DisksHooks,
    private readonly log: AgentLog,
  ) {
    this.key = reservationKey(config, self);
    this.tag = clusterTag(config.cluster);
  }

  get myKey(): bigint {
    return this.key;
  }

  /** Opens every configured unit through the link table and registers this node's key on it. */
  async start(): Promise<void> {
    let table = await loadLinkTable(this.config.linkTable).catch(() => undefined);
    for (const d of this.config.disks) {
      const unit: Unit = {
        config: d, device: undefined, error: undefined, lastLba: 0n, blockSize: 512, counter: 0n,
        fenced: false, busy: false, tracker: new PulseTracker(), holding: false, resetSense: undefined, queue: Promise.resolve(),
      };
      this.units.set(d.name, unit);
      try {
        unit.device = await this.open(d, table).catch(async (e: unknown) => {
          // The slow path once, at start-up only: rebuild the table so that takeovers stay fast.
          this.log.warn({ disk: d.name, err: String(e) }, 'link table has no working path: scanning the SCSI devices once');
          table = tableFromScan(groupByIdentity(await scanPaths()));
          await saveLinkTable(this.config.linkTable, table);
          return this.open(d, table);
        });
        unit.device.on('unitAttention', (sense) => this.onUnitAttention(unit, sense));
        const cap = await unit.device.readCapacity();
        unit.lastLba = cap.lastLba;
        unit.blockSize = cap.blockSize;
        if (d.reservation === 'scsi2') {
          this.log.info({ disk: d.name, path: unit.device.path, reset: d.reset },
            'disk opened: SCSI-2 reservation (RESERVE/RELEASE), no disk heartbeat on it (the reservation refuses the other nodes\' reads and writes)');
          continue;
        }
        await unit.device.prRegister(this.key, { ignoreExisting: true });
        this.log.info({ disk: d.name, path: unit.device.path, key: formatKey(this.key) }, 'disk registered');
      } catch (e) {
        unit.error = e instanceof Error ? e.message : String(e);
        this.log.error({ disk: d.name, err: unit.error }, 'disk unavailable');
      }
    }
    const periodic = this.config.disks.some((d) => d.heartbeat || d.reservation === 'scsi2');
    if (periodic) {
      this.timer = setInterval(() => {
        for (const u of this.units.values()) void (u.config.reservation === 'scsi2' ? this.checkScsi2(u) : this.beat(u));
      }, this.config.timing.diskHeartbeatIntervalMs);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    for (const u of this.units.values()) u.device?.close();
  }

  private open(d: DiskConfig, table: LinkTable | undefined): Promise<ScsiDevice> {
    if (!table) return Promise.reject(new Error(`no link table at ${this.config.linkTable}`));
    return resolveLink(table, d.identity, defaultOpener({ unitAttentionRetries: 3 }));
  }

  private unit(disk: string): Unit {
    const u = this.units.get(disk);
    if (!u) throw new Error(`disk ${disk} is not configured`);
    return u;
  }

  private ready(disk: string): ScsiDevice {
    const u = this.unit(disk);
    if (!u.device) throw new Error(`disk ${disk}: ${u.error ?? 'not open'}`);
    return u.device;
  }

  // ---- DiskOwnership ----

  async check(disk: string): Promise<string | undefined> {
    const u = this.units.get(disk);
    if (!u) return 'not configured';
    if (!u.device) return u.error ?? 'not open';
    return undefined;
  }

  /** Runs one ownership operation on a unit after the ones queued before it. */
  private serial<T>(u: Unit, fn: () => Promise<T>): Promise<T> {
    const run = u.queue.then(fn, fn);
    u.queue = run.catch(() => {});
    return run;
  }

  acquire(disk: string): Promise<void> {
    const u = this.unit(disk);
    return this.serial(u, () => this.acquireNow(u, disk));
  }

  private async acquireNow(u: Unit, disk: string): Promise<void> {
    const dev = this.ready(disk);
    if (u.config.reservation === 'scsi2') {
      await this.acquireScsi2(u, dev);
      return;
    }
    await dev.prRegister(this.key, { ignoreExisting: true });
    u.fenced = false;
    const { reservation } = await dev.prReadReservation();
    if (reservation === null) {
      await dev.prReserve(this.key, 'wero');
    } else if (reservation.key !== this.key) {
      const holder = this.config.nodes.find((n) => reservationKey(this.config, n) === reservation.key);
      if (holder && this.hooks.isAlive(holder.name)) {
        throw new Error(`disk ${disk} is held by ${holder.name} (key ${formatKey(reservation.key)}), which is alive: not taking it`);
      }
      const abort = holder !== undefined && u.config.preemptAndAbort && this.hooks.isDistressed?.(holder.name) === true;
      this.log.warn({ disk, victim: holder?.name ?? formatKey(reservation.key), abort }, 'trespass: preempting the failed holder');
      await dev.prPreempt(this.key, reservation.key, 'wero', { abort });
    }
    const after = await dev.prReadReservation();
    if (after.reservation?.key !== this.key) {
      throw new Error(`disk ${disk}: reservation is ${after.reservation ? `held by ${formatKey(after.reservation.key)}` : 'absent'} after taking it`);
    }
  }

  /** RESERVE(6); a failed holder's reservation is broken by a reset first (src/daemon/scsi2.ts). */
  private async acquireScsi2(u: Unit, dev: ScsiDevice): Promise<void> {
    const disk = u.config.name;
    const others = () => this.config.nodes.filter((n) => n !== this.self).map((n) => ({ name: n.name, alive: this.hooks.isAlive(n.name) }));
    const started = performance.now();
    const { resets } = await takeOverScsi2(dev, {
      disk, policy: u.config.reset ?? 'lun', others,
      onReset: (kind, ms, attempt) => this.log.warn({ disk, path: dev.path, attempt, ioctlMs: Number(ms.toFixed(3)) },
        `trespass: ${RESET_NAMES[kind]} sent to break the failed holder's SCSI-2 reservation`),
    });
    u.holding = true;
    u.fenced = false;
    u.resetSense = undefined; // our own reset's unit attention, if any, is not news
    if (resets.length > 0) {
      this.log.warn({ disk, resets: resets.length, ms: Number((performance.now() - started).toFixed(1)) }, 'trespass: SCSI-2 reservation taken after reset');
    }
  }

  release(disk: string): Promise<void> {
    const u = this.unit(disk);
    return this.serial(u, () => this.releaseNow(u, disk));
  }

  private async releaseNow(u: Unit, disk: string): Promise<void> {
    const dev = this.ready(disk);
    if (u.config.reservation === 'scsi2') {
      u.holding = false; // first: the periodic check must not take it back while RELEASE is on its way
      await dev.release6(); // GOOD, and no effect, when another initiator holds it (after a takeover)
      return;
    }
    const { reservation } = await dev.prReadReservation();
    if (reservation?.key === this.key) await dev.prRelease(this.key, 'wero');
  }

  /**
   * `node` sent distress: its key goes from every persistent unit it is registered on, by PREEMPT AND
   * ABORT where the disk allows. A unit it holds is taken here only when `soleSurvivor` (see DISTRESS
   * above). Never throws: one line per unit says what was done.
   */
  async fenceNode(node: NodeConfig, soleSurvivor: boolean): Promise<FenceResult[]> {
    const victim = reservationKey(this.config, node);
    const out: FenceResult[] = [];
    for (const u of this.units.values()) {
      const disk = u.config.name;
      if (u.config.reservation === 'scsi2') {
        out.push({ disk, done: 'SCSI-2 unit: nothing to fence by key (the takeover resets and reserves it)' });
        continue;
      }
      const dev = u.device;
      if (!dev) {
        out.push({ disk, done: `not open: ${u.error ?? 'unknown error'}` });
        continue;
      }
      const done = await this.serial(u, async () => {
        const keys = await dev.prReadKeys();
        if (!keys.keys.includes(victim)) return 'not registered';
        if (!keys.keys.includes(this.key)) return 'this node is not registered (fenced itself): cannot preempt';
        const { reservation } = await dev.prReadReservation();
        const abort = u.config.preemptAndAbort;
        const how = abort ? 'PREEMPT AND ABORT' : 'PREEMPT';
        if (reservation?.key === victim) {
          if (!soleSurvivor) return 'holds the reservation: left to the takeover of its app';
          await dev.prPreempt(this.key, victim, reservation.type ?? 'wero', { abort });
          return `${how}: its key removed, the reservation is this node's`;
        }
        await dev.prPreempt(this.key, victim, reservation?.type ?? 'wero', { abort });
        return `${how}: its key removed`;
      }).catch((e: unknown) => `failed: ${e instanceof Error ? e.message : String(e)}`);
      out.push({ disk, done });
    }
    return out;
  }

  async blockDevice(disk: string): Promise<string> {
    const sg = basename(this.ready(disk).path);
    if (!sg.startsWith('sg')) return this.ready(disk).path;
    const names = await readdir(`/sys/class/scsi_generic/${sg}/device/block`).catch(() => []);
    if (!names[0]) throw new Error(`disk ${disk}: no block device behind ${sg}`);
    return `/dev/${names[0]}`;
  }

  /** Reservation holder and registered keys of each disk, for status. */
  async describe(): Promise<object[]> {
    const out: object[] = [];
    for (const [name, u] of this.units) {
      if (!u.device) {
        out.push({ disk: name, error: u.error });
        continue;
      }
      if (u.config.reservation === 'scsi2') {
        out.push(await this.describeScsi2(u, u.device));
        continue;
      }
      try {
        const [r, k] = [await u.device.prReadReservation(), await u.device.prReadKeys()];
        const owner = (key: bigint) => this.config.nodes.find((n) => reservationKey(this.config, n) === key)?.name ?? formatKey(key);
        out.push({
          disk: name, path: u.device.path, myKey: formatKey(this.key), fenced: u.fenced,
          holder: r.reservation && owner(r.reservation.key), type: r.reservation?.type ?? null,
          registered: k.keys.map(owner),
        });
      } catch (e) {
        out.push({ disk: name, path: u.device.path, error: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }

  /**
   * SCSI-2 cannot name a holder: this node when it holds the unit, else "another initiator" when its
   * TEST UNIT READY conflicts, else none.
   */
  private async describeScsi2(u: Unit, dev: ScsiDevice): Promise<object> {
    const base = { disk: u.config.name, path: dev.path, type: 'scsi2', fenced: u.fenced, heartbeat: false };
    if (u.holding && !u.fenced) return { ...base, holder: this.self.name };
    try {
      await dev.testUnitReady();
      return { ...base, holder: null };
    } catch (e) {
      if (e instanceof ReservationConflictError) return { ...base, holder: 'another initiator' };
      return { ...base, error: e instanceof Error ? e.message : String(e) };
    }
  }

  // ---- the SCSI-2 holder's check ----

  /**
   * The holder's RESERVE(6), every disk heartbeat interval: GOOD while it holds the unit (or takes it back
   * after a reset nobody followed); RESERVATION CONFLICT once another node reset and reserved it: fenced.
   * Why RESERVE and not TEST UNIT READY: src/daemon/scsi2.ts.
   */
  private async checkScsi2(u: Unit): Promise<void> {
    if (!u.device || !u.holding || u.fenced || u.busy) return;
    u.busy = true;
    try {
      await u.device.reserve6();
      // Released while this RESERVE was retried after a unit attention, i.e. sent after the RELEASE: undo it.
      if (!u.holding) await u.device.release6();
      else if (u.resetSense) {
        this.log.warn({ disk: u.config.name, sense: u.resetSense.code },
          'SCSI-2 reservation released by a reset that no other initiator followed with a RESERVE: reserved again');
      }
      u.resetSense = undefined;
    } catch (e) {
      if (!(e instanceof ReservationConflictError)) {
        this.log.warn({ disk: u.config.name, err: e instanceof Error ? e.message : String(e) }, 'SCSI-2 reservation check failed');
        return;
      }
      if (!u.holding) return; // released while the check was on its way
      const after = u.resetSense ? ` after unit attention ${u.resetSense.code} (${u.resetSense.text})` : '';
      u.holding = false;
      this.fence(u, `RESERVE(6) refused: RESERVATION CONFLICT${after}: another node reset the unit and reserved it`);
    } finally {
      u.busy = false;
    }
  }

  // ---- the heartbeat ----

  private async beat(u: Unit): Promise<void> {
    if (!u.device || !u.config.heartbeat || u.busy) return;
    u.busy = true;
    try {
      // A fenced node writes nothing (it could not), but keeps reading: its peers' pulses still count.
      if (!u.fenced) {
        u.counter += 1n;
        const record = encodeRecord(this.clusterKey, { node: this.self.id, clusterTag: this.tag, incarnation: this.incarnation, counter: u.counter }, u.blockSize);
        try {
          await u.device.write16(slotLba(u.lastLba, this.slot(this.self)), record, u.blockSize, { fua: true });
        } catch (e) {
          if (!(e instanceof ReservationConflictError)) throw e;
          this.fence(u, 'heartbeat write refused: RESERVATION CONFLICT (this node was preempted)');
        }
      }
      const area = await u.device.read16(slotLba(u.lastLba, 0), HEARTBEAT_AREA_BLOCKS, u.blockSize);
      const now = performance.now();
      for (const peer of this.config.nodes) {
        if (peer === this.self) continue;
        const i = this.slot(peer);
        const r = decodeRecord(this.clusterKey, area.subarray(i * u.blockSize, (i + 1) * u.blockSize), this.tag);
        if (r && r.node === peer.id && u.tracker.changed(r)) this.hooks.onPulse(peer.name, u.config.name, now, r.incarnation);
      }
    } catch (e) {
      this.log.warn({ disk: u.config.name, err: e instanceof Error ? e.message : String(e) }, 'disk heartbeat failed');
    } finally {
      u.busy = false;
    }
  }

  private slot(node: NodeConfig): number {
    return [...this.config.nodes].sort((a, b) => a.id - b.id).indexOf(node);
  }

  private onUnitAttention(u: Unit, sense: Sense): void {
    if (u.config.reservation === 'scsi2') {
      if (sense.asc === RESET_ASC && u.holding) u.resetSense = sense;
      return;
    }
    if (sense.asc === FENCED_ASC && (sense.ascq === 0x05 || sense.ascq === 0x04)) {
      // Also reported to the node that preempts (its own I_T nexus sees no UA), so check our registration.
      void u.device?.prReadKeys().then((k) => {
        if (!k.keys.includes(this.key)) this.fence(u, `unit attention ${sense.code} (${sense.text}) and our key is gone`);
      }).catch(() => {});
    }
  }

  private fence(u: Unit, detail: string): void {
    if (u.fenced) return;
    u.fenced = true;
    this.log.error({ disk: u.config.name, detail }, 'fenced');
    this.hooks.onFenced(u.config.name, detail);
  }
}

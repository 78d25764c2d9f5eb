// The SCSI side of the agent: each configured shared logical unit, found through the stored link table
// (seed 004: no scan at takeover), its reservation as the ownership arbiter, and its disk heartbeat.
//
// OWNERSHIP ("one writer per disk"). The owner of an application's disk holds a WRITE EXCLUSIVE -
// REGISTRANTS ONLY reservation and is its only registrant: a node registers its key when it takes the
// disk (acquire) and removes it when it gives the disk up (release), and never holds a registration
// otherwise, since under WERO every registrant may write. Taking over from a failed owner is a PREEMPT
// AND ABORT ("trespass", seed 004) of its key, then of every other key still registered: the failed
// node's commands queued at the target are aborted with its registration, so nothing it sent lands after
// the new owner mounts (fence_scsi does the same); a node that was only frozen finds its writes refused
// with RESERVATION CONFLICT when it wakes, and steps down. Per disk, `preemptAndAbort: false` falls back
// to plain PREEMPT, for the one place it is needed: tcm_loop on Linux 6.1, where PREEMPT AND ABORT wedges
// the unit (docs/lab.md). Taking a disk whose holder's node is alive is refused: two owners are never
// made by this agent.
//
// STALE MOUNTS. A file system the kernel still has mounted writes (journal, atime) whenever its node may
// write, so: a node never takes a disk while one of its file systems is mounted here (the mount, left by
// an earlier agent or by an unmount that failed, is named in the error), and never releases one while a
// file system on it is mounted (it keeps the disk and says so: the peer then fences it by preemption,
// which is safe, where a release would let the mount write beside the next owner). At start, the agent's
// leftovers are unmounted if they can be (src/daemon/agent.ts); a registration this node holds without
// owning the disk (an earlier agent's) is removed, and one it holds with the reservation is released
// once no app of this node uses the disk (relinquishUnused).
//
// THE DISK HEARTBEAT (src/daemon/disk-pulse.ts): the holder re-registers its own key every interval (the
// unit's PR generation moves; refused once its key was preempted: fenced), and every node reads the
// reservation every interval: a moved generation under the same holder is that holder's pulse. No data
// block is ever written, so a file system may use the whole unit. SCSI-2 units toggle their reservation
// instead, only while the holder has reason to prove it lives, sampled with TEST UNIT READY, and never
// toward a node whose reservation it broke by a reset until that node is heard again: the unit is
// unreserved while toggled, and such a node (frozen, say, not dead) may still write, or RESERVE again.
//
// DISTRESS. When a peer sends distress, a sole survivor fences the sender's key off every persistent unit
// by PREEMPT AND ABORT (and so holds the units it held): a node about to die must not write a block more.
// With other survivors, the app's takeover fences it. Operations on one unit run one at a time (serial).
//
// FENCED. A pulse refused with RESERVATION CONFLICT, or a unit attention "registrations preempted"
// (06/2a/05), means another node fenced this one: `onFenced` tells the agent, which stops the apps using
// the disk at once. SCSI-2: the holder's RESERVE(6), sent every interval, refused with RESERVATION
// CONFLICT after a taker's reset (src/daemon/scsi2.ts).
import { createHmac } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Config, DiskConfig, NodeConfig } from '../config/schema.js';
import { defaultOpener, groupByIdentity, scanPaths, type OpenDevice } from '../links/scan.js';
import { loadLinkTable, resolveLink, saveLinkTable, tableFromScan, type LinkTable } from '../links/table.js';
import type { ScsiDevice } from '../scsi/device.js';
import { ReservationConflictError } from '../scsi/errors.js';
import { formatKey } from '../scsi/pr.js';
import type { Sense } from '../scsi/sense.js';
import { RESET_NAMES } from '../scsi/transport.js';
import type { DiskTieBreaker } from '../membership/view.js';
import { GenerationWatch, ToggleSampler, toggleTiming, type ToggleTiming } from './disk-pulse.js';
import type { AgentLog } from './log.js';
import { describeMounts, mountsOfDisk } from './mounts.js';
import type { DiskOwnership } from './resources.js';
import { takeOverScsi2 } from './scsi2.js';

/**
 * A node's reservation key: the configured one, else 48 bits of SHA-256 of the cluster name above the
 * node id, so keys of two clusters sharing a target never collide and a key names its node at a glance.
 */
/**
 * A node's persistent-reservation key: the configured one, else 48 bits derived from the cluster's secret key
 * (HMAC-SHA256, so every node computes every node's key and nobody else can) and the node id in the low 16.
 * Derived from the cluster name alone, two clusters with the same name on one SAN had the same keys: each
 * would have taken the other's registrations for its own nodes'.
 */
export function reservationKey(config: Config, node: NodeConfig, clusterKey: Buffer): bigint {
  if (node.reservationKey !== undefined) return node.reservationKey;
  const high = createHmac('sha256', clusterKey).update(`vigil reservation key\0${config.cluster}`, 'utf8').digest().readUIntBE(0, 6);
  return (BigInt(high) << 16n) | BigInt(node.id);
}

export interface DisksHooks {
  /** Is this peer alive now (membership)? A disk held by a live node is never taken. */
  isAlive(node: string): boolean;
  /** A sign of life of `node` on the disk's heartbeat channel, at performance.now() time. */
  onPulse(node: string, disk: string, at: number): void;
  /** The disk's holder as this node last read it (null: none, or not a node of the cluster). */
  onHolder?(disk: string, node: string | null): void;
  /** Did this node send distress? */
  isDistressed?(node: string): boolean;
  onFenced(disk: string, detail: string): void;
  /**
   * A takeover removed a key no node of this cluster has: another cluster (or a tool) registered on this
   * disk. Said beside the error log, where an operator looks first (`vigil status` notices).
   */
  onForeignKey?(disk: string, message: string): void;
  /**
   * SCSI-2: should the holder prove it lives (a peer no longer acknowledges its heartbeats)? Peers in
   * `except` do not count (the nodes whose reservation this one broke and has not heard since).
   */
  mustProveLife?(except: ReadonlySet<string>): boolean;
  /** SCSI-2: the node presumed to hold this disk, while it is not heard on any network (sample then). */
  silentHolder?(disk: string): string | undefined;
}

interface Unit {
  config: DiskConfig;
  device: ScsiDevice | undefined;
  error: string | undefined;
  fenced: boolean;
  /** This node took the unit (acquire) and has not released it nor been fenced off it. */
  holding: boolean;
  /** A pulse or a check in flight (the next interval skips). */
  busy: boolean;
  watch: GenerationWatch;
  sampler: ToggleSampler;
  lastToggle: number;
  /**
   * scsi2: the nodes whose reservation this node broke by a reset to take the unit, not heard since. One
   * may be alive (it was frozen, or cut off) and still write: no toggle window is opened for it, so every
   * write of its lands on a reserved unit and is refused, and its own RESERVE is refused (it is fenced)
   * instead of taking the unit back in a window.
   */
  brokeFrom: Set<string>;
  /** scsi2: the last reset unit attention (06/29/xx) seen while holding, for the fence's detail. */
  resetSense: Sense | undefined;
  /** What was said last about a mount that keeps this node's registration (said once). */
  keptFor: string | undefined;
  /** When the unit last answered this node's disk heartbeat (performance.now()): the view's tie-breaker. */
  answeredAt: number;
  /** The end of the last ownership operation queued on this unit (serial). */
  queue: Promise<unknown>;
  /** Keys this node removed from the unit (PREEMPT, PREEMPT AND ABORT), and resets it sent to break a SCSI-2 reservation: the metrics. */
  preempts: number;
  resets: number;
}

export interface FenceResult { disk: string; done: string }

/** How units are found: the real SCSI layer by default; tests give a world of their own. */
export interface DisksIo {
  open: OpenDevice;
  /** A link table built from a scan of every SCSI path. */
  scan(): Promise<LinkTable>;
}

const SCSI_IO: DisksIo = {
  open: defaultOpener({ unitAttentionRetries: 3 }),
  scan: async () => tableFromScan(groupByIdentity(await scanPaths())),
};

const FENCED_ASC = 0x2a; // PARAMETERS CHANGED, with ASCQ 05: registrations preempted, 04: reservations preempted
const RESET_ASC = 0x29; // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED: a reset released any SCSI-2 reservation
/** A disk not found through the link table is looked for by a scan at most this often. */
const SCAN_EVERY_MS = 30_000;

export class Disks implements DiskOwnership {
  private readonly units = new Map<string, Unit>();
  private readonly key: bigint;
  private readonly toggle: ToggleTiming;
  private timers: NodeJS.Timeout[] = [];
  private lastScan = -Infinity;

  constructor(
    private readonly config: Config,
    private readonly self: NodeConfig,
    private readonly clusterKey: Buffer,
    private readonly hooks: DisksHooks,
    private readonly log: AgentLog,
    private readonly io: DisksIo = SCSI_IO,
  ) {
    this.key = reservationKey(config, self, clusterKey);
    this.toggle = toggleTiming(config.timing.diskHeartbeatIntervalMs, config.timing.failAfterMs);
  }

  get myKey(): bigint {
    return this.key;
  }

  /**
   * Opens every configured unit through the link table (a scan once if a unit has no working path) and
   * removes a registration this node holds without holding the reservation (an earlier agent's): this
   * node registers only when it takes a disk. Nothing is registered here.
   */
  async start(): Promise<void> {
    for (const d of this.config.disks) {
      const unit: Unit = {
        config: d, device: undefined, error: undefined, fenced: false, holding: false, busy: false,
        watch: new GenerationWatch(), sampler: new ToggleSampler(), lastToggle: -Infinity, brokeFrom: new Set(), resetSense: undefined, keptFor: undefined,
        answeredAt: performance.now(), queue: Promise.resolve(), preempts: 0, resets: 0,
      };
      this.units.set(d.name, unit);
      await this.ensureOpen(unit).catch(() => {});
      if (unit.device && d.reservation === 'persistent') await this.dropStrayRegistration(unit).catch((e: unknown) => this.log.warn({ disk: d.name, err: String(e) }, 'cannot read the registrations'));
    }
    const interval = this.config.timing.diskHeartbeatIntervalMs;
    if (this.config.disks.some((d) => d.heartbeat || d.reservation === 'scsi2')) {
      this.timers.push(setInterval(() => {
        for (const u of this.units.values()) void (u.config.reservation === 'scsi2' ? this.checkScsi2(u) : this.pulse(u));
      }, interval));
    }
    if (this.config.disks.some((d) => d.heartbeat && d.reservation === 'scsi2')) {
      this.timers.push(setInterval(() => { for (const u of this.units.values()) void this.sample(u); }, this.toggle.sampleMs));
    }
  }

  /**
   * The disks as the tie-breaker of this node's view (src/membership/view.ts): 'reachable' while a unit
   * that carries this node's disk heartbeat (a PR unit with the heartbeat on, which every node reads; a
   * SCSI-2 unit this node holds) answered it within `withinMs`; 'none' when no unit carries one.
   */
  tieBreaker(withinMs: number, now = performance.now()): DiskTieBreaker {
    const carrying = [...this.units.values()].filter((u) => (u.config.reservation === 'scsi2' ? u.holding : u.config.heartbeat));
    if (carrying.length === 0) return 'none';
    return carrying.some((u) => u.device !== undefined && now - u.answeredAt < withinMs) ? 'reachable' : 'lost';
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const u of this.units.values()) u.device?.close();
  }

  /** The unit's device, opened through the link table now if it was not (a path that appeared late), else by one scan. */
  private async ensureOpen(u: Unit): Promise<ScsiDevice> {
    if (u.device) return u.device;
    const d = u.config;
    const open = (table: LinkTable) => resolveLink(table, d.identity, this.io.open);
    try {
      try {
        const table = await loadLinkTable(this.config.linkTable);
        u.device = await open(table);
      } catch (e) {
        if (performance.now() - this.lastScan < SCAN_EVERY_MS) throw e;
        // The slow path, at most every SCAN_EVERY_MS: rebuild the table so that takeovers stay fast.
        this.lastScan = performance.now();
        this.log.warn({ disk: d.name, err: String(e) }, 'link table has no working path: scanning the SCSI devices');
        const table = await this.io.scan();
        await saveLinkTable(this.config.linkTable, table);
        u.device = await open(table);
      }
      u.device.on('unitAttention', (sense) => this.onUnitAttention(u, sense));
      if (u.error !== undefined) this.log.info({ disk: d.name, path: u.device.path }, 'disk found');
      u.error = undefined;
      this.log.info({ disk: d.name, path: u.device.path, reservation: d.reservation, heartbeat: d.heartbeat }, 'disk opened');
      return u.device;
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      if (error !== u.error) this.log.error({ disk: d.name, err: error }, 'disk unavailable');
      u.error = error;
      throw new Error(`disk ${d.name}: ${error}`);
    }
  }

  private unit(disk: string): Unit {
    const u = this.units.get(disk);
    if (!u) throw new Error(`disk ${disk} is not configured`);
    return u;
  }

  /** Runs one ownership operation on a unit after the ones queued before it. */
  private serial<T>(u: Unit, fn: () => Promise<T>): Promise<T> {
    const run = u.queue.then(fn, fn);
    u.queue = run.catch(() => {});
    return run;
  }

  // ---- DiskOwnership ----

  async check(disk: string): Promise<string | undefined> {
    const u = this.units.get(disk);
    if (!u) return 'not configured';
    try {
      await this.ensureOpen(u);
      return undefined;
    } catch {
      return u.error ?? 'not open';
    }
  }

  acquire(disk: string): Promise<number> {
    const u = this.unit(disk);
    return this.serial(u, () => this.acquireNow(u));
  }

  /** The block device (/dev/sdX) behind the unit's sg path; the path itself when it is one already. */
  async blockDevice(disk: string): Promise<string> {
    const dev = await this.ensureOpen(this.unit(disk));
    const sg = basename(dev.path);
    if (!sg.startsWith('sg')) return dev.path;
    const names = await readdir(`/sys/class/scsi_generic/${sg}/device/block`).catch(() => []);
    if (!names[0]) throw new Error(`disk ${disk}: no block device behind ${sg}`);
    return `/dev/${names[0]}`;
  }

  /** Mounts of the unit on this node (described), or '' when there are none. */
  private async mountedHere(disk: string): Promise<string> {
    const mounts = await mountsOfDisk(await this.blockDevice(disk));
    return describeMounts(mounts);
  }

  private async acquireNow(u: Unit): Promise<number> {
    const disk = u.config.name;
    const dev = await this.ensureOpen(u);
    const mounted = await this.mountedHere(disk);
    if (mounted) {
      throw new Error(`disk ${disk} is still mounted on this node (${mounted}), by an earlier agent or an unmount that failed: `
        + 'not registering here while that mount can write; unmount it');
    }
    if (u.config.reservation === 'scsi2') {
      await this.acquireScsi2(u, dev);
      return 0;
    }
    await dev.prRegister(this.key, { ignoreExisting: true });
    const abort = u.config.preemptAndAbort;
    const how = abort ? 'PREEMPT AND ABORT' : 'PREEMPT';
    const { reservation } = await dev.prReadReservation();
    if (reservation === null) {
      await dev.prReserve(this.key, 'wero');
    } else if (reservation.key !== this.key) {
      const holder = this.nodeOfKey(reservation.key);
      if (holder && this.hooks.isAlive(holder.name)) {
        throw new Error(`disk ${disk} is held by ${holder.name} (key ${formatKey(reservation.key)}), which is alive: not taking it`);
      }
      if (!holder) this.foreignKey(disk, `the reservation was held by key ${formatKey(reservation.key)}, which belongs to no node of this cluster: preempted (${how}); another cluster or a tool uses this disk?`);
      this.log.warn({ disk, victim: holder?.name ?? formatKey(reservation.key), how }, 'trespass: preempting the failed holder');
      await dev.prPreempt(this.key, reservation.key, 'wero', { abort });
      u.preempts++;
    }
    // Every other registration goes too: under WERO any registrant may write.
    for (const k of (await dev.prReadKeys()).keys) {
      if (k === this.key) continue;
      const node = this.nodeOfKey(k);
      if (node && this.hooks.isAlive(node.name)) this.log.warn({ disk, node: node.name }, `${node.name} is registered on a disk this node takes, while alive: removing its key (${how})`);
      else if (!node) this.foreignKey(disk, `key ${formatKey(k)}, registered on it, belongs to no node of this cluster: removed (${how}); another cluster or a tool uses this disk?`);
      await dev.prPreempt(this.key, k, 'wero', { abort });
      u.preempts++;
    }
    const after = await dev.prReadReservation();
    if (after.reservation?.key !== this.key) {
      throw new Error(`disk ${disk}: reservation is ${after.reservation ? `held by ${formatKey(after.reservation.key)}` : 'absent'} after taking it`);
    }
    u.holding = true;
    u.fenced = false;
    u.keptFor = undefined;
    return after.generation;
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
    u.resets += resets.length;
    u.holding = true;
    u.fenced = false;
    u.resetSense = undefined; // our own reset's unit attention, if any, is not news
    // A reset is sent only when every other node counts failed (scsi2.ts): any of them may have held it.
    u.brokeFrom = new Set(resets.length > 0 ? this.config.nodes.filter((n) => n !== this.self).map((n) => n.name) : []);
    if (resets.length > 0) {
      this.log.warn({ disk, resets: resets.length, ms: Number((performance.now() - started).toFixed(1)) }, 'trespass: SCSI-2 reservation taken after reset');
    }
  }

  release(disk: string): Promise<void> {
    const u = this.unit(disk);
    return this.serial(u, () => this.releaseNow(u));
  }

  /** Gives the disk up: never while a file system on it is mounted here (the peer fences this node instead). */
  private async releaseNow(u: Unit): Promise<void> {
    const disk = u.config.name;
    const dev = await this.ensureOpen(u);
    const mounted = await this.mountedHere(disk);
    if (mounted) {
      throw new Error(`disk ${disk} is not released: ${mounted} is still mounted on this node. This node keeps the disk `
        + '(a release would let that mount write beside the next owner); the node that takes over will fence it');
    }
    u.holding = false; // first: the periodic checks must not take it back while the release is on its way
    if (u.config.reservation === 'scsi2') {
      await dev.release6(); // GOOD, and no effect, when another initiator holds it (after a takeover)
      return;
    }
    await this.unregister(u, dev);
  }

  /** Releases this node's reservation and removes its key (a node registers only while it owns the disk). */
  private async unregister(u: Unit, dev: ScsiDevice): Promise<void> {
    const { reservation } = await dev.prReadReservation();
    if (reservation?.key === this.key) await dev.prRelease(this.key, 'wero');
    if ((await dev.prReadKeys()).keys.includes(this.key)) await dev.prUnregister(this.key);
  }

  /** At start: a key of this node registered without the reservation is an earlier agent's; it goes. */
  private async dropStrayRegistration(u: Unit): Promise<void> {
    const dev = u.device!;
    if (!(await dev.prReadKeys()).keys.includes(this.key)) return;
    const { reservation } = await dev.prReadReservation();
    if (reservation?.key === this.key) {
      // Still the holder (the earlier agent's app may be restarted here after the sync): kept until no
      // app of this node uses it (relinquishUnused).
      u.holding = true;
      this.log.warn({ disk: u.config.name }, 'this node still holds the reservation from an earlier agent');
      return;
    }
    await dev.prUnregister(this.key);
    this.log.warn({ disk: u.config.name }, 'an earlier agent\'s registration removed: this node registers only when it takes the disk');
  }

  /**
   * A disk this node holds (or is registered on) while no app of this node uses it goes: released and
   * unregistered, or, while a file system on it is still mounted here, kept and said once (releasing
   * would let that mount write beside the next owner). `inUse` is asked inside the unit's serial queue,
   * so an acquire queued before this sees its disk in use.
   */
  async relinquishUnused(inUse: (disk: string) => boolean): Promise<void> {
    for (const u of this.units.values()) {
      if (!u.device || u.config.reservation !== 'persistent') continue;
      await this.serial(u, async () => {
        if (inUse(u.config.name)) return;
        const dev = u.device!;
        if (!(await dev.prReadKeys()).keys.includes(this.key)) {
          u.holding = false;
          return;
        }
        const mounted = await this.mountedHere(u.config.name);
        const { reservation } = await dev.prReadReservation();
        if (mounted && reservation?.key === this.key) {
          if (u.keptFor !== mounted) this.log.error({ disk: u.config.name, mounted }, 'disk kept: no app of this node uses it, but a file system on it is still mounted here; unmount it');
          u.keptFor = mounted;
          return;
        }
        u.holding = false;
        await this.unregister(u, dev);
        this.log.warn({ disk: u.config.name, mounted: mounted || undefined }, 'no app of this node uses the disk: its registration is removed');
      }).catch((e: unknown) => this.log.warn({ disk: u.config.name, err: String(e) }, 'cannot check this node\'s registration'));
    }
  }

  /**
   * `node` sent distress: a sole survivor removes its key from every persistent unit it is registered
   * on, by PREEMPT AND ABORT where the disk allows (taking the reservation of a unit it held). With other
   * survivors, the takeover of its apps fences it. Never throws: one line per unit says what was done.
   */
  async fenceNode(node: NodeConfig, soleSurvivor: boolean): Promise<FenceResult[]> {
    const victim = reservationKey(this.config, node, this.clusterKey);
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
        if (!soleSurvivor) return 'left to the takeover of its apps (other survivors)';
        const mounted = await this.mountedHere(disk);
        if (mounted) return `not fenced from here: ${mounted} is mounted on this node`;
        await dev.prRegister(this.key, { ignoreExisting: true });
        const { reservation } = await dev.prReadReservation();
        const abort = u.config.preemptAndAbort;
        const how = abort ? 'PREEMPT AND ABORT' : 'PREEMPT';
        await dev.prPreempt(this.key, victim, reservation?.type ?? 'wero', { abort });
        u.preempts++;
        if (reservation?.key === victim) {
          u.holding = true;
          u.fenced = false;
          return `${how}: its key removed, the reservation is this node's`;
        }
        if (reservation === null) await dev.prReserve(this.key, 'wero');
        u.holding = true;
        u.fenced = false;
        return `${how}: its key removed`;
      }).catch((e: unknown) => `failed: ${e instanceof Error ? e.message : String(e)}`);
      out.push({ disk, done });
    }
    return out;
  }

  /** What this node did to each unit's other holders, counted since it started (the metrics). */
  counters(): { disk: string; preempts: number; resets: number; fenced: boolean; holding: boolean }[] {
    return [...this.units.values()].map((u) => ({ disk: u.config.name, preempts: u.preempts, resets: u.resets, fenced: u.fenced, holding: u.holding }));
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
        const owner = (key: bigint) => this.nodeOfKey(key)?.name ?? formatKey(key);
        out.push({
          disk: name, path: u.device.path, myKey: formatKey(this.key), fenced: u.fenced, holding: u.holding,
          holder: r.reservation && owner(r.reservation.key), type: r.reservation?.type ?? null, generation: r.generation,
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
    const base = { disk: u.config.name, path: dev.path, type: 'scsi2', fenced: u.fenced, heartbeat: u.config.heartbeat };
    if (u.holding && !u.fenced) return { ...base, holder: this.self.name };
    try {
      await dev.testUnitReady();
      return { ...base, holder: null };
    } catch (e) {
      if (e instanceof ReservationConflictError) return { ...base, holder: 'another initiator' };
      return { ...base, error: e instanceof Error ? e.message : String(e) };
    }
  }

  private foreignKey(disk: string, message: string): void {
    this.log.error({ disk }, `disk ${disk}: ${message}`);
    this.hooks.onForeignKey?.(disk, `disk ${disk}: ${message}`);
  }

  private nodeOfKey(key: bigint): NodeConfig | undefined {
    return this.config.nodes.find((n) => reservationKey(this.config, n, this.clusterKey) === key);
  }

  // ---- the disk heartbeat ----

  /**
   * PR units, every interval: the holder re-registers its key (its pulse; refused once preempted:
   * fenced), and every node reads the reservation: the generation moved under the same holder is that
   * holder's pulse.
   */
  private async pulse(u: Unit): Promise<void> {
    if (!u.device || u.busy || (!u.config.heartbeat && !u.holding)) return;
    u.busy = true;
    try {
      if (u.holding && !u.fenced) {
        try {
          await u.device.prRegister(this.key, { currentKey: this.key });
        } catch (e) {
          if (!(e instanceof ReservationConflictError)) throw e;
          u.holding = false;
          this.fence(u, 'the disk heartbeat\'s REGISTER was refused: RESERVATION CONFLICT (this node\'s key was preempted)');
        }
      }
      if (!u.config.heartbeat) return;
      const { generation, reservation } = await u.device.prReadReservation();
      u.answeredAt = performance.now();
      const holderKey = reservation?.key ?? null;
      const before = u.watch.holder;
      const seen = u.watch.observe(generation, holderKey);
      const holder = holderKey === null ? undefined : this.nodeOfKey(holderKey);
      if (before !== holderKey) this.hooks.onHolder?.(u.config.name, holder?.name ?? null);
      if (seen !== 'none' && holder && holder !== this.self) this.hooks.onPulse(holder.name, u.config.name, performance.now());
    } catch (e) {
      this.log.warn({ disk: u.config.name, err: e instanceof Error ? e.message : String(e) }, 'disk heartbeat failed');
    } finally {
      u.busy = false;
    }
  }

  /**
   * SCSI-2, the holder every interval: RESERVE(6), GOOD while it holds the unit (or takes it back after
   * a reset nobody followed), RESERVATION CONFLICT once another node reset and reserved it: fenced. Why
   * RESERVE and not TEST UNIT READY: src/daemon/scsi2.ts. While a peer no longer acknowledges this node's
   * heartbeats, the holder also toggles: RELEASE, a short window, RESERVE (src/daemon/disk-pulse.ts).
   */
  private async checkScsi2(u: Unit): Promise<void> {
    if (!u.device || !u.holding || u.fenced || u.busy) return;
    u.busy = true;
    try {
      const now = performance.now();
      for (const n of u.brokeFrom) if (this.hooks.isAlive(n)) u.brokeFrom.delete(n);
      if (u.config.heartbeat && now - u.lastToggle >= this.toggle.periodMs && this.hooks.mustProveLife?.(u.brokeFrom)) {
        u.lastToggle = now;
        await u.device.release6();
        await sleep(this.toggle.releaseMs);
        if (!u.holding) return; // released meanwhile by this node: stays so
      }
      await u.device.reserve6();
      u.answeredAt = performance.now();
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
      this.fence(u, `RESERVE(6) refused: RESERVATION CONFLICT${after}: another node reserved the unit`);
    } finally {
      u.busy = false;
    }
  }

  /** SCSI-2, a node that does not hold the unit: TEST UNIT READY while its presumed holder is silent on every network. */
  private async sample(u: Unit): Promise<void> {
    if (!u.device || u.config.reservation !== 'scsi2' || !u.config.heartbeat || u.holding || u.busy) return;
    const holder = this.hooks.silentHolder?.(u.config.name);
    if (holder === undefined) {
      u.sampler.reset();
      return;
    }
    u.busy = true;
    try {
      let reserved: boolean;
      try {
        await u.device.testUnitReady();
        reserved = false;
      } catch (e) {
        if (!(e instanceof ReservationConflictError)) throw e;
        reserved = true;
      }
      if (u.sampler.observe(reserved)) this.hooks.onPulse(holder, u.config.name, performance.now());
    } catch (e) {
      this.log.warn({ disk: u.config.name, err: e instanceof Error ? e.message : String(e) }, 'SCSI-2 sample failed');
    } finally {
      u.busy = false;
    }
  }

  private onUnitAttention(u: Unit, sense: Sense): void {
    if (u.config.reservation === 'scsi2') {
      if (sense.asc === RESET_ASC && u.holding) u.resetSense = sense;
      return;
    }
    if (sense.asc === FENCED_ASC && (sense.ascq === 0x05 || sense.ascq === 0x04) && u.holding) {
      // Also reported to the node that preempts (its own I_T nexus sees no UA), so check our registration.
      void u.device?.prReadKeys().then((k) => {
        if (!k.keys.includes(this.key) && u.holding) {
          u.holding = false;
          this.fence(u, `unit attention ${sense.code} (${sense.text}) and our key is gone`);
        }
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

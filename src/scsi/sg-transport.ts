// SCSI commands through the native SG_IO path: one owned thread per open path (see native/sg_device.h),
// results delivered to the event loop, and a watchdog for commands the kernel never returns.
import { getSystemErrorName } from 'node:util';

import { nativeAddon, type NativeSgDevice } from '../native.js';
import { commandName } from './cdb.js';
import { completionPacer } from './completion-pacer.js';
import { DeviceOpenError, PathWedgedError, ScsiTimeoutError, TransportError } from './errors.js';
import { RESET_NAMES, type CommandTiming, type ResetKind, type ScsiRequest, type ScsiResult, type ScsiTransport } from './transport.js';

export interface SgTransportOptions {
  /** SG_IO timeout for requests that name none (ms). */
  defaultTimeoutMs?: number;
  /**
   * How long past a command's own timeout to wait for the kernel before declaring the path wedged. The
   * kernel's error handler normally aborts a timed-out command and returns it well within this; a
   * command still out after it will likely never return (PREEMPT AND ABORT through tcm_loop on 6.1).
   */
  watchdogGraceMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_GRACE_MS = 2_000;
// SG_SCSI_RESET has no deadline of its own (each driver decides; tcm_loop waits for its task management
// function without one), so the watchdog's is the only one.
const DEFAULT_RESET_TIMEOUT_MS = 30_000;

interface Pending {
  id: number;
  /** The CDB, or the name of the reset. */
  op: Buffer | string;
  timeoutMs: number;
  resolve: (r: ScsiResult) => void;
  reject: (e: Error) => void;
}

const OPEN_TEXT: Record<string, string> = {
  ENOENT: 'no such device',
  ENXIO: 'no such device or address (the device is gone)',
  ENODEV: 'no such device (the device is gone)',
  EACCES: 'permission denied (SCSI pass-through needs read-write access)',
  EPERM: 'operation not permitted',
  EBUSY: 'device busy (opened exclusively elsewhere)',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory, not a device',
};
const NOT_SCSI = 'not a SCSI device (it does not answer the SCSI generic interface)';
const IO_TEXT: Record<string, string> = {
  ENODEV: 'the device went away',
  ENXIO: 'the device went away',
  EIO: 'I/O error from the SCSI layer',
  EINVAL: 'the SCSI layer refused the request (CDB length, transfer size or alignment)',
  ENOMEM: 'no memory for the transfer',
  EPERM: 'not permitted (the command needs CAP_SYS_RAWIO or a read-write open)',
  EACCES: 'not permitted (the command needs a read-write open)',
  EBUSY: 'device busy',
  EFAULT: 'bad buffer address',
  // Never retried by the addon: a re-issued command may run twice (a PREEMPT, a REGISTER).
  EINTR: 'interrupted by a signal: the command may or may not have reached the device (outcome unknown)',
};
// What SG_SCSI_RESET's errors mean (drivers/scsi/sg.c, scsi_ioctl_reset in scsi_error.c).
const RESET_TEXT: Record<string, string> = {
  EIO: 'the reset failed: the driver has no handler for this reset, or the device did not complete it',
  EAGAIN: 'the SCSI host is in error recovery: try again once it ends',
  EBUSY: 'the SCSI host is in error recovery: try again once it ends',
  EACCES: 'not permitted (a reset needs CAP_SYS_ADMIN and CAP_SYS_RAWIO)',
  ENODEV: 'the device went away',
  ENXIO: 'the device went away',
  EINVAL: 'this kernel does not know this reset',
  ENOTTY: 'this path does not take SCSI resets',
};

function errnoCode(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

export class SgTransport implements ScsiTransport {
  readonly path: string;
  /** sg driver version the path answered with (e.g. 30536 for 3.5.36). */
  sgVersion = 0;
  private readonly native: NativeSgDevice;
  private readonly defaultTimeoutMs: number;
  private readonly graceMs: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private opened: ((e?: Error) => void) | undefined;
  private wedged: { id: number; since: number; command: string } | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private watchdogMs = 0;

  /** Opens a path (/dev/sgN or /dev/sdX); the open itself runs on the path's own thread. */
  static open(path: string, options: SgTransportOptions = {}): Promise<SgTransport> {
    return new Promise((resolve, reject) => {
      const t = new SgTransport(path, options, (e) => (e ? reject(e) : resolve(t)));
    });
  }

  private constructor(path: string, options: SgTransportOptions, opened: (e?: Error) => void) {
    this.path = path;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.graceMs = options.watchdogGraceMs ?? DEFAULT_GRACE_MS;
    this.opened = opened;
    this.native = new (nativeAddon().SgDevice)(path, this.dispatch);
  }

  execute(request: ScsiRequest): Promise<ScsiResult> {
    const { cdb } = request;
    if (this.closed) return Promise.reject(new TransportError(this.path, cdb, 'the path is closed', { code: 'EBADF' }));
    if (this.wedged) {
      const ago = ((performance.now() - this.wedged.since) / 1000).toFixed(1);
      return Promise.reject(new PathWedgedError(this.path, cdb,
        `not sent: ${this.wedged.command} has not come back from the kernel (declared wedged ${ago} s ago)`, { code: 'ECANCELED' }));
    }
    const timeoutMs = request.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      if (request.dataOut) this.native.submit(id, cdb, 2, request.dataOut, timeoutMs);
      else if (request.dataIn) this.native.submit(id, cdb, 1, request.dataIn, timeoutMs);
      else this.native.submit(id, cdb, 0, undefined, timeoutMs);
      this.pending.set(id, { id, op: cdb, timeoutMs, resolve, reject });
      if (this.pending.size === 1) this.armWatchdog();
    });
  }

  /**
   * A LOGICAL UNIT RESET or TARGET RESET along this path (SG_SCSI_RESET, never escalated to a bus or host
   * reset), on the path's own thread after the commands submitted before it. Resolves with its timing
   * when the driver reports it done; rejects with a TransportError naming the errno (EIO: the driver
   * could not), or a ScsiTimeoutError when it has not come back within `timeoutMs` (the path is then
   * wedged, as for a command).
   */
  reset(kind: ResetKind, timeoutMs = DEFAULT_RESET_TIMEOUT_MS): Promise<CommandTiming> {
    const op = RESET_NAMES[kind];
    if (this.closed) return Promise.reject(new TransportError(this.path, op, 'the path is closed', { code: 'EBADF' }));
    if (this.wedged) {
      return Promise.reject(new PathWedgedError(this.path, op, `not sent: ${this.wedged.command} has not come back from the kernel`, { code: 'ECANCELED' }));
    }
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.native.reset(id, kind);
      this.pending.set(id, { id, op, timeoutMs, resolve: (r) => resolve(r.timing), reject });
      if (this.pending.size === 1) this.armWatchdog();
    });
  }

  /**
   * Stops the path's thread once the command in the kernel (if any) returns; queued commands are
   * rejected without being sent. Never waits: a wedged thread is left to finish on its own.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    this.disarmWatchdog();
    for (const p of this.pending.values()) p.reject(new TransportError(this.path, p.op, 'the path was closed', { code: 'ECANCELED' }));
    this.pending.clear();
  }

  /** True while a command the watchdog gave up on is still in the kernel. */
  get isWedged(): boolean {
    return this.wedged !== undefined;
  }

  private readonly dispatch = (
    id: number, errno: number, status: number, hostStatus: number, driverStatus = 0, resid = 0,
    sense?: Buffer, data?: Buffer, waitNs = 0, ioctlNs = 0, deliverNs = 0,
  ): void => {
    if (id === 0) return this.onOpen(errno, status, hostStatus);
    const p = this.pending.get(id);
    if (!p) {
      // Abandoned by the watchdog or cancelled: the stuck command has come back, the path works again.
      if (this.wedged?.id === id) this.wedged = undefined;
      return;
    }
    this.pending.delete(id);
    this.armWatchdog();
    if (errno !== 0) {
      const code = errnoCode(errno);
      const detail = typeof p.op === 'string'
        ? `SG_SCSI_RESET failed: ${RESET_TEXT[code] ?? code} (${code})`
        : `SG_IO failed: ${IO_TEXT[code] ?? code} (${code})`;
      const error = new TransportError(this.path, p.op, detail, { errno, code });
      completionPacer.settle(() => p.reject(error));
      return;
    }
    const result: ScsiResult = {
      status, hostStatus, driverStatus, resid,
      timing: { waitUs: waitNs / 1000, ioctlUs: ioctlNs / 1000, deliverUs: deliverNs / 1000 },
    };
    if (sense) result.sense = sense;
    if (data) result.data = data;
    completionPacer.settle(() => p.resolve(result));
  };

  private onOpen(errno: number, failedCall: number, version: number): void {
    const done = this.opened;
    this.opened = undefined;
    if (errno === 0) {
      this.sgVersion = version;
      done?.();
      return;
    }
    this.closed = true;
    this.native.close();
    const code = errnoCode(errno);
    const notScsi = failedCall === 2 && (code === 'ENOTTY' || code === 'EINVAL');
    const detail = notScsi ? NOT_SCSI : `${OPEN_TEXT[code] ?? code} (${code})`;
    done?.(new DeviceOpenError(this.path, errno, code, failedCall === 2 ? 'ioctl' : 'open', detail));
  }

  // One timer per path, for the command at the head of the queue (the one in the kernel: the device
  // thread runs commands in order), re-armed whenever the head changes. It is unreferenced and left
  // armed when the queue empties (firing on an empty queue does nothing), so the common case costs a
  // refresh() per command rather than a new timer.
  private armWatchdog(): void {
    const head = this.pending.values().next().value as Pending | undefined;
    if (!head) return;
    const ms = head.timeoutMs + this.graceMs;
    if (this.watchdog && this.watchdogMs === ms) {
      this.watchdog.refresh();
      return;
    }
    this.disarmWatchdog();
    this.watchdogMs = ms;
    this.watchdog = setTimeout(this.onWatchdog, ms);
    this.watchdog.unref(); // the in-flight command keeps the loop alive, not its watchdog
  }

  private disarmWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  private readonly onWatchdog = (): void => {
    const head = this.pending.values().next().value as Pending | undefined;
    if (!head) return;
    this.watchdog = undefined;
    const command = typeof head.op === 'string' ? head.op : commandName(head.op);
    this.wedged = { id: head.id, since: performance.now(), command };
    this.pending.delete(head.id);
    const [deadline, what] = typeof head.op === 'string' ? ['deadline', 'the reset'] : ['SG_IO timeout', 'the command'];
    head.reject(new ScsiTimeoutError(this.path, head.op,
      `no answer from the kernel ${(this.watchdogMs / 1000).toFixed(1)} s after sending (${deadline} ` +
      `${head.timeoutMs} ms + ${this.graceMs} ms grace); ${what} may still reach the device. The path ` +
      'refuses further commands until it returns', true));
    // Whatever is queued behind it would wait for the stuck ioctl: refuse it now, unsent.
    this.native.cancelQueued();
    for (const p of this.pending.values()) {
      p.reject(new PathWedgedError(this.path, p.op, `not sent: ${command} ahead of it never came back from the kernel`, { code: 'ECANCELED' }));
    }
    this.pending.clear();
  };
}

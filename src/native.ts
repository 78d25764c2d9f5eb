// Loads vigil's one native addon (build/Release/vigil_native.node, built by `npm run build`).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { packageRoot } from './util/package-root.js';

/** dispatch(0, errno, failedCall, sgVersion) for the open; the long form for each command. */
export type SgDispatch = (
  id: number, errno: number, statusOrFailedCall: number, hostStatusOrVersion: number,
  driverStatus?: number, resid?: number, sense?: Buffer, data?: Buffer,
  waitNs?: number, ioctlNs?: number, deliverNs?: number,
) => void;

export interface NativeSgDevice {
  /** direction 0 none, 1 data-in (data = allocation length), 2 data-out (data = Buffer). */
  submit(id: number, cdb: Buffer, direction: 0 | 1 | 2, data: number | Buffer | undefined, timeoutMs: number): void;
  /**
   * SG_SCSI_RESET (never escalated) on the path's thread, behind what was submitted before; answered
   * through dispatch like a command with status 0 and no sense or data.
   */
  reset(id: number, kind: 'lun' | 'target'): void;
  /** Answers every command not yet started with ECANCELED, unsent. */
  cancelQueued(): void;
  close(): void;
}

/** The process at the other end of a unix socket, as the kernel recorded it at connect time. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * What the addon throws when a system call fails: errno positive (as the device paths report it), code its
 * name ('ENOTSOCK'; "errno N" where the C library cannot name it), syscall.
 */
export interface NativeSystemError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

/** What the heartbeat thread is given at start; see native/heartbeat.h and docs/cluster.md ("Wire format"). */
export interface HeartbeatEngineOptions {
  key: Buffer;
  clusterTag: number;
  selfId: number;
  incarnation: bigint;
  intervalMs: number;
  /** The thread sends only while the agent renewed its lease within this many ms. */
  leaseMs: number;
  /** SCHED_FIFO priority for the thread; 0 leaves it at the normal policy. */
  priority: number;
  /** Index in this array = network index on the wire. */
  networks: { bind: string; port: number }[];
  peers: { id: number; addresses: { network: number; host: string; port: number }[] }[];
}

export interface HeartbeatLinkSnapshot {
  network: number;
  /** Milliseconds since the last authentic heartbeat from the peer on this network; -1 never. */
  heardAgoMs: number;
  heardCount: number;
  /** The peer's sequence number in the last heartbeat heard on this network (0 never). */
  peerSeq: number;
  /** Milliseconds since the peer last acknowledged one of ours on this network; -1 never. */
  ackedAgoMs: number;
  rttUs: number;
  /** The peer's CLOCK_MONOTONIC (µs) when it sent the last heartbeat heard on this network; 0 never. */
  peerSentMonoUs: number;
  /** This node's CLOCK_MONOTONIC (µs) when that heartbeat arrived; 0 never. */
  heardMonoUs: number;
}

export interface HeartbeatSnapshot {
  running: boolean;
  sent: number;
  sendErrors: number;
  received: number;
  /** Send rounds skipped because the agent's lease had run out. */
  leaseLapsed: number;
  /** Lapses on which the thread removed the node's service addresses (setAddresses). */
  addressDrops: number;
  /** errno of the last removal that failed; 0 none. */
  addressDropError: number;
  realtime: boolean;
  /** pthread_setschedparam's error when SCHED_FIFO was asked for and refused (EPERM without CAP_SYS_NICE). */
  schedError: number;
  dropped: Record<'short' | 'magic' | 'type' | 'length' | 'cluster' | 'hmac' | 'unknownSender' | 'replay'
    | 'staleIncarnation' | 'misdirected', number>;
  peers: { id: number; incarnation: bigint; digest: number; flags: number; links: HeartbeatLinkSnapshot[] }[];
}

export interface NativeHeartbeatEngine {
  renewLease(): void;
  setDigest(digest: number): void;
  /** The node's service addresses now: the thread removes them when the lease lapses. */
  setAddresses(addresses: { interface: string; address: string; prefixLength: number }[]): void;
  snapshot(): HeartbeatSnapshot;
  /** Stops the thread and closes its sockets; idempotent. */
  stop(): void;
}

/**
 * What the armed distress sender is given at start (native/distress.h, docs/distress.md). Everything is built,
 * signed and bound before the constructor returns; a trigger only sends fixed bytes.
 */
export interface DistressSenderOptions {
  key: Buffer;
  clusterTag: number;
  selfId: number;
  incarnation: bigint;
  /** Wire reason codes to pre-build (src/wire/distress.ts REASON_CODES), 1 to 16 of them. */
  reasons: number[];
  /** Distinct events per reason per arming (1..64, default 4); beyond them the last one is re-sent. */
  slots?: number;
  /** Copies of each event (1..16, default 3), consecutive sequence numbers, deduplicated by receivers. */
  repeats?: number;
  /** Gap between copies on the dedicated thread, µs (default 1000); sync sends go back to back. */
  repeatGapUs?: number;
  /** SCHED_FIFO priority for the thread (1..99); 0 leaves the normal policy. */
  priority?: number;
  /** When SCHED_FIFO is not granted (or not asked): the thread's nice value, -20..19 (0: leave it). */
  nice?: number;
  /** mlock the state, the sets, the thread's stack and the code of a send (default true). */
  lockMemory?: boolean;
  /** Index in this array = network index of the peer addresses; `bind` is this node's address on it. */
  networks: { bind: string }[];
  peers: { id: number; addresses: { network: number; host: string; port: number }[] }[];
}

export interface DistressReasonSnapshot {
  code: number;
  triggers: number;
  events: number;
  /** Datagrams the kernel accepted. */
  datagrams: number;
  errors: number;
  /** Wall-clock ms of the last send; 0 never. */
  lastSentAtMs: number;
  /** -1 never. */
  lastSentAgoMs: number;
}

export interface DistressSnapshot {
  running: boolean;
  armed: boolean;
  generation: number;
  incarnation: bigint;
  firstSequence: bigint;
  armedAtMs: number;
  destinations: number;
  /** Sets a sender still held a second after a re-arm: kept mapped forever (should stay 0). */
  leakedSets: number;
  networks: number;
  slots: number;
  repeats: number;
  repeatGapUs: number;
  /** The SCHED_FIFO priority asked for. */
  priority: number;
  realtime: boolean;
  /** pthread_setschedparam's error when SCHED_FIFO was refused (EPERM without CAP_SYS_NICE): warn. */
  schedError: number;
  nice: number;
  niceError: number;
  memoryLocked: boolean;
  memoryLockError: number;
  codeLocked: boolean;
  codeLockError: number;
  fatalHandlers: boolean;
  fatalReason: number | null;
  asyncEvents: number;
  syncEvents: number;
  wakeups: number;
  sendErrors: number;
  lastErrno: number;
  lastError: string | null;
  reasons: DistressReasonSnapshot[];
  perNetwork: { datagrams: number; errors: number; lastError: string | null }[];
}

export interface NativeDistressSender {
  /** Hands the event to the armed thread (one atomic add and one eventfd write); true when woken. */
  trigger(reason: number, mode: 'async'): boolean;
  /** Sends on this thread before returning; the number of datagrams the kernel accepted. */
  trigger(reason: number, mode: 'sync'): number;
  /** New key, incarnation or peers: built aside, published in one swap. Returns the new generation. */
  rearm(options: { key?: Buffer; incarnation?: bigint; peers?: DistressSenderOptions['peers'] }): number;
  /**
   * SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE send `reason` synchronously from the handler, then die as before.
   * With `stayOut`, the handler then writes `content` to `path` (the agent's stay-out record).
   */
  installFatalHandlers(reason: number, stayOut?: { path: string; content: string }): void;
  uninstallFatalHandlers(): void;
  snapshot(): DistressSnapshot;
  /** Uninstalls the fatal handlers if they are this sender's and joins the thread; idempotent. */
  stop(): void;
  /** Tests and the bench: a native thread fires the triggers while the event loop may be busy. */
  triggerFromThread(o: { reason: number; mode?: 'async' | 'sync'; delayUs?: number; count?: number; intervalUs?: number; priority?: number }): void;
  /** When each trigger of triggerFromThread fired (taken just before the write), CLOCK_MONOTONIC and CLOCK_REALTIME ns. */
  threadTriggerTimes(): { finished: boolean; monoNs: BigInt64Array; realNs: BigInt64Array };
  /** Tests only: dies of the signal (a real fault for segv and ill). */
  crashForTest(kind: 'segv' | 'bus' | 'abort' | 'ill' | 'fpe' | 'overflow' | 'overflow-bare'): never;
}

export interface NativeDistressSenderClass {
  new (options: DistressSenderOptions): NativeDistressSender;
}

/**
 * dispatch(id, errno, failedCall, data, waitNs, answerNs) of native/ipmi_device.cc: id 0 answers the open
 * (failedCall 1: open(2)); a request's data is the response, completion code first, when errno is 0
 * (ETIMEDOUT: no response by its deadline; ECANCELED: closed first; ENODEV: the interface went away).
 */
export type IpmiDispatch = (id: number, errno: number, failedCall: number, data: Buffer | undefined, waitNs: number, answerNs: number) => void;

export interface NativeIpmiDevice {
  submit(id: number, netfn: number, cmd: number, data: Buffer, timeoutMs: number): void;
  /** Responses that matched no request in flight (a late one, after its request's deadline). */
  strays(): number;
  close(): void;
}

/** native/watchdog_keeper.h */
export interface WatchdogKeeperOptions {
  kind: 'ipmi' | 'device';
  path: string;
  timeoutMs: number;
  tickleMs: number;
  leaseMs: number;
  /** IPMI: 0 none, 1 hard reset, 2 power down, 3 power cycle. */
  action: number;
}

export interface WatchdogSnapshot {
  armed: boolean;
  ended: boolean;
  errno: number;
  failedCall: string;
  identity: string;
  driverTimeoutS: number;
  tickles: number;
  withheld: number;
  tickleErrors: number;
  answers: number;
  refusals: number;
}

export interface NativeWatchdogKeeper {
  renewLease(): void;
  snapshot(): WatchdogSnapshot;
  /** disarm: a clean stop; without it the watchdog stays armed (the node resets unless someone keeps it). */
  stop(disarm: boolean): void;
}

export interface NativeAddon {
  SgDevice: new (path: string, dispatch: SgDispatch) => NativeSgDevice;
  IpmiDevice: new (path: string, dispatch: IpmiDispatch) => NativeIpmiDevice;
  WatchdogKeeper: new (options: WatchdogKeeperOptions) => NativeWatchdogKeeper;
  HeartbeatEngine: new (options: HeartbeatEngineOptions) => NativeHeartbeatEngine;
  DistressSender: NativeDistressSenderClass;
  getPeerCred(fd: number): PeerCred;
  sdNotify(message: string): boolean;
  reexec(path: string, argv: string[]): never;
}

let addon: NativeAddon | undefined;

export function nativeAddon(): NativeAddon {
  if (!addon) {
    const file = join(packageRoot(), 'build', 'Release', 'vigil_native.node');
    if (!existsSync(file)) throw new Error(`vigil: the native addon is not built (${file} is missing): run npm run build`);
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  }
  return addon;
}

/**
 * SO_PEERCRED of a connected unix socket's descriptor. Throws a NativeSystemError (EBADF, ENOTSOCK, ...)
 * when the kernel refuses, a TypeError or RangeError for a bad argument.
 */
export function getPeerCred(fd: number): PeerCred {
  return nativeAddon().getPeerCred(fd);
}

/**
 * sd_notify(3): sends `message` ("READY=1", "WATCHDOG=1", ...) as one datagram to $NOTIFY_SOCKET ('@name':
 * abstract socket). false when NOTIFY_SOCKET is unset or empty (not run by systemd as Type=notify); true
 * when sent. Throws a NativeSystemError when the send fails (ECONNREFUSED, EAGAIN: the non-blocking send
 * found the queue full, EAFNOSUPPORT: not a unix socket address, ...).
 */
export function sdNotify(message: string): boolean {
  return nativeAddon().sdNotify(message);
}

/**
 * execv(2) of `path` with `argv` in place of this process (the rejuvenation ladder's agent rung): the pid
 * stays, everything else is new. Returns only by throwing a NativeSystemError (ENOENT, EACCES, ...).
 */
export function reexec(path: string, argv: string[]): never {
  return nativeAddon().reexec(path, argv);
}

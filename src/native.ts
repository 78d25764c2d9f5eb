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
  /** Milliseconds since the peer last acknowledged one of ours on this network; -1 never. */
  ackedAgoMs: number;
  rttUs: number;
}

export interface HeartbeatSnapshot {
  running: boolean;
  sent: number;
  sendErrors: number;
  received: number;
  /** Send rounds skipped because the agent's lease had run out. */
  leaseLapsed: number;
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
  snapshot(): HeartbeatSnapshot;
  /** Stops the thread and closes its sockets; idempotent. */
  stop(): void;
}

export interface NativeAddon {
  SgDevice: new (path: string, dispatch: SgDispatch) => NativeSgDevice;
  HeartbeatEngine: new (options: HeartbeatEngineOptions) => NativeHeartbeatEngine;
  getPeerCred(fd: number): PeerCred;
  sdNotify(message: string): boolean;
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

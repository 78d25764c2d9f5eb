// A service address (virtual IP) that moves with its application: added on the host's interface, then
// announced with gratuitous ARP so that clients and switches forget the old owner's MAC at once instead of
// after their neighbour-cache timeout; removed on stop.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { runCommand } from './run-command.js';
import { refuseIfStale, type StaleCheck } from './stale-start.js';

export interface IpAddressSpec { address: string; prefixLength: number; interface: string }

function cidr(spec: IpAddressSpec): string {
  return `${spec.address}/${spec.prefixLength}`;
}

export async function hasAddress(spec: IpAddressSpec): Promise<boolean> {
  const { stdout } = await runCommand(['ip', '-o', 'addr', 'show', 'dev', spec.interface]);
  return stdout.split('\n').some((l) => l.includes(` ${cidr(spec)} `));
}

/** Another host answered for the address: adding it here would make two hosts answer. */
export class DuplicateAddressError extends Error {
  override name = 'DuplicateAddressError';
}

export interface AddOptions {
  /** Gratuitous ARP after adding (default true). */
  announce?: boolean;
  /** How long a host still answering for the address is waited for (default 2000 ms; 500 with takeOver). */
  freeWithinMs?: number;
  /**
   * The host still answering cannot keep the address legitimately (its disk was taken from it, or it sent
   * distress and died): take the address anyway after the wait, and announce it so clients move here.
   */
  takeOver?: boolean;
  /**
   * The former owner removed the address and said so (a planned switchover's source writes HOST = this
   * node only once its resources are down): no duplicate address probe, whose wait (100 ms with nobody
   * answering) was a planned switchover's largest agent-side cost.
   */
  released?: boolean;
  /** Whether the decision to add the address, and so the probe made after it, still holds (stale-start.ts). */
  stale?: StaleCheck;
}

/**
 * Adds the address (idempotent) and sends gratuitous ARP for it (IPv4). An IPv4 address this host does not
 * hold yet is first probed for (ARP duplicate address detection). Another host that still answers for it
 * is waited for up to `freeWithinMs` (a former owner letting it go as it leaves). One that keeps it makes
 * the add fail with DuplicateAddressError and the flow try again later: a former owner cut off from the
 * cluster's networks but still serving on this one must not be joined by a second server. With
 * `takeOver`, it is taken all the same (the former owner was fenced, or died with the address up).
 * Resolves with the MAC of a host it was taken from, if any.
 */
export async function addAddress(spec: IpAddressSpec, o: AddOptions = {}): Promise<string | undefined> {
  let takenFrom: string | undefined;
  if (!(await hasAddress(spec))) {
    if (!spec.address.includes(':') && !o.released) {
      // A former owner that was fenced or died with the address up is waited for briefly only.
      const end = performance.now() + (o.freeWithinMs ?? (o.takeOver ? 500 : 2000));
      for (let owner = await answeredBy(spec); owner; owner = await answeredBy(spec)) {
        if (performance.now() >= end) {
          if (o.takeOver) {
            takenFrom = owner;
            break;
          }
          throw new DuplicateAddressError(`${spec.address} is answered by another host (${owner}) on ${spec.interface}: not adding it here while it does`);
        }
        await sleep(100);
      }
    }
    // The probe is evidence only while no peer can have taken the address since: this agent, stopped
    // after probing, may have been failed over meanwhile.
    refuseIfStale(o.stale, `adding ${cidr(spec)}`);
    await runCommand(['ip', 'addr', 'add', cidr(spec), 'dev', spec.interface]);
  }
  if (o.announce ?? true) announce(spec);
  return takenFrom;
}

/**
 * How long a duplicate address probe waits for an answer once arping has sent it. On a LAN an ARP reply
 * comes within milliseconds; arping's own deadline is whole seconds, which a takeover cannot afford, so the
 * probe is ended here. The wait starts when arping says it is probing (its first line, unbuffered through
 * stdbuf), not when it is spawned: on a loaded machine starting arping alone can take longer than the
 * wait, and a probe that never went out must not count as "nobody answered".
 */
export const DUPLICATE_PROBE_MS = 100;
/** How long arping may take to start probing at all; past it the address counts as free (with a warning). */
export const DUPLICATE_PROBE_START_MS = 3000;

const REPLY = /reply from \S+ \[([0-9A-Fa-f:]+)\]/;

/** The MAC of a host answering an ARP probe for the address (arping -D), or undefined when none did in time. */
export function answeredBy(spec: IpAddressSpec, waitMs = DUPLICATE_PROBE_MS, startMs = DUPLICATE_PROBE_START_MS): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn('stdbuf', ['-oL', 'arping', '-D', '-c', '1', '-w', '1', '-I', spec.interface, spec.address], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let settled = false;
    const done = (mac: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(mac);
    };
    let timer = setTimeout(() => {
      process.emitWarning(`duplicate address probe for ${spec.address}: arping did not start probing within ${startMs} ms; counting the address as free`);
      done(undefined);
    }, startMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const probing = out.includes('\n');
      out += d;
      const m = REPLY.exec(out);
      if (m) return done(m[1]);
      if (!probing && out.includes('\n')) {
        clearTimeout(timer);
        timer = setTimeout(() => done(undefined), waitMs);
      }
    });
    child.on('error', (e) => {
      process.emitWarning(`duplicate address probe for ${spec.address}: ${e.message}`);
      done(undefined);
    });
    child.on('exit', () => done(REPLY.exec(out)?.[1]));
  });
}

/**
 * Gratuitous ARP (-U: unsolicited) for an IPv4 address, two announcements a second apart in case one is
 * lost. Not awaited: the first leaves at once, but arping itself lasts the whole interval, and the
 * failover must not.
 */
export function announce(spec: IpAddressSpec): void {
  if (spec.address.includes(':')) return;
  const child = spawn('arping', ['-q', '-U', '-c', '2', '-I', spec.interface, spec.address], { stdio: 'ignore' });
  child.on('error', (e) => process.emitWarning(`gratuitous ARP for ${spec.address}: ${e.message}`));
  child.unref();
}

/** Removes the address; absent already is success, also when another removal took it meanwhile. */
export async function removeAddress(spec: IpAddressSpec): Promise<void> {
  if (!(await hasAddress(spec))) return;
  try {
    await runCommand(['ip', 'addr', 'del', cidr(spec), 'dev', spec.interface]);
  } catch (e) {
    if (await hasAddress(spec)) throw e;
  }
}

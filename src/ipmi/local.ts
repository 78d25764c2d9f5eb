// The local BMC through /dev/ipmi0 (the kernel's ipmi_devintf), on the addon's own thread
// (native/ipmi_device.cc): requests in flight at once, each matched by its msgid and given a deadline.
import { existsSync } from 'node:fs';

import { nativeAddon, type NativeIpmiDevice } from '../native.js';
import { IpmiDeviceError, IpmiTimeoutError, IpmiTransportError } from './errors.js';
import type { IpmiRequest, IpmiResponse, IpmiTransport } from './message.js';

/** Where the kernel's device appears, by distribution and udev rules. */
export const LOCAL_BMC_PATHS = ['/dev/ipmi0', '/dev/ipmi/0', '/dev/ipmidev/0'];

interface Pending {
  req: IpmiRequest;
  resolve(r: IpmiResponse): void;
  reject(e: Error): void;
}

export class LocalBmc implements IpmiTransport {
  readonly path: string;
  private readonly device: NativeIpmiDevice;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private readonly defaultTimeoutMs: number;
  /** The last request's time on the thread, sent to answered (ns). */
  lastAnswerNs = 0;

  private constructor(path: string, timeoutMs: number, opened: { resolve(): void; reject(e: Error): void }) {
    this.path = path;
    this.defaultTimeoutMs = timeoutMs;
    this.device = new (nativeAddon().IpmiDevice)(path, (id, errno, _failedCall, data, _waitNs, answerNs) => {
      if (id === 0) {
        if (errno === 0) opened.resolve();
        else opened.reject(deviceError(path, errno));
        return;
      }
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      this.lastAnswerNs = answerNs;
      if (errno === 0 && data && data.length > 0) p.resolve({ code: data[0]!, data: data.subarray(1) });
      else if (errno === 110 /* ETIMEDOUT */) p.reject(new IpmiTimeoutError(`${path}: no response to ${p.req.name}`));
      else p.reject(new IpmiTransportError(`${path}: ${p.req.name}: ${errnoText(errno)}`));
    });
  }

  /** Opens the first of the paths that exists (or `path`); IpmiDeviceError when none does or it cannot be opened. */
  static async open(o: { path?: string; timeoutMs?: number } = {}): Promise<LocalBmc> {
    const path = o.path ?? LOCAL_BMC_PATHS.find((p) => existsSync(p));
    if (!path) {
      throw new IpmiDeviceError(`no local BMC: none of ${LOCAL_BMC_PATHS.join(', ')} exists (no BMC, or the ipmi_si and ipmi_devintf modules are not loaded)`, 2);
    }
    let opened!: { resolve(): void; reject(e: Error): void };
    const ready = new Promise<void>((resolve, reject) => { opened = { resolve, reject }; });
    const bmc = new LocalBmc(path, o.timeoutMs ?? 5000, opened);
    try {
      await ready;
    } catch (e) {
      bmc.device.close();
      throw e;
    }
    return bmc;
  }

  request(req: IpmiRequest, opts: { timeoutMs?: number } = {}): Promise<IpmiResponse> {
    if (this.closed) return Promise.reject(new IpmiTransportError(`${this.path}: closed`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { req, resolve, reject });
      try {
        this.device.submit(id, req.netfn, req.cmd, req.data, opts.timeoutMs ?? this.defaultTimeoutMs);
      } catch (e) {
        this.pending.delete(id);
        reject(e as Error);
      }
    });
  }

  /** Responses that came after their request's deadline (or were not ours), dropped. */
  get strays(): number {
    return this.device.strays();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.device.close();
  }
}

export function openLocalBmc(o: { path?: string; timeoutMs?: number } = {}): Promise<LocalBmc> {
  return LocalBmc.open(o);
}

const ERRNO_TEXT: Record<number, string> = {
  1: 'operation not permitted', 2: 'no such file', 6: 'no such device or address', 13: 'permission denied (root, or the device\'s group, only)',
  19: 'no such device (the interface went away)', 71: 'protocol error (an empty response)', 90: 'message too long', 125: 'cancelled (closed first)',
};

function errnoText(errno: number): string {
  return `${ERRNO_TEXT[errno] ?? 'system error'} (errno ${errno})`;
}

function deviceError(path: string, errno: number): IpmiDeviceError {
  return new IpmiDeviceError(`${path}: cannot open: ${errnoText(errno)}`, errno);
}

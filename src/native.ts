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
  /** Answers every command not yet started with ECANCELED, unsent. */
  cancelQueued(): void;
  close(): void;
}

export interface NativeAddon {
  SgDevice: new (path: string, dispatch: SgDispatch) => NativeSgDevice;
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

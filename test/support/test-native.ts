// The tests' and the bench's own addon (native/test_receiver.cc, build/Release/vigil_test_native.node): a
// UDP receiver with kernel timestamps, read on the calling thread. Built beside vigil's addon by
// `npm run build:native`; vigild never loads it.
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { packageRoot } from '../../src/util/package-root.js';

export interface TestReceiverAddon {
  /** A UDP socket bound to host:port with SO_TIMESTAMPNS; returns its fd. */
  openTestReceiver(host: string, port: number): number;
  /**
   * Blocks the calling thread (at SCHED_FIFO `priority` meanwhile, when granted) until `max` datagrams or
   * `timeoutMs` (0: what is queued). Kernel stamps are CLOCK_REALTIME, the others CLOCK_MONOTONIC.
   */
  receiveForTest(fd: number, max: number, timeoutMs: number, priority?: number): { datagrams: Buffer[]; kernelRealNs: BigInt64Array; userMonoNs: BigInt64Array };
  closeTestReceiver(fd: number): void;
}

export const TEST_ADDON = join(packageRoot(), 'build', 'Release', 'vigil_test_native.node');

export const testReceiver = createRequire(import.meta.url)(TEST_ADDON) as TestReceiverAddon;

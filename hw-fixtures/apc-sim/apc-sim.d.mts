// Types for apc-sim.mjs (a plain node script, so it runs without a TypeScript loader).
import { EventEmitter } from 'node:events';

export declare const BYTE_MS: number;
export declare const STATUS: {
  ONLINE: number; ON_BATTERY: number; BATTERY_LOW: number; REPLACE_BATTERY: number; TRIM: number; BOOST: number; OVERLOAD: number;
};

export declare class ApcSimulator extends EventEmitter {
  constructor(path: string, options?: { pace?: boolean; answerDelayMs?: number });
  readonly path: string;
  pace: boolean;
  answerDelayMs: number;
  status: number;
  cause: string;
  smart: boolean;
  muted: boolean;
  received: string[];
  lastAlertAt: number;
  open(): Promise<this>;
  close(): Promise<void>;
  send(data: string | Buffer): void;
  /** Sends one answer line (text + CR LF), garbled when corrupt() asked for it. */
  reply(text: string): void;
  onBattery(options?: { selfTest?: boolean }): void;
  lowBattery(): void;
  batteryOk(): void;
  online(): void;
  shutdown(): void;
  mute(on?: boolean): void;
  dumb(): void;
  corruptAnswers: number;
  corrupt(n?: number): void;
  garbage(what: number | Buffer): Buffer;
}

// Types for pty-pair.mjs.
export declare class PtyPair {
  constructor(dir: string);
  readonly dir: string;
  /** The simulator's end. */
  readonly ups: string;
  /** The end vigil opens. */
  readonly host: string;
  log: string[];
  start(): Promise<this>;
  stop(): Promise<void>;
}

// What each part of `vigil collect` hands the bundle: files under the bundle's top directory, and for the
// manifest what was collected and what could not be, and why. A part never throws for something missing
// on the node (no journal, no agent, no disk): that is an item with its reason.
import type { Config } from '../config/schema.js';

export interface CollectedFile {
  /** Relative to the bundle's top directory. */
  path: string;
  data: Buffer | string;
}

/** collected: all of it; partial: some (the note says what not); absent: nothing there to collect; failed: an error. */
export type ItemState = 'collected' | 'partial' | 'absent' | 'failed';

export interface ManifestItem {
  item: string;
  state: ItemState;
  files: string[];
  note?: string;
}

export interface SectionResult {
  files: CollectedFile[];
  items: ManifestItem[];
}

export interface CollectContext {
  configFile: string;
  /** --node: which configured node this is; default: as vigild finds it. */
  node?: string;
  /** undefined: the configuration could not be loaded (the config item says why). */
  config: Config | undefined;
  /** The cluster key, when it could be read: names each node's derived reservation key in the disks' state. */
  clusterKey: Buffer | undefined;
  socket: string;
  since: Date;
  logFiles: string[];
  timeoutMs: number;
}

export function jsonFile(path: string, value: unknown): CollectedFile {
  return { path, data: `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n` };
}

export function oneItem(item: string, state: ItemState, files: CollectedFile[], note?: string): SectionResult {
  return { files, items: [{ item, state, files: files.map((f) => f.path), ...(note === undefined ? {} : { note }) }] };
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

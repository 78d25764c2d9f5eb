// The real LIO responses captured by scripts/capture-fixtures (test/fixtures/lio-captures.tsv), as
// unit-test vectors: one line per command, "name<TAB>JSON" with the data and sense bytes in hex.
import { readFileSync } from 'node:fs';

import { repoFile } from './paths.js';

export interface Capture {
  /** The status by name, as `vigil scsi raw --json` prints it: "GOOD", "CHECK CONDITION", ... */
  status: string;
  sense: { raw: string } | null;
  resid: number;
  /** Data-in bytes in hex, or null when the command moved none */
  data: string | null;
}

export const captures: ReadonlyMap<string, Capture> = new Map(
  readFileSync(repoFile('test', 'fixtures', 'lio-captures.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line): [string, Capture] => {
      const tab = line.indexOf('\t');
      return [line.slice(0, tab), JSON.parse(line.slice(tab + 1)) as Capture];
    }),
);

/** One captured response by name, e.g. "tcm_loop.tur.preempted"; throws on a name not captured. */
export function capture(name: string): Capture {
  const c = captures.get(name);
  if (!c) throw new Error(`no capture named ${name} in test/fixtures/lio-captures.tsv`);
  return c;
}

/** Hex text ("70 00 06", "700006") to bytes. */
export function hex(s: string): Buffer {
  const digits = s.replace(/\s+/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(digits)) throw new Error(`bad hex: ${s}`);
  return Buffer.from(digits, 'hex');
}

/** The data-in bytes of a capture (throws when it has none). */
export function data(name: string): Buffer {
  const d = capture(name).data;
  if (d === null) throw new Error(`capture ${name} has no data`);
  return hex(d);
}

/** The sense bytes of a capture (throws when it has none). */
export function sense(name: string): Buffer {
  const s = capture(name).sense;
  if (s === null) throw new Error(`capture ${name} has no sense data`);
  return hex(s.raw);
}

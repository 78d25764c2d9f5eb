// How `vigil` speaks: a human rendering by default, one JSON document with --json. Errors are one line on
// stderr (never a stack trace) and, with --json, an {"error": …} document on stdout too.
import { formatKey } from '../scsi/pr.js';
import { describeSense, type Sense } from '../scsi/sense.js';
import { ScsiStatusError, TransportError } from '../scsi/errors.js';

export interface Report {
  json: unknown;
  human: string;
  /** Non-zero for reports of a failed state (a conflict reported by `tur`, a stale link). */
  exitCode?: number;
}

/** bigint → number when exact, else a decimal string; Buffer → hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data).toString('hex');
  }
  return value;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer, 2);
}

/** Sense data as JSON: numbers for programs, the code and text for people, the raw bytes in hex. */
export function senseJson(s: Sense | undefined): Record<string, unknown> | null {
  if (!s) return null;
  const out: Record<string, unknown> = {
    format: s.format, current: s.current, key: s.key, keyName: s.keyName, asc: s.asc, ascq: s.ascq,
    code: s.code, text: s.text,
  };
  if (s.information !== undefined) out.information = `0x${s.information.toString(16)}`;
  if (s.fieldPointer) out.fieldPointer = s.fieldPointer;
  if (s.progress !== undefined) out.progress = s.progress;
  out.raw = s.raw.toString('hex');
  return out;
}

export function errorJson(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  if (e instanceof ScsiStatusError) {
    out.status = e.statusName;
    out.sense = senseJson(e.sense);
  }
  if (e instanceof TransportError || 'code' in e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
  }
  return out;
}

export function keyList(keys: bigint[]): string[] {
  return keys.map(formatKey);
}

/** "CHECK CONDITION: UNIT ATTENTION: Registrations preempted (06/2a/05)". */
export function statusLine(statusName: string, sense: Sense | undefined): string {
  return sense ? `${statusName}: ${describeSense(sense)}` : statusName;
}

/** Classic 16-bytes-a-line hex dump with offsets and printable ASCII. */
export function hexDump(buf: Buffer): string {
  const lines: string[] = [];
  for (let off = 0; off < buf.length; off += 16) {
    const row = buf.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(4, '0')}  ${hex.padEnd(47)}  ${text}`);
  }
  return lines.join('\n');
}

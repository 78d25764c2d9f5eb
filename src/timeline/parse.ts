// Reads one node's agent log (pino JSON lines) into the lines the timeline uses. A line that is not a JSON
// object with a numeric `time` and a string `msg` is counted as malformed and skipped: a log cut mid-line
// by a power loss, or mixed with other output, still gives its timeline.
import { basename, extname } from 'node:path';

export interface LogLine {
  /** Milliseconds since 1970 on the node's own clock (pino's `time`). */
  time: number;
  msg: string;
  fields: Record<string, unknown>;
}

export interface NodeLog {
  node: string;
  file: string;
  lines: LogLine[];
  malformed: number;
  /** The first malformed line's number (1-based), for the one line on stderr. */
  firstMalformedLine?: number;
}

function asLine(text: string): LogLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const fields = value as Record<string, unknown>;
  if (typeof fields.time !== 'number' || !Number.isFinite(fields.time) || typeof fields.msg !== 'string') return undefined;
  return { time: fields.time, msg: fields.msg, fields };
}

/** The node's name: the `node` field its agent puts on every line, else the file name without extension. */
export function parseNodeLog(file: string, text: string): NodeLog {
  const lines: LogLine[] = [];
  let malformed = 0;
  let firstMalformedLine: number | undefined;
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const line = asLine(raw);
    if (line) lines.push(line);
    else {
      malformed++;
      firstMalformedLine ??= i + 1;
    }
  });
  const named = lines.find((l) => typeof l.fields.node === 'string' && l.fields.node !== '');
  const node = named ? String(named.fields.node) : basename(file, extname(file));
  return { node, file, lines, malformed, ...(firstMalformedLine === undefined ? {} : { firstMalformedLine }) };
}

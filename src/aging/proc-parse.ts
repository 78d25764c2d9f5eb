// Parsers of the /proc files the aging monitor samples (proc(5)): pure functions over the files' text.
// Each refuses what it does not understand with a ProcParseError naming the file and the field, rather
// than returning a number that is not one: a wrong reading would be judged as aging.

export class ProcParseError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ProcParseError';
  }
}

export interface LoadAvg {
  /** Run-queue averages over 1, 5 and 15 minutes (runnable plus uninterruptible tasks). */
  load1: number;
  load5: number;
  load15: number;
}

const DECIMAL = /^\d+(\.\d+)?$/;

/** /proc/loadavg: "0.52 0.41 0.38 2/170 13051". */
export function parseLoadAvg(text: string): LoadAvg {
  const fields = text.trim().split(/\s+/);
  if (fields.length < 3 || !fields.slice(0, 3).every((f) => DECIMAL.test(f))) {
    throw new ProcParseError('/proc/loadavg', `expected three load averages, got ${JSON.stringify(text.slice(0, 60))}`);
  }
  return { load1: Number(fields[0]), load5: Number(fields[1]), load15: Number(fields[2]) };
}

/** /proc/uptime: "27089.61 18121.62" → seconds since boot (the first field). */
export function parseUptime(text: string): number {
  const first = text.trim().split(/\s+/)[0] ?? '';
  if (!DECIMAL.test(first)) throw new ProcParseError('/proc/uptime', `expected seconds since boot, got ${JSON.stringify(text.slice(0, 60))}`);
  return Number(first);
}

/** "Key:   1234 kB" lines → key → bytes (or a plain count, for fields without a unit). */
function keyedValues(file: string, text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_()0-9]+):\s*(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]) * (m[3] === 'kB' ? 1024 : 1));
  }
  if (out.size === 0) throw new ProcParseError(file, 'no "Key: value" lines');
  return out;
}

function need(file: string, values: Map<string, number>, key: string): number {
  const v = values.get(key);
  if (v === undefined) throw new ProcParseError(file, `no ${key} line`);
  return v;
}

/** Bytes. */
export interface MemInfo {
  total: number;
  /** The kernel's estimate of what can be allocated without swapping (Linux ≥ 3.14). */
  available: number;
  buffers: number;
  cached: number;
  swapTotal: number;
  swapFree: number;
}

export function parseMemInfo(text: string): MemInfo {
  const file = '/proc/meminfo';
  const v = keyedValues(file, text);
  return {
    total: need(file, v, 'MemTotal'), available: need(file, v, 'MemAvailable'), buffers: need(file, v, 'Buffers'),
    cached: need(file, v, 'Cached'), swapTotal: need(file, v, 'SwapTotal'), swapFree: need(file, v, 'SwapFree'),
  };
}

export interface ProcessStatus {
  /** Resident set, bytes. */
  rss: number;
  threads: number;
}

/**
 * /proc/PID/status. A zombie, or a kernel thread, has no VmRSS line: that is an error here (the process
 * has nothing to judge), told apart from a malformed file by its message.
 */
export function parseProcessStatus(text: string, pid: number | string = 'PID'): ProcessStatus {
  const file = `/proc/${pid}/status`;
  const v = keyedValues(file, text);
  return { rss: need(file, v, 'VmRSS'), threads: need(file, v, 'Threads') };
}

/** /proc/PID/limits → the soft limit of open files (RLIMIT_NOFILE); undefined when "unlimited". */
export function parseOpenFilesLimit(text: string, pid: number | string = 'PID'): number | undefined {
  const file = `/proc/${pid}/limits`;
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  if (line === undefined) throw new ProcParseError(file, 'no "Max open files" line');
  const soft = line.slice('Max open files'.length).trim().split(/\s+/)[0] ?? '';
  if (soft === 'unlimited') return undefined;
  if (!/^\d+$/.test(soft)) throw new ProcParseError(file, `expected a number or "unlimited" as the soft limit of open files, got ${JSON.stringify(soft)}`);
  return Number(soft);
}

/**
 * /proc/PID/stat → the CPU time the process used, in clock ticks (utime + stime, fields 14 and 15). The
 * command name (field 2) is in parentheses and may hold spaces and parentheses: fields count from the last ')'.
 */
export function parseCpuTicks(text: string, pid: number | string = 'PID'): number {
  const file = `/proc/${pid}/stat`;
  const close = text.lastIndexOf(')');
  if (close < 0) throw new ProcParseError(file, 'no ")" closing the command name');
  const fields = text.slice(close + 1).trim().split(/\s+/); // fields[0] is field 3, the state
  const utime = fields[11];
  const stime = fields[12];
  if (utime === undefined || stime === undefined || !/^\d+$/.test(utime) || !/^\d+$/.test(stime)) {
    throw new ProcParseError(file, 'expected utime and stime as fields 14 and 15');
  }
  return Number(utime) + Number(stime);
}

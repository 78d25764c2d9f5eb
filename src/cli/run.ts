// The one place a `vigil` command's outcome becomes output and an exit code.
import { Command, InvalidArgumentError } from 'commander';

import { ScsiError } from '../scsi/errors.js';
import { parseKey, parsePrType, type PrType } from '../scsi/pr.js';
import { Exit, exitForError, UsageError } from './exit-codes.js';
import { errorJson, toJson, type Report } from './output.js';

export interface GlobalOptions {
  json?: boolean;
}

type Action = (...args: any[]) => Promise<Report>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Wraps a command handler: prints its report (text, or JSON with --json), sets the exit code, and turns
 * any error into one line on stderr (plus an {"error": …} document with --json). Never a stack trace,
 * unless VIGIL_DEBUG is set.
 */
export function act(handler: Action): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const json = (cmd.optsWithGlobals() as GlobalOptions).json === true;
    try {
      const report = await handler(...args);
      process.stdout.write((json ? toJson(report.json) : report.human) + '\n');
      process.exitCode = report.exitCode ?? Exit.OK;
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      const code = exitForError(error);
      const known = code !== Exit.OTHER || error instanceof ScsiError;
      process.stderr.write(`vigil: ${known ? '' : 'unexpected error: '}${error.message}\n`);
      if (process.env.VIGIL_DEBUG) process.stderr.write(`${error.stack}\n`);
      if (json) process.stdout.write(toJson({ error: errorJson(error) }) + '\n');
      process.exitCode = code;
    }
  };
}

// Option parsers: a bad value is a usage error with one line that says what was expected.
export function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const n = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

export function keyOption(text: string): bigint {
  try {
    return parseKey(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

export function typeOption(text: string): PrType {
  try {
    return parsePrType(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

export function usage(message: string): never {
  throw new UsageError(message);
}

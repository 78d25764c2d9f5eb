// Runs many `vigil` invocations of the commands to vigild in one process, since each process started on
// the TypeScript sources costs seconds. Each invocation gets a fresh command tree, its own environment
// additions, and its stdout, stderr and exit code captured exactly as the real `vigil` would produce them
// (the same act() wrapper); commander's own usage errors are caught instead of exiting.
//
//   runVigilBatch([{ args: ['status', '--socket', p] }, { args: [...], env: { VIGIL_SOCKET: p } }])
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Command, CommanderError } from 'commander';

import type { Ran } from './cli.js';

export interface Invocation {
  args: string[];
  env?: Record<string, string | undefined>;
}

const SELF = fileURLToPath(import.meta.url);

/** From a test: one child process runs every invocation, in order. */
export function runVigilBatch(invocations: Invocation[]): Promise<Ran[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...process.execArgv, SELF, JSON.stringify(invocations)], { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`vigil-batch failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Ran[]);
    });
  });
}

async function program(): Promise<Command> {
  const { clusterCommands } = await import('../../src/cli/cluster-commands.js');
  const { distressCommands } = await import('../../src/cli/distress-commands.js');
  const p = new Command('vigil').option('--json', 'print one JSON document instead of text');
  for (const c of [...clusterCommands(), ...distressCommands()]) p.addCommand(c);
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(p);
  return p;
}

async function runOne(inv: Invocation): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { out: process.stdout.write, err: process.stderr.write };
  const savedEnv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    savedEnv[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code: number;
  try {
    await (await program()).parseAsync(inv.args, { from: 'user' });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    code = e.exitCode;
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    process.exitCode = undefined;
  }
  return { code, stdout: out.join(''), stderr: err.join('') };
}

if (process.argv[1] === SELF) {
  const invocations = JSON.parse(process.argv[2] ?? '[]') as Invocation[];
  const results: Ran[] = [];
  for (const inv of invocations) results.push(await runOne(inv));
  process.stdout.write(JSON.stringify(results));
}

// Runs vigil's CLI from its TypeScript source with the test's own loader flags, so host tests need no
// build; never throws on a non-zero exit.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/cli/', import.meta.url));

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(bin: 'vigil' | 'vigild', args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...process.execArgv, `${SRC}${bin}.ts`, ...args], { env: { ...process.env, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
  });
}

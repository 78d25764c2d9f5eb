// Runs vigil's CLI with the test's own loader flags: from its TypeScript source when the test runs from
// source (no build needed), compiled when the test is; never throws on a non-zero exit.
import { execFile } from 'node:child_process';

import { moduleBeside } from './paths.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(bin: 'vigil' | 'vigild', args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...process.execArgv, moduleBeside(import.meta.url, `../../src/cli/${bin}`), ...args], { env: { ...process.env, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
  });
}

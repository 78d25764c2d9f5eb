// Paths for tests that run both from their TypeScript source (the first unit stage, under tap's loader,
// with coverage) and compiled (dist/test: the second unit stage, the cluster stage and the lab, without
// the loader's cost per process).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { packageRoot } from '../../src/util/package-root.js';

/** A file of the repository that is not compiled (docs, fixtures), from the package root. */
export function repoFile(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/**
 * A module relative to `url` (the caller's import.meta.url), named without its extension: .ts when the
 * caller runs from source, .js when compiled. For a child process started with the caller's execArgv.
 */
export function moduleBeside(url: string, relative: string): string {
  return fileURLToPath(new URL(`${relative}${url.endsWith('.ts') ? '.ts' : '.js'}`, url));
}

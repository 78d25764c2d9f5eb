// The vigil package's root directory: the first directory up from this module that holds binding.gyp
// (src/util when run from TypeScript, dist/src/util when compiled).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`vigil: no package root (binding.gyp) above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return (root = dir);
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

// What runs here: vigil, Node, the kernel, the distribution, and the native addon (which has no version of
// its own: the file's hash and time say which build it is, and whether it loads at all).
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { release, version as kernelVersion } from 'node:os';
import { join } from 'node:path';

import { nativeAddon } from '../native.js';
import { packageRoot, packageVersion } from '../util/package-root.js';
import { jsonFile, message, oneItem, type SectionResult } from './section.js';

async function addon(): Promise<Record<string, unknown>> {
  const file = join(packageRoot(), 'build', 'Release', 'vigil_native.node');
  try {
    const [bytes, st] = [await readFile(file), await stat(file)];
    let loads: true | string = true;
    try {
      nativeAddon();
    } catch (e) {
      loads = message(e);
    }
    return { file, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, mtime: st.mtime.toISOString(), loads };
  } catch (e) {
    return { file, error: message(e) };
  }
}

async function osRelease(): Promise<string | null> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => '');
  return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? null;
}

export async function versionsSection(): Promise<SectionResult> {
  const versions = {
    vigil: packageVersion(),
    node: process.versions.node,
    napi: process.versions.napi,
    v8: process.versions.v8,
    kernel: release(),
    kernelBuild: kernelVersion(),
    os: await osRelease(),
    arch: process.arch,
    addon: await addon(),
  };
  const state = typeof versions.addon.loads === 'string' || 'error' in versions.addon ? 'partial' : 'collected';
  return oneItem('versions: vigil, Node, kernel, addon', state, [jsonFile('versions.json', versions)], state === 'partial' ? 'the native addon is missing or does not load' : undefined);
}

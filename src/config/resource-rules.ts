// The rules for an app's resources and the account it runs as, wherever they come from: the configuration
// file (src/config/schema.ts, the written form), an app's own registration (app.register) and a peer's
// replica (src/db/object.ts, the stored form). vigild acts on a resource as root (it mounts, adds addresses), so one set of rules guards
// all three: a registration cannot do what the file could not.
import { isIP } from 'node:net';
import { posix } from 'node:path';

import { z } from 'zod';

/** Never mounted over, nor anything under them: the system itself. */
const SYSTEM_TREES = ['/proc', '/sys', '/dev', '/boot', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr'];
/** Never mounted over themselves (what is below them is fine: /var/lib/db, /tmp/x). */
const SYSTEM_DIRS = ['/', '/var', '/run', '/home', '/root', '/tmp'];

/** Why `path` cannot be a shared file system's mount point, or undefined when it can. */
export function mountPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'expected an absolute path (starting with /)';
  const normal = posix.normalize(path).replace(/(.)\/$/, '$1');
  if (normal !== path) return `expected a plain path (no "..", "." or repeated or trailing "/"): ${normal}`;
  if (SYSTEM_DIRS.includes(path) || SYSTEM_TREES.some((t) => path === t || path.startsWith(`${t}/`))) {
    return `${path} is a system directory: mount a shared file system elsewhere, e.g. /srv/NAME or /var/lib/NAME`;
  }
  return undefined;
}

/** Whether `address` is an IPv4 or IPv6 address and `prefixLength` fits it. */
export function validPrefix(address: string, prefixLength: number): boolean {
  const family = isIP(address);
  return family !== 0 && Number.isInteger(prefixLength) && prefixLength >= 0 && prefixLength <= (family === 4 ? 32 : 128);
}

export const mountPath = z.string().superRefine((path, ctx) => {
  const problem = mountPathProblem(path);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const fsType = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a file system type, e.g. ext4 or xfs');

// Passed to mount(8) as one `-o a,b` argument: a comma would smuggle in another option.
export const mountOption = z.string().regex(/^[^,\s-][^,\s]*$/, 'expected one mount option per item (no commas or spaces, not starting with -)');

// Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', ':' or white space.
export const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "expected an interface name: 1 to 15 of A-Z, a-z, 0-9, '_', '.' and '-'");

// A user or group name as useradd(8) takes it (and as setpriv(1) resolves it on the node that runs the app).
export const accountName = (what: string) =>
  z.string().regex(/^[a-z_][a-z0-9_-]{0,31}\$?$/, `expected ${what}: 1 to 32 of a-z, 0-9, '_' and '-', starting with a letter or '_'`);

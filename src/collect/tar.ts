// A gzipped ustar archive of files held in memory: what `vigil collect` writes. A writer of our own rather
// than the system tar: no temporary tree of the bundle's files on disk (they hold host names and addresses),
// no child process, and a unit test can read it back with the system tar. POSIX.1-1988 ustar, which every
// tar reads; names up to 255 bytes (split into prefix and name at a '/').
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  /** Relative path inside the archive; a directory ends with '/'. */
  name: string;
  /** A file's content; none for a directory. */
  data?: Buffer;
  /** Permission bits; 0600 for a file, 0700 for a directory by default. */
  mode?: number;
  /** Seconds since 1970. */
  mtime: number;
}

const BLOCK = 512;

/** `value` in octal, zero-padded to `width - 1` digits and NUL-terminated, as ustar's numeric fields are. */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  const text = Math.trunc(value).toString(8);
  if (text.length > width - 1) throw new RangeError(`tar: ${value} does not fit a ${width}-byte field`);
  header.write(text.padStart(width - 1, '0') + '\0', offset, width, 'latin1');
}

/** Splits `name` into ustar's prefix (155 bytes) and name (100 bytes) at a '/'. */
function splitName(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return { prefix, name: rest };
  }
  throw new RangeError(`tar: the name ${JSON.stringify(name)} is too long for ustar`);
}

export function tarHeader(entry: TarEntry): Buffer {
  const dir = entry.name.endsWith('/');
  const h = Buffer.alloc(BLOCK);
  const { prefix, name } = splitName(entry.name);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, entry.mode ?? (dir ? 0o700 : 0o600));
  octal(h, 108, 8, 0); // uid and gid 0: the archive is read elsewhere, where our ids mean nothing
  octal(h, 116, 8, 0);
  octal(h, 124, 12, dir ? 0 : entry.data?.length ?? 0);
  octal(h, 136, 12, entry.mtime);
  h.fill(0x20, 148, 156); // the checksum is summed with its own field as spaces
  h.write(dir ? '5' : '0', 156, 1, 'latin1');
  h.write('ustar\0' + '00', 257, 8, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** The archive, uncompressed: each entry's header and data padded to 512 bytes, then two zero blocks. */
export function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(tarHeader(e));
    if (e.name.endsWith('/') || !e.data?.length) continue;
    parts.push(e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

export function tarGz(entries: TarEntry[]): Buffer {
  return gzipSync(tar(entries));
}

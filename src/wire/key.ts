// The cluster key file: the shared secret every node signs datagrams with. Whoever can read it can
// impersonate any node (say "I'm alive" for a dead one, or send DISTRESS), and whoever can write it can
// cut this node off, so it is refused unless only its owner — this user or root — has any access
// (util/secret-file.ts).
//
// Format: either one line of at least 64 hex digits (32 bytes; what generateClusterKey writes, and
// what survives copy and paste between hosts), or at least 32 raw bytes used as they are. Text that is
// not hex is refused: a typed passphrase has far less entropy than its length suggests.
import { randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

import { readSecretFile } from '../util/secret-file.js';

export const MIN_KEY_BYTES = 32;

export class KeyFileError extends Error {
  override name = 'KeyFileError';
  readonly path: string;
  constructor(path: string, detail: string) {
    super(`cluster key ${path}: ${detail}`);
    this.path = path;
  }
}

const HEX_LINE = /^[0-9a-fA-F]+$/;

/** Reads and checks the key file; throws KeyFileError naming the path and what is wrong. */
export async function loadClusterKey(path: string): Promise<Buffer> {
  return parseKey(path, await readSecretFile(path, (detail) => new KeyFileError(path, detail)));
}

function parseKey(path: string, content: Buffer): Buffer {
  if (isText(content)) {
    const text = content.toString('latin1').trim();
    if (!HEX_LINE.test(text)) {
      throw new KeyFileError(path, `text that is not a line of hex digits; a passphrase is not a key (write ${MIN_KEY_BYTES} random bytes as hex)`);
    }
    if (text.length % 2 !== 0) throw new KeyFileError(path, `odd number of hex digits (${text.length})`);
    if (text.length < MIN_KEY_BYTES * 2) {
      throw new KeyFileError(path, `${text.length} hex digits; at least ${MIN_KEY_BYTES * 2} (${MIN_KEY_BYTES} bytes) required`);
    }
    return Buffer.from(text, 'hex');
  }
  if (content.length < MIN_KEY_BYTES) throw new KeyFileError(path, `${content.length} bytes; at least ${MIN_KEY_BYTES} required`);
  return content;
}

/** Printable ASCII and whitespace only. 32 random bytes all land here with probability about 1e-14. */
function isText(b: Buffer): boolean {
  for (const c of b) if (!((c >= 0x20 && c <= 0x7e) || c === 0x09 || c === 0x0a || c === 0x0d)) return false;
  return true;
}

/**
 * Writes a new key, 32 random bytes as a hex line, mode 0600. Never replaces an existing file: a new
 * key on one node silently cuts it off from the others.
 */
export async function generateClusterKey(path: string): Promise<Buffer> {
  const key = randomBytes(MIN_KEY_BYTES);
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new KeyFileError(path, 'already exists; refusing to overwrite a cluster key');
    throw new KeyFileError(path, (e as Error).message);
  }
  try {
    await fh.writeFile(`${key.toString('hex')}\n`);
    await fh.sync();
  } catch (e) {
    // A half-written key would be refused later as too short; better no file at all.
    await fh.close();
    await unlink(path).catch(() => {});
    throw new KeyFileError(path, (e as Error).message);
  }
  await fh.close();
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return key;
}

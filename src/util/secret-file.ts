// Reading a file that holds a secret (the cluster key, a BMC password): refused unless only its owner —
// this user or root — has any access, checked on the open file (fstat), so the checks apply to the bytes
// read and not to whatever the name pointed at a moment before. Whoever can read such a file can act as
// this node; whoever can write it can cut the node off.
import { open, type FileHandle } from 'node:fs/promises';

/** The file's bytes; `fail(detail)` makes the error thrown, naming what is wrong. */
export async function readSecretFile(path: string, fail: (detail: string) => Error): Promise<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fail((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fail('not a regular file');
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw fail(`mode ${mode} lets other users read or write it; chmod 600 ${path}`);
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
      throw fail(`owned by uid ${st.uid}, which can rewrite it; must be owned by uid ${uid} or root`);
    }
    return await fh.readFile().catch((e: Error) => { throw fail(e.message); });
  } finally {
    await fh.close();
  }
}

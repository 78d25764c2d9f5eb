// writeFileAtomic: a reader (or a restart) sees the old content or the new, never a torn mix, even when
// the writer is killed in the middle.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { writeFileAtomic } from '../../src/util/atomic-file.js';

t.test('replaces the content and leaves no temporary file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-atomic-'));
  const f = join(dir, 'db.json');
  await writeFile(f, 'old');
  await writeFileAtomic(f, 'new');
  t.equal(await readFile(f, 'utf8'), 'new');
  t.same(await readdir(dir), ['db.json']);
});

t.test('a failed replacement keeps the old file and cleans up', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-atomic-'));
  const target = join(dir, 'is-a-dir');
  await mkdir(join(target, 'inside'), { recursive: true });
  await t.rejects(writeFileAtomic(target, 'x'));
  t.same((await readdir(dir)).sort(), ['is-a-dir'], 'no temporary file left');
  await t.rejects(writeFileAtomic(join(dir, 'no', 'such', 'dir', 'f'), 'x'), { code: 'ENOENT' });
});

t.test('a writer killed mid-write never leaves a torn file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-atomic-'));
  const f = join(dir, 'big.dat');
  const size = 4 * 1024 * 1024;
  await writeFile(f, Buffer.alloc(size, 'A'));
  const module = fileURLToPath(new URL('../../src/util/atomic-file.js', import.meta.url));
  const script = `
    import { writeFileAtomic } from ${JSON.stringify(module)};
    const bufs = [Buffer.alloc(${size}, 'B'), Buffer.alloc(${size}, 'A')];
    for (let i = 0; ; i++) await writeFileAtomic(${JSON.stringify(f)}, bufs[i % 2]);
  `;
  for (let round = 0; round < 5; round++) {
    const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300 + round * 170));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const content = await readFile(f);
    t.equal(content.length, size, `round ${round}: whole length`);
    t.ok(content.every((b) => b === content[0]), `round ${round}: all one version (${String.fromCharCode(content[0]!)})`);
  }
});

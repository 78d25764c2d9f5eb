// A priority-store writer that stops before every syscall that changes the disk, for the crash tests in
// test/unit/priority-store.test.ts. It prints "step NAME" and waits for a line on stdin before going on;
// the parent kills it with SIGKILL at the step it wants. It prints "done" after the last step.
//
//   node priority-writer.ts init|replace|update PATH IDENTITY_JSON CONTENT_JSON
import { createInterface } from 'node:readline';

import { initPriorityStore, writePriorityRecord, type RecordContent, type StoreIdentity, type WriteStep } from '../../src/lastactive/priority-store.js';

const [mode, path, identityJson, contentJson] = process.argv.slice(2);
if (mode === undefined || path === undefined || identityJson === undefined || contentJson === undefined) {
  process.stderr.write('usage: priority-writer init|replace|update PATH IDENTITY_JSON CONTENT_JSON\n');
  process.exit(1);
}
const identity = JSON.parse(identityJson) as StoreIdentity;
const content = JSON.parse(contentJson) as RecordContent;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function beforeSyscall(step: WriteStep): Promise<void> {
  process.stdout.write(`step ${step}\n`);
  await lines.next();
}

if (mode === 'update') await writePriorityRecord(path, identity, content, { beforeSyscall });
else await initPriorityStore(path, identity, content, { replace: mode === 'replace', beforeSyscall });
process.stdout.write('done\n');
process.exit(0);

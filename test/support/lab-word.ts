// Word for the host in the lab's run directory (VIGIL_LAB_RUN: expect-reset, expect-off, hung), written
// and flushed before the command goes on: the project's 9p mount caches writes in the guest, and the host
// reads these files as soon as the command's exit code appears (scripts/lab).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

export function leaveWordForHost(run: string, name: string, content: string): void {
  const fd = openSync(`${run}/${name}`, 'w');
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

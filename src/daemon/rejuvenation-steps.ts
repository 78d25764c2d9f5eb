// The hard rungs of the rejuvenation ladder as this node carries them out (docs/rejuvenation.md, "The
// ladder"): clearing caches and memory, the OS reboot, the power cycle through the node's own BMC, and the
// agent's re-exec. Each only starts its action; the ladder (rejuvenation.ts) verifies the node afterwards.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

import type { NodeConfig } from '../config/schema.js';
import { openBmc } from '../ipmi/bmc.js';
import { chassisControl } from '../ipmi/commands.js';
import { openLocalBmc } from '../ipmi/local.js';
import { Privilege } from '../ipmi/lan-session.js';
import { reexec } from '../native.js';

/** Runs a command to its end; rejects with its status and the tail of its output when it fails. */
export function runCommand(argv: readonly string[], timeoutMs = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    const keep = (d: Buffer) => { out = (out + d.toString()).slice(-500); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (e) => reject(new Error(`${argv.join(' ')}: ${e.message}`)));
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: ${signal ? `killed by ${signal}` : `exit ${code}`}${out.trim() ? `: ${out.trim()}` : ''}`))));
  });
}

/**
 * Clears the file-system caches, the buffers and fragmented memory: sync (dirty pages written, so that
 * dropping them loses nothing), then drop_caches 3 (page cache, dentries, inodes), then compact_memory.
 * `command` replaces all three (a site with its own procedure, and the tests: the namespace rig shares
 * the test machine's kernel).
 */
export async function clearCaches(command: readonly string[] | undefined): Promise<string> {
  if (command) {
    await runCommand(command);
    return `ran ${command.join(' ')}`;
  }
  await runCommand(['sync']);
  await writeFile('/proc/sys/vm/drop_caches', '3\n');
  await writeFile('/proc/sys/vm/compact_memory', '1\n').catch(() => undefined); // absent without CONFIG_COMPACTION
  return 'synced, dropped the page cache, dentries and inodes, compacted memory';
}

/** Starts the reboot command; the node's return (a new boot) is verified after the agent starts again. */
export async function reboot(command: readonly string[]): Promise<void> {
  await runCommand(command);
}

/**
 * Power-cycles this node through its BMC: the local one (/dev/ipmi0) if there is one, else the `bmc:` the
 * configuration gives this node (over the network, as its peers would fence it). Resolves to false when
 * the node has neither (the rung is skipped).
 */
export async function powerCycle(self: NodeConfig): Promise<boolean> {
  const local = await openLocalBmc({ timeoutMs: 5000 }).catch(() => undefined);
  if (local) {
    try {
      await chassisControl(local, 'cycle', 5000);
    } finally {
      await local.close();
    }
    return true;
  }
  if (!self.bmc) return false;
  const remote = await openBmc({ ...self.bmc, privilege: Privilege.OPERATOR, timeoutMs: 5000 });
  try {
    await chassisControl(remote, 'cycle', 5000);
  } finally {
    await remote.close();
  }
  return true;
}

/** The agent's own program and arguments, started again in place (same pid). Throws only if execv refuses. */
export function reexecAgent(): never {
  return reexec(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)]);
}

// What a dead agent of this node left (leftovers.ts): its apps, stopped, and their service addresses,
// removed. The next agent does this before anything starts; `vigild --clear-leftovers` does it at once,
// run by systemd after the agent's process is gone (ExecStopPost), so a crashed agent's addresses do not
// stay on the interfaces, answering for apps the backup now runs, until the agent is back.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Config, NodeConfig } from '../config/schema.js';
import type { AppObject } from '../db/object.js';
import { parseDatabase } from '../db/store.js';
import { stopTimeout } from './flow-runner.js';
import { PidFiles, stopMarkedLeftovers } from './leftovers.js';
import { NO_DISKS, resourceName, Resources } from './resources.js';

/** Where an agent keeps its replica and its apps' pid files, under the state directory. */
export const replicaFile = (config: Config) => join(config.stateDir, 'db.json');
export const pidFilesOf = (config: Config) => new PidFiles(join(config.stateDir, 'apps'));

export interface ClearLeftoversLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * Every app's address goes, HOST here or not: the local replica may be stale (it says HOST is this node
 * when the backup took over while this agent was dead), and an app hosted here is started again, address
 * included, only after the first sync. The addresses go first: the backup is taking the apps over now, and
 * stopping a leftover app can take its whole stop timeout (one that ignores SIGTERM, or is stuck in I/O on
 * a disk the backup just took).
 */
export async function clearLeftovers(o: {
  config: Config; pidFiles: PidFiles; apps: readonly AppObject[]; resources: Pick<Resources, 'removeStaleAddress'>; log: ClearLeftoversLog;
}): Promise<void> {
  for (const app of o.apps) {
    for (const r of app.resources) {
      const removed = await o.resources.removeStaleAddress(r).catch((e: unknown) => {
        o.log.error({ tag: app.tag, resource: resourceName(r), err: String(e) }, 'cannot remove a leftover address');
        return false;
      });
      if (removed) o.log.warn({ tag: app.tag, resource: resourceName(r) }, 'address left by an earlier agent removed');
    }
  }
  await o.pidFiles.stopLeftovers((tag) => stopTimeout(o.config, tag), o.log);
  await stopMarkedLeftovers(o.config.control.socket, (tag) => stopTimeout(o.config, tag), o.log);
}

/**
 * `vigild --clear-leftovers`: the clearing without an agent, from the replica on disk, read only (a corrupt
 * one is left for the next agent to set aside and say so).
 */
export async function clearLeftoversNow(config: Config, self: NodeConfig, log: ClearLeftoversLog): Promise<void> {
  let apps: AppObject[] = [];
  try {
    apps = parseDatabase(await readFile(replicaFile(config), 'utf8')).list();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.error({ err: e instanceof Error ? e.message : String(e) }, 'the local replica cannot be read: the apps\' addresses are not known, only processes are cleared');
    }
  }
  await clearLeftovers({ config, pidFiles: pidFilesOf(config), apps, resources: new Resources(self.name, NO_DISKS), log });
}

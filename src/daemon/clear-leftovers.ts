// What a dead agent of this node left (leftovers.ts): its apps, stopped, and their service addresses,
// removed. The next agent does this before anything starts; `vigild --clear-leftovers` does it at once,
// run by systemd after the agent's process is gone (ExecStopPost), so a crashed agent's addresses do not
// stay on the interfaces, answering for apps the backup now runs, until the agent is back.
import type { Config } from '../config/schema.js';
import type { AppObject } from '../db/object.js';
import { stopTimeout } from './flow-runner.js';
import { stopMarkedLeftovers, type PidFiles } from './leftovers.js';
import { resourceName, type Resources } from './resources.js';

export interface ClearLeftoversLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * Every app's address goes, HOST here or not: the local replica may be stale (it says HOST is this node
 * when the backup took over while this agent was dead), and an app hosted here is started again, address
 * included, only after the first sync.
 */
export async function clearLeftovers(o: {
  config: Config; pidFiles: PidFiles; apps: readonly AppObject[]; resources: Pick<Resources, 'removeStaleAddress'>; log: ClearLeftoversLog;
}): Promise<void> {
  await o.pidFiles.stopLeftovers((tag) => stopTimeout(o.config, tag), o.log);
  await stopMarkedLeftovers(o.config.control.socket, (tag) => stopTimeout(o.config, tag), o.log);
  for (const app of o.apps) {
    for (const r of app.resources) {
      const removed = await o.resources.removeStaleAddress(r).catch((e: unknown) => {
        o.log.error({ tag: app.tag, resource: resourceName(r), err: String(e) }, 'cannot remove a leftover address');
        return false;
      });
      if (removed) o.log.warn({ tag: app.tag, resource: resourceName(r) }, 'address left by an earlier agent removed');
    }
  }
}

// The clusters the campaign runs: which nodes, which apps with which primary and backup. Every app has a
// virtual IP and runs the campaign's own program (app.mjs), so that the ground truth (which processes
// run where) can be read from the kernel by its command-line marker.
import { join } from 'node:path';

import type { AppDef } from '../support/cluster.js';
import { APP_PORT } from '../support/cluster.js';
import { packageRoot } from '../../src/util/package-root.js';

export const MARKER = '--nemesis-app';

export interface NemesisApp {
  tag: string;
  primary: string;
  backup: string;
  autoRecover: boolean;
  /** The agent's TCP health probe on 127.0.0.1 (at most one app per layout: the port is shared). */
  monitor: boolean;
}

export interface Layout {
  nodes: string[];
  apps: NemesisApp[];
}

/** The app program's path: the .mjs sits beside this module in the sources, not in dist. */
export function appProgram(): string {
  return join(packageRoot(), 'test', 'nemesis', 'app.mjs');
}

/**
 * 2 nodes: x a→b and y b→a (one primary on each node). 3 nodes: x a→b, y b→c, z c→a (each node the
 * primary of one app and the backup of another). autoRecover and the one monitored app come from `draw`.
 */
export function layout(nodes: 2 | 3, draw: () => number): Layout {
  const pairs: [string, string, string][] = nodes === 2
    ? [['x', 'a', 'b'], ['y', 'b', 'a']]
    : [['x', 'a', 'b'], ['y', 'b', 'c'], ['z', 'c', 'a']];
  const monitored = Math.floor(draw() * (pairs.length + 1)); // == length: none monitored
  return {
    nodes: nodes === 2 ? ['a', 'b'] : ['a', 'b', 'c'],
    apps: pairs.map(([tag, primary, backup], i) => ({ tag, primary, backup, autoRecover: draw() < 0.5, monitor: i === monitored })),
  };
}

/** The apps as createCluster takes them: each on its own VIP, running app.mjs with the marker. */
export function appDefs(l: Layout): AppDef[] {
  return l.apps.map((a) => ({
    tag: a.tag, primary: a.primary, backup: a.backup, autoRecover: a.autoRecover, vip: true, monitor: a.monitor,
    command: (_mnt: string, vip: string | undefined) => [process.execPath, appProgram(), MARKER, a.tag, vip ?? '', String(APP_PORT), ...(a.monitor ? ['--local'] : [])],
  }));
}

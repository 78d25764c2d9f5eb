// `vigil config …`: the cluster configuration of vigild, checked before it is installed on the nodes.
import { Command } from 'commander';

import { ConfigError, formatProblem } from '../config/errors.js';
import type { Config } from '../config/schema.js';
import { formatKey } from '../scsi/pr.js';
import { Exit } from './exit-codes.js';
import { toJson } from './output.js';
import { act, type GlobalOptions } from './run.js';

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** The Config as JSON: reservation keys in hex, as every other vigil command prints them. */
export function configJson(config: Config): unknown {
  return {
    ...config,
    nodes: config.nodes.map((n) => ({ ...n, reservationKey: n.reservationKey === undefined ? null : formatKey(n.reservationKey) })),
  };
}

async function check(file: string, _o: unknown, cmd: Command): Promise<void> {
  const json = (cmd.optsWithGlobals() as GlobalOptions).json === true;
  let config: Config;
  try {
    const { loadConfig } = await import('../config/load.js');
    config = await loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) return act(() => Promise.reject(e))(cmd); // rendered as every other error
    // Problems go to stderr as compiler-style lines (file:line:column: …) that editors can jump to.
    for (const p of e.problems) process.stderr.write(`${formatProblem(file, p)}\n`);
    if (json) process.stdout.write(toJson({ ok: false, file, problems: e.problems }) + '\n');
    process.exitCode = Exit.USAGE;
    return;
  }
  const summary = [
    `cluster ${config.cluster}`, count(config.nodes.length, 'node'), count(config.networks.length, 'network'),
    count(config.disks.length, 'disk'), count(config.apps.length, 'app'),
  ].join(', ');
  process.stdout.write((json ? toJson({ ok: true, file, config: configJson(config) }) : `${file}: ok (${summary})`) + '\n');
  process.exitCode = Exit.OK;
}

export function configCommand(): Command {
  const config = new Command('config').description("vigild's cluster configuration (docs/config.md)");
  config.command('check').argument('<file>', 'the cluster configuration (YAML)')
    .description('check a configuration: every problem with its line and field; exit 1 if there is any')
    .action(check);
  return config;
}

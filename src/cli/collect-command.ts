// `vigil collect`: the support bundle of this node (src/collect/bundle.ts, docs/cli.md "vigil collect").
import { Command, InvalidArgumentError, Option } from 'commander';

import { DEFAULT_CONTROL_SOCKET } from '../config/defaults.js';
import type { Report } from './output.js';
import { act, intOption, usage } from './run.js';

/** vigild.service's configuration. */
export const DEFAULT_CONFIG = '/etc/vigil/cluster.yaml';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30m", "24h", "2d" before `now`, or an ISO 8601 time. */
export function parseSince(text: string, now = new Date()): Date {
  const m = /^(\d{1,6})([smhd])$/.exec(text);
  if (m) return new Date(now.getTime() - Number(m[1]) * UNITS[m[2]!]!);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    const d = new Date(text.replace(' ', 'T'));
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new InvalidArgumentError('expected a duration back from now (30m, 24h, 2d) or a time (2026-12-07T21:00:00Z)');
}

interface CollectCliOptions { out?: string; config: string; node?: string; socket?: string; since: Date; log: string[]; timeout: number }

async function run(o: CollectCliOptions): Promise<Report> {
  const { collect, CollectOutError } = await import('../collect/bundle.js');
  const env = process.env.VIGIL_SOCKET;
  try {
    const r = await collect({
      configFile: o.config, ...(o.node === undefined ? {} : { node: o.node }), socket: o.socket, defaultSocket: env !== undefined && env !== '' ? env : DEFAULT_CONTROL_SOCKET,
      since: o.since, logFiles: o.log, timeoutMs: o.timeout, ...(o.out === undefined ? {} : { out: o.out }),
    });
    // The path alone on stdout (scp "$(vigil collect)" …); what is missing from the bundle on stderr.
    for (const i of r.items) if (i.state !== 'collected') process.stderr.write(`vigil collect: ${i.state}: ${i.item}${i.note ? `: ${i.note}` : ''}\n`);
    return { json: r, human: r.path };
  } catch (e) {
    if (e instanceof CollectOutError) usage(e.message);
    throw e;
  }
}

export function collectCommand(): Command {
  return new Command('collect')
    .description('write a support bundle of this node (tar.gz): configuration with secrets redacted, recent logs, agent status, disks\' reservation state, link table, priority and stay-out records, versions, and a manifest')
    .option('--out <file>', 'the archive to write (default ./vigil-collect-HOST-TIMESTAMP.tar.gz); never replaces a file')
    .option('--config <file>', 'the cluster configuration', DEFAULT_CONFIG)
    .option('--node <name>', "which configured node this is, for doctor's report (default: as vigild finds it)")
    .addOption(new Option('--socket <path>', "vigild's control socket (default: the configuration's control.socket, else $VIGIL_SOCKET, else " + DEFAULT_CONTROL_SOCKET + ')'))
    .addOption(new Option('--since <when>', 'logs from this long ago (30m, 24h, 2d) or this time (ISO 8601)').argParser((t: string) => parseSince(t)).default(parseSince('24h'), '24h'))
    .addOption(new Option('--log <file>', "also an agent log file (vigild's stdout where it is not run by systemd), from --since on; repeatable")
      .argParser((f: string, all: string[]) => [...all, f]).default([] as string[], 'none'))
    .addOption(new Option('--timeout <ms>', "how long to wait for each of vigild's answers").argParser(intOption(1)).default(5000))
    .addHelpText('after', '\nWhat is collected and what is redacted: docs/cli.md, "vigil collect". Prints the archive\'s path.')
    .action(act(run));
}

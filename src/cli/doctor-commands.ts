// `vigil doctor`: every check of this node's part of the cluster, each OK / WARN / FAIL with what to do
// (src/doctor). Works without a running vigild (the checks that need its view are then left out, and
// said so); exit 17 when any check FAILs.
import { Command, Option } from 'commander';

import { Exit } from './exit-codes.js';
import type { Report } from './output.js';
import { act, intOption } from './run.js';

export const DEFAULT_CONFIG = '/etc/vigil/cluster.yaml';

async function doctor(o: { config: string; node?: string; timeout?: number }): Promise<Report> {
  const { runDoctor } = await import('../doctor/doctor.js');
  const { renderDoctor } = await import('../doctor/render.js');
  const report = await runDoctor({ config: o.config, ...(o.node !== undefined ? { node: o.node } : {}), ...(o.timeout !== undefined ? { agentTimeoutMs: o.timeout } : {}) });
  return { json: report, human: renderDoctor(report), exitCode: report.verdict === 'FAIL' ? Exit.CHECK_FAILED : Exit.OK };
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check this node: configuration, disks (paths, link table, reservations), networks, records, leftovers; each OK, WARN or FAIL with what to do')
    .addOption(new Option('--config <file>', 'the cluster configuration').env('VIGIL_CONFIG').default(DEFAULT_CONFIG))
    .option('--node <name>', 'which configured node this is (default: as vigild finds it)')
    .addOption(new Option('--timeout <ms>', "how long to wait for vigild's answers (default 5000)").argParser(intOption(1)))
    .action(act(doctor));
}

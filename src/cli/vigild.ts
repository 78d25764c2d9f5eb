#!/usr/bin/env node
// vigild: the agent. This release carries the SCSI foundation only; the cluster core (membership,
// cluster database, failover) is the next milestone, so vigild refuses to run rather than pretend.
import { Command } from 'commander';

import { packageVersion } from '../util/package-root.js';

new Command('vigild')
  .description('vigil agent (not yet: this release has the SCSI library, the CLI and the lab)')
  .version(packageVersion())
  .option('--config <file>', 'cluster configuration')
  .action(() => {
    process.stderr.write('vigild: the cluster agent is not part of this release yet; use `vigil scsi` and `vigil links`\n');
    process.exitCode = 1;
  })
  .parse(process.argv);

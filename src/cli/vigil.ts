#!/usr/bin/env node
// vigil: the field engineer's command line.
import { Command } from 'commander';

import { packageVersion } from '../util/package-root.js';
import { clusterCommands } from './cluster-commands.js';
import { rejuvenationCommand } from './rejuvenation-commands.js';
import { collectCommand } from './collect-command.js';
import { distressCommands } from './distress-commands.js';
import { doctorCommand } from './doctor-commands.js';
import { configCommand } from './config-commands.js';
import { ipmiCommand } from './ipmi-commands.js';
import { linksCommand } from './links-commands.js';
import { scsiCommand } from './scsi-commands.js';
import { timelineCommand } from './timeline-commands.js';

const program = new Command('vigil')
  .description('vigil: high availability for servers sharing SCSI storage')
  .version(packageVersion())
  .option('--json', 'print one JSON document instead of text')
  .addCommand(scsiCommand())
  .addCommand(linksCommand())
  .addCommand(configCommand())
  .addCommand(ipmiCommand())
  .addCommand(timelineCommand())
  .addCommand(doctorCommand())
  .addCommand(collectCommand())
  .addHelpText('after', '\nExit codes follow sg3_utils (24 reservation conflict, 6 unit attention, 2 not ready, 5 illegal request, 1 usage); see docs/cli.md.');

for (const c of clusterCommands()) program.addCommand(c);
for (const c of distressCommands()) program.addCommand(c);
program.addCommand(rejuvenationCommand());

await program.parseAsync(process.argv);

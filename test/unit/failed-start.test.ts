// A start that fails half-way (here: the control socket belongs to a running agent) leaves nothing of the
// agent live when vigild exits: its fatal-signal handlers uninstalled and its heartbeat thread stopped.
// Left installed, a crash during exit-time clean-up sent distress and wrote the stay-out record for a node
// that merely failed to start; left running, the thread kept telling the peers the node was alive.
import { spawnSync } from 'node:child_process';

import t from 'tap';

import { freeUdpPorts } from '../support/udp-ports.js';
import { moduleBeside } from '../support/paths.js';

const child = moduleBeside(import.meta.url, '../support/failed-start-child');

t.test('a start that fails after the heartbeat thread and the distress sender are up stops both before it throws', async (t) => {
  const [port] = await freeUdpPorts(1) as [number];
  const r = spawnSync(process.execPath, [...process.execArgv, child, String(port)], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `the child ran (stderr: ${r.stderr.trim().slice(-400)})`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { rejected: boolean; before: string[]; after: string[]; fifo: number };
  t.equal(out.rejected, true, 'start() rejected: the control socket is taken');
  t.same(out.after, out.before, `no fatal-signal handler of the distress sender is left installed (caught before: ${out.before.join(' ') || 'none'}; after: ${out.after.join(' ') || 'none'})`);
  t.equal(out.fifo, 0, 'no thread is left at SCHED_FIFO (the heartbeat and distress threads are stopped)');
});

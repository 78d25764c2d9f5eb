// A child for test/unit/failed-start.test.ts: an agent whose start fails after its heartbeat thread and
// distress sender are up (its control socket belongs to a running agent, here a listener of ours). Prints
// one JSON line: whether start() rejected, and what of the agent is still live in this process: the
// signals it catches (/proc/self/status SigCgt) and its threads at SCHED_FIFO.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';

import { loadConfig } from '../../src/config/load.js';
import { Agent } from '../../src/daemon/agent.js';
import { resolveSelf } from '../../src/daemon/self.js';

const [port] = process.argv.slice(2);
const dir = await mkdtemp(join(tmpdir(), 'vigil-failed-start-'));
const socket = join(dir, 'ctl.sock');
await writeFile(join(dir, 'key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
await writeFile(join(dir, 'vigil.yaml'), [
  'cluster: c1',
  `keyFile: ${join(dir, 'key')}`,
  `stateDir: ${join(dir, 'state')}`,
  `control: { socket: ${socket} }`,
  `networks: [{ name: n1, port: ${port} }]`,
  'nodes:',
  '  - { name: x, id: 1, addresses: { n1: 127.0.0.1 } }',
  '  - { name: y, id: 2, addresses: { n1: 127.0.0.2 } }',
  'apps: []',
].join('\n'));
const busy = createServer(() => {});
await new Promise<void>((r) => busy.listen(socket, () => r()));

/** The fatal signals this process catches now (SIGSEGV aside: V8's WebAssembly trap handler has it). */
async function catching(): Promise<string[]> {
  const status = await readFile('/proc/self/status', 'utf8');
  const caught = BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)/m.exec(status)![1]}`);
  const signals = { SIGILL: 4, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8 };
  return Object.entries(signals).filter(([, n]) => (caught >> BigInt(n - 1)) & 1n).map(([name]) => name);
}

const config = await loadConfig(join(dir, 'vigil.yaml'));
const before = await catching();
const agent = new Agent(config, resolveSelf(config, 'x'), pino({ level: 'silent' }), { heartbeatPriority: 10 });
const rejected = await agent.start().then(() => false, () => true);
const after = await catching();
let fifo = 0;
for (const tid of await readdir('/proc/self/task')) {
  const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (Number(fields[41 - 3]) === 1) fifo++;
}
process.stdout.write(`${JSON.stringify({ rejected, before, after, fifo })}\n`);
busy.close();
process.exit(0);

// A command in flight when its process is stopped and continued (SIGSTOP, SIGCONT: an operator's kill
// -STOP, a debugger, a freezer cgroup) runs once. On /dev/sg an interrupted ioctl(SG_IO) leaves the
// command in flight and the kernel re-issues the ioctl after the stop: the device ran it twice. The PR
// generation counts it: LIO adds one for every REGISTER.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { exec, lab, open, resetUnit } from '../support/lab.js';

t.before(() => resetUnit(lab.iscsiA, lab.iscsiB));
t.after(() => resetUnit(lab.iscsiA, lab.iscsiB));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a REGISTER in flight while its process is stopped and continued reaches the device once', async (t) => {
  const observer = await open(lab.iscsiB);
  t.teardown(() => observer.close());
  const before = (await observer.prReadKeys()).generation;

  const child = spawn(process.execPath, [fileURLToPath(new URL('../support/register-once.js', import.meta.url)), lab.iscsiA, '5a'],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  const exited = once(child, 'exit'); // from now: it may exit before the test gets there
  const lines: string[] = [];
  let waiting: { word: string; resolve: () => void } | undefined;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      lines.push(line);
      if (waiting && line.startsWith(waiting.word)) waiting.resolve();
    }
  });
  const seen = (word: string) => lines.some((l) => l.startsWith(word)) ? Promise.resolve()
    : new Promise<void>((resolve) => { waiting = { word, resolve }; });
  await seen('ready');

  // netem on the loopback delays each iSCSI PDU by 400 ms: the command is in flight for about 0.8 s.
  t.equal((await exec('tc', ['qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '400ms'])).code, 0, 'netem on lo');
  t.teardown(async () => { await exec('tc', ['qdisc', 'del', 'dev', 'lo', 'root']); });
  child.stdin.write('go\n');
  await seen('sending');
  await sleep(200);
  t.ok(child.kill('SIGSTOP'), 'stopped with the command in flight');
  await sleep(100);
  t.ok(child.kill('SIGCONT'), 'continued');
  await seen('done');
  await exec('tc', ['qdisc', 'del', 'dev', 'lo', 'root']);
  t.equal(lines.find((l) => l.startsWith('done')), 'done ok', 'the REGISTER completed');
  await exited;

  const after = (await observer.prReadKeys()).generation;
  t.equal(after - before, 1, `the device ran it once (PR generation ${before} → ${after})`);
});

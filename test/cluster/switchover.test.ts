// The planned switchover and drain (flows.ts rule 6) with real agents in network namespaces, one cluster for
// every check: a cluster-aware app serving a virtual IP moves a → b (it gets its unload request and saves
// its marker; b resumes from it) and stays on b past the failback dwell; it moves back b → a; a refusal is
// one line; a drain of a moves it off a and keeps it off, and the undo brings it back; last, a power loss
// of a, whose failover gap the client measures beside the switchovers'. A client in its own namespace
// probes the address all along, every 20 ms, and measures each gap as clients see it.
import type { ChildProcess } from 'node:child_process';

import t from 'tap';

import { runCli } from '../support/cli.js';
import { APP_PORT, AWARE_APP, createCluster, primaryServing, settled, until, type TestCluster } from '../support/cluster.js';

const APP = AWARE_APP;

/** The client: one line per probe of the address, `<ms since 1970> <who answered or ->`, every 20 ms. */
function prober(c: TestCluster): { child: ChildProcess; answers: () => { at: number; who: string | null }[] } {
  const script = `const net = require('net');
const probe = () => { const at = Date.now(); let d = ''; const s = net.connect(${APP_PORT}, '${c.vip()}');
  const end = (who) => { s.destroy(); process.stdout.write(at + ' ' + (who || '-') + '\\n'); setTimeout(probe, 20); };
  s.setTimeout(300, () => end(null)); s.on('data', (x) => { d += x; }); s.on('end', () => end(d.trim())); s.on('error', () => end(null)); };
probe();`;
  const child = c.rig.spawn('client', [process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { text += d; });
  return {
    child,
    answers: () => text.split('\n').filter((l) => l.includes(' ')).map((l) => {
      const [at, who] = l.split(' ');
      return { at: Number(at), who: who === '-' ? null : who! };
    }),
  };
}

/** From the probes after `since`: the last answer of `from` before the first of `to`, and that first. */
function clientGap(answers: { at: number; who: string | null }[], since: number, from: string, to: string): { gapMs: number; lastFrom: number; firstTo: number } {
  const after = answers.filter((a) => a.at >= since);
  const firstTo = after.find((a) => a.who === to);
  if (!firstTo) throw new Error(`the client never reached ${to}`);
  const lastFrom = after.filter((a) => a.who === from && a.at < firstTo.at).at(-1);
  if (!lastFrom) throw new Error(`the client never reached ${from} before ${to}`);
  return { gapMs: firstTo.at - lastFrom.at, lastFrom: lastFrom.at, firstTo: firstTo.at };
}

async function vigil(c: TestCluster, node: string, args: string[]) {
  return runCli('vigil', [...args, '--socket', c.socket(node)]);
}

async function marker(c: TestCluster, node: string): Promise<unknown> {
  return ((await c.request(node, 'marker.get', { tag: 'web' })) as { pointer: unknown }).pointer;
}

async function web(c: TestCluster, node: string) {
  return (await c.status(node)).apps.find((a) => a.tag === 'web') as { host: string | null; phase: string; keepOff?: string; switchover?: { gapMs?: number } } & Record<string, unknown>;
}

t.test('switchover both ways, the stay on the backup, a refusal, drain and undo, and the gaps a client sees beside a failover\'s', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [
    { tag: 'web', primary: 'a', backup: 'b', vip: true, aware: true, autoRecover: true, command: APP },
    { tag: 'batch', primary: 'b', backup: 'a', command: ['/bin/sleep', '600'] },
  ]);
  await primaryServing(c);
  const probe = prober(c);
  t.teardown(() => { probe.child.kill(); });
  await until('the client reaches a', async () => (probe.answers().some((a) => a.who === 'a') ? true : undefined));

  // a → b, asked on a (the source).
  let since = Date.now();
  const there = await vigil(c, 'a', ['switchover', 'web', '--json']);
  t.equal(there.code, 0, there.stderr);
  const answer = JSON.parse(there.stdout) as { outcome: string; from: string; to: string; gapMs: number; host: string; phase: string };
  t.match(answer, { outcome: 'complete', from: 'a', to: 'b', host: 'b', phase: 'switched-over' }, 'the answer says it is done, and where');
  t.type(answer.gapMs, 'number', 'with the service gap the agents measured');
  // The app's own start (node, ready(), its marker) and the client's neighbour entry (b's announcement) follow.
  await until('the client reaches b', async () => (probe.answers().some((a) => a.at >= since && a.who === 'b') ? true : undefined), 30_000);
  const toB = clientGap(probe.answers(), since, 'a', 'b');
  t.match(await marker(c, 'b'), /^b resumed from "a unloaded \(switchover to b\)"$/, 'the app on a got its unload request, saved its marker, and b resumed from it');
  t.match(c.log('a'), /application exited on its unload request/, 'it exited by itself, no signal');
  const notices = [...(await c.status('a')).notices, ...(await c.status('b')).notices].map((n) => n.notice);
  for (const n of ['switchover-started', 'switchover-handed-over', 'switchover-complete']) t.ok(notices.includes(n), `notice ${n}`);

  // Auto-recover is on and the dwell (1 s here) long past: a planned move stays where it was put.
  await new Promise((r) => setTimeout(r, 3000));
  const stayed = await web(c, 'b');
  t.match(stayed, { host: 'b', phase: 'switched-over', prompt: null }, 'no failback, no prompt');
  t.notOk([...(await c.status('b')).notices].some((n) => n.notice === 'failback-started'));
  t.match((await vigil(c, 'b', ['status'])).stdout, /switchover a to b: done, service gap \d+ ms/, 'vigil status shows the last switchover and its gap');

  // A refusal: one line, the refused exit code, nothing moved.
  const refused = await vigil(c, 'b', ['switchover', 'web', '--to', 'c']);
  t.equal(refused.code, 19, 'the refused exit code');
  t.match(refused.stderr, /web: c is not one of its nodes \(primary a, backup b\)/);
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');

  // b → a, asked on b (the source again), the target named.
  since = Date.now();
  const back = await vigil(c, 'b', ['switchover', 'web', '--to', 'a', '--json']);
  const backAnswer = JSON.parse(back.stdout) as { gapMs: number };
  t.match(backAnswer, { outcome: 'complete', from: 'b', to: 'a', host: 'a', phase: 'normal' }, back.stderr);
  await until('the client reaches a again', async () => (probe.answers().some((a) => a.at >= since && a.who === 'a') ? true : undefined), 30_000);
  const toA = clientGap(probe.answers(), since, 'b', 'a');

  // Drain a, asked on b: web moves off, batch (on b already) is kept off a; a switchover to a is refused.
  const drained = await vigil(c, 'b', ['drain', 'a', '--json']);
  t.equal(drained.code, 0, drained.stderr);
  const drain = JSON.parse(drained.stdout) as { node: string; undo: boolean; apps: { tag: string; outcome: string }[] };
  t.match(drain, { node: 'a', undo: false, apps: [{ tag: 'batch' }, { tag: 'web', outcome: 'complete', to: 'b' }] });
  // batch is at home on b, marked; unless a load spike on this shared machine had a and b fail each other
  // meanwhile and a took it over, in which case the drain moved it.
  t.ok(['marked', 'complete'].includes(drain.apps[0]!.outcome), `batch: ${drain.apps[0]!.outcome}`);
  t.match(await web(c, 'a'), { host: 'b', keepOff: 'a', phase: 'switched-over' });
  t.match((await c.status('a')).apps.find((x) => x.tag === 'batch'), { host: 'b', keepOff: 'a' }, 'every app of a is off it and kept off');
  const toDrained = await vigil(c, 'a', ['switchover', 'web']);
  t.match(toDrained.stderr, /web: a is drained \(vigil drain a --undo\)/);
  t.equal((await web(c, 'a')).host, 'b');
  const undone = await vigil(c, 'a', ['drain', 'a', '--undo']);
  t.equal(undone.code, 0, undone.stderr);
  t.match(undone.stdout, /web: switched over from b to a/);
  t.match(undone.stdout, /batch: no longer kept off the node/);
  await until('web back on a, not kept off', async () => {
    const w = await web(c, 'b');
    return w.host === 'a' && w.keepOff === undefined ? true : undefined;
  });

  // The same app failed over (a loses power), for the comparison.
  await until('the client reaches a after the undo', async () => (probe.answers().at(-1)?.who === 'a' ? true : undefined), 30_000);
  // The pair settles as master and slave after the moves (seed 003) as after any start: b takes over.
  await settled(c, ['a', 'b']);
  // From a's last answer before the power-off, however long before it came (the prober, one process on
  // a loaded machine, can fall silent for a second: a fixed look-back once found no answer of a in it).
  const lastOfA = probe.answers().filter((a) => a.who === 'a').at(-1)!.at;
  since = Date.now();
  await c.powerOff('a');
  t.comment(`a last answered the client ${since - lastOfA} ms before the power-off`);
  await until('the client reaches b after the failover', async () => (probe.answers().some((a) => a.at >= since && a.who === 'b') ? true : undefined), 30_000);
  const failover = clientGap(probe.answers(), lastOfA, 'a', 'b');
  t.comment(`service gap a → b: agents ${answer.gapMs} ms, client ${toB.gapMs} ms; b → a: agents ${backAnswer.gapMs} ms, client ${toA.gapMs} ms; failover (power loss) a → b: client ${failover.gapMs} ms`);
  t.ok(toB.gapMs > 0 && toA.gapMs > 0 && failover.gapMs > 0, 'each gap was seen by the client');
});

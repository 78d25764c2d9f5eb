// Seed 000's loop in the namespace rig (docs/rejuvenation.md, "Rejuvenation"): a leaking app on its
// primary is judged unstable, the primary takes the cluster's rejuvenation slot, its app is switched over
// to the spare (active/standby), the ladder's first rung leaves it healthy, probation, and it is back in
// the available list as the spare, the app staying where it runs. Then the ladder escalating: a node kept
// unhealthy (a threshold it cannot meet) climbs every rung, the agent's re-exec included, fails, stays out
// and blocks every other rejuvenation until an operator cancels it.
import { setTimeout as sleep } from 'node:timers/promises';

import t from 'tap';

import { runCli } from '../support/cli.js';
import { APP_PORT, createCluster, until } from '../support/cluster.js';
import { agingWith, NEVER_HEALTHY, recordOf } from '../support/rejuvenation.js';

/**
 * On a, grows by 4 MiB of touched memory every 200 ms up to 600 MiB; on b, does not (the namespaces share
 * the host's memory, and a leak on b would age a again); serves its node's name meanwhile.
 */
const LEAKY_SERVER = ['/usr/bin/env', 'node', '-e',
  'const a=[];const t=setInterval(()=>{if(process.env.VIGIL_NODE!=="a")return;a.push(Buffer.alloc(4<<20,1));if(a.length>=150)clearInterval(t);},200);'
  + 'require("net").createServer((s)=>{s.on("error",()=>{});s.end(process.env.VIGIL_NODE+"\\n");}).listen(' + APP_PORT + ');'];

t.test('active/standby: a leaking primary is rejuvenated: its app switched over to the spare, the first rung heals it, probation, back as the spare', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'leaky', primary: 'a', backup: 'b', vip: true, command: LEAKY_SERVER }], {
    // Only a acts on its own: the app, leaking again on b, would make b the next one (correctly, but later).
    extra: (node) => [agingWith(),
      `rejuvenation: { auto: ${node === 'a'}, mode: active-standby, deadlineMs: 86400000, settleMs: 500, probationMs: 3000, minIntervalMs: 600000, ladder: [apps, agent, caches], commands: { caches: ["true"] } }`],
  });
  c.start('a');
  c.start('b');
  await until('a serves the VIP', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 30_000, 200);
  const outAt: Record<string, number> = {};
  const done = await until('a is rejuvenated and back as the spare', async () => {
    const r = await recordOf(c, 'b', 'a');
    if (r && r.state !== 'available') outAt[r.state] ??= Date.now();
    return r?.rejuvenation?.outcome === 'spare' && r.state === 'available' ? r : undefined;
  }, 90_000, 200);
  t.ok(outAt.duplexing && outAt.rejuvenating && outAt.probation, `b saw a duplexing, rejuvenating, then on probation (${JSON.stringify(outAt)})`);
  t.equal(done.rejuvenation!.by, 'aging', 'decided by the aging monitor\'s judgement');
  // The namespaces share the host's memory: the node's memAvailable trend may be judged before the app's RSS.
  t.match(done.rejuvenation!.reason, /(app leaky rss|node memAvailable) unstable \(trend\)/, 'for the leak');
  t.same(done.rejuvenation!.moved, [{ tag: 'leaky', to: 'b' }], 'its app moved to the spare');
  t.match(done.rejuvenation!.steps, [{ step: 'apps', outcome: 'healthy' }], 'the first rung (its apps restarted elsewhere) left it healthy');
  t.equal(done.rejuvenation!.steps.length, 1, 'no harder rung tried');
  t.equal(done.role, 'spare', 'registered again as the spare');
  t.equal(await c.probe(c.vip()), 'b', 'the app serves from b');
  const app = (await c.status('a')).apps.find((x) => x.tag === 'leaky') as unknown as { host: string; phase: string; keepOff?: string };
  t.match(app, { host: 'b', phase: 'switched-over' }, 'and stays there (no failback to the rejuvenated node)');
  t.equal(app.keepOff, undefined, 'the duplexing\'s drain mark is lifted: a is a target again');
  const notices = (await c.status('a')).notices.map((n) => n.notice);
  for (const n of ['rejuvenation-started', 'rejuvenation-duplexed', 'rejuvenation-step', 'rejuvenation-probation', 'rejuvenation-complete']) t.ok(notices.includes(n), `notice ${n}`);
  const text = await runCli('vigil', ['rejuvenation', 'status', '--socket', c.socket('b')]);
  t.match(text.stdout, /a: available \(spare\)[^\n]*\n  rejuvenation started [^\n]* by aging: [^\n]*unstable \(trend\)[^\n]*\n    moved: leaky to b\n    rung apps at [^\n]*: healthy/, 'vigil rejuvenation status tells the timeline');
});

t.test('the ladder escalates on a node that stays unhealthy: every rung tried, the agent re-executed in place, then it stays out and blocks another until cancelled', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }], {
    extra: (node) => [agingWith(NEVER_HEALTHY),
      `rejuvenation: { auto: ${node === 'a'}, mode: active-active, deadlineMs: 86400000, lowLoadPerCpu: 1000, headroom: { maxLoadPerCpu: 1000, minMemAvailable: 0 }, settleMs: 300, ladder: [apps, agent, caches], absenceMs: { agent: 20000 }, commands: { caches: ["true"] } }`],
  });
  const child = c.start('a');
  c.start('b');
  const pid = child.pid;
  let bothOut = false;
  const failed = await until('a climbed the whole ladder and failed', async () => {
    const [ra, rb] = [await recordOf(c, 'b', 'a'), await recordOf(c, 'b', 'b')];
    if (ra && rb && ra.state !== 'available' && rb.state !== 'available') bothOut = true;
    return ra?.rejuvenation?.outcome === 'failed' ? ra : undefined;
  }, 120_000, 300);
  t.match(failed.rejuvenation!.steps, [{ step: 'apps', outcome: 'unhealthy' }, { step: 'agent', outcome: 'unhealthy' }, { step: 'caches', outcome: 'unhealthy' }], 'each rung tried once, in order, each verified unhealthy');
  t.match(failed.rejuvenation!.steps[0]!.detail, /memory available [\d.]+% below 99.5%/, 'with the reason');
  t.equal(failed.state, 'rejuvenating', 'it stays out of the available list');
  t.equal(child.exitCode, null, 'the agent re-executed in place: the same process');
  t.equal(child.pid, pid);
  t.match(c.log('a'), /"msg":"vigild started"[\s\S]*rung agent[\s\S]*"msg":"vigild started"/, 'and started again after the agent rung');
  t.equal(await c.probe(c.vip()), 'b', 'web serves from b meanwhile');

  const refused = await runCli('vigil', ['rejuvenation', 'run', 'b', '--socket', c.socket('b')]);
  t.not(refused.code, 0, 'another rejuvenation is refused');
  t.match(refused.stderr, /a is rejuvenating: one rejuvenation at a time/);

  const cancel = await runCli('vigil', ['rejuvenation', 'cancel', 'a', '--socket', c.socket('b'), '--json']);
  t.equal(cancel.code, 0, 'an operator cancels it from b');
  await until('a is available again', async () => ((await recordOf(c, 'a', 'a'))?.state === 'available' ? true : undefined), 20_000, 200);
  t.match((await recordOf(c, 'b', 'a'))?.rejuvenation, { outcome: 'cancelled', why: /cancelled by an operator on b/ });
  t.notOk(bothOut, 'never were both nodes out of the available list');
  // Still unstable, but a cancelled rejuvenation is not taken up again until its judgement clears first.
  await sleep(3000);
  t.equal((await recordOf(c, 'a', 'a'))?.state, 'available', 'not restarted on its own after the cancel');
});

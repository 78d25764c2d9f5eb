// The aging monitor against a real leak (namespace rig): an app that grows its heap by 4 MiB every 200 ms
// is judged unstable on its RSS trend, with a positive slope, an ETA and a notice, after the configured
// hold; a healthy app on the same node is not. Short interval and hold, so the test fits in seconds.
import t from 'tap';

import { runCli } from '../support/cli.js';
import { createCluster, until } from '../support/cluster.js';

/** Grows by 4 MiB of touched memory every 200 ms up to 600 MiB (30 s), then holds it. */
const LEAKY = ['/usr/bin/env', 'node', '-e',
  'const a=[];const t=setInterval(()=>{a.push(Buffer.alloc(4<<20,1));if(a.length>=150)clearInterval(t);},200);setInterval(()=>{},1e6);'];
const STEADY = ['/usr/bin/env', 'node', '-e', 'setInterval(()=>{},1000);'];

interface Judgement { signal: string; state: string; condition: string | null; value: number; slopePerHour: number | null; etaMs: number | null; samples: number }
interface Aging { node: Judgement[]; apps: { tag: string; pid: number; signals: Judgement[] }[] }

t.test('a leaking app is judged unstable on its RSS trend with a slope, an ETA and a notice; a healthy one beside it is not', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [
    { tag: 'leaky', primary: 'a', backup: 'b', command: LEAKY },
    { tag: 'steady', primary: 'a', backup: 'b', command: STEADY },
  ], { extra: () => ['aging: { intervalMs: 200, holdMs: 2000, windowSamples: 20 }'] });
  c.start('a');
  c.start('b');
  const aging = async () => (await c.status('a') as unknown as { aging: Aging }).aging;
  const started = performance.now();
  const rss = await until('a judges leaky\'s RSS unstable', async () => {
    const j = (await aging()).apps.find((x) => x.tag === 'leaky')?.signals.find((s) => s.signal === 'rss');
    return j?.state === 'unstable' ? j : undefined;
  }, 40_000, 200);
  t.comment(`leaky's RSS unstable ${Math.round(performance.now() - started)} ms after the agents started: ${(rss.value / 2 ** 20).toFixed(0)} MiB, `
    + `slope ${(rss.slopePerHour! / 2 ** 30).toFixed(1)} GiB/h, ETA ${Math.round(rss.etaMs! / 1000)} s, ${rss.samples} samples`);
  t.equal(rss.condition, 'trend', 'on its trend');
  // 4 MiB / 200 ms is 70 GiB an hour; a loaded host samples late, so only the order of magnitude is asserted.
  t.ok(rss.slopePerHour! > 10 * 2 ** 30, `slope ${rss.slopePerHour} bytes/h is a leak's`);
  t.ok(rss.etaMs! > 0, 'with an estimated time to exhaustion');

  const s = await c.status('a');
  const notice = s.notices.find((n) => n.notice === 'aging-unstable' && n.tag === 'leaky');
  t.match(notice?.message, /^app leaky: rss unstable \(trend\): .* MiB\/h over \d+ samples, exhausted in about \d+ min/, 'a notice with the explanation');
  const steady = (s as unknown as { aging: Aging }).aging.apps.find((x) => x.tag === 'steady');
  t.ok(steady && steady.signals.length === 3, 'the healthy app is sampled');
  t.strictSame(steady?.signals.filter((j) => j.state !== 'stable').map((j) => j.signal), [], 'and nothing of it is unstable');
  t.notOk(s.notices.some((n) => n.tag === 'steady' && n.notice === 'aging-unstable'), 'nor noticed');

  const text = await runCli('vigil', ['status', '--socket', c.socket('a')]);
  t.match(text.stdout, /\naging\n(.*\n)*  app leaky rss UNSTABLE: [\d.]+ MiB, trend \+[\d.]+ MiB\/h, exhausted in ~/, 'vigil status says so in text');
  t.match(c.log('a'), /"level":40,.*"msg":"aging: app leaky rss unstable"/, 'and the log, as a warning');
  // The namespaces share the host's memory: the node's own available memory falls with the leak too.
  const mem = (s as unknown as { aging: Aging }).aging.node.find((j) => j.signal === 'memAvailable');
  t.comment(`node a's memAvailable: ${mem?.state}, ${((mem?.value ?? 0) / 2 ** 30).toFixed(1)} GiB, slope ${((mem?.slopePerHour ?? 0) / 2 ** 30).toFixed(1)} GiB/h`);
});

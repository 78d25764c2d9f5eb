// vigil timeline over real agent logs: test/fixtures/timeline/ holds the logs of two cluster tests (captured
// with VIGIL_TEST_LOGS=1): failover/ (test/cluster/failover.test.ts, a's power lost) and distress-power/
// (test/cluster/distress-power.test.ts, upsd's FSD: a sends distress).
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { CLOCK_SAMPLE_MESSAGE } from '../../src/daemon/clock-samples.js';
import { CATALOGUE, classify } from '../../src/timeline/catalogue.js';
import { mergeTimeline } from '../../src/timeline/merge.js';
import { parseNodeLog, type NodeLog } from '../../src/timeline/parse.js';
import { renderHtml } from '../../src/timeline/render-html.js';
import { renderText } from '../../src/timeline/render-text.js';
import { runCli } from '../support/cli.js';
import { repoFile } from '../support/paths.js';

async function fixture(name: string, edit: (line: string, node: string) => string | undefined = (l) => l): Promise<NodeLog[]> {
  const dir = repoFile('test', 'fixtures', 'timeline', name);
  const logs: NodeLog[] = [];
  for (const file of (await readdir(dir)).sort()) {
    const node = file.replace(/\.jsonl$/, '');
    const text = (await readFile(join(dir, file), 'utf8')).split('\n').map((l) => (l ? edit(l, node) : l)).filter((l) => l !== undefined).join('\n');
    logs.push(parseNodeLog(join(dir, file), text));
  }
  return logs;
}

async function sources(): Promise<string> {
  const texts: string[] = [];
  for (const dir of ['src/daemon', 'src/db', 'demo']) {
    for (const f of (await readdir(repoFile(dir))).filter((x) => x.endsWith('.ts'))) texts.push(await readFile(repoFile(dir, f), 'utf8'));
  }
  return texts.join('\n');
}

t.test('every catalogued message and notice is still written by the agent (or, for client answers, by the demo)', async (t) => {
  const code = await sources();
  for (const { match, kind } of CATALOGUE) {
    const text = 'notice' in match ? match.notice : 'msgPrefix' in match ? match.msgPrefix : match.msg;
    const end = 'msgPrefix' in match ? '' : undefined;
    const spelt = [`'${text.replaceAll("'", "\\'")}${end ?? "'"}`, `"${text}${end ?? '"'}`, `\`${text}${end ?? '`'}`];
    t.ok(spelt.some((s) => code.includes(s)), `${kind}: "${text}" occurs in the sources`);
  }
  t.ok(code.includes(`'${CLOCK_SAMPLE_MESSAGE}'`), 'the clock sample message too');
});

t.test('the catalogue tells a mount, an address and a disk apart by the resource of "resource started"', async (t) => {
  t.equal(classify({ msg: 'resource started', resource: 'disk shared0' })?.kind, 'disk-reserved');
  t.equal(classify({ msg: 'resource started', resource: 'mount /srv/web' })?.phase, 'mount');
  t.equal(classify({ msg: 'resource started', resource: 'ip 10.0.0.1/24' })?.phase, 'address');
  t.equal(classify({ msg: 'peer failed: distress: power-forced-shutdown' })?.kind, 'peer-failed');
  t.equal(classify({ msg: 'priority written' }), undefined, 'other lines are no events');
});

t.test('a failover: the agents\' start and the takeover are two incidents; phases in time order with their durations', async (t) => {
  const tl = mergeTimeline(await fixture('failover'));
  t.same(tl.nodes.map((n) => [n.node, n.lines, n.malformed]), [['a', 15, 0], ['b', 19, 0]]);
  t.equal(tl.incidents.length, 2);
  t.same(tl.incidents[0]!.phases.map((p) => [p.phase, p.node]), [['address', 'a'], ['app start', 'a']], 'a starts web');
  // From b's lines: peer failed at .798, resource started (ip, took 216.2) at 32.320, application started
  // at .369, failover-complete at .393: one clock, so the offset does not change these differences.
  t.same(tl.incidents[1]!.phases.map((p) => [p.phase, p.node, p.kind, p.sinceStartMs, p.durationMs, p.tookMs]), [
    ['detection', 'b', 'peer-failed', 0, 0, undefined],
    ['address', 'b', 'address-added', 522, 522, 216.2],
    ['app start', 'b', 'app-started', 571, 49, undefined],
    ['switchover', 'b', 'failover-complete', 595, 24, undefined],
  ]);
  t.equal(tl.incidents[1]!.durationMs, 595);
  const text = renderText(tl);
  t.match(text, /incident 2: 2026-12-07T18:37:31\.79\d+Z, 595 ms/);
  t.match(text, /address\s+b\s+\+522 ms\s+522 ms\s+216\.2 ms/);
});

t.test('a client\'s log gives each incident its first answer, from the node that started the app', async (t) => {
  const logs = await fixture('failover');
  const started = mergeTimeline(logs).events.filter((e) => e.kind === 'app-started').map((e) => e.time);
  // As the demo's prober writes them (on the reference clock: offset 0): a answers from 40 ms after its
  // app started, b from 30 ms after its own.
  const answers = [
    ...[40, 60].map((d) => ({ time: started[0]! + d, node: 'client', peer: 'a', msg: 'client answered' })),
    ...[30, 50].map((d) => ({ time: started[1]! + d, node: 'client', peer: 'b', msg: 'client answered' })),
  ];
  logs.push(parseNodeLog('client.log', answers.map((x) => JSON.stringify(x)).join('\n')));
  const tl = mergeTimeline(logs, { offsets: { client: 0 } });
  const marks = tl.incidents.map((i) => i.phases.at(-1)!).map((p) => [p.phase, p.sinceStartMs, p.durationMs]);
  t.same(marks, [['first client answer', 84 + 40, 40], ['first client answer', 571 + 30, 30 - 24]], 'after app start (a), after failover-complete (b)');
  t.equal(tl.events.filter((e) => e.kind === 'client-answered').length, 2, 'the other answers are no events');
  // A log without clock samples never becomes the reference clock, even when its name sorts first.
  const first = mergeTimeline([...logs, parseNodeLog('/tmp/0client.log', answers.map((x) => JSON.stringify({ ...x, node: undefined })).join('\n'))]);
  t.same([first.nodes[0]!.node, first.reference], ['0client', 'a']);
});

t.test('clock offsets from the heartbeat clock samples put the events of two nodes in the order they happened', async (t) => {
  const truth = mergeTimeline(await fixture('distress-power'));
  const b = truth.nodes.find((n) => n.node === 'b')!;
  // One host: the clocks agree, and the estimate says so within its bound.
  t.equal(b.offsetSource, 'estimated');
  t.ok(Math.abs(b.offsetMs!) <= b.offsetBoundMs!, `offset ${b.offsetMs} ms within ±${b.offsetBoundMs} ms of 0`);
  const order = (tl: typeof truth) => tl.events.map((e) => `${e.node} ${e.kind}`);
  t.same(order(truth).slice(2, 5), ['b peer-distress', 'a distress-sent', 'b peer-failed']);

  // b's wall clock 5 s ahead (its `time` fields only: monotonic clocks do not move with the wall clock).
  const ahead = (line: string, node: string) => (node === 'b' ? line.replace(/"time":(\d+)/, (_m, n: string) => `"time":${Number(n) + 5000}`) : line);
  const shifted = mergeTimeline(await fixture('distress-power', ahead));
  const sb = shifted.nodes.find((n) => n.node === 'b')!;
  t.ok(Math.abs(sb.offsetMs! - 5000) <= sb.offsetBoundMs!, `estimated ${sb.offsetMs} ms ±${sb.offsetBoundMs}, 5000 ms set`);
  t.same(order(shifted), order(truth), 'the same order as with the clocks agreeing');
  t.same(shifted.incidents.map((i) => i.phases.map((p) => [p.phase, p.durationMs])), truth.incidents.map((i) => i.phases.map((p) => [p.phase, p.durationMs])));

  // Without the samples the offset is unknown and the order wrong: a's distress after b's takeover.
  const blind = mergeTimeline(await fixture('distress-power', (l, node) => (l.includes(`"msg":"${CLOCK_SAMPLE_MESSAGE}"`) ? undefined : ahead(l, node))));
  t.equal(blind.nodes.find((n) => n.node === 'b')!.offsetSource, 'unknown');
  t.not(order(blind).join(), order(truth).join());
  t.match(renderText(blind), /b: .*offset unknown/);
  // An offset the operator knows (--offset b=5000) puts it right again.
  t.same(order(mergeTimeline(await fixture('distress-power', (l, node) => (l.includes(CLOCK_SAMPLE_MESSAGE) ? undefined : ahead(l, node))), { offsets: { b: 5000 } })), order(truth));
});

t.test('malformed lines are counted and skipped; the node is named by its lines, else by its file', async (t) => {
  const good = '{"level":30,"time":1796668336136,"peer":"a","msg":"peer alive"}';
  const log = parseNodeLog('/var/log/vigil/node7.log', [good, 'not json', '{"time":17966683', '{"msg":"no time"}', '[1,2]', '', '{"time":"x","msg":"y"}', good].join('\n'));
  t.equal(log.lines.length, 2);
  t.equal(log.malformed, 5);
  t.equal(log.firstMalformedLine, 2);
  t.equal(log.node, 'node7', 'no node field: the file name');
  t.equal(parseNodeLog('x.log', '{"time":1,"node":"b","msg":"m"}').node, 'b');
  t.equal(mergeTimeline([log]).malformed, 5);
});

t.test('the HTML page escapes every text from the logs and loads nothing from outside', async (t) => {
  const evil = '<script>alert("x")</script> & <img src=x onerror=alert(1)>';
  const logs = await fixture('failover', (l) => l.replace('"msg":"web runs on b (primary a failed)"', `"msg":${JSON.stringify(evil)}`).replace('"tag":"web"', `"tag":${JSON.stringify(evil)}`));
  logs.push(parseNodeLog(`/tmp/<b>"n".log`, '{"time":1796668651798,"msg":"application started"}'));
  const html = renderHtml(mergeTimeline(logs));
  t.match(html, '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;');
  t.notMatch(html, /<script|<img|<b>|<link|<iframe/i);
  t.notMatch(html, /<[^>]*\s(src|href)\s*=|url\(|@import/i, 'no external asset');
  t.same(html.match(/https?:\/\/[^"\s]*/g), ['http://www.w3.org/2000/svg', 'http://www.w3.org/2000/svg'], 'only the SVG namespace, once per incident');
});

t.test('vigil timeline: a directory of logs; malformed lines are one line on stderr, not an error; --json and --html', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-timeline-'));
  t.teardown(async () => { const { rm } = await import('node:fs/promises'); await rm(dir, { recursive: true, force: true }); });
  for (const n of ['a', 'b']) {
    const text = await readFile(repoFile('test', 'fixtures', 'timeline', 'failover', `${n}.jsonl`), 'utf8');
    await writeFile(join(dir, `${n}.log`), n === 'b' ? `${text}{"time":17966686\n` : text);
  }
  const html = join(dir, 'page.html');
  const r = await runCli('vigil', ['timeline', dir, '--html', html]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, `vigil timeline: ${join(dir, 'b.log')}: 1 malformed line skipped (the first is line 20)\n`);
  t.match(r.stdout, /incident 2: .*595 ms/);
  t.match(r.stdout, `HTML page: ${html}`);
  t.match(await readFile(html, 'utf8'), /^<!DOCTYPE html>/);

  const j = await runCli('vigil', ['--json', 'timeline', join(dir, 'a.log'), join(dir, 'b.log'), '--offset', 'b=0.5']);
  const doc = JSON.parse(j.stdout) as Record<string, unknown> & { nodes: Record<string, unknown>[]; events: Record<string, unknown>[]; incidents: Record<string, unknown>[] };
  t.same(Object.keys(doc), ['version', 'reference', 'nodes', 'events', 'incidents', 'malformed'], 'the documented shape (docs/cli.md)');
  t.equal(doc.malformed, 1);
  t.same(doc.nodes.map((n) => [n.node, n.offsetSource, n.offsetMs]), [['a', 'reference', 0], ['b', 'given', 0.5]]);
  t.same(Object.keys(doc.incidents[1]!), ['start', 'end', 'durationMs', 'phases', 'events']);
  t.same(Object.keys(doc.events[0]!).slice(0, 6), ['time', 'loggedTime', 'node', 'kind', 'phase', 'message']);

  const bad = await runCli('vigil', ['timeline', dir, '--offset', 'b']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /expected NODE=MS/);
});

// The timeline page in a real browser: headless Chromium (Debian's chromium, installed by scripts/setup)
// renders it to PNG; the picture must not be blank and its SVG must be drawn (the phase bars' colours in
// quantity, which the legend alone cannot give), and the DOM must carry the labels.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { mergeTimeline } from '../../src/timeline/merge.js';
import { parseNodeLog } from '../../src/timeline/parse.js';
import { renderHtml } from '../../src/timeline/render-html.js';
import { countColour, decodePng } from '../support/png.js';
import { repoFile } from '../support/paths.js';

const CHROMIUM = '/usr/bin/chromium';
const run = promisify(execFile);

// Missing Chromium is a failure, not a skip: scripts/setup installs it, and a skipped test would pass.
t.test('headless Chromium draws the timeline of the NUT distress failover and its DOM carries the labels', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing (scripts/setup installs chromium)`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'vigil-timeline-browser-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fixtures = repoFile('test', 'fixtures', 'timeline', 'distress-power');
  const logs = await Promise.all((await readdir(fixtures)).sort().map(async (f) => parseNodeLog(join(fixtures, f), await readFile(join(fixtures, f), 'utf8'))));
  const timeline = mergeTimeline(logs);
  const page = join(dir, 'timeline.html');
  await writeFile(page, renderHtml(timeline));
  const browser = ['--headless', '--disable-gpu', '--no-sandbox', `--user-data-dir=${join(dir, 'profile')}`];

  const png = join(dir, 'timeline.png');
  await run(CHROMIUM, [...browser, `--screenshot=${png}`, '--window-size=1100,1400', `file://${page}`], { timeout: 60_000 });
  const img = decodePng(await readFile(png));
  t.same([img.width, img.height], [1100, 1400]);
  const white = countColour(img, '#ffffff', 2);
  t.ok(white < img.width * img.height * 0.95, `not blank: ${img.width * img.height - white} pixels are not white`);
  // The address phase bar of the takeover (222 ms of a 256 ms incident, 16 px high) is drawn in its colour.
  t.ok(countColour(img, '#16a085') > 3000, `the address bar is drawn (${countColour(img, '#16a085')} pixels of its colour)`);
  t.ok(countColour(img, '#c0392b') > 30, 'the distress marks are drawn');

  const { stdout: dom } = await run(CHROMIUM, [...browser, '--dump-dom', `file://${page}`], { timeout: 60_000, maxBuffer: 16 << 20 });
  const svgs = dom.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  t.equal(svgs.length, timeline.incidents.length, 'one picture per incident');
  const takeover = svgs[1] ?? '';
  for (const label of ['node a', 'node b', 'peer-distress', 'distress-sent', 'peer-failed', 'address-added', 'app-started', 'failover-complete']) {
    t.ok(takeover.includes(`>${label}<`), `the picture labels ${label}`);
  }
  for (const p of timeline.incidents[1]!.phases) {
    t.ok(takeover.includes(`>${p.phase}<`) && takeover.includes(`${p.durationMs} ms (${p.node}, ${p.kind})`), `the picture gives ${p.phase}: ${p.durationMs} ms`);
  }
});

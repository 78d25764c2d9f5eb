// npm run bench (inside the lab, with 16 extra LUNs): TEST UNIT READY through vigil's SG_IO path against
// `sg_turs -n` on the same device, and the stored link table's resolution against a full scan.
import { spawnSync } from 'node:child_process';

import { defaultOpener, groupByIdentity, scanPaths } from '../src/links/scan.js';
import { resolveLink, tableFromScan } from '../src/links/table.js';
import { benchTestUnitReady, type BenchResult } from '../src/scsi/bench.js';
import { SgTransport } from '../src/scsi/sg-transport.js';

const COUNT = Number(process.env.VIGIL_BENCH_COUNT ?? 10_000);
const device = process.env.VIGIL_LAB_A;
if (!device || !process.env.VIGIL_LAB_LUNS) {
  console.error('bench: run inside the lab with extra LUNs: scripts/lab --luns=16 -- node dist/bench/run.js (npm run bench does this)');
  process.exit(1);
}

/** Seconds for one sg_turs process doing n TEST UNIT READY. */
function sgTurs(n: number): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sg_turs', ['-n', String(n), device!], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sg_turs -n ${n} ${device}: exit ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const us = (x: number) => `${x.toFixed(1)} µs`;

// sg_turs: per command = (time for COUNT - time for 1) / (COUNT - 1), removing process start-up. Median of 3.
sgTurs(200);
const sgPer = median([0, 1, 2].map(() => (sgTurs(COUNT) - sgTurs(1)) / (COUNT - 1))) * 1e6;

// The same thread hand-off in plain C (bench/handoff.c, built by scripts/bench): the design's cost here,
// without V8.
const handoffBin = new URL('../../.lab/bin/handoff', import.meta.url).pathname;
function handoff(): number {
  const r = spawnSync(handoffBin, [device!, String(COUNT)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${handoffBin}: exit ${r.status} ${r.stderr} (scripts/bench builds it)`);
  return Number(r.stdout);
}
const handoffUs = median([handoff(), handoff(), handoff()]);

const transport = await SgTransport.open(device);
const runs: Record<string, BenchResult> = {};
for (const depth of [1, 8]) {
  const results: BenchResult[] = []; // three runs, keep the median by per-command time
  for (let i = 0; i < 3; i++) results.push(await benchTestUnitReady(transport, COUNT, depth));
  results.sort((a, b) => a.perCommandUs - b.perCommandUs);
  runs[depth] = results[1]!;
}
transport.close();

// Link table: a full scan (every sg node: open + INQUIRY VPD 0x83) against resolving one unit through
// its stored path (open + one INQUIRY).
const open = defaultOpener();
await scanPaths({ open }); // warm-up
const scanTimes: number[] = [];
let scanned = await scanPaths({ open });
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  scanned = await scanPaths({ open });
  scanTimes.push(performance.now() - t0);
}
const table = tableFromScan(groupByIdentity(scanned));
const target = table.entries[table.entries.length - 1]!.identity; // one of the 16 LUNs, last in the scan
const resolveTimes: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = performance.now();
  const dev = await resolveLink(table, target, open);
  resolveTimes.push(performance.now() - t0);
  dev.close();
}
const scanMs = median(scanTimes);
const resolveMs = median(resolveTimes);

const d1 = runs[1]!;
const d8 = runs[8]!;
console.log(`TEST UNIT READY on ${device}, ${COUNT} commands (median of 3 runs each)`);
console.log(`  sg_turs -n ${COUNT}                   ${us(sgPer)} per command`);
console.log(`  vigil, 1 in flight (latency)       ${us(d1.perCommandUs)} per command   ${(d1.perCommandUs / sgPer).toFixed(2)}× sg_turs`);
console.log(`      of which: ${us(d1.breakdown.waitUs)} to the device thread, ${us(d1.breakdown.ioctlUs)} in SG_IO, ${us(d1.breakdown.deliverUs)} back to the event loop, ${us(d1.breakdown.jsUs)} in JavaScript`);
console.log(`  vigil, SG_IO alone (native timing)  ${us(d1.breakdown.ioctlUs)} per command   ${(d1.breakdown.ioctlUs / sgPer).toFixed(2)}× sg_turs`);
console.log(`  vigil, 8 in flight (throughput)    ${us(d8.perCommandUs)} per command   ${(d8.perCommandUs / sgPer).toFixed(2)}× sg_turs`);
console.log(`  the same hand-off in C, no Node     ${us(handoffUs)} per command   ${(handoffUs / sgPer).toFixed(2)}× sg_turs`);
console.log(`Link resolution, ${scanned.length} sg devices (${table.entries.length} units)`);
console.log(`  full scan                          ${scanMs.toFixed(1)} ms (median of 5)`);
console.log(`  stored link, one INQUIRY           ${resolveMs.toFixed(2)} ms (median of 50)   ${(scanMs / resolveMs).toFixed(1)}× faster`);
console.log(`Goals: vigil ≤ 1.5× sg_turs per command; link table ≥ 10× faster than the scan`);
console.log(JSON.stringify({
  device, count: COUNT, sgTursUs: sgPer,
  vigilDepth1: { perCommandUs: d1.perCommandUs, ratio: d1.perCommandUs / sgPer, breakdown: d1.breakdown },
  vigilDepth8: { perCommandUs: d8.perCommandUs, ratio: d8.perCommandUs / sgPer },
  ioctlRatio: d1.breakdown.ioctlUs / sgPer,
  handoffInC: { perCommandUs: handoffUs, ratio: handoffUs / sgPer },
  links: { devices: scanned.length, units: table.entries.length, scanMs, resolveMs, ratio: scanMs / resolveMs },
}));

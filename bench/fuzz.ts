// The fuzz campaign's long mode (npm run fuzz): every parser that faces the outside, a million inputs each
// by default (VIGIL_FUZZ_COUNT; VIGIL_FUZZ_TARGETS=datagram,config to pick; VIGIL_FUZZ_SEED to replay).
// Prints, per parser, the outcomes with their counts, the slowest input and any crash; exits 1 on a crash.
// The CI run of the same targets is test/unit/fuzz.test.ts (a bounded number).
import { FUZZ_TARGETS } from '../test/support/fuzz-targets.js';

const count = Number(process.env.VIGIL_FUZZ_COUNT ?? 1_000_000);
const seed = Number(process.env.VIGIL_FUZZ_SEED ?? 0x5eed);
const only = process.env.VIGIL_FUZZ_TARGETS?.split(',');
let crashed = false;
for (const target of FUZZ_TARGETS) {
  if (only && !only.includes(target.name)) continue;
  const r = await target.run(count, seed);
  const rate = r.inputs / r.seconds;
  console.log(`${target.name}: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${rate >= 1000 ? `${(rate / 1000).toFixed(1)} k` : rate.toFixed(0)}/s), slowest ${r.maxMs.toFixed(1)} ms, crashes ${r.crashes.length}`);
  for (const [outcome, n] of [...r.outcomes].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(9)}  ${outcome}`);
  for (const c of r.crashes) console.log(`  CRASH ${c}`);
  if (r.crashes.length) crashed = true;
}
process.exit(crashed ? 1 : 0);

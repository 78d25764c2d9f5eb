// The fuzz campaign's bounded CI run (test/support/fuzz-targets.ts; bench/fuzz.ts runs a million inputs
// each): every parser that faces the outside answers or drops each input with a counted reason, never
// crashes, never hangs. Seeds are fixed, so a failure replays.
import t from 'tap';

import { FUZZ_TARGETS } from '../support/fuzz-targets.js';

const COUNT: Record<string, number> = { datagram: 20_000, distress: 20_000, control: 2_000, config: 2_000, nut: 2_000, apc: 20_000, rmcp: 20_000 };

for (const target of FUZZ_TARGETS) {
  t.test(`fuzz ${target.name}: ${COUNT[target.name]} inputs, each answered or dropped with a counted reason`, async (t) => {
    const r = await target.run(COUNT[target.name]!, 0x5eed);
    t.comment(`${r.inputs} inputs in ${r.seconds.toFixed(1)} s, slowest ${r.maxMs.toFixed(1)} ms: ${[...r.outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o} ${n}`).join('; ')}`);
    t.same(r.crashes, [], 'no crash');
    t.equal(r.inputs, COUNT[target.name], 'every input was counted');
    t.ok(r.outcomes.size >= 2, 'the inputs reached more than one outcome (the mutations are not all refused at the first check)');
    t.ok(r.maxMs < 1000, `no input took a second (slowest ${r.maxMs.toFixed(1)} ms)`);
  });
}

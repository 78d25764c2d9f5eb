// The campaign's client, run in the rig's client namespace: `node prober.mjs PORT VIP...`. Every ~100 ms it
// connects to every VIP at once and prints one JSON line: {"t": epoch ms at the round's start, "a": {vip:
// node name or null}}. A long-lived process, because spawning a client per probe would cost the two
// cores more than the agents under test do.
import { connect } from 'node:net';

const [, , port, ...vips] = process.argv;
const TIMEOUT_MS = 250;
const PERIOD_MS = 100;

function probe(vip) {
  return new Promise((resolve) => {
    let data = '';
    let done = false;
    const finish = (v) => { if (!done) { done = true; s.destroy(); resolve(v); } };
    const s = connect(Number(port), vip);
    s.setTimeout(TIMEOUT_MS, () => finish(null));
    s.on('data', (d) => { data += d; });
    s.on('end', () => finish(data.trim() || null));
    s.on('error', () => finish(null));
  });
}

for (;;) {
  const t = Date.now();
  const answers = await Promise.all(vips.map(probe));
  const a = Object.fromEntries(vips.map((v, i) => [v, answers[i]]));
  process.stdout.write(`${JSON.stringify({ t, a })}\n`);
  const left = PERIOD_MS - (Date.now() - t);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
}

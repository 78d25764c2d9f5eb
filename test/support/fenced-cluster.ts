// A cluster whose nodes each have a real BMC (an ipmi_sim in the client namespace, on the service network)
// whose "power off" does to the node what losing power does (netns.ts powerLossScript): the power-fence
// tests (test/cluster/power-fence.test.ts) and the fenced takeover's benchmark (bench/fence-takeover.ts).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { createCluster, type TestCluster } from './cluster.js';
import { IpmiSim } from './ipmi-sim.js';
import { METRICS_LISTEN } from './metrics.js';
import { powerLossScript, SERVICE } from './netns.js';

export const FENCING = 'fencing: { raceDelayMs: 3000, requestTimeoutMs: 1000, confirmTimeoutMs: 3000 }';

/**
 * A cluster (a and b unless `nodes` says), each node with its BMC (an ipmi_sim in the client namespace) that
 * powers it off for real; `metrics`: each agent serves /metrics on METRICS_LISTEN in its namespace (scrape()).
 */
export async function fencedCluster(t: { teardown(fn: () => unknown): void }, apps: Parameters<typeof createCluster>[2], o: { debug?: boolean; nodes?: string[]; timing?: Record<string, number>; fencing?: string; metrics?: boolean } = {}): Promise<{ c: TestCluster; bmcs: Record<string, IpmiSim> }> {
  const nodes = o.nodes ?? ['a', 'b'];
  // The BMCs' ports and the cluster's directory are known only once both exist: placeholders, filled in after.
  const c = await createCluster(t, nodes, apps, {
    ...(o.debug ? { debug: true } : {}),
    ...(o.timing ? { timing: o.timing } : {}),
    extra: () => [o.fencing ?? FENCING, ...(o.metrics ? [`metrics: { listen: "${METRICS_LISTEN}" }`] : [])],
    bmc: (node) => `{ host: "@host-${node}", port: 1, user: admin, passwordFile: "@password", cipherSuite: 3 }`,
  });
  const passwordFile = join(c.dir, 'bmc.pw');
  await writeFile(passwordFile, 'secret\n', { mode: 0o600 });
  const bmcs: Record<string, IpmiSim> = {};
  for (const node of nodes) {
    const sim = await IpmiSim.start({ netns: c.rig.ns('client'), address: c.rig.addr('client', SERVICE) });
    t.teardown(() => sim.stop());
    await sim.onPower('off', powerLossScript(c.rig.ns(node)));
    bmcs[node] = sim;
  }
  for (const node of nodes) {
    const file = join(c.dir, `${node}.yaml`);
    let yaml = await readFile(file, 'utf8');
    for (const peer of nodes) yaml = yaml.replace(`host: "@host-${peer}", port: 1`, `host: ${bmcs[peer]!.address}, port: ${bmcs[peer]!.port}`);
    await writeFile(file, yaml.replaceAll('"@password"', passwordFile));
  }
  return { c, bmcs };
}

// The namespace rig with a BMC per node (test/support/fenced-cluster.ts: an ipmi_sim whose power-off kills
// every process of the node's namespace, as losing power does): every takeover from a node that may still
// run its copy is power-fenced first, so no fault excuses two copies (World without excuses). What the
// harness must know of the fences it did not cause: the BMCs' logs say which node went off and when (the
// world, the VIP watch and the agents' expected exits follow them), a fenced node stays off until a power
// fault's end or the end of the faults powers it on again (its BMC set on too: an operator's power-on).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { TestCluster } from '../support/cluster.js';
import { fencedCluster } from '../support/fenced-cluster.js';
import type { IpmiSim } from '../support/ipmi-sim.js';
import { Injector } from './faults.js';
import { appDefs } from './layout.js';
import type { LinkRules } from './netfilter.js';
import { NETNS, type Profile } from './runner.js';
import type { Fault } from './schedule.js';
import type { Timeline } from './timeline.js';
import type { VipWatch } from './vipwatch.js';
import type { World } from './world.js';

/** After a fence once the faults are over, the node is powered on again this much later. */
const RESTORE_AFTER_MS = 3000;

export class BmcInjector extends Injector {
  /** Lines of each BMC's action log already followed. */
  private readonly seen = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private polling = false;
  /** Set once every fault is healed: a fence from then on is answered by powering the node on again. */
  private faultsOver = false;
  private closed = false;

  constructor(c: TestCluster, world: World, tl: Timeline, rules: LinkRules, watch: VipWatch, private readonly bmcs: Record<string, IpmiSim>) {
    super(c, world, tl, rules, watch);
    this.timer = setInterval(() => void this.follow(), 50);
  }

  /** A node its BMC reports off was powered off by a fence: its agent's end is no crash. */
  protected override exitExplained(node: string): boolean {
    try {
      return readFileSync(join(this.bmcs[node]!.dir, 'power'), 'utf8').trim() === '0';
    } catch {
      return false;
    }
  }

  /** The fences' power-offs, from the BMCs' logs, into the world. */
  private async follow(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const node of this.world.nodes) {
        const actions = await this.bmcs[node]!.actions();
        const from = this.seen.get(node) ?? 0;
        this.seen.set(node, actions.length);
        for (const a of actions.slice(from)) {
          if (a !== 'power 0') continue;
          this.world.setPowered(node, false);
          this.world.did(node, 'powered off by a fence');
          this.watch.poweredOff(node, this.world.now());
          this.tl.add('step', `${node} powered off by a fence through its BMC`);
          // A fence decided while the faults ended (a takeover's race delay runs on past them): the node is
          // powered on again, or the clean-up would wait for a cluster that cannot form. Not at once: the
          // fencer is still confirming "off" (an operator would not be that quick either).
          if (this.faultsOver) {
            setTimeout(() => {
              if (this.closed) return;
              this.restore(node).catch((e: unknown) => this.tl.add('note', `power-on of ${node} after a fence failed: ${String(e)}`));
            }, RESTORE_AFTER_MS);
          }
        }
      }
    } finally {
      this.polling = false;
    }
  }

  /** An operator's power-on of a node a fence left off: its BMC, its links, its agent. */
  private async restore(node: string): Promise<void> {
    await this.bmcs[node]!.setPower(true);
    await this.powerOn(node, 'power on after a fence');
  }

  override async end(f: Fault, primaryOf: (tag: string) => string): Promise<void> {
    // Powered on again: its BMC says so as well (a fence during the power fault left it "off").
    if (f.kind === 'power') await this.bmcs[f.node]!.setPower(true);
    return super.end(f, primaryOf);
  }

  /** Every node a fence left off is powered on again, as an operator would once the faults are over. */
  override async afterFaults(): Promise<void> {
    while (this.polling) await new Promise((r) => setTimeout(r, 10));
    this.faultsOver = true;
    await this.follow();
    for (const node of this.world.nodes) if (this.world.poweredOff(node)) await this.restore(node);
  }

  override shutdown(): void {
    this.closed = true;
    clearInterval(this.timer);
    super.shutdown();
  }
}

const sims = new WeakMap<TestCluster, Record<string, IpmiSim>>();

/** The namespace rig, each node with its BMC; `npm run nemesis -- --bmc`. */
export const NETNS_BMC: Profile = {
  ...NETNS,
  strict: true,
  cluster: async (teardown, sched) => {
    const { c, bmcs } = await fencedCluster({ teardown }, appDefs(sched.layout), { nodes: sched.layout.nodes });
    sims.set(c, bmcs);
    return c;
  },
  injector: (c, world, tl, rules, watch) => new BmcInjector(c, world, tl, rules, watch, sims.get(c)!),
  replay: (sched, without) => `${NETNS.replay(sched, without)} --bmc`,
};

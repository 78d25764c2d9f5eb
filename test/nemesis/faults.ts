// The fault injectors: each fault of a schedule has a beginning and, unless instantaneous, an end that
// heals it. They act on the rig and the processes directly and tell the World what they did, with the
// time, before (faults) or after (heals) the change, so that the World never claims less than is true.
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { controlRequest, ControlRemoteError, VigildNotRunningError } from '../../src/control/client.js';
import type { TestCluster } from '../support/cluster.js';
import { sh } from '../support/netns.js';
import { scanCopies } from './ground.js';
import type { LinkRules } from './netfilter.js';
import type { Fault } from './schedule.js';
import type { Timeline } from './timeline.js';
import type { VipWatch } from './vipwatch.js';
import type { World } from './world.js';

/** How a control request ended: answered (ack), refused for sure (nothing written), or unknown. */
export type Outcome = { kind: 'ack'; result: unknown } | { kind: 'refused'; why: string } | { kind: 'unknown'; why: string };

export const REQUEST_TIMEOUT_MS = 2000;

export class Injector {
  /** Agent processes the harness itself stops or kills: their exit is no finding. */
  private readonly expected = new WeakSet<ChildProcess>();
  /** Agents that exited by themselves (a crash): reported by the runner. */
  readonly crashes: string[] = [];

  constructor(protected readonly c: TestCluster, protected readonly world: World, protected readonly tl: Timeline, private readonly rules: LinkRules,
    protected readonly watch: VipWatch) {}

  /** The run is over: the rig's teardown stops every agent, which is no finding either. */
  shutdown(): void {
    for (const a of this.world.agents.values()) if (a) this.expected.add(a);
  }

  /** An agent's exit the harness did not cause but that is no finding (a fence's power-off: BmcInjector). */
  protected exitExplained(_node: string): boolean {
    return false;
  }

  /** Every fault is healed: anything the rig left off (a node a fence powered off) is put back. */
  async afterFaults(): Promise<void> {}

  startAgent(node: string): void {
    // A node that is off starts its agent when it is powered on, not before.
    if (this.world.poweredOff(node)) return;
    this.world.did(node, 'agent started');
    const child = this.c.start(node);
    this.world.agents.set(node, child);
    child.on('exit', (code, signal) => {
      if (this.expected.has(child) || this.exitExplained(node)) return;
      const what = `${node}'s agent exited by itself (${signal ?? `exit ${code}`})`;
      this.crashes.push(`${(this.world.now() / 1000).toFixed(3)}s ${what}`);
      this.tl.add('violation', `AGENT-EXIT: ${what}`);
      // Why it exited: its last output (its streams may still be draining when 'exit' comes).
      setTimeout(() => {
        const last = this.c.log(node).trim().split('\n').slice(-6).map((l) => l.slice(0, 400));
        this.tl.add('note', `${node}'s agent's last output: ${last.length ? last.join(' | ') : '(none)'}`);
      }, 500);
    });
  }

  /** Sends a signal to the agent and, for a fatal one, waits until it has exited. */
  private async signalAgent(node: string, signal: NodeJS.Signals): Promise<void> {
    const child = this.world.agents.get(node);
    if (!child || !this.world.agentRunning(node) || child.pid === undefined) return;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      this.world.did(node, signal === 'SIGSTOP' ? 'agent frozen' : 'agent thawed');
      process.kill(child.pid, signal);
      return;
    }
    this.expected.add(child);
    this.world.did(node, signal === 'SIGKILL' ? 'agent killed (-9)' : `agent stopped (${signal})`);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, signal);
    await exited;
  }

  async request(node: string, method: string, params: object): Promise<Outcome> {
    const sent = this.world.now();
    let o: Outcome;
    try {
      o = { kind: 'ack', result: await controlRequest(this.c.socket(node), method, params, { timeoutMs: REQUEST_TIMEOUT_MS }) };
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      o = e instanceof ControlRemoteError || e instanceof VigildNotRunningError ? { kind: 'refused', why } : { kind: 'unknown', why };
    }
    this.tl.add('request', `${method} ${JSON.stringify(params)} on ${node} (sent ${(sent / 1000).toFixed(3)}s): ${o.kind}${o.kind === 'ack' ? '' : ` (${o.why})`}`);
    return o;
  }

  async begin(f: Fault): Promise<void> {
    switch (f.kind) {
      case 'agent-kill': return this.signalAgent(f.node, 'SIGKILL');
      case 'agent-restart': return this.signalAgent(f.node, 'SIGTERM');
      case 'freeze':
        this.world.setFrozen(f.node, true);
        return this.signalAgent(f.node, 'SIGSTOP');
      case 'power': {
        this.world.setPowered(f.node, false);
        this.world.did(f.node, 'power off');
        this.watch.poweredOff(f.node, this.world.now());
        const child = this.world.agents.get(f.node);
        if (child) this.expected.add(child);
        await this.c.powerOff(f.node);
        await this.sweep(f.node);
        return;
      }
      case 'cut':
        for (const net of f.nets!) {
          this.world.impair(f.node, net, 'both');
          await this.c.rig.cut(f.node, net, 'cable');
        }
        return;
      case 'oneway':
      case 'lossy': {
        const dirs = f.dir === 'both' ? (['in', 'out'] as const) : [f.dir!];
        for (const net of f.nets!) for (const dir of dirs) this.world.impair(f.node, net, dir);
        await this.rules.add(f.node, f.id, f.nets!.flatMap((net) => dirs.map((dir) => ({ net, dir, loss: f.kind === 'oneway' ? 1 : f.loss! }))));
        return;
      }
      case 'app-kill':
      case 'app-hang': {
        const copies = (scanCopies(new Map([[f.node, this.c.rig.ns(f.node)]]))[f.tag!] ?? []);
        for (const p of copies) {
          try { process.kill(p.pid, f.kind === 'app-kill' ? 'SIGKILL' : 'SIGUSR1'); } catch { /* gone */ }
        }
        this.tl.add('step', copies.length ? `${f.kind === 'app-kill' ? 'killed' : 'hung'} ${f.tag} pid ${copies.map((p) => p.pid).join(',')} on ${f.node}` : `no copy of ${f.tag} on ${f.node}: nothing to ${f.kind === 'app-kill' ? 'kill' : 'hang'}`);
        return;
      }
      case 'unload-load': await this.request(f.node, 'app.unload', { tag: f.tag }); return;
      case 'load': await this.request(f.node, 'app.load', { tag: f.tag }); return;
      case 'approve': await this.request(f.node, 'failback.approve', { tag: f.tag }); return;
      case 'deny': await this.request(f.node, 'failback.deny', { tag: f.tag }); return;
      // Not waited for (waitMs 0): the faults go on around it, and the checkers judge what follows.
      case 'switchover': await this.request(f.node, 'switchover', { tag: f.tag, waitMs: 0 }); return;
    }
  }

  async end(f: Fault, primaryOf: (tag: string) => string): Promise<void> {
    switch (f.kind) {
      case 'agent-kill':
      case 'agent-restart':
        return this.startAgent(f.node);
      case 'freeze':
        await this.signalAgent(f.node, 'SIGCONT');
        this.world.setFrozen(f.node, false);
        return;
      case 'power':
        return this.powerOn(f.node, 'power on');
      case 'cut':
        for (const net of f.nets!) {
          await this.c.rig.restore(f.node, net);
          this.world.heal(f.node, net);
        }
        return;
      case 'oneway':
      case 'lossy':
        await this.rules.remove(f.node, f.id);
        for (const net of f.nets!) this.world.heal(f.node, net);
        return;
      case 'unload-load':
        await this.request(primaryOf(f.tag!), 'app.load', { tag: f.tag });
        return;
      default:
        return;
    }
  }

  /** A node powered on again: its links, the world, the VIP watch, its agent. */
  protected async powerOn(node: string, what: string): Promise<void> {
    await this.c.powerOn(node);
    this.world.setPowered(node, true);
    this.world.did(node, what);
    await this.watch.start(node);
    this.startAgent(node);
  }

  /**
   * powerOff lists the namespace's processes once, then stops and kills them; a process forked in between
   * (the agent starting an app or arping) would outlive the "power loss". Kill until none is left.
   */
  private async sweep(node: string): Promise<void> {
    for (let round = 0; round < 50; round++) {
      const pids = (await sh(['ip', 'netns', 'pids', this.c.rig.ns(node)])).stdout.split('\n').filter(Boolean).map(Number);
      if (pids.length === 0) return;
      if (round > 0) this.tl.add('note', `power-off of ${node}: ${pids.length} process(es) outlived the first kill: ${pids.join(',')}`);
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      await sleep(20);
    }
    throw new Error(`power-off of ${node}: processes keep running in its namespace`);
  }
}

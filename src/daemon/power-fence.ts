// Power fencing through a peer's BMC (IPMI over RMCP+): the survivor powers the failed node off and
// confirms "off" by chassis status before it takes over an app that no shared disk arbitrates. A fence that
// fails or cannot be confirmed is an error (FenceFailedError): no takeover, an alert, and the takeover is
// decided again later; never "assume fenced".
//
// The two-node race (both networks cut, each side sure the other failed): every node but the one of the
// lower id waits `raceDelayMs` before it fences, and fences only if the target is still silent then. The
// lower id wins: its fence has powered the other off before that one's delay ends (docs/ipmi.md).
//
// One fence per node at a time: the takeovers of several apps from one node share it. A node confirmed off
// stays fenced until it is heard from again (a new incarnation after its restart).
//
// Confirmed off, and kept off (fencing.action off): such a node runs nothing and cannot until someone
// powers it on, so the cluster's quorum is counted without it (src/daemon/self-fence.ts). Only while its
// BMC keeps saying so: re-read every few seconds, a node whose BMC says on, or does not answer, counts
// again at once (a node powered on again may be booting into the other side of a partition).
import { openBmc as openRemoteBmc, type BmcTarget } from '../ipmi/bmc.js';
import { chassisControl, getChassisStatus } from '../ipmi/commands.js';
import { Privilege } from '../ipmi/lan-session.js';
import type { IpmiTransport } from '../ipmi/message.js';
import type { FencingConfig, NodeConfig } from '../config/schema.js';

export class FenceFailedError extends Error {
  override name = 'FenceFailedError';
}

/** The target was heard from again while its fence waited: it is alive, there is nothing to take over. */
export class FenceMootError extends Error {
  override name = 'FenceMootError';
}

export interface PowerFenceDeps {
  self: NodeConfig;
  nodes: NodeConfig[];
  fencing: FencingConfig;
  isAlive(node: string): boolean;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  /** Tests and the bench: how a BMC is reached (RMCP+ by default). */
  openBmc?: (target: BmcTarget) => Promise<IpmiTransport>;
  sleep?: (ms: number) => Promise<void>;
}

export interface FenceRecord {
  node: string;
  /** Decision to "off" confirmed, ms (the race delay included). */
  tookMs: number;
  at: number;
}

/** How the fences of one node ended, for the metrics: off (confirmed), failed (FenceFailedError), moot (heard again). */
export interface FenceCounts { off: number; failed: number; moot: number }

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class PowerFence {
  private readonly inFlight = new Map<string, Promise<FenceRecord>>();
  private readonly fenced = new Map<string, FenceRecord>();
  /** Nodes fenced with action off, by when (performance.now()) their BMC last said off. */
  private readonly keptOff = new Map<string, number>();
  private rechecking = false;
  private readonly counts = new Map<string, FenceCounts>();

  constructor(private readonly d: PowerFenceDeps) {}

  /** Whether `node` can be power-fenced: it has a BMC in the configuration. */
  canFence(node: string): boolean {
    return this.node(node)?.bmc !== undefined;
  }

  /** The last confirmed fence of `node`, while it has not been heard from since. */
  fencedRecord(node: string): FenceRecord | undefined {
    const r = this.fenced.get(node);
    if (r && this.d.isAlive(node)) {
      this.fenced.delete(node);
      return undefined;
    }
    return r;
  }

  /**
   * Powers `node` off and confirms it. Resolves once its BMC reports power off (at once when it was
   * confirmed off before and has been silent since); rejects with FenceFailedError (the BMC did not answer,
   * refused, or still reports on) or FenceMootError (the node was heard from during the race delay).
   */
  fence(node: string, why: string, o: { operator?: boolean; afterDistress?: boolean } = {}): Promise<FenceRecord> {
    const done = o.operator ? undefined : this.fencedRecord(node);
    if (done) return Promise.resolve(done);
    let running = this.inFlight.get(node);
    if (!running) {
      running = this.run(node, why, o.operator === true, o.afterDistress === true).then(
        (r) => (this.count(node, 'off'), r),
        (e: unknown) => {
          this.count(node, e instanceof FenceMootError ? 'moot' : 'failed');
          throw e;
        },
      ).finally(() => this.inFlight.delete(node));
      this.inFlight.set(node, running);
    }
    return running;
  }

  private count(node: string, result: keyof FenceCounts): void {
    const c = this.counts.get(node) ?? { off: 0, failed: 0, moot: 0 };
    c[result]++;
    this.counts.set(node, c);
  }

  /**
   * Per node with a BMC: how its fences by this node ended, whether one is under way, and whether it is
   * kept off (its BMC, re-read every few seconds, still says off; `keptOffNodes`).
   */
  fenceStatus(now: number, withinMs: number): { node: string; counts: FenceCounts; inProgress: boolean; keptOff: boolean }[] {
    const keptOff = new Set(this.keptOffNodes(now, withinMs));
    return this.d.nodes.filter((n) => n !== this.d.self && n.bmc !== undefined).map((n) => ({
      node: n.name, counts: { ...(this.counts.get(n.name) ?? { off: 0, failed: 0, moot: 0 }) }, inProgress: this.inFlight.has(n.name), keptOff: keptOff.has(n.name),
    }));
  }

  /** Nodes confirmed off by a fence and, within `withinMs`, still off by their BMC's word; never one heard from. */
  keptOffNodes(now: number, withinMs: number): string[] {
    return [...this.keptOff].filter(([node, at]) => now - at <= withinMs && !this.d.isAlive(node)).map(([node]) => node);
  }

  /**
   * Reads the power state of every node kept off (the agent calls this every few seconds): still off, the
   * time is renewed; on, or no answer, or heard from again, it counts in the cluster again.
   */
  async recheckKeptOff(now: () => number = () => performance.now()): Promise<void> {
    if (this.rechecking || this.keptOff.size === 0) return;
    this.rechecking = true;
    try {
      for (const name of [...this.keptOff.keys()]) {
        if (this.d.isAlive(name)) {
          this.keptOff.delete(name);
          continue;
        }
        const power = await this.readPower(name).catch((e: unknown) => (e as Error).message);
        if (power === 'off') {
          this.keptOff.set(name, now());
        } else if (this.keptOff.delete(name)) {
          this.d.log.warn({ node: name, power }, 'power fence: the fenced node is no longer confirmed off; it counts in the quorum again');
        }
      }
    } finally {
      this.rechecking = false;
    }
  }

  private async readPower(name: string): Promise<string> {
    const bmc = this.node(name)?.bmc;
    if (!bmc) return 'no BMC';
    const t = await this.openBmc(bmc, Privilege.USER);
    try {
      return (await getChassisStatus(t, this.d.fencing.requestTimeoutMs)).power;
    } finally {
      await t.close();
    }
  }

  private openBmc(bmc: NonNullable<NodeConfig['bmc']>, privilege: number): Promise<IpmiTransport> {
    const open = this.d.openBmc ?? openRemoteBmc;
    return open({ host: bmc.host, port: bmc.port, user: bmc.user, passwordFile: bmc.passwordFile, cipherSuite: bmc.cipherSuite, ...(bmc.kgFile ? { kgFile: bmc.kgFile } : {}), privilege, timeoutMs: this.d.fencing.requestTimeoutMs });
  }

  private node(name: string): NodeConfig | undefined {
    return this.d.nodes.find((n) => n.name === name);
  }

  /**
   * `operator`: asked for by a person (vigil fence): no race delay, and done even if the node is heard from.
   * `afterDistress`: the node said it is going down (it fences nobody): no race delay either.
   */
  private async run(name: string, why: string, operator: boolean, afterDistress: boolean): Promise<FenceRecord> {
    const target = this.node(name);
    const bmc = target?.bmc;
    if (!target || !bmc) throw new FenceFailedError(`${name} has no BMC configured: it cannot be power-fenced`);
    const start = performance.now();
    const { raceDelayMs, requestTimeoutMs, confirmTimeoutMs } = this.d.fencing;
    const sleep = this.d.sleep ?? defaultSleep;
    if (!operator && !afterDistress && this.d.self.id > target.id && raceDelayMs > 0) {
      this.d.log.warn({ node: name, delayMs: raceDelayMs }, 'power fence: waiting first (the lower id fences first in a race)');
      await sleep(raceDelayMs);
    }
    if (!operator && this.d.isAlive(name)) throw new FenceMootError(`${name} was heard from again: not fenced`);
    this.d.log.warn({ node: name, bmc: `${bmc.host}:${bmc.port}`, why }, 'power fence: powering the node off');
    let t: IpmiTransport;
    try {
      // Operator: enough for Chassis Control, and what a BMC user set aside for fencing usually has.
      t = await this.openBmc(bmc, Privilege.OPERATOR);
    } catch (e) {
      throw new FenceFailedError(`power fence of ${name}: ${(e as Error).message}`);
    }
    try {
      await chassisControl(t, 'off', requestTimeoutMs);
      // Confirmed by status, not by the command's answer: a BMC may acknowledge before the power is off.
      const deadline = performance.now() + confirmTimeoutMs;
      let last = 'unknown';
      for (;;) {
        try {
          const s = await getChassisStatus(t, requestTimeoutMs);
          last = s.power;
          if (s.power === 'off') break;
        } catch (e) {
          last = (e as Error).message;
        }
        if (performance.now() >= deadline) throw new FenceFailedError(`power fence of ${name}: the BMC still reports ${last} ${confirmTimeoutMs} ms after power off`);
        await sleep(100);
      }
      const record = { node: name, tookMs: Math.round(performance.now() - start), at: Date.now() };
      this.fenced.set(name, record);
      if (this.d.fencing.action === 'off') this.keptOff.set(name, performance.now());
      this.d.log.warn({ node: name, tookMs: record.tookMs }, 'power fence: the node is confirmed off');
      // fencing.action reboot: on again, once it is confirmed off (the fence holds either way: a node that
      // boots is a new incarnation, heard again before anything of it counts).
      if (this.d.fencing.action === 'reboot') {
        await chassisControl(t, 'on', requestTimeoutMs).then(
          () => this.d.log.warn({ node: name }, 'power fence: powered on again (fencing.action reboot)'),
          (e: unknown) => this.d.log.error({ node: name, err: (e as Error).message }, 'power fence: the node is off, but powering it on again failed'),
        );
      }
      return record;
    } catch (e) {
      if (e instanceof FenceFailedError) throw e;
      throw new FenceFailedError(`power fence of ${name}: ${(e as Error).message}`);
    } finally {
      await t.close();
    }
  }
}

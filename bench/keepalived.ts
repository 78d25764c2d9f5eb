// keepalived in the benchmarks' network-namespace rig (bench/failover.ts, bench/switchover.ts): the same rig
// shape as the vigil cluster's, NAME_SERVER on both nodes (keepalived only moves the address), one
// vrrp_instance with a the master (priority 150) and b the backup (100), a fresh pair of keepalived
// processes per run, and back to a clean state after it. Two things happen to it: a loses power (a
// failover), or the priorities are swapped in both configurations and both reloaded (a planned handover).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { NAME_SERVER, NETWORKS } from '../test/support/cluster.js';
import { createRig, type Rig } from '../test/support/netns.js';
import { killAll, lines, now, powerOff, Prober, waitFor, type Gap, type Run } from './rig.js';

const KA_VRID = 51;
/** The priorities as set up: a the master. */
const PRIORITIES = { a: 150, b: 100 } as const;
type Node = keyof typeof PRIORITIES;

/** The master-down interval (RFC 5798): 3 × advert_int + skew, the skew from the backup's priority. */
export function masterDownMs(advert: number, backupPriority = PRIORITIES.b): number {
  return Math.round(1000 * (3 * advert + ((256 - backupPriority) * advert) / 256));
}

/** The settings a result records, as the configuration sets them. */
export function kaSettings(advert: number): Record<string, unknown> {
  return { advert_int: advert, vrrp_version: advert < 1 ? 3 : 2, priorities: [PRIORITIES.a, PRIORITIES.b], preempt: true, masterDownMs: masterDownMs(advert) };
}

/** `state` stays what the node started as: keepalived reads it at start, and a reload keeps the running state. */
function keepalivedConf(node: Node, vip: string, priority: number, advert: number): string {
  return `global_defs {
  router_id ${node}
  vrrp_version ${advert < 1 ? 3 : 2}
}
vrrp_instance web {
  state ${node === 'a' ? 'MASTER' : 'BACKUP'}
  interface svc
  virtual_router_id ${KA_VRID}
  priority ${priority}
  advert_int ${advert}
  virtual_ipaddress {
    ${vip}/24 dev svc
  }
}
`;
}

/**
 * Runs a command and prints each line of its standard error prefixed with the wall-clock ms it arrived:
 * keepalived stamps its console log to the second only, and this process, doing nothing else, stamps
 * promptly where the benchmark's own busy event loop would not.
 */
const STAMP = `
const c = require('child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: ['ignore', 'ignore', 'pipe'] });
let buf = '';
c.stderr.setEncoding('utf8').on('data', (d) => {
  const t = (performance.timeOrigin + performance.now()).toFixed(3);
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) { process.stdout.write(t + ' ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); }
});
c.on('exit', (code) => process.exit(code ?? 1));`;

interface Up { prober: Prober; masterAt: number[]; backupAt: number[]; dir: string; advert: number }

/** A planned handover as the client saw it, and when b said it was master (ms from the reloads). */
export interface Handover extends Gap { masterMs: number; endToEndMs: number }

export class KeepalivedRig {
  private constructor(readonly rig: Rig, readonly dir: string) {}
  static async create(): Promise<KeepalivedRig> {
    // The same shape as the vigil cluster's rig: two nodes on lan1, lan2 and svc, a client on svc.
    const rig = await createRig({ nodes: ['a', 'b'], networks: NETWORKS, client: true });
    return new KeepalivedRig(rig, await mkdtemp(join(tmpdir(), 'vigil-bench-ka-')));
  }
  get vip(): string { return this.rig.vip(100); }

  /** NAME_SERVER and keepalived on both nodes; resolves when the client is served by a and b is BACKUP. */
  async up(advert: number, run: string, probeMs = 10): Promise<Up> {
    const dir = join(this.dir, run);
    await mkdir(dir);
    const masterAt: number[] = [];
    const backupAt: number[] = [];
    for (const node of ['b', 'a'] as const) {
      this.rig.spawn(node, NAME_SERVER, { stdio: 'ignore', env: { ...process.env, VIGIL_NODE: node } });
      const conf = join(dir, `${node}.conf`);
      await writeFile(conf, keepalivedConf(node, this.vip, PRIORITIES[node], advert));
      const ka = this.rig.spawn(node, [process.execPath, '-e', STAMP, '--', 'keepalived', '-n', '-l', '-D', '-G', '-P', '-f', conf,
        '-p', join(dir, `${node}.pid`), '-r', join(dir, `${node}.vrrp.pid`)], { stdio: ['ignore', 'pipe', 'ignore'] });
      if (node === 'b') {
        lines(ka.stdout, (line) => {
          const at = Number(line.slice(0, line.indexOf(' ')));
          if (line.includes('Entering MASTER STATE')) masterAt.push(at);
          if (line.includes('Entering BACKUP STATE')) backupAt.push(at);
        });
      }
    }
    const prober = new Prober(this.rig, this.vip, probeMs);
    await waitFor('the client served by a', () => (prober.first('a') ? true : undefined), 20_000);
    // b settled as backup: its last transition is to BACKUP (it may have been master before a started).
    await waitFor('b in BACKUP state', () => ((backupAt.at(-1) ?? -1) > (masterAt.at(-1) ?? -1) ? true : undefined), 10_000);
    await sleep(300);
    return { prober, masterAt, backupAt, dir, advert };
  }

  /** Everything stopped, links back, the VIP removed everywhere, the client's neighbour cache empty. */
  async reset(prober: Prober): Promise<void> {
    await prober.stop();
    await Promise.all(['a', 'b'].map((n) => killAll(this.rig, n)));
    await this.rig.restoreAll('a');
    for (const n of ['a', 'b']) await this.rig.exec(n, ['ip', 'addr', 'del', `${this.vip}/24`, 'dev', 'svc']);
    await this.rig.exec('client', ['ip', 'neigh', 'flush', 'dev', 'svc']);
  }

  /** A failover: a loses power at a random phase against the adverts; times from the power-off. */
  async run(advert: number, i: number): Promise<Run> {
    const { prober, masterAt } = await this.up(advert, `${advert}-${i}`);
    try {
      await sleep(Math.random() * Math.min(1000, advert * 1000));
      const t0 = await powerOff(this.rig, 'a');
      const detected = await waitFor('b entering MASTER', () => masterAt.find((x) => x > t0), 15_000);
      const served = await waitFor('the client served by b', () => prober.first('b', t0), 15_000);
      return { detectionMs: detected - t0, endToEndMs: served.at - t0 };
    } finally {
      await this.reset(prober);
    }
  }

  /**
   * A planned handover the way an operator makes one with keepalived: the priorities swapped in both
   * configuration files (b 150, a 100), then both daemons reloaded (SIGHUP to each parent, a first);
   * times from just before the first signal.
   */
  async handover(advert: number, i: number, probeMs: number): Promise<Handover> {
    const up = await this.up(advert, `handover-${advert}-${i}`, probeMs);
    try {
      await sleep(Math.random() * Math.min(1000, advert * 1000));
      const pids: Record<Node, number> = { a: 0, b: 0 };
      for (const node of ['a', 'b'] as const) {
        await writeFile(join(up.dir, `${node}.conf`), keepalivedConf(node, this.vip, node === 'a' ? PRIORITIES.b : PRIORITIES.a, advert));
        pids[node] = Number((await readFile(join(up.dir, `${node}.pid`), 'utf8')).trim());
      }
      const t0 = now();
      for (const node of ['a', 'b'] as const) process.kill(pids[node], 'SIGHUP');
      const master = await waitFor('b entering MASTER', () => up.masterAt.find((x) => x > t0), 15_000);
      const served = await waitFor('the client served by b', () => up.prober.first('b', t0), 15_000);
      await sleep(500); // answers of a still in flight show by now
      const gap = up.prober.gap('a', 'b', t0);
      if (!gap) throw new Error('the client had no answer from a before b');
      return { ...gap, masterMs: master - t0, endToEndMs: served.at - t0 };
    } finally {
      await this.reset(up.prober);
    }
  }

  /** Failovers (b's MASTER transitions) and b's answers while `hogs` busy loops run on a for `ms`, and 2 s after. */
  async cpuLoad(advert: number, hogs: number, ms: number): Promise<{ failovers: number; answersFromB: number }> {
    const { prober, masterAt } = await this.up(advert, `${advert}-load`);
    try {
      await sleep(1000);
      const t0 = now();
      const loops = Array.from({ length: hogs }, () => this.rig.spawn('a', [process.execPath, '-e', 'for(;;){}'], { stdio: 'ignore' }));
      await sleep(ms);
      for (const h of loops) h.kill('SIGKILL');
      await sleep(2000);
      return { failovers: masterAt.filter((x) => x > t0).length, answersFromB: prober.count('b', t0) };
    } finally {
      await this.reset(prober);
    }
  }

  async destroy(): Promise<void> {
    await this.rig.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}

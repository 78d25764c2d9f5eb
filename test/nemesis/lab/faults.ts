// The lab rig's injector: the namespace campaign's faults (faults.ts) plus the shared disk's own. Faults
// aimed at "host" pick their node when they begin: the node running the app's copy then (the newest, if
// two run), else the app's primary.
//   crash-mounted  kill -9 of that node's agent while its app runs with the file system mounted; the agent
//                  is started again after `ms`, as systemd would;
// A killed agent (crash-mounted, agent-kill) is followed by what systemd does when vigild's process dies
// (hw-fixtures/systemd/vigild.service): KillMode=mixed SIGKILLs what is left of the unit's cgroup (the
// apps), then ExecStopPost runs `vigild --clear-leftovers` (addresses). The file system stays mounted.
//   busy-mount     a shell's `sleep` with its cwd in the file system, on the node that has it mounted, in
//                  the node's namespaces (so an unmount there fails with EBUSY), killed after `ms`;
//   path-loss      the node's iSCSI session dropped for `ms` (pathloss.ts);
//   app-kill       kill -9 of the copy on that node.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../../../src/util/package-root.js';

import type { TestCluster } from '../../support/cluster.js';
import { Injector } from '../faults.js';
import { scanCopies } from '../ground.js';
import { processState } from '../runner.js';
import type { LinkRules } from '../netfilter.js';
import type { Fault } from '../schedule.js';
import type { Timeline } from '../timeline.js';
import type { VipWatch } from '../vipwatch.js';
import type { World } from '../world.js';
import type { PathLoss } from './pathloss.js';

export class LabInjector extends Injector {
  /** The node each "host" fault was aimed at when it began. */
  private readonly aimed = new Map<number, string>();
  private readonly busy = new Map<number, ChildProcess>();
  /** A killed agent's ExecStopPost, by node, until it is done. */
  private readonly clearing = new Map<string, Promise<void>>();

  constructor(c: TestCluster, world: World, tl: Timeline, rules: LinkRules, watch: VipWatch, private readonly paths: PathLoss,
    private readonly mnt: string, private readonly primary: string) {
    super(c, world, tl, rules, watch);
  }

  /** The node running the app now (the newest copy), else the primary. */
  private host(): string {
    const on = this.world.nodes.filter((n) => !this.world.poweredOff(n));
    const copies = Object.values(scanCopies(new Map(on.map((n) => [n, this.c.rig.ns(n)])))).flat().sort((a, b) => b.start - a.start);
    return copies[0]?.node ?? this.primary;
  }

  /** Of the nodes with the file system mounted, the one running the app if it is one of them. */
  private async mounted(): Promise<string> {
    const host = this.host();
    const on = this.world.nodes.filter((n) => !this.world.poweredOff(n));
    const have = [];
    for (const n of on) if ((await this.c.rig.exec(n, ['mountpoint', '-q', this.mnt])).code === 0) have.push(n);
    return have.includes(host) || have.length === 0 ? host : have[0]!;
  }

  private aim(f: Fault, node: string): Fault {
    this.aimed.set(f.id, node);
    this.tl.add('step', `#${f.id} ${f.kind} aimed at ${node}`);
    return { ...f, node };
  }

  override async begin(f: Fault): Promise<void> {
    switch (f.kind) {
      case 'crash-mounted': {
        const node = this.aim(f, this.host()).node;
        await super.begin({ ...f, node, kind: 'agent-kill' });
        return this.asSystemd(node);
      }
      case 'agent-kill':
        await super.begin(f);
        return this.asSystemd(f.node);
      case 'app-kill': return super.begin(f.node === 'host' ? this.aim(f, this.host()) : f);
      case 'busy-mount': {
        const node = this.aim(f, await this.mounted()).node;
        this.world.did(node, 'busy mount');
        this.busy.set(f.id, this.c.rig.spawn(node, ['sh', '-c', `cd ${this.mnt} && exec sleep 600`], { stdio: 'ignore' }));
        return;
      }
      case 'path-loss': {
        this.world.did(f.node, 'path lost');
        const began = Date.now();
        const port = await this.paths.cut(f.node);
        this.tl.add('step', `${f.node}'s iSCSI session (local port ${port}) dropped (nft took ${Date.now() - began} ms)`);
        return;
      }
      default: return super.begin(f);
    }
  }

  /**
   * After vigild's process died: the unit's cgroup kill (the apps), then its ExecStopPost, which the agent's
   * restart waits for (end), as systemd's does. Until it is done, what the dead agent left (its address)
   * counts as a frozen agent's would: the node cannot act, and on hardware this lasts the ExecStopPost's
   * few hundred ms, under TCG ~10 s (loading vigild over 9p).
   */
  private asSystemd(node: string): void {
    this.world.setFrozen(node, true);
    const copies = Object.values(scanCopies(new Map([[node, this.c.rig.ns(node)]]))).flat();
    for (const p of copies) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    this.tl.add('step', `as systemd on ${node}: ${copies.length ? `killed the apps left in the unit (pid ${copies.map((p) => p.pid).join(',')})` : 'no app left in the unit'}; ExecStopPost \`vigild --clear-leftovers\``);
    const config = join(this.c.dir, `${node}.yaml`);
    // A clearing that takes far longer than its few seconds under TCG says where it waits.
    const slow = setTimeout(() => this.tl.add('note', `ExecStopPost on ${node} still running after 20 s: ${stuck(config)}`), 20_000);
    const cleared = this.c.rig.exec(node, [process.execPath, join(packageRoot(), 'dist/src/cli/vigild.js'), '--config', config,
      '--node', node, '--clear-leftovers'], { timeout: 120_000 }).then((r) => {
      this.tl.add('step', `as systemd on ${node}: ExecStopPost exit ${r.code}${r.code === 0 ? '' : `: ${r.stderr.trim()}`}`);
    }).finally(() => {
      clearTimeout(slow);
      this.world.setFrozen(node, false);
    });
    this.clearing.set(node, cleared);
  }

  override async end(f: Fault, primaryOf: (tag: string) => string): Promise<void> {
    switch (f.kind) {
      case 'crash-mounted': {
        const node = this.aimed.get(f.id)!;
        await this.clearing.get(node);
        return super.end({ ...f, kind: 'agent-kill', node }, primaryOf);
      }
      case 'agent-kill':
        await this.clearing.get(f.node);
        return super.end(f, primaryOf);
      case 'busy-mount':
        this.busy.get(f.id)?.kill('SIGKILL');
        this.busy.delete(f.id);
        return;
      case 'path-loss': {
        const began = Date.now();
        await this.paths.restore(f.node);
        this.world.did(f.node, 'path back');
        this.tl.add('step', `${f.node}'s iSCSI session let through again (nft took ${Date.now() - began} ms)`);
        return;
      }
      default: return super.end(f, primaryOf);
    }
  }
}

/** The clearing process run with `config` and every process in uninterruptible sleep (D), as the kernel sees them. */
function stuck(config: string): string {
  const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return ''; } };
  const out: string[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const cmd = read(`/proc/${entry}/cmdline`).split('\0').join(' ').trim();
    const stat = read(`/proc/${entry}/stat`);
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    const clearing = cmd.includes('--clear-leftovers') && cmd.includes(config);
    if (clearing || state === 'D') out.push(`${clearing ? 'the clearing' : 'in D'} [${cmd.slice(0, 80)}] ${processState(Number(entry))}`);
  }
  return out.join(' | ') || 'no such process';
}

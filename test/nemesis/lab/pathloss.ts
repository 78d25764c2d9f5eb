// Path loss of one nexus in the lab guest: every TCP segment of one node's iSCSI session dropped (nftables
// in the guest's root namespace, where the initiator and the target both live, on loopback), then let
// through again. The session stays logged in and its devices keep their names: its commands stall (TCP
// retransmits) and complete once the path is back, as after a short link loss, as long as the loss is
// shorter than the initiator's NOP-Out timeouts (5 s + 5 s). Unplugging the session instead (logout,
// login) would make new sg and sd nodes, and in this guest a rescan from one node could pick the other
// node's nexus, since every node sees every path.
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';

import { sh } from '../../support/netns.js';

const TABLE = 'nemesis_paths';

/** The local TCP port of the iSCSI connection behind an sg node (sysfs: sgN → …/sessionK → connectionK:0). */
export function iscsiLocalPort(sg: string): number {
  const dev = realpathSync(`/sys/class/scsi_generic/${basename(sg)}/device`);
  const session = /\/(session\d+)\//.exec(dev)?.[1];
  if (!session) throw new Error(`${sg} is not behind an iSCSI session (${dev})`);
  const k = session.slice('session'.length);
  const conn = readdirSync('/sys/class/iscsi_connection').find((c) => c.startsWith(`connection${k}:`));
  if (!conn) throw new Error(`no connection of ${session}`);
  return Number(readFileSync(`/sys/class/iscsi_connection/${conn}/local_port`, 'utf8').trim());
}

/** The rules in force, by node: each path-loss fault adds its node's port and removes it when healed. */
export class PathLoss {
  private readonly ports = new Map<string, number>();

  constructor(private readonly paths: Record<string, string>) {}

  private async apply(): Promise<void> {
    const rules = [...this.ports.values()].flatMap((p) => [`    tcp sport ${p} drop`, `    tcp dport ${p} drop`]);
    const script = [`table inet ${TABLE} {}`, `delete table inet ${TABLE}`,
      ...(rules.length ? [`table inet ${TABLE} {`, '  chain out { type filter hook output priority 0; policy accept;', ...rules, '  }', '}'] : [])].join('\n');
    const r = await sh(['nft', '-f', '-'], { input: `${script}\n` });
    if (r.code !== 0) throw new Error(`nft: ${r.stderr.trim()}`);
  }

  /** Drops the node's session; answers the port it named. */
  async cut(node: string): Promise<number> {
    const port = iscsiLocalPort(this.paths[node]!);
    this.ports.set(node, port);
    await this.apply();
    return port;
  }

  async restore(node: string): Promise<void> {
    if (!this.ports.delete(node)) return;
    await this.apply();
  }

  /** Everything let through (the end of a run, whatever happened). */
  async clear(): Promise<void> {
    this.ports.clear();
    await this.apply();
  }
}

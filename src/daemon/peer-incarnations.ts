// The newest incarnation this node has heard from each peer, kept across this node's own restarts in
// <stateDir>/peer-incarnations. Replay protection lives in memory (src/wire/replay.ts), so a node that has
// just started would accept anything a peer ever signed, a distress captured from an earlier life of that
// peer included; with this floor, a distress from a life older than one already heard is refused from the
// first moment. (Only distress: a peer reinstalled with its clock behind would be refused for good, which
// for distress means a failover at the heartbeat timeout, but for replication a silent stop.) (A life this
// node never heard, because the peer restarted while this node was down, is not covered here:
// DistressLink holds such a distress until the peer's heartbeats say which life is current.)
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../util/atomic-file.js';
import type { AgentLog } from './log.js';

export const PEER_INCARNATIONS_FILE = 'peer-incarnations';

const DECIMAL = /^[0-9]{1,20}$/;

export class PeerIncarnations {
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string, private readonly floors: Map<string, bigint>, private readonly log: AgentLog) {}

  /**
   * A missing file is a first start. A damaged one is logged and ignored: losing the floor only loses the
   * early refusal (the hold in DistressLink still applies), while refusing to start would take the node out.
   */
  static async load(stateDir: string, log: AgentLog): Promise<PeerIncarnations> {
    const file = join(stateDir, PEER_INCARNATIONS_FILE);
    const floors = new Map<string, bigint>();
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file, err: String(e) }, 'cannot read the peers\' incarnations; starting without them');
    }
    if (text !== undefined) {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        for (const [node, value] of Object.entries(parsed)) {
          if (typeof value !== 'string' || !DECIMAL.test(value)) throw new Error(`${node}: ${JSON.stringify(value)} is not an incarnation`);
          floors.set(node, BigInt(value));
        }
      } catch (e) {
        floors.clear();
        log.warn({ file, err: (e as Error).message }, 'the peers\' incarnations file is damaged; starting without it');
      }
    }
    return new PeerIncarnations(file, floors, log);
  }

  /** The newest incarnation of `node` heard so far, in this life or an earlier one of this agent. */
  floor(node: string): bigint | undefined {
    return this.floors.get(node);
  }

  /** `node` was heard with `incarnation`; a newer one than any before is stored (writes in order, one at a time). */
  heard(node: string, incarnation: bigint): void {
    const before = this.floors.get(node);
    if (before !== undefined && incarnation <= before) return;
    this.floors.set(node, incarnation);
    const text = `${JSON.stringify(Object.fromEntries([...this.floors].map(([n, i]) => [n, String(i)])))}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.file, text, 0o640)).catch((e: unknown) => {
      this.log.warn({ file: this.file, err: String(e) }, 'cannot store the peers\' incarnations');
    });
  }

  /** Resolves once every write asked so far is done (for a clean stop and for tests). */
  flushed(): Promise<void> {
    return this.writing;
  }
}

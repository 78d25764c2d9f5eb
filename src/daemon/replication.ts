// The replicated database on this node: the local replica, its file, and the agent messages that keep the
// replicas equal (seed 001 §2, FIG. 4): every local write is persisted and sent to every peer; heartbeats
// carry each replica's digest, and a digest that differs starts an exchange of version maps, after which
// each side sends what it holds newer. syncAll() is FIG. 6 step 614: before an app starts on this node,
// every reachable replica has answered.
//
// SIZE. Records travel in as many update messages as it takes, each within the messenger's fragment limit
// (a full sync of a node that lost its replica is many records); a single record must fit one message
// (the database refuses larger ones, database.ts MAX_RECORD_BYTES).
import type { Config, NodeConfig } from '../config/schema.js';
import { ClusterDb, parseSnapshot, parseVersionMap, syncPlan, type DbSnapshot, type VersionMap } from '../db/database.js';
import type { NodeRecord } from '../db/node-record.js';
import { loadDatabase, saveDatabase } from '../db/store.js';
import type { PeerSnapshot } from '../membership/membership.js';
import type { AgentLog } from './log.js';
import { messageFits, type AgentMessage } from './messenger.js';
import type { AppEntry, Marker } from '../db/object.js';

/** While a live peer has not answered a sync, the request goes again this often, and a warning every tenth time. */
const SYNC_RETRY_MS = 1000;

export interface ReplicationDeps {
  config: Config;
  peers: readonly NodeConfig[];
  log: AgentLog;
  file: string;
  send(peer: NodeConfig, message: AgentMessage): void;
  /** Membership now: who may be asked for a sync. */
  peerStates(): readonly PeerSnapshot[];
  /** A peer never heard since start that the last-active decision treats as failed: not waited for. */
  declaredFailed(peer: string): boolean;
  /** What is left of the start-up grace, in ms (a peer not heard yet may still be booting). */
  startupGraceLeftMs(): number;
  /** These apps' records changed in the replica (a local write or a merge). */
  onAppsChanged(tags: string[]): void;
}

export class Replication {
  db = new ClusterDb();
  private saving: Promise<void> = Promise.resolve();
  private syncWaiters: { peers: Set<string>; done: () => void }[] = [];
  private peerDigests = new Map<string, number>();
  private readonly lastDigestRequest = new Map<string, number>();
  private readonly peerVersions = new Map<string, VersionMap>();

  constructor(private readonly d: ReplicationDeps) {}

  /** Reads the replica from its file (a missing file is an empty database). */
  async load(): Promise<void> {
    this.db = await loadDatabase(this.d.file);
  }

  /** Resolves once every save queued so far is on disk (or failed and was logged). */
  flushed(): Promise<void> {
    return this.saving;
  }

  /** The digests the peers' heartbeats carried, by peer name. */
  digestOf(peer: string): number | undefined {
    return this.peerDigests.get(peer);
  }

  /**
   * After local writes: persist, replicate to every peer, tell the flows. Resolves once the replica file
   * holds the writes (or its save failed, logged): a write acknowledged to a client must await it, or a
   * kill right after the answer, with the update to the peers lost on the way, loses it everywhere.
   */
  changed(tags: string[], markers: string[] = [], nodes: string[] = []): Promise<void> {
    const saved = this.persist();
    const records = this.db.records({ apps: tags, markers, nodes });
    for (const peer of this.d.peers) this.sendRecords(peer, records);
    if (tags.length) this.d.onAppsChanged(tags);
    return saved;
  }

  /** Records to one peer, in as many update messages as the fragment limit needs. */
  private sendRecords(peer: NodeConfig, records: DbSnapshot): void {
    for (const message of updates(records)) {
      try {
        this.d.send(peer, message);
      } catch (e) {
        this.d.log.error({ peer: peer.name, err: e instanceof Error ? e.message : String(e) }, 'a replication message could not be sent');
      }
    }
  }

  /** Queues a save of the whole replica after those queued; resolves once it is on disk (or failed, logged). */
  persist(): Promise<void> {
    const file = this.d.file;
    this.saving = this.saving.then(() => saveDatabase(file, this.db)).catch((e: unknown) => {
      this.d.log.error({ err: e instanceof Error ? e.message : String(e), file }, 'cannot persist the database');
    });
    return this.saving;
  }

  sendDigest(peerName: string, reply: boolean): void {
    const peer = this.d.peers.find((p) => p.name === peerName);
    if (!peer) return;
    try {
      this.d.send(peer, { kind: 'digest', versions: this.db.versionMap(), reply });
    } catch (e) {
      // Cannot happen within the database's limits (MAX_APPS); said rather than thrown into the tick.
      this.d.log.error({ peer: peerName, err: e instanceof Error ? e.message : String(e) }, 'the version map could not be sent');
    }
  }

  /** The heartbeats' digests, each tick: a peer whose replica differs is asked for its version map (at most every second). */
  compareDigests(peerDigests: Map<string, number>, now: number): void {
    this.peerDigests = peerDigests;
    const digest = this.db.digest();
    for (const [peer, theirs] of peerDigests) {
      const last = this.lastDigestRequest.get(peer) ?? -Infinity;
      if (theirs !== digest && now - last > 1000) {
        this.lastDigestRequest.set(peer, now);
        this.sendDigest(peer, true);
      }
    }
  }

  /** An update or a digest from a peer (already authenticated and from a live incarnation). Throws on a bad record. */
  receive(from: NodeConfig, message: Extract<AgentMessage, { kind: 'update' | 'digest' }>): void {
    if (message.kind === 'update') {
      const snap = parseSnapshot({ apps: message.entries, markers: message.markers, ...(message.nodes ? { nodes: message.nodes } : {}) });
      const applied: string[] = [];
      for (const e of snap.apps) if (this.db.merge(e).applied) applied.push(e.tag);
      let others = 0;
      for (const m of snap.markers) if (this.db.mergeMarker(m).applied) others++;
      for (const r of snap.nodes ?? []) if (this.db.mergeNode(r).applied) others++;
      if (applied.length || others) {
        this.persist();
        if (applied.length) this.d.onAppsChanged(applied);
      }
    } else {
      const theirs = parseVersionMap(message.versions);
      this.peerVersions.set(from.name, theirs);
      const plan = syncPlan(this.db.versionMap(), theirs);
      if (plan.send.apps.length || plan.send.markers.length || plan.send.nodes.length) this.sendRecords(from, this.db.records(plan.send));
      // Our map makes the peer send what it holds newer; ask for it whenever we lack something.
      const lacking = plan.request.apps.length > 0 || plan.request.markers.length > 0 || plan.request.nodes.length > 0;
      if (message.reply || lacking) this.sendDigest(from.name, false);
    }
  }

  /**
   * FIG. 6 step 614: exchange version maps with every peer that is not known to have failed, and take what
   * is newer: a node that restarts must learn that another took its apps over before it runs anything.
   * Resolves when each has answered (its newer records travel before its answer) or failed. A live peer
   * is waited for as long as it lives, asked again every second (and a warning says so): counting a live
   * peer that did not answer as synced would let this node run on a stale replica. A peer not heard since
   * start-up is waited for up to the start-up grace (it may be down; the last-active rule decides then).
   */
  syncAll(): Promise<void> {
    const targets = this.d.peerStates()
      .filter((p) => p.state === 'alive' || (p.state === 'unknown' && !this.d.declaredFailed(p.peer)));
    if (targets.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { peers: new Set(targets.map((p) => p.peer)), done: () => { clearInterval(timer); resolve(); } };
      this.syncWaiters.push(waiter);
      for (const p of targets) this.peerVersions.delete(p.peer); // only an answer to this sync counts
      for (const p of targets) if (p.state === 'alive') this.sendDigest(p.peer, true);
      const graceEnds = performance.now() + Math.max(500, 5 * this.d.config.timing.heartbeatIntervalMs) + this.d.startupGraceLeftMs();
      let round = 0;
      const timer = setInterval(() => {
        round++;
        const states = new Map(this.d.peerStates().map((p) => [p.peer, p.state]));
        for (const peer of [...waiter.peers]) {
          const state = states.get(peer);
          // Failed, or still not heard once the start-up grace is over: it will not answer, nor need to.
          if (state === 'failed' || (state === 'unknown' && (this.d.declaredFailed(peer) || performance.now() >= graceEnds))) waiter.peers.delete(peer);
          else if (state === 'alive') {
            this.sendDigest(peer, true);
            if (round % 10 === 0) this.d.log.warn({ peer, waitedMs: round * SYNC_RETRY_MS }, 'waiting for a live peer\'s replica before starting an app here (it has not answered the sync)');
          }
        }
        if (waiter.peers.size === 0) {
          this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
          waiter.done();
        }
      }, SYNC_RETRY_MS);
      timer.unref();
    });
  }

  /** A peer is synced with once we hold everything its last version map showed newer. */
  checkSynced(peer: string): void {
    const theirs = this.peerVersions.get(peer);
    if (!theirs) return;
    const { request } = syncPlan(this.db.versionMap(), theirs);
    if (request.apps.length === 0 && request.markers.length === 0 && request.nodes.length === 0) this.answered(peer);
  }

  /** A peer that answered a sync, or that will never answer it (failed). */
  answered(peer: string): void {
    for (const w of this.syncWaiters) w.peers.delete(peer);
    this.syncWaiters = this.syncWaiters.filter((w) => (w.peers.size ? true : (w.done(), false)));
  }
}

/**
 * Update messages carrying these records, each within the messenger's limit: records are added to a
 * message until the next would not fit. A record that fits no message alone cannot exist (the database
 * refuses it); should one arrive here, it is sent alone and the messenger refuses it with a clear error.
 */
export function updates(records: DbSnapshot): Extract<AgentMessage, { kind: 'update' }>[] {
  // `nodes` only in a message that carries node records: an agent older than them refuses the key.
  type Update = { kind: 'update'; entries: unknown[]; markers: unknown[]; nodes?: unknown[] };
  const empty = (): Update => ({ kind: 'update', entries: [], markers: [] });
  const out = [empty()];
  let size = JSON.stringify(out[0]).length;
  const add = (kind: 'entries' | 'markers' | 'nodes', record: AppEntry | Marker | NodeRecord) => {
    const current = out[out.length - 1]!;
    const list = current[kind] ?? [];
    // The record and its comma, or the key's `,"nodes":[]` the first time.
    const grows = JSON.stringify(record).length + (list.length > 0 ? 1 : kind === 'nodes' ? 11 : 0);
    const alone = current.entries.length === 0 && current.markers.length === 0 && (current.nodes?.length ?? 0) === 0;
    if (!alone && !messageFits(size + grows)) {
      out.push(empty());
      size = JSON.stringify(out[out.length - 1]).length;
      return add(kind, record);
    }
    list.push(record);
    current[kind] = list;
    size += grows;
  };
  for (const a of records.apps) add('entries', a);
  for (const m of records.markers) add('markers', m);
  for (const r of records.nodes ?? []) add('nodes', r);
  return out as Extract<AgentMessage, { kind: 'update' }>[];
}

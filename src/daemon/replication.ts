// The replicated database on this node: the local replica, its file, and the agent messages that keep the
// replicas equal (seed 001 §2, FIG. 4): every local write is persisted and sent to every peer; heartbeats
// carry each replica's digest, and a digest that differs starts an exchange of version maps, after which
// each side sends what it holds newer. syncAll() is FIG. 6 step 614: before an app starts on this node,
// every reachable replica has answered.
import type { Config, NodeConfig } from '../config/schema.js';
import { ClusterDb, parseSnapshot, parseVersionMap, syncPlan, type VersionMap } from '../db/database.js';
import { loadDatabase, saveDatabase } from '../db/store.js';
import type { PeerSnapshot } from '../membership/membership.js';
import type { AgentLog } from './log.js';
import type { AgentMessage } from './messenger.js';

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

  /** After local writes: persist, replicate to every peer, tell the flows. */
  changed(tags: string[], markers: string[] = []): void {
    this.persist();
    const records = this.db.records({ apps: tags, markers });
    for (const peer of this.d.peers) this.d.send(peer, { kind: 'update', entries: records.apps, markers: records.markers });
    if (tags.length) this.d.onAppsChanged(tags);
  }

  persist(): void {
    const file = this.d.file;
    this.saving = this.saving.then(() => saveDatabase(file, this.db)).catch((e: unknown) => {
      this.d.log.error({ err: e instanceof Error ? e.message : String(e), file }, 'cannot persist the database');
    });
  }

  sendDigest(peerName: string, reply: boolean): void {
    const peer = this.d.peers.find((p) => p.name === peerName);
    if (peer) this.d.send(peer, { kind: 'digest', versions: this.db.versionMap(), reply });
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
      const snap = parseSnapshot({ apps: message.entries, markers: message.markers });
      const applied: string[] = [];
      for (const e of snap.apps) if (this.db.merge(e).applied) applied.push(e.tag);
      let markers = 0;
      for (const m of snap.markers) if (this.db.mergeMarker(m).applied) markers++;
      if (applied.length || markers) {
        this.persist();
        if (applied.length) this.d.onAppsChanged(applied);
      }
    } else {
      const theirs = parseVersionMap(message.versions);
      this.peerVersions.set(from.name, theirs);
      const plan = syncPlan(this.db.versionMap(), theirs);
      if (plan.send.apps.length || plan.send.markers.length) {
        const records = this.db.records(plan.send);
        this.d.send(from, { kind: 'update', entries: records.apps, markers: records.markers });
      }
      // Our map makes the peer send what it holds newer; ask for it whenever we lack something.
      const lacking = plan.request.apps.length > 0 || plan.request.markers.length > 0;
      if (message.reply || lacking) this.sendDigest(from.name, false);
    }
  }

  /**
   * FIG. 6 step 614: exchange version maps with every peer that is not known to have failed, and take what
   * is newer. A peer not heard yet since start-up is waited for (up to the start-up grace): a node that
   * restarts must learn that another took its apps over before it runs anything. Resolves when each has
   * answered (its newer records travel before its answer), or when the rest are declared failed, or
   * after a bound: an unreachable replica cannot hold a start hostage.
   */
  syncAll(): Promise<void> {
    const targets = this.d.peerStates()
      .filter((p) => p.state === 'alive' || (p.state === 'unknown' && !this.d.declaredFailed(p.peer)));
    if (targets.length === 0) return Promise.resolve();
    const waitUnknown = targets.some((p) => p.state === 'unknown');
    const bound = Math.max(500, 5 * this.d.config.timing.heartbeatIntervalMs) + (waitUnknown ? this.d.startupGraceLeftMs() : 0);
    return new Promise((resolve) => {
      const waiter = { peers: new Set(targets.map((p) => p.peer)), done: resolve };
      this.syncWaiters.push(waiter);
      for (const p of targets) this.peerVersions.delete(p.peer); // only an answer to this sync counts
      for (const p of targets) if (p.state === 'alive') this.sendDigest(p.peer, true);
      setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
        resolve();
      }, bound).unref();
    });
  }

  /** A peer is synced with once we hold everything its last version map showed newer. */
  checkSynced(peer: string): void {
    const theirs = this.peerVersions.get(peer);
    if (!theirs) return;
    const { request } = syncPlan(this.db.versionMap(), theirs);
    if (request.apps.length === 0 && request.markers.length === 0) this.answered(peer);
  }

  /** A peer that answered a sync, or that will never answer it (failed). */
  answered(peer: string): void {
    for (const w of this.syncWaiters) w.peers.delete(peer);
    this.syncWaiters = this.syncWaiters.filter((w) => (w.peers.size ? true : (w.done(), false)));
  }
}

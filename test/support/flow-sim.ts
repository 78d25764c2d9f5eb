// A small cluster in memory for the flow tests: every node has its own ClusterDb replica and one flow
// reducer per app; writes replicate to the nodes it can reach; membership events are sent by the test
// (fail, recover, partition); async actions complete at once unless the test says they fail. A trace
// records every start, stop and write, and `executing` is checked after every step: two nodes executing
// one app at once is recorded as an overlap. What executes is the simulated process, as the agent runs
// it (src/daemon/flow-runner.ts): startApp spawns one (paused or not), resumeApp lets a paused one run,
// stopApp ends it. A flow that says 'up' where no process runs is recorded as a ghost.
import { ClusterDb, syncPlan } from '../../src/db/database.js';
import { type FlowAction, type FlowConfig, type FlowEvent, type FlowState, type HostPatch, initialFlow, step } from '../../src/db/flows.js';
import type { AppFields, AppObject } from '../../src/db/object.js';

export interface SimNode {
  name: string;
  db: ClusterDb;
  up: boolean;
  flows: Map<string, FlowState>;
  wakeAt: Map<string, number | null>;
  /** The app processes on this node: waiting paused in ready(), or running. */
  procs: Map<string, 'paused' | 'running'>;
}

export interface SimOptions {
  nodes: string[];
  config?: Partial<FlowConfig>;
}

export class FlowSim {
  now = 1_000_000;
  readonly nodes = new Map<string, SimNode>();
  readonly trace: string[] = [];
  readonly actions: { node: string; tag: string; action: FlowAction }[] = [];
  readonly overlaps: string[] = [];
  /** "tag on node at time": the flow says the app is up, and no process runs it. */
  readonly ghosts: string[] = [];
  /** "node:tag" whose starts fail; "node:tag" → missing resources. */
  readonly failStarts = new Set<string>();
  readonly missing = new Map<string, string[]>();
  /** "node:op": such ops are not completed until release() (to stop the world in the middle of a flow). */
  readonly hold = new Set<string>();
  private readonly held: { node: string; tag: string; op: 'startApp' | 'startResources' | 'stopApp' | 'stopResources'; paused: boolean }[] = [];
  /** Pairs that cannot reach each other ("a|b", sorted). */
  private readonly cut = new Set<string>();
  private readonly queue: { node: string; tag: string; event: FlowEvent }[] = [];
  private readonly config: Partial<FlowConfig>;

  constructor(o: SimOptions) {
    this.config = o.config ?? {};
    for (const name of o.nodes) this.nodes.set(name, { name, db: new ClusterDb(), up: true, flows: new Map(), wakeAt: new Map(), procs: new Map() });
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  reach(a: string, b: string): boolean {
    return a !== b && this.node(a).up && this.node(b).up && !this.cut.has([a, b].sort().join('|'));
  }

  /** Registers an app on `at` (as FIG. 6 create would) and replicates it; flows start on every node. */
  register(at: string, fields: AppFields): AppObject {
    const obj = this.node(at).db.upsert(fields, at, this.now);
    this.replicate(at, obj.tag);
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      // Membership starts with every reachable node alive, for long enough.
      n.flows.set(obj.tag, initialFlow(obj.tag, n.name, { config: this.config, obj: n.db.get(obj.tag) ?? null, synced: true, peers: this.peersOf(n.name, this.now - 3_600_000) }));
    }
    for (const n of this.nodes.values()) if (n.up) this.send(n.name, obj.tag, { type: 'tick' });
    this.run();
    return obj;
  }

  private peersOf(name: string, since: number): Record<string, number> {
    return Object.fromEntries([...this.nodes.keys()].filter((o) => this.reach(name, o)).map((o) => [o, since]));
  }

  send(node: string, tag: string, event: FlowEvent): void {
    this.queue.push({ node, tag, event });
  }

  /** Delivers an event and runs everything that follows from it. */
  event(node: string, tag: string, event: FlowEvent): void {
    this.send(node, tag, event);
    this.run();
  }

  run(): void {
    for (let guard = 0; this.queue.length > 0; guard++) {
      if (guard > 10_000) throw new Error('the simulation does not settle');
      const { node, tag, event } = this.queue.shift()!;
      const n = this.node(node);
      const s = n.flows.get(tag);
      if (!n.up || !s) continue;
      if (event.type === 'exited') n.procs.delete(tag); // the event says its process is gone
      const r = step(s, event, this.now);
      n.flows.set(tag, r.state);
      n.wakeAt.set(tag, r.wakeAt);
      for (const a of r.actions) this.perform(n, tag, a);
      this.checkOverlap(tag);
    }
  }

  /** Moves time on, ticking every flow whose wake time has come. */
  advance(ms: number, stepMs = 100): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + stepMs);
      for (const n of this.nodes.values()) {
        if (!n.up) continue;
        for (const [tag, at] of n.wakeAt) if (at !== null && at !== undefined && at <= this.now) this.send(n.name, tag, { type: 'tick' });
      }
      this.run();
    }
  }

  /** The node crashes: its processes die, its replica stays on disk; the others see it fail. */
  crash(name: string): void {
    const n = this.node(name);
    n.up = false;
    n.flows.clear();
    n.wakeAt.clear();
    n.procs.clear();
    this.trace.push(`${name} crashed`);
    for (const other of this.nodes.values()) {
      if (!other.up) continue;
      for (const tag of other.flows.keys()) this.send(other.name, tag, { type: 'peerFailed', node: name });
    }
    this.run();
  }

  /** The node starts again with its (possibly stale) replica; flows begin unsynced, nothing running. */
  restart(name: string): void {
    const n = this.node(name);
    n.up = true;
    this.trace.push(`${name} restarted`);
    for (const e of n.db.snapshot().apps) {
      n.flows.set(e.tag, initialFlow(e.tag, name, { config: this.config, obj: n.db.get(e.tag) ?? null, peers: this.peersOf(name, this.now) }));
      this.send(name, e.tag, { type: 'tick' });
    }
    for (const other of this.nodes.values()) {
      if (!this.reach(name, other.name)) continue;
      for (const tag of other.flows.keys()) this.send(other.name, tag, { type: 'peerAlive', node: name });
    }
    this.run();
  }

  /** Cuts (or heals) the network between two nodes; each sees the other fail (or come back). */
  partition(a: string, b: string, cut: boolean): void {
    const key = [a, b].sort().join('|');
    if (cut) this.cut.add(key);
    else this.cut.delete(key);
    for (const [x, y] of [[a, b], [b, a]] as const) {
      for (const tag of this.node(x).flows.keys()) this.send(x, tag, cut ? { type: 'peerFailed', node: y } : { type: 'peerAlive', node: y });
    }
    if (!cut) this.syncPair(a, b);
    this.run();
  }

  /** Completes the held ops. */
  release(): void {
    for (const h of this.held.splice(0)) {
      this.trace.push(`${h.node} ${h.op} (released)`);
      const procs = this.node(h.node).procs;
      if (h.op === 'startApp') procs.set(h.tag, h.paused ? 'paused' : 'running');
      if (h.op === 'stopApp') procs.delete(h.tag);
      this.send(h.node, h.tag, { type: 'done', op: h.op, at: this.now });
    }
    this.run();
  }

  /** An operator's write on `node` (a switchover request, a drain mark), as the control socket makes it. */
  operatorWrite(node: string, tag: string, w: { patch: HostPatch; ifHost: string | null }): void {
    this.perform(this.node(node), tag, { kind: 'write', patch: w.patch, ifHost: w.ifHost });
    this.run();
  }

  /** Whether the node counts as alive from `from` (its membership view in this simulation). */
  alive(from: string, node: string): boolean {
    return node === from ? this.node(node).up : this.reach(from, node);
  }

  state(node: string, tag: string): FlowState {
    const s = this.node(node).flows.get(tag);
    if (!s) throw new Error(`no flow for ${tag} on ${node}`);
    return s;
  }

  /** Nodes where a process of the app executes (not paused). */
  executing(tag: string): string[] {
    return [...this.nodes.values()].filter((n) => n.up && n.procs.get(tag) === 'running').map((n) => n.name);
  }

  notices(node?: string): string[] {
    return this.actions.filter((a) => a.action.kind === 'notify' && (node === undefined || a.node === node))
      .map((a) => (a.action.kind === 'notify' ? a.action.notice : ''));
  }

  private checkOverlap(tag: string): void {
    const ex = this.executing(tag);
    if (ex.length > 1) this.overlaps.push(`${tag} on ${ex.join(' and ')} at ${this.now}`);
    for (const n of this.nodes.values()) {
      if (n.up && n.flows.get(tag)?.app === 'up' && n.flows.get(tag)?.pending === null && n.procs.get(tag) !== 'running') {
        this.ghosts.push(`${tag} on ${n.name} at ${this.now}`);
      }
    }
  }

  private perform(n: SimNode, tag: string, a: FlowAction): void {
    this.actions.push({ node: n.name, tag, action: a });
    const key = `${n.name}:${tag}`;
    switch (a.kind) {
      case 'write': {
        try {
          const obj = n.db.update(tag, a.patch, n.name, this.now, { ifHost: a.ifHost });
          this.trace.push(`${n.name} wrote ${Object.entries(a.patch).map(([k, v]) => `${k}=${k === 'switchover' ? switchoverStage(a.patch.switchover) : v}`).join(',')}`);
          this.send(n.name, tag, { type: 'dbChanged', object: obj });
          this.replicate(n.name, tag);
        } catch (e) {
          this.trace.push(`${n.name} write refused: ${(e as Error).message}`);
          this.send(n.name, tag, { type: 'dbChanged', object: n.db.get(tag) ?? null });
        }
        return;
      }
      case 'checkResources': {
        const miss = this.missing.get(key);
        this.send(n.name, tag, { type: 'resourceCheck', ok: !miss, missing: miss ?? [] });
        return;
      }
      case 'startResources':
      case 'startApp':
      case 'stopApp':
      case 'stopResources':
        if (this.hold.has(`${n.name}:${a.kind}`)) {
          this.trace.push(`${n.name} ${a.kind} (held)`);
          this.held.push({ node: n.name, tag, op: a.kind, paused: a.kind === 'startApp' && a.paused });
          return;
        }
        break;
      default:
        break;
    }
    switch (a.kind) {
      case 'startResources':
      case 'startApp':
        if (this.failStarts.has(key) && a.kind === 'startApp') {
          this.trace.push(`${n.name} ${a.kind} failed`);
          this.send(n.name, tag, { type: 'failed', op: a.kind, error: 'exit 1' });
        } else {
          this.trace.push(`${n.name} ${a.kind}${a.kind === 'startApp' && a.paused ? ' (paused)' : ''}`);
          if (a.kind === 'startApp') n.procs.set(tag, a.paused ? 'paused' : 'running');
          this.send(n.name, tag, { type: 'done', op: a.kind, at: this.now });
        }
        return;
      case 'stopApp':
      case 'stopResources':
        this.trace.push(`${n.name} ${a.kind}`);
        if (a.kind === 'stopApp') n.procs.delete(tag);
        this.send(n.name, tag, { type: 'done', op: a.kind, at: this.now });
        return;
      case 'resumeApp':
        this.trace.push(`${n.name} resumeApp${n.procs.has(tag) ? '' : ' (no process)'}`);
        if (n.procs.has(tag)) n.procs.set(tag, 'running');
        return;
      case 'syncAll':
        for (const other of this.nodes.values()) if (this.reach(n.name, other.name)) this.syncPair(n.name, other.name);
        this.trace.push(`${n.name} syncAll`);
        this.send(n.name, tag, { type: 'done', op: 'syncAll' });
        return;
      case 'notify':
      case 'prompt':
        return;
    }
  }

  /** Pushes one tag's record from `from` to every node it reaches. */
  private replicate(from: string, tag: string): void {
    const rec = this.node(from).db.entry(tag);
    if (!rec) return;
    for (const other of this.nodes.values()) {
      if (!this.reach(from, other.name)) continue;
      if (other.db.merge(rec).applied) this.send(other.name, tag, { type: 'dbChanged', object: other.db.get(tag) ?? null });
    }
  }

  /** The full sync of two replicas, by version maps (FIG. 4F). */
  syncPair(a: string, b: string): void {
    const A = this.node(a);
    const B = this.node(b);
    const plan = syncPlan(A.db.versionMap(), B.db.versionMap());
    const toB = A.db.records(plan.send);
    const toA = B.db.records(plan.request);
    for (const [db, recs, name] of [[B.db, toB, b], [A.db, toA, a]] as const) {
      for (const e of recs.apps) if (db.merge(e).applied) this.send(name, e.tag, { type: 'dbChanged', object: db.get(e.tag) ?? null });
      for (const m of recs.markers) db.mergeMarker(m);
    }
  }
}

/** A switchover record as the trace shows it: how far it got. */
function switchoverStage(r: HostPatch['switchover']): string {
  if (!r) return 'none';
  if (r.refused !== undefined) return 'refused';
  if (r.appStartedAt !== undefined) return 'done';
  if (r.appStoppedAt !== undefined) return 'handed';
  return r.ready ? 'ready' : 'requested';
}

export function app(tag: string, primary: string, backup: string, more: Partial<AppFields> = {}): AppFields {
  return {
    tag, type: 'cluster-capable', command: { argv: ['/usr/bin/app', tag] }, primary, backup,
    resources: [{ kind: 'disk', disk: 'shared0' }, { kind: 'ip', address: '10.0.0.10', prefixLength: 24, interface: { p: 'eth0', b: 'eth0' } }], autoRecover: true, attributes: {},
    host: primary, phase: 'normal', faults: [], ...more,
  };
}

// The application flows of seed 001, as pure decisions: the FIG. 6 registration/status check, the
// failover candidates and steps (§3.5), failback (§3.6, F0-F7), split-brain stand-down (§5.2 item 4),
// operator unload and load (§3.8). No timers, no I/O: time comes in as numbers, and the daemon performs
// the actions and reports their outcome as events.
//
// THE REDUCER. One FlowState per (app, this node); step(state, event, now) returns the next state, the
// actions to perform in order, and when to send the next 'tick' (wakeAt). Actions are of two sorts:
//   immediate  write, notify, prompt, resumeApp: done by the daemon before anything else happens;
//   async      checkResources, startResources, startApp, stopApp, stopResources, syncAll: at most one
//              is outstanding (state.pending) and it is the last action of a step; its outcome comes back
//              as 'resourceCheck', 'done' or 'failed' for that op. An outcome for another op is stale
//              and ignored.
// A write is also applied to state.obj at once (the daemon will send the same object back as
// dbChanged, with its new version); `ifHost` makes it a check-and-set against the local replica.
//
// THE RULES, evaluated after every event until an async action is issued or nothing changes. HOST is
// the one fact that says where the app may execute:
//   1. No object (removed, or not registered): nothing runs here.
//   2. Failover, on the backup B: HOST == primary P, and membership says P failed (or P carries a fault
//      mark for this app, see 4a; B carries none). Write phase
//      failing-over and notify; sync once since start; check resources (missing: operator error, HOST
//      stays P, no start); start the resources in order; start the app; then write HOST = B, phase
//      failed-over. A failed start: stop what started, retry after retryMs, give up after maxAttempts
//      (HOST never changed). P alive again (or HOST changed) before HOST = B is written: abort and stop
//      what started, unless B has already taken the disks (preempted P: P is fenced and will stop), in
//      which case the failover completes. This also covers P failing mid-failback, after B wrote HOST =
//      P (§5.2 item 8).
//   3. HOST is not this node: nothing may execute here. A running app is stopped at once ("split
//      brain", §5.2 item 4, or an operator unload when HOST is null). The primary may hold a
//      cluster-aware app loaded in pause mode while HOST is the backup (F0). When HOST's node and the
//      backup have both failed, notify that the app is unprotected (behaviour 48).
//   4a. HOST is this node and the app faulted here (exited by itself, or failed its health probe) beyond
//      the local restart policy, or this node was fenced off its disk: stop it and its resources, then add this node to the object's fault
//      marks. The other node then takes this one object over as in 2 (behaviour 20); nothing fails over
//      or back to a marked node until an operator load there clears its mark, so an app that faults
//      everywhere comes to rest instead of being passed to and fro.
//   4. HOST is this node (the backup, after failover): failback once P has been alive continuously for
//      failbackDwellMs (flap damping) and autoRecover is set or the operator approved; otherwise prompt,
//      again every promptRepeatMs (a deny keeps the app here and keeps prompting). Failback: write phase
//      failing-back, stop the app (F2), stop the resources (F3), write HOST = P (F4). P failing before
//      F4: back to failed-over and run again.
//   6. Planned switchover (an operator's, phase switching-over; the object's switchover record says from,
//      to and how far it got). Make before break: the target (HOST is the other node) checks what needs no
//      disk (checkResources) and writes ready; refused (resources missing, a fault mark or a drain here)
//      it writes the phase back with the reason, and nothing has stopped. Only once ready does the source
//      (HOST) stop the app (an aware app gets its unload request) and its resources (the reservation is
//      released, not preempted), then write HOST = target; the target starts as in 5 and writes the
//      resting phase: normal on the primary, switched-over on the backup, where the app then stays (no
//      failback prompt, no auto-recover) until an operator moves it again. The target failing before
//      the handover: the source writes the phase back and keeps (or starts again) the app. The source
//      failing: rule 2, an ordinary failover to the target. The target's start failing: a fault there
//      (4a), so the source takes the app back.
//   5. HOST is this node: run here, unless halted (the app exited by itself, or starts gave up, until the
//      operator loads it again) or the primary finds the backup mid-failover (and not known failed). Before the first start
//      since this node started, sync all replicas (FIG. 6 step 614: the local replica may be stale,
//      FIG. 4E). Start resources, then the app (or release its pause); on the primary, a phase left at
//      failing-back becomes normal and failback is complete (F5-F7).
import { epochFor } from './database.js';
import type { AppCommand, AppFields, AppObject, AppType, Phase, ResourceSpec, SwitchoverRecord } from './object.js';
import { RecordError, parseAppSpec } from './object.js';

/** The part of the database the decisions read. */
export interface DbView {
  get(tag: string): AppObject | undefined;
  list(): AppObject[];
}

// ---------------------------------------------------------------------------------------------------
// FIG. 6: the registration/status check, run when an app is loaded (or registers itself).

export interface RegistrationContext {
  /**
   * Attribute values offered for the object: by the app's own register call (cluster-aware), or by the
   * operator or the config (cluster-capable). Checked here; absent on a plain load.
   */
  spec?: unknown;
  /** The program's type, when a plain load knows it (an unregistered cluster-aware app must register). */
  type?: AppType;
}

export type RegistrationDecision =
  /** Refused; nothing written. */
  | { kind: 'reject'; reason: string }
  /** Not registered and no values: ask the operator for them (cluster-capable, claim 2). */
  | { kind: 'prompt-operator'; reason: string }
  /** 604: store this object (HOST = primary). `run`: this node is the primary and may execute it. */
  | { kind: 'create'; object: AppFields; run: boolean }
  /** 606/610: unloaded by the operator (HOST null): write HOST = this node (the primary), then run. */
  | { kind: 'set-host-then-run' }
  /** 612, phoenixing: HOST is the backup. Capable: the load is blocked until HOST is this node. */
  | { kind: 'blocked'; host: string }
  /** 612, phoenixing, cluster-aware: loaded in pause mode until HOST is this node. */
  | { kind: 'paused'; host: string }
  /** 614: HOST is already this node with no failover/failback going on: sync all replicas, then run. */
  | { kind: 'sync-all-then-run' }
  /** HOST is this node as the end of a failback (F5), or the backup reloading the app it hosts. */
  | { kind: 'run' }
  /** HOST is this node (the primary) but the backup is failing over: run only once that is settled. */
  | { kind: 'wait'; reason: string };

/**
 * FIG. 6 for `tag` loaded on `thisNode`. The object is found by TAG; a TAG that exists with another
 * PRIMARY is refused (the patent looks up TAG and PRIMARY, L586; refusing keeps TAG unique and never
 * makes a second object for it, behaviour 12). Pure: the caller performs the write it implies.
 */
export function registrationCheck(db: DbView, tag: string, thisNode: string, ctx: RegistrationContext = {}): RegistrationDecision {
  let spec;
  if (ctx.spec !== undefined) {
    try {
      spec = parseAppSpec(ctx.spec);
    } catch (e) {
      if (e instanceof RecordError) return { kind: 'reject', reason: e.message };
      throw e;
    }
    if (spec.tag !== tag) return { kind: 'reject', reason: `the registration is for "${spec.tag}", not "${tag}"` };
  }
  const obj = db.get(tag);
  if (!obj) {
    if (!spec) {
      if (ctx.type === 'cluster-aware') {
        return { kind: 'reject', reason: `"${tag}" is not registered; a cluster-aware app registers itself with its attribute values` };
      }
      return { kind: 'prompt-operator', reason: `"${tag}" is not registered: enter its type, command, primary, backup and resources` };
    }
    return { kind: 'create', object: { ...spec, host: spec.primary, phase: 'normal', faults: [] }, run: spec.primary === thisNode };
  }
  if (spec && spec.primary !== obj.primary) {
    return { kind: 'reject', reason: `"${tag}" is already registered with primary ${obj.primary}, not ${spec.primary}` };
  }
  if (thisNode === obj.primary) {
    if (obj.host === null) return { kind: 'set-host-then-run' };
    if (obj.host === obj.backup) {
      return obj.type === 'cluster-aware' ? { kind: 'paused', host: obj.host } : { kind: 'blocked', host: obj.host };
    }
    if (obj.phase === 'failing-back') return { kind: 'run' };
    if (obj.phase === 'failing-over') return { kind: 'wait', reason: `the backup ${obj.backup} is failing "${tag}" over` };
    return { kind: 'sync-all-then-run' };
  }
  if (thisNode === obj.backup && obj.host === thisNode) return { kind: 'run' };
  const where = obj.host === null ? 'unloaded' : `hosted on ${obj.host}`;
  return { kind: 'reject', reason: `"${tag}" has primary ${obj.primary} and is ${where}; load it on ${obj.primary}` };
}

// ---------------------------------------------------------------------------------------------------
// §3.5 step 2, §3.8: selections and operator writes.

/**
 * The objects this node takes over when `failedNode` fails: HOST is the failed node and BACKUP is this
 * node (FIG. 9). Objects with HOST null (operator-unloaded) or another backup are not candidates.
 */
export function failoverCandidates(db: DbView, failedNode: string, thisNode: string): AppObject[] {
  return db.list().filter((o) => o.host !== null && o.host === failedNode && o.backup === thisNode && o.host !== thisNode);
}

/** What the flows write: HOST, the phase, the fault marks, the switchover record and a drain. */
export type HostPatch = { host?: string | null; phase?: Phase; faults?: string[]; switchover?: SwitchoverRecord; keepOff?: string | undefined };

/** A write to HOST/phase, applied only while HOST is still `ifHost`. */
export interface HostWrite {
  patch: HostPatch;
  ifHost: string | null;
}

/** Operator unload (§3.8): HOST = null, so no node runs it and no failover follows. Undefined: already so. */
export function operatorUnload(obj: AppObject): HostWrite | undefined {
  if (obj.host === null) return undefined;
  return { patch: { host: null, phase: 'normal' }, ifHost: obj.host };
}

/** Operator load after an unload: HOST = primary. Undefined when HOST already names a node. */
export function operatorLoad(obj: AppObject): HostWrite | undefined {
  if (obj.host !== null) return undefined;
  return { patch: { host: obj.primary, phase: 'normal' }, ifHost: null };
}

// ---------------------------------------------------------------------------------------------------
// The per-object reducer.

export interface FlowConfig {
  /** Start attempts per failover (or per start on the host) before giving up. */
  maxAttempts: number;
  /** Wait between attempts, and between attempts to stop an app that would not stop. */
  retryMs: number;
  /** The failback prompt is issued again this often while unanswered or denied (loop 864/866). */
  promptRepeatMs: number;
  /** The primary must have been alive this long without a break before failback starts. */
  failbackDwellMs: number;
  /** Faults (exit, health probe) restarted in place within restartWindowMs before one fails the app over. */
  localRestarts: number;
  restartWindowMs: number;
}

export const DEFAULT_FLOW_CONFIG: FlowConfig = {
  maxAttempts: 3, retryMs: 5000, promptRepeatMs: 60_000, failbackDwellMs: 10_000, localRestarts: 0, restartWindowMs: 600_000,
};

export type AsyncOp = 'checkResources' | 'startResources' | 'startApp' | 'stopApp' | 'stopResources' | 'syncAll';

export type Notice =
  | 'primary-failed'       // failover starts (FIG. 7A 810)
  | 'resource-error'       // resources missing on the backup; no start (claims 25, 36, 51)
  | 'start-failed'         // one start attempt failed
  | 'start-stale'          // a start step refused: this agent stalled since it decided (not an attempt)
  | 'fence-failed'         // the old host could not be powered off (or not confirmed off): no takeover yet (not an attempt)
  | 'failover-complete'
  | 'failover-failed'      // every attempt failed; HOST unchanged
  | 'failover-aborted'     // the primary came back (or HOST changed) before HOST was written
  | 'failover-continues'   // the old host restarted after this node began running the app: the takeover completes
  | 'recovery-detected'    // the primary is alive again while the backup hosts
  | 'failback-started'
  | 'failback-aborted'     // the primary failed again before the hand-over
  | 'failback-handed-over' // the backup wrote HOST = primary (F4)
  | 'failback-complete'    // the primary runs it (F7)
  | 'load-blocked'         // phoenixing (FIG. 6 612)
  | 'load-rejected'
  | 'db-sync'              // FIG. 6 614
  | 'sync-failed'
  | 'split-brain'          // running here while HOST names another node: stopped
  | 'unloaded'
  | 'app-exited'           // exited by itself where it was not hosted (a paused copy); not restarted until loaded again
  | 'app-fault'            // exited or failed its health probe on its host: stopped there and handed to the other node
  | 'app-restarted'        // the same, restarted in place (localRestarts)
  | 'host-faulted'         // the other node marked a fault: this node takes the app over
  | 'fault-cleared'        // a load cleared this node's fault mark
  | 'start-gave-up'
  | 'stop-failed'
  | 'switchover-started'    // the target is ready (rule 6): the source stops now
  | 'switchover-refused'    // the target cannot take the app (resources, a fault mark, a drain); nothing stopped
  | 'switchover-aborted'    // the target failed before the handover: the source keeps the app
  | 'switchover-handed-over' // the source stopped the app and its resources and wrote HOST = target
  | 'switchover-complete'   // the target runs the app; the service gap in the message
  | 'switchover-failed'     // the target's start failed after the handover: a fault there, the source takes it back
  | 'fenced'               // this node was fenced off a disk of the app: everything here stopped
  | 'unprotected';         // HOST's node and the backup have both failed

export type FlowAction =
  /** Are this node's resources sufficient (RESOURCE LIST, the program's argv[0])? → resourceCheck. */
  | { kind: 'checkResources'; resources: ResourceSpec[]; command: AppCommand }
  /**
   * Start the resources in the given order. handedOver: a planned switchover's target, its source having
   * stopped them and handed the app over (its addresses are known free: no duplicate address probe).
   * → done / failed.
   */
  | { kind: 'startResources'; resources: ResourceSpec[]; handedOver?: true }
  /** Start the program; paused: a cluster-aware app waits in ready() (claims 31/32). → done / failed. */
  | { kind: 'startApp'; command: AppCommand; type: AppType; paused: boolean }
  /** Immediate: release a paused app (its ready() resolves). */
  | { kind: 'resumeApp' }
  /** Stop the program (unload request, signal, then kill after its timeout). → done / failed. */
  | { kind: 'stopApp' }
  /** Stop the resources in the given order (the reverse of start). → done / failed. */
  | { kind: 'stopResources'; resources: ResourceSpec[] }
  /** Full sync with every reachable replica (may be answered by one done since this node started). */
  | { kind: 'syncAll' }
  /**
   * Immediate: write to the local replica (then persist and replicate), only while HOST is ifHost. token:
   * the reservation generation read after taking the app's disks, which raises the record's epoch
   * (database.ts, epochFor).
   */
  | { kind: 'write'; patch: HostPatch; ifHost: string | null; token?: number }
  /** Immediate: an event for the operator (journal, event stream, hooks). */
  | { kind: 'notify'; notice: Notice; message: string }
  /** Immediate: ask the operator to approve failback (approve / deny events answer). */
  | { kind: 'prompt'; message: string };

export type AsyncAction = Extract<FlowAction, { kind: AsyncOp }>;

export type FlowEvent =
  /** The local replica's copy changed (a local write or a merge); null: removed. */
  | { type: 'dbChanged'; object: AppObject | null }
  /** Membership: the peer is alive (after its own recovery hysteresis) / has failed. */
  | { type: 'peerAlive'; node: string }
  | { type: 'peerFailed'; node: string }
  /**
   * busy: nothing is missing but the old host may still be serving (another host answers for an address
   * of the app): the failover waits and checks again every retryMs, for as long as that host counts as
   * failed, instead of giving up.
   */
  | { type: 'resourceCheck'; ok: boolean; missing: string[]; busy?: boolean }
  /** at: wall-clock ms when it finished (the runner's Date.now()), for the switchover's service gap. */
  | { type: 'done'; op: AsyncOp; at?: number }
  /** stale: refused because the decision behind it no longer held (the agent stalled since): decided again, not counted as an attempt. */
  /**
   * yielded (with stale): refused because the app's last-active peer, alive, processes it and this node is
   * its slave: a takeover under way gives way, even one past its disks (committed).
   */
  | { type: 'failed'; op: AsyncOp; error: string; stale?: boolean; fence?: boolean; yielded?: boolean }
  /** The program exited without being asked to. */
  | { type: 'exited'; detail: string }
  /** The program runs but failed its health probe. */
  | { type: 'fault'; detail: string }
  /**
   * The last-active gate (seed 003, src/daemon/last-active.ts): closed, this node neither starts the app
   * nor takes it over, because it cannot show it processed last (it waits after an outage for its peer or
   * a forced start). What runs is not stopped by it, except what a takeover that has not processed yet
   * had started (the old host restarted: the pair decides again).
   */
  | { type: 'gate'; open: boolean }
  /**
   * This node lost a resource of the app it cannot keep running without: its reservation was preempted
   * (another node fenced it). Everything here stops at once. Where HOST still names this node (nobody
   * took the app over, or this replica has not heard yet) the fence is a fault of this node: it is
   * marked, so the other node takes the app over and nothing comes back here until a load. Where HOST
   * names another node, the app simply runs there (rule 3); no mark, so failback may bring it back.
   */
  | { type: 'fenced'; detail: string }
  /**
   * The disks of the app are this node's now (reserved; a failed holder preempted, i.e. fenced): a
   * failover past this point completes even if the old host is heard again, since it can no longer write.
   */
  | { type: 'disksTaken'; token: number }
  /**
   * The node was heard in a new life (its agent restarted; at start it stopped whatever it ran). A
   * takeover from it that has begun processing here completes: aborted, it would hand the app to a node
   * that is deciding from its old priority record, which this node's takeover has outranked, and the pair
   * would wait for each other (both records 2).
   */
  | { type: 'peerRestarted'; node: string }
  /** Operator load on this node (FIG. 6), also a restart after halted or a failover that gave up. */
  | { type: 'load' }
  /** Operator unload (any node): HOST = null. */
  | { type: 'unload' }
  /** The operator's answer to the failback prompt. */
  | { type: 'approve' }
  | { type: 'deny' }
  | { type: 'tick' };

export interface FlowState {
  readonly tag: string;
  readonly self: string;
  readonly config: FlowConfig;
  /** This node's replica of the object (null: none). */
  readonly obj: AppObject | null;
  /** The program on this node. */
  readonly app: 'down' | 'paused' | 'up';
  /** This app's resources on this node; partial: a start failed midway, stop them before starting. */
  readonly resources: 'down' | 'partial' | 'up';
  /** The resources as last started, so they are stopped as started even if the object changed. */
  readonly heldResources: readonly ResourceSpec[];
  readonly pending: AsyncAction | null;
  /** A full sync has happened since this node started (or since a load asked for one). */
  readonly synced: boolean;
  /** Why this node will not start the app while it hosts it, until a load; null: it will. */
  readonly halted: string | null;
  /** Membership: since when a node has been alive, null when failed; absent: not known yet. */
  readonly peers: Readonly<Record<string, number | null>>;
  /**
   * A failover by this node is under way, from the host `from`; checked: resources found sufficient for
   * this attempt; committed: the disks are taken (the old host fenced), or the old host restarted after
   * this node began processing, so it completes whatever happens to the old host's liveness; processed:
   * an attempt got its resources started (its priority 1 is durable: seed 003).
   */
  readonly failover: { checked: boolean; from: string; committed: boolean; token: number; waitedBusy?: boolean; processed?: boolean } | null;
  /** Failover gave up (resources missing, every attempt failed) for this outage of the primary. */
  readonly failoverGaveUp: boolean;
  readonly attempts: number;
  /** No start before this time (between attempts). */
  readonly retryAt: number | null;
  /** No stop before this time (after a stop failed). */
  readonly stopRetryAt: number | null;
  readonly stopFailures: number;
  readonly approved: boolean;
  /** When the failback prompt is due again. */
  readonly promptAt: number | null;
  /** Why this node is stopping an app it does not host (null: not doing so). */
  readonly standDown: string | null;
  readonly unprotectedNotified: boolean;
  /**
   * The node this node has seen hosting the app while that node was alive (null: not seen so). A take-back
   * from a failed backup needs it: learning HOST = B from B's own message while B still counts as failed
   * (a partition healing, before the recovery hysteresis ends) is not B failing while it hosts.
   */
  readonly hostSeenAlive: string | null;
  /** The app faulted here (why); cleared once it is stopped and the fault is marked in the object. */
  readonly faulted: string | null;
  /** When faults were restarted in place, within the restart window. */
  readonly restartTimes: readonly number[];
  /** A local restart: stop the running app, then start it again. */
  readonly restartApp: boolean;
  /** The last-active gate is closed: no start, no takeover here (see the 'gate' event). */
  readonly gated: boolean;
  /** A switchover's target: its resource check is under way (rule 6). */
  readonly switchChecking: boolean;
  /** Wall-clock ms when this node last stopped / started the app (done events' `at`), for the gap. */
  readonly appStoppedAt: number | null;
  readonly appStartedAt: number | null;
  /** The `at` of the last done event: a paused app's release follows its resources' start at once. */
  readonly lastDoneAt: number | null;
}

export interface StepResult {
  state: FlowState;
  actions: FlowAction[];
  /** Send a tick at this time (null: no deadline pending). */
  wakeAt: number | null;
}

export interface InitialFlow {
  config?: Partial<FlowConfig>;
  obj?: AppObject | null;
  /** What the daemon found running at startup. */
  app?: 'down' | 'paused' | 'up';
  resources?: 'down' | 'partial' | 'up';
  /** A sync already done (the daemon's startup anti-entropy). */
  synced?: boolean;
  /** Membership as known at construction: since when each node is alive, null when failed. */
  peers?: Record<string, number | null>;
  /** The last-active gate starts closed (until the node's recovery decision). */
  gated?: boolean;
}

export function initialFlow(tag: string, self: string, init: InitialFlow = {}): FlowState {
  return {
    tag, self,
    config: { ...DEFAULT_FLOW_CONFIG, ...init.config },
    obj: init.obj ?? null,
    app: init.app ?? 'down',
    resources: init.resources ?? 'down',
    heldResources: init.obj?.resources ?? [],
    pending: null,
    synced: init.synced ?? false,
    halted: null,
    peers: { ...init.peers },
    failover: null,
    failoverGaveUp: false,
    attempts: 0,
    retryAt: null,
    stopRetryAt: null,
    stopFailures: 0,
    approved: false,
    promptAt: null,
    standDown: null,
    unprotectedNotified: false,
    hostSeenAlive: init.obj?.host != null && typeof init.peers?.[init.obj.host] === 'number' ? init.obj.host : null,
    faulted: null,
    restartTimes: [],
    restartApp: false,
    gated: init.gated ?? false,
    switchChecking: false,
    appStoppedAt: null,
    appStartedAt: null,
    lastDoneAt: null,
  };
}

type Draft = { -readonly [K in keyof FlowState]: FlowState[K] } & { peers: Record<string, number | null> };
type Pass = 'again' | 'waiting';

export function step(state: FlowState, event: FlowEvent, now: number): StepResult {
  const d: Draft = { ...state, peers: { ...state.peers } };
  const out: FlowAction[] = [];
  apply(d, event, now, out);
  for (let i = 0; i < 16 && d.pending === null; i++) {
    if (pass(d, now, out) === 'waiting') break;
  }
  return { state: d, actions: out, wakeAt: nextWake(d, now) };
}

// ---------------------------------------------------------------------------------------------------
// Events: record facts. The rules in pass() decide what to do about them.

function apply(d: Draft, e: FlowEvent, now: number, out: FlowAction[]): void {
  switch (e.type) {
    case 'dbChanged': {
      const host = e.object?.host ?? null;
      if (d.obj?.host !== host) {
        d.failoverGaveUp = false;
        d.faulted = null;
        d.restartApp = false;
        d.hostSeenAlive = host !== null && host !== d.self && typeof d.peers[host] === 'number' ? host : null;
      }
      d.obj = e.object;
      return;
    }
    case 'peerAlive': {
      if (typeof d.peers[e.node] === 'number') return;
      d.peers[e.node] = now;
      const o = d.obj;
      if (o && o.host === e.node) d.hostSeenAlive = e.node;
      if (o && e.node === o.primary) {
        d.failoverGaveUp = false;
        if (o.host === d.self && o.backup === d.self) notify(out, 'recovery-detected', `primary ${o.primary} of ${o.tag} is alive again`);
      }
      return;
    }
    case 'peerFailed':
      d.peers[e.node] = null;
      if (d.obj && e.node === d.obj.primary) {
        d.approved = false;
        d.promptAt = null;
      }
      return;
    case 'resourceCheck': {
      if (d.pending?.kind !== 'checkResources') return;
      d.pending = null;
      if (d.switchChecking) {
        d.switchChecking = false;
        switchoverChecked(d, e.ok ? null : `missing on ${d.self}: ${e.missing.join(', ') || '(unspecified)'}`, out);
        return;
      }
      if (!d.failover) return;
      if (e.ok) {
        d.failover.checked = true;
        return;
      }
      const o = d.obj!;
      if (e.busy) {
        if (d.failover.waitedBusy !== true) notify(out, 'resource-error', `${o.tag}: not started on ${d.self}: ${e.missing.join(', ')}; HOST stays ${o.host}, checked again every ${d.config.retryMs} ms`);
        d.failover.waitedBusy = true;
        d.retryAt = now + d.config.retryMs;
        return;
      }
      notify(out, 'resource-error', `${o.tag}: not started on ${d.self}, missing resources: ${e.missing.join(', ') || '(unspecified)'}; HOST stays ${o.host}`);
      endFailover(d, out, 'failover gave up: resources missing');
      return;
    }
    case 'done':
    case 'failed':
      if (d.pending?.kind !== e.op) return;
      if (e.type === 'done') done(d, d.pending, e.at);
      else failed(d, d.pending, e.error, now, out, e);
      return;
    case 'exited':
      if (d.pending?.kind === 'stopApp') {
        done(d, d.pending);
      } else if (d.pending?.kind === 'startApp') {
        failed(d, d.pending, `exited at start: ${e.detail}`, now, out);
      } else if (d.app !== 'down') {
        d.app = 'down';
        d.restartApp = false;
        fault(d, `exited by itself (${e.detail})`, now, out);
      }
      return;
    case 'fault':
      // A probe that finished after the app was stopped or restarted is stale.
      if (d.app !== 'up' || d.pending?.kind === 'stopApp' || d.restartApp || d.faulted !== null) return;
      fault(d, e.detail, now, out);
      return;
    case 'fenced':
      if (d.app === 'down' && d.resources === 'down') return;
      notify(out, 'fenced', `${d.tag}: ${e.detail}; stopping it on ${d.self} at once`);
      if (d.failover) endFailover(d, out, `fenced: ${e.detail}`);
      if (d.obj?.host === d.self) {
        d.faulted = `fenced: ${e.detail}`;
        d.restartApp = false;
      }
      return;
    case 'peerRestarted':
      if (d.failover?.from === e.node && d.failover.processed && !d.failover.committed) {
        d.failover.committed = true;
        notify(out, 'failover-continues', `${d.tag}: ${e.node} restarted while ${d.self} was taking ${d.tag} over from it, after ${d.self} began running it: the takeover completes`);
      }
      return;
    case 'disksTaken':
      if (d.failover) {
        d.failover.committed = true;
        d.failover.token = Math.max(d.failover.token, e.token);
      } else if (d.obj?.host === d.self && e.token > 0) {
        // The host's own start: its record's era is raised above the generation it just read.
        write(d, out, {}, d.self, e.token);
      }
      return;
    case 'load':
      load(d, out);
      return;
    case 'unload': {
      const w = d.obj && operatorUnload(d.obj);
      if (!w) return;
      write(d, out, w.patch, w.ifHost);
      notify(out, 'unloaded', `${d.tag} unloaded by the operator; HOST is null, no failover`);
      if (d.app !== 'down' || d.resources !== 'down') d.standDown = 'unloaded';
      return;
    }
    case 'gate':
      d.gated = !e.open;
      return;
    case 'approve':
      d.approved = true;
      return;
    case 'deny':
      d.approved = false;
      d.promptAt = now + d.config.promptRepeatMs;
      return;
    case 'tick':
      return;
  }
}

function load(d: Draft, out: FlowAction[]): void {
  const marked = d.obj;
  if (marked && marked.faults.includes(d.self)) {
    write(d, out, { faults: marked.faults.filter((n) => n !== d.self) }, marked.host);
    notify(out, 'fault-cleared', `${d.tag}: the fault mark on ${d.self} is cleared by the operator`);
  }
  d.faulted = null;
  d.restartTimes = [];
  const o = d.obj;
  if (o && takeoverFrom(d, o) !== null) {
    // HOST's node is down and this node would take over: the operator asks for the failover to be tried again.
    d.failoverGaveUp = false;
    d.halted = null;
    return;
  }
  const dec = registrationCheck({ get: (t) => (o && t === o.tag ? o : undefined), list: () => (o ? [o] : []) }, d.tag, d.self);
  d.failoverGaveUp = false;
  switch (dec.kind) {
    case 'reject':
    case 'prompt-operator':
      notify(out, 'load-rejected', dec.reason);
      return;
    case 'create':
      return; // not reached without a spec
    case 'set-host-then-run':
      write(d, out, { host: d.self, phase: 'normal' }, null);
      break;
    case 'blocked':
    case 'paused':
      notify(out, 'load-blocked', `${d.tag} is hosted on ${dec.host}; ${dec.kind === 'paused' ? 'loaded in pause mode' : 'load blocked'} until HOST is ${d.self}`);
      break;
    case 'sync-all-then-run':
      if (d.app === 'down') d.synced = false;
      break;
    case 'run':
    case 'wait':
      break;
  }
  d.halted = null;
  d.attempts = 0;
  d.retryAt = null;
}

/** The app faulted on this node: restart it in place while the policy allows, else hand it over. */
function fault(d: Draft, detail: string, now: number, out: FlowAction[]): void {
  const o = d.obj;
  if (!o || o.host !== d.self) {
    // A copy this node does not host (a paused cluster-aware app): not restarted until a load.
    d.halted = detail;
    notify(out, 'app-exited', `${d.tag} on ${d.self}: ${detail}; not restarted until loaded again`);
    return;
  }
  const { localRestarts, restartWindowMs } = d.config;
  const recent = d.restartTimes.filter((t) => now - t < restartWindowMs);
  if (recent.length < localRestarts) {
    d.restartTimes = [...recent, now];
    if (d.app !== 'down') d.restartApp = true;
    notify(out, 'app-restarted', `${o.tag} faulted on ${d.self} (${detail}); restarted in place, ${recent.length + 1} of ${localRestarts} within ${restartWindowMs / 1000} s`);
    return;
  }
  d.restartTimes = recent;
  d.faulted = detail;
  const other = o.primary === d.self ? o.backup : o.primary;
  notify(out, 'app-fault', `${o.tag} faulted on ${d.self} (${detail}); stopping it here and handing it to ${other}`);
}

function done(d: Draft, a: AsyncAction, at?: number): void {
  d.pending = null;
  if (at !== undefined) d.lastDoneAt = at;
  if (at !== undefined && a.kind === 'stopApp') d.appStoppedAt = at;
  if (at !== undefined && a.kind === 'startApp' && !a.paused) d.appStartedAt = at;
  switch (a.kind) {
    case 'startResources':
      d.resources = 'up';
      d.heldResources = a.resources;
      if (d.failover) d.failover.processed = true;
      return;
    case 'startApp': d.app = a.paused ? 'paused' : 'up'; return;
    case 'stopApp': d.app = 'down'; d.restartApp = false; d.stopFailures = 0; d.stopRetryAt = null; return;
    case 'stopResources': d.resources = 'down'; d.stopFailures = 0; d.stopRetryAt = null; return;
    case 'syncAll': d.synced = true; return;
    case 'checkResources': return;
  }
}

/** `why`: the failed event's flags (stale, fence, yielded), absent for a plain failure. */
function failed(d: Draft, a: AsyncAction, error: string, now: number, out: FlowAction[], why: { stale?: boolean; fence?: boolean; yielded?: boolean } = {}): void {
  const { stale = false, fence = false, yielded = false } = why;
  d.pending = null;
  switch (a.kind) {
    case 'syncAll':
      // The replicas that could be reached were; one that cannot be reached must not keep the app down.
      d.synced = true;
      notify(out, 'sync-failed', `${d.tag}: sync of all replicas failed (${error}); going on with the local replica`);
      return;
    case 'stopApp':
    case 'stopResources':
      // HOST is not handed over while anything still runs here (§5.2 item 9); keep trying.
      d.stopFailures++;
      d.stopRetryAt = now + d.config.retryMs;
      if (d.stopFailures === 1) notify(out, 'stop-failed', `${d.tag}: ${a.kind} failed on ${d.self} (${error}); retrying every ${d.config.retryMs} ms`);
      return;
    case 'startResources':
    case 'startApp': {
      if (a.kind === 'startResources') {
        d.resources = 'partial';
        d.heldResources = a.resources;
      }
      const o = d.obj;
      if (!fence && !stale && !d.failover && !(a.kind === 'startApp' && a.paused) && o && o.host === d.self && o.phase === 'switching-over' && o.switchover?.to === d.self) {
        // The target of a switchover failed to start it: not retried here while the source, healthy a moment
        // ago, can take it back. A fault (4a): stop what started, mark this node, the source takes it over.
        d.faulted = `switchover start failed (${error})`;
        notify(out, 'switchover-failed', `${d.tag}: start on ${d.self} failed after the switchover (${error}); handing it back to ${o.switchover.from}`);
        return;
      }
      if (fence) {
        // The old host could not be powered off, or its power not confirmed off: no takeover, and no
        // attempt counted (giving up would leave the app nowhere once the BMC answers again). Alert, and
        // decide again after retryMs.
        notify(out, 'fence-failed', `${d.tag}: not taken over from ${d.failover?.from ?? 'its host'}: ${error}; trying again in ${d.config.retryMs} ms (confirm the node is off, or mend its BMC)`);
        d.retryAt = now + d.config.retryMs;
        if (d.failover) d.failover.checked = false;
        return;
      }
      if (stale) {
        // Nothing wrong with the app or this node: the start is decided again, after retryMs, on what this
        // agent has learnt since (a peer that took the app over meanwhile).
        notify(out, 'start-stale', `${d.tag}: start on ${d.self} interrupted (${error}); deciding again in ${d.config.retryMs} ms`);
        d.retryAt = now + d.config.retryMs;
        if (d.failover) d.failover.checked = false;
        // The peer processes it (seed 003 says so): a takeover past its disks must not insist (nemesis seed
        // 1874018165: the old host, its fault cleared, waited on this takeover's phase while the takeover
        // was refused every retryMs, for good). Uncommitted, it ends as soon as the old host counts as alive.
        if (yielded && d.failover) d.failover.committed = false;
        return;
      }
      if (a.kind === 'startApp' && a.paused) {
        d.halted = `start in pause mode failed (${error})`;
        notify(out, 'start-failed', `${d.tag}: start in pause mode failed on ${d.self} (${error})`);
        return;
      }
      d.attempts++;
      const max = d.config.maxAttempts;
      notify(out, 'start-failed', `${d.tag}: start attempt ${d.attempts} of ${max} failed on ${d.self} (${error})`);
      if (d.attempts < max) {
        d.retryAt = now + d.config.retryMs;
        if (d.failover) d.failover.checked = false;
        return;
      }
      d.attempts = 0;
      d.retryAt = null;
      if (d.failover) {
        notify(out, 'failover-failed', `${d.tag}: failover to ${d.self} gave up after ${max} attempts; HOST stays ${d.obj?.host}`);
        endFailover(d, out, 'failover gave up: start failed');
      } else {
        d.halted = `start gave up after ${max} attempts (${error})`;
        notify(out, 'start-gave-up', `${d.tag}: gave up starting on ${d.self} after ${max} attempts; load it again to retry`);
      }
      return;
    }
    case 'checkResources':
      // The check itself could not run: the same as resources found missing.
      if (d.switchChecking) {
        d.switchChecking = false;
        switchoverChecked(d, `the resource check on ${d.self} failed (${error})`, out);
        return;
      }
      if (d.failover) {
        notify(out, 'resource-error', `${d.tag}: resource check failed on ${d.self} (${error}); not started`);
        endFailover(d, out, 'failover gave up: resource check failed');
      }
      return;
  }
}

// ---------------------------------------------------------------------------------------------------
// Rules

function pass(d: Draft, now: number, out: FlowAction[]): Pass {
  const o = d.obj;
  if (!o) {
    if (d.app !== 'down' || d.resources !== 'down') d.standDown ??= 'the app was removed';
    return stopAll(d, now, out);
  }
  const self = d.self;

  // 2. Failover by this node.
  const from = takeoverFrom(d, o);
  const wanted = from !== null || (d.failover?.committed === true && o.host === d.failover.from);
  if (d.failover && !wanted) {
    d.failover = null;
    d.attempts = 0;
    d.retryAt = null;
    const why = o.host !== null && o.host !== self && !isFailed(d, o.host) ? `${o.host} is alive again` : `HOST is now ${o.host ?? 'null'}`;
    notify(out, 'failover-aborted', `${o.tag}: failover to ${self} aborted, ${why}`);
    if (o.phase === 'failing-over' && o.host !== null && o.host !== self) write(d, out, { phase: phaseBack(o, o.host) }, o.host);
    if (d.app !== 'down' || d.resources !== 'down') d.standDown = 'failover aborted';
    return 'again';
  }
  if (!d.failover && from !== null && !d.failoverGaveUp && !d.gated) {
    d.failover = { checked: false, from, committed: false, token: 0 };
    d.attempts = 0;
    d.retryAt = null;
    if (o.faults.includes(from)) notify(out, 'host-faulted', `${o.tag} faulted on ${from}; ${self} takes it over`);
    else notify(out, 'primary-failed', `${from} failed; ${self} takes over ${o.tag}`);
    if (o.phase !== 'failing-over') write(d, out, { phase: 'failing-over' }, o.host);
    return 'again';
  }
  if (d.failover) return failoverPass(d, o, now, out);

  // 3. Not the host here.
  if (o.host !== self) {
    // A cluster-aware app's paused copy: on the primary while the backup hosts it (F0), and on a planned
    // switchover's target once it said ready (make before break: the process is up and waiting in ready()
    // before the source stops; the handover then costs the resources' start and a release, not a start).
    const switchTarget = o.phase === 'switching-over' && o.switchover?.to === self && o.switchover.ready === true && o.host === o.switchover.from;
    const mayPause = o.type === 'cluster-aware' && o.host !== null && !o.faults.includes(self)
      && ((o.primary === self && o.host === o.backup) || switchTarget);
    if (d.app === 'up' || (d.app === 'paused' && !mayPause) || d.resources !== 'down') {
      if (d.standDown === null) {
        if (o.host !== null && d.app !== 'down') {
          d.standDown = 'split brain';
          notify(out, 'split-brain', `${o.tag} was running on ${self} while HOST is ${o.host}: stopping it here`);
        } else {
          d.standDown = o.host === null ? 'unloaded' : `HOST is ${o.host}`;
        }
      }
      return stopAll(d, now, out);
    }
    d.standDown = null;
    const target = switchoverTargetPass(d, o, out);
    if (target !== undefined) return target;
    // A failover this node began and no longer runs (its agent restarted half-way): the phase it wrote
    // would keep the host waiting for it for good. The host is alive, so there is nothing to take over.
    const taker = o.host === o.primary ? o.backup : o.primary;
    if (o.phase === 'failing-over' && o.host !== null && taker === self && from === null) {
      write(d, out, { phase: phaseBack(o, o.host) }, o.host);
      notify(out, 'failover-aborted', `${o.tag}: the failover to ${self} left unfinished is abandoned: ${o.host} is alive`);
      return 'again';
    }
    // Unprotected: HOST's node has failed and the node that would take over (the backup from the primary,
    // the primary from the backup) is down too.
    const rescuer = o.host === o.primary ? o.backup : o.primary;
    const lost = o.host !== null && isFailed(d, o.host) && rescuer !== self && isFailed(d, rescuer);
    if (lost && !d.unprotectedNotified) {
      const who = `its host ${o.host} and ${rescuer}, which would take it over, have both failed`;
      notify(out, 'unprotected', `${o.tag}: ${who}; it runs nowhere`);
    }
    d.unprotectedNotified = lost;
    if (mayPause && d.app === 'down' && d.halted === null) return issue(d, out, { kind: 'startApp', command: o.command, type: o.type, paused: true });
    return 'waiting';
  }
  d.standDown = null;

  // Faulted here (behaviour 20): stop it with its resources, then mark the fault, which makes the other
  // node take this one object over as if this node had failed; only an operator load here clears it.
  if (d.faulted !== null || o.faults.includes(self)) {
    if (d.app !== 'down' || d.resources !== 'down') return stopAll(d, now, out);
    if (!o.faults.includes(self)) {
      write(d, out, { faults: [...o.faults, self] }, self);
      return 'again';
    }
    d.faulted = null;
    const other = o.primary === self ? o.backup : o.primary;
    const stuck = isFailed(d, other) ? `${other} has failed` : o.faults.includes(other) ? `it has faulted on ${other} too` : null;
    if (stuck !== null && !d.unprotectedNotified) {
      notify(out, 'unprotected', `${o.tag}: faulted on ${self} and ${stuck}; it runs nowhere until a load (vigil app load ${o.tag}) clears a node's fault mark`);
    }
    d.unprotectedNotified = stuck !== null;
    return 'waiting';
  }
  d.unprotectedNotified = false;

  // 6. Switchover from this node (the source), or the end of one to it (the target).
  if (o.phase === 'switching-over') {
    const r = switchoverHostPass(d, o, now, out);
    if (r !== undefined) return r;
  }

  // 4. Failback from this node (the backup hosting); never from an operator's switchover.
  if (o.backup === self && o.phase !== 'switching-over' && o.phase !== 'switched-over') {
    const r = failbackPass(d, o, now, out);
    if (r !== undefined) return r;
  }

  // 5. Run here.
  if (d.halted !== null) return stopAll(d, now, out);
  if (d.restartApp && d.app !== 'down') return issue(d, out, { kind: 'stopApp' });
  if (d.gated && d.app === 'down' && d.resources === 'down') return 'waiting';
  // The backup is failing over (it thinks we failed): wait for it to finish or abort, unless it is known dead.
  if (o.primary === self && o.phase === 'failing-over' && !isFailed(d, o.backup)) return 'waiting';
  if (!d.synced) return syncFirst(d, o, out);
  if (d.retryAt !== null) {
    if (now < d.retryAt) return d.app === 'down' ? stopAll(d, now, out) : 'waiting';
    d.retryAt = null;
  }
  const started = startSteps(d, o, out);
  if (started !== undefined) return started;
  d.attempts = 0;
  d.retryAt = null;
  if (o.phase === 'switching-over' && o.switchover?.to === self) {
    const rec = o.switchover;
    const gap = d.appStartedAt !== null && rec.appStoppedAt !== undefined ? Math.max(0, d.appStartedAt - rec.appStoppedAt) : undefined;
    const done: SwitchoverRecord = { ...rec, ...(d.appStartedAt !== null ? { appStartedAt: d.appStartedAt } : {}), ...(gap !== undefined ? { gapMs: gap } : {}) };
    write(d, out, { phase: o.primary === self ? 'normal' : 'switched-over', switchover: done }, self);
    notify(out, 'switchover-complete', `${o.tag} runs on ${self}, switched over from ${rec.from}${gap !== undefined ? `; service gap ${gap} ms` : ''}`);
    return 'again';
  }
  if (o.primary === self && o.phase !== 'normal' && o.phase !== 'failing-over' && o.phase !== 'switching-over') {
    write(d, out, { phase: 'normal' }, self);
    if (o.phase === 'failing-back') notify(out, 'failback-complete', `${o.tag} runs on its primary ${self} again`);
    return 'again';
  }
  return 'waiting';
}

function failoverPass(d: Draft, o: AppObject, now: number, out: FlowAction[]): Pass {
  // The pair decides again (the old host restarted before this takeover processed): nothing starts here
  // until it has decided, and the resources are checked again then (seed 003; nemesis seed 1212572508).
  if (d.gated && d.failover!.processed !== true) {
    d.failover!.checked = false;
    return stopAll(d, now, out);
  }
  if (!d.synced) return syncFirst(d, o, out);
  if (d.retryAt !== null) {
    if (now < d.retryAt) return stopAll(d, now, out);
    d.retryAt = null;
  }
  if (!d.failover!.checked) return issue(d, out, { kind: 'checkResources', resources: o.resources, command: o.command });
  const started = startSteps(d, o, out);
  if (started !== undefined) return started;
  // Running: only now does HOST name this node (FIG. 9 1030 → 1040).
  const from = o.host;
  // A switchover that put the app where it was is over: a failback may bring it home after this one.
  const overtaken = o.switchover && o.switchover.failedOver !== true ? { switchover: { ...o.switchover, failedOver: true } } : {};
  write(d, out, { host: d.self, phase: restingPhase(o, d.self), ...overtaken }, from, d.failover!.token);
  const what = from !== null && o.faults.includes(from) ? 'faulted there' : 'failed';
  notify(out, 'failover-complete', `${o.tag} runs on ${d.self} (${from === o.primary ? 'primary' : 'backup'} ${from} ${what})`);
  d.failover = null;
  d.attempts = 0;
  d.retryAt = null;
  d.halted = null;
  return 'again';
}

/** Undefined: failback is not under way and not due; the app keeps running here. */
function failbackPass(d: Draft, o: AppObject, now: number, out: FlowAction[]): Pass | undefined {
  const since = d.peers[o.primary];
  const primaryUp = typeof since === 'number';
  if (o.phase === 'failing-back') {
    if (!primaryUp) {
      write(d, out, { phase: 'failed-over' }, d.self);
      notify(out, 'failback-aborted', `${o.tag}: primary ${o.primary} failed during failback; staying on ${d.self}`);
      d.approved = false;
      return 'again';
    }
    if (d.app !== 'down' || d.resources !== 'down') return stopAll(d, now, out); // F2, F3
    write(d, out, { host: o.primary }, d.self); // F4
    notify(out, 'failback-handed-over', `${o.tag} stopped on ${d.self}; HOST is ${o.primary} again`);
    d.approved = false;
    d.promptAt = null;
    return 'again';
  }
  // Not back to where it faulted until an operator clears the mark there: no ping-pong.
  if (!primaryUp || now - since < d.config.failbackDwellMs || o.faults.includes(o.primary) || o.keepOff === o.primary) return undefined;
  if (o.autoRecover || d.approved) {
    write(d, out, { phase: 'failing-back' }, d.self); // F1
    notify(out, 'failback-started', `${o.tag}: failing back from ${d.self} to ${o.primary}${o.autoRecover ? ' (auto-recover)' : ' (approved)'}`);
    return 'again';
  }
  if (d.promptAt === null || now >= d.promptAt) {
    out.push({ kind: 'prompt', message: `${o.primary} is operational again: fail ${o.tag} back from ${d.self} to ${o.primary}? (approve / deny)` });
    d.promptAt = now + d.config.promptRepeatMs;
  }
  return undefined;
}

/** Starts what is not started: resources in order, then the app (or its pause released). */
function startSteps(d: Draft, o: AppObject, out: FlowAction[]): Pass | undefined {
  if (d.resources === 'partial') return issue(d, out, { kind: 'stopResources', resources: [...d.heldResources].reverse() });
  if (d.resources === 'down') {
    // Mid-switchover, HOST moves to the target only by the source's handover write (rule 6), made once the
    // source's resources were down.
    const handedOver = o.phase === 'switching-over' && o.host === d.self && o.switchover?.to === d.self && o.switchover.ready === true;
    return issue(d, out, { kind: 'startResources', resources: o.resources, ...(handedOver ? { handedOver: true as const } : {}) });
  }
  if (d.app === 'down') return issue(d, out, { kind: 'startApp', command: o.command, type: o.type, paused: false });
  if (d.app === 'paused') {
    out.push({ kind: 'resumeApp' });
    d.app = 'up';
    d.appStartedAt = d.lastDoneAt;
    return 'again';
  }
  return undefined;
}

/** Stops the app, then its resources in reverse order; 'waiting' once both are down. */
function stopAll(d: Draft, now: number, out: FlowAction[]): Pass {
  if (d.app === 'down' && d.resources === 'down') {
    d.standDown = null;
    return 'waiting';
  }
  if (d.stopRetryAt !== null && now < d.stopRetryAt) return 'waiting';
  if (d.app !== 'down') return issue(d, out, { kind: 'stopApp' });
  return issue(d, out, { kind: 'stopResources', resources: [...d.heldResources].reverse() });
}

function syncFirst(d: Draft, o: AppObject, out: FlowAction[]): Pass {
  notify(out, 'db-sync', `${o.tag}: synchronising all replicas before it runs on ${d.self} (FIG. 6 step 614)`);
  return issue(d, out, { kind: 'syncAll' });
}

function endFailover(d: Draft, out: FlowAction[], why: string): void {
  d.failover = null;
  d.failoverGaveUp = true;
  d.attempts = 0;
  d.retryAt = null;
  const o = d.obj;
  if (o && o.phase === 'failing-over' && o.host !== null && o.host !== d.self) write(d, out, { phase: phaseBack(o, o.host) }, o.host);
  if (d.app !== 'down' || d.resources !== 'down') d.standDown = why;
}

function issue(d: Draft, out: FlowAction[], a: AsyncAction): Pass {
  d.pending = a;
  out.push(a);
  return 'waiting';
}

function write(d: Draft, out: FlowAction[], patch: HostPatch, ifHost: string | null, token?: number): void {
  out.push({ kind: 'write', patch, ifHost, ...(token ? { token } : {}) });
  if (d.obj && d.obj.host === ifHost) d.obj = { ...d.obj, ...patch };
}

function notify(out: FlowAction[], notice: Notice, message: string): void {
  out.push({ kind: 'notify', notice, message });
}

// ---------------------------------------------------------------------------------------------------
// Rule 6: the planned switchover.

/** The target, before the handover (HOST is the source): check, then say ready, or refuse. */
function switchoverTargetPass(d: Draft, o: AppObject, out: FlowAction[]): Pass | undefined {
  const rec = o.switchover;
  if (o.phase !== 'switching-over' || !rec || rec.to !== d.self || o.host !== rec.from || rec.ready || rec.refused !== undefined) return undefined;
  if (d.switchChecking) return 'waiting';
  if (isFailed(d, rec.from)) return undefined; // rule 2 takes it over
  const refusal = o.faults.includes(d.self) ? `${d.self} carries a fault mark for ${o.tag} (vigil app load ${o.tag} on ${d.self} clears it)`
    : o.keepOff === d.self ? `${d.self} is drained (vigil drain ${d.self} --undo)`
    : d.halted !== null ? `${o.tag} is halted on ${d.self} (${d.halted})`
    : d.gated ? `${d.self} waits for its last-active decision on ${o.tag}` : null;
  if (refusal !== null) {
    switchoverChecked(d, refusal, out);
    return 'again';
  }
  d.switchChecking = true;
  return issue(d, out, { kind: 'checkResources', resources: o.resources, command: o.command });
}

/** The target's answer: ready (reason null), or refused, HOST's phase as it was and the reason kept. */
function switchoverChecked(d: Draft, reason: string | null, out: FlowAction[]): void {
  const o = d.obj;
  const rec = o?.switchover;
  if (!o || !rec || o.phase !== 'switching-over' || rec.to !== d.self || o.host !== rec.from || rec.ready || rec.refused !== undefined) return;
  if (reason === null) {
    write(d, out, { switchover: { ...rec, ready: true } }, rec.from);
    notify(out, 'switchover-started', `${o.tag}: ${d.self} is ready to take it over; ${rec.from} stops it now`);
  } else {
    write(d, out, { phase: rec.fromPhase, switchover: { ...rec, refused: reason } }, rec.from);
    notify(out, 'switchover-refused', `${o.tag}: switchover from ${rec.from} to ${d.self} refused: ${reason}; nothing was stopped`);
  }
}

/**
 * HOST is this node and the phase switching-over. The source: wait for the target's ready, then stop and
 * hand over; the target gone before the handover: back to the resting phase. Undefined: rule 5 runs
 * (the source's app keeps running while the target checks; the target starts it).
 */
function switchoverHostPass(d: Draft, o: AppObject, now: number, out: FlowAction[]): Pass | undefined {
  const rec = o.switchover;
  const self = d.self;
  if (!rec || rec.from !== self) return undefined;
  const to = rec.to;
  const lost = isFailed(d, to) ? `${to} failed` : o.faults.includes(to) ? `${to} was marked faulted` : o.keepOff === to ? `${to} was drained` : null;
  if (lost !== null || rec.refused !== undefined) {
    const reason = rec.refused ?? `${lost} before the handover`;
    write(d, out, { phase: rec.fromPhase, switchover: { ...rec, refused: reason } }, self);
    notify(out, 'switchover-aborted', `${o.tag}: switchover to ${to} aborted (${reason}); it stays on ${self}`);
    return 'again';
  }
  if (!rec.ready) return undefined;
  if (d.app !== 'down' || d.resources !== 'down') {
    if (d.app !== 'down') d.appStoppedAt = null;
    d.standDown ??= `switchover to ${to}`;
    return stopAll(d, now, out);
  }
  d.standDown = null;
  const handed: SwitchoverRecord = { ...rec, ...(d.appStoppedAt !== null ? { appStoppedAt: d.appStoppedAt } : {}) };
  write(d, out, { host: to, switchover: handed }, self);
  // HOST names a live node this node handed the app to: should it fail, this node takes the app back.
  d.hostSeenAlive = to;
  notify(out, 'switchover-handed-over', `${o.tag} stopped on ${self} with its resources; HOST is ${to}`);
  return 'again';
}

/**
 * The failed host this node takes the app over from, or null. The backup takes over from a failed primary
 * (seed 001 FIG. 9); the primary also takes it back from a failed backup that was hosting it (seed001.md
 * §5.2 item 7: without this, an app failed over and then lost with its backup would run nowhere while its
 * primary is up, waiting for a failback approval that can no longer happen).
 */
function takeoverFrom(d: Draft, o: AppObject): string | null {
  if (o.host === null || o.host === d.self || o.faults.includes(d.self)) return null;
  const faulted = o.faults.includes(o.host);
  if (o.backup === d.self && o.host === o.primary && (faulted || isFailed(d, o.primary))) return o.primary;
  if (o.primary === d.self && o.host === o.backup && (faulted || (isFailed(d, o.backup) && d.hostSeenAlive === o.backup))) return o.backup;
  return null;
}

/**
 * The epoch under which the app runs when started here now (an app that records its writes tags them
 * with it, VIGIL_EPOCH): the object's, or during a failover the era its HOST write will open.
 */
export function runEpoch(s: FlowState): number {
  const o = s.obj;
  if (!o) return 0;
  return s.failover ? epochFor(o.epoch, true, s.failover.token) : o.epoch;
}

/**
 * The phase an aborted failover writes back, HOST unchanged: switched-over where an operator's switchover
 * put the app on this backup and no failover has moved it since (the failing-over write replaced that
 * phase; without this the app, moved on purpose, would be prompted for failback, or auto-recovered).
 */
function phaseBack(o: AppObject, host: string): Phase {
  const rec = o.switchover;
  const placed = rec !== undefined && rec.to === host && host === o.backup && rec.appStartedAt !== undefined && rec.refused === undefined && rec.failedOver !== true;
  return placed ? 'switched-over' : restingPhase(o, host);
}

/** The phase of an object at rest on `host`: at home on its primary, failed over on its backup. */
function restingPhase(o: AppObject, host: string): Phase {
  return host === o.primary ? 'normal' : 'failed-over';
}

function isFailed(d: Draft, node: string): boolean {
  return node !== d.self && d.peers[node] === null;
}

function nextWake(d: Draft, now: number): number | null {
  const times: number[] = [];
  for (const t of [d.retryAt, d.stopRetryAt]) if (t !== null && t > now) times.push(t);
  const o = d.obj;
  if (o && o.host === d.self && o.backup === d.self && !['failing-back', 'switching-over', 'switched-over'].includes(o.phase) && o.keepOff !== o.primary) {
    const since = d.peers[o.primary];
    if (typeof since === 'number') {
      const due = since + d.config.failbackDwellMs;
      if (due > now) times.push(due);
      else if (d.promptAt !== null && d.promptAt > now) times.push(d.promptAt);
    }
  }
  return times.length > 0 ? Math.min(...times) : null;
}

// The control socket's methods (docs/cli.md lists them): each checks its parameters with zod and acts
// through the agent's parts, and says who may call it (the last argument of handle: read, app or debug;
// none: admin). Who connects, with which role, is the ControlServer's business (SO_PEERCRED).
import { performance } from 'node:perf_hooks';

import { z } from 'zod';

import type { Config, NodeConfig } from '../config/schema.js';
import { ControlError } from '../control/protocol.js';
import type { ControlServer } from '../control/server.js';
import { DbWriteError } from '../db/database.js';
import { registrationCheck } from '../db/flows.js';
import type { NodeRequest } from '../db/node-record.js';
import type { AppObject } from '../db/object.js';
import { defaultSendMode, type DistressReason, type SendMode } from '../wire/distress.js';
import type { DistressLink } from './distress-link.js';
import type { FlowRunner } from './flow-runner.js';
import type { LastActive } from './last-active.js';
import type { AgentLog } from './log.js';
import type { PowerFence } from './power-fence.js';
import type { PowerWatch } from './power-watch.js';
import type { Replication } from './replication.js';
import type { StayOut } from './stay-out.js';
import { SwitchoverRequests } from './switchover-requests.js';
import type { Rejuvenator } from './rejuvenation.js';

/** A resume marker is a pointer (a position, a key), not a payload. */
const MAX_MARKER_TEXT = 4096;

export interface ControlDeps {
  self: NodeConfig;
  config: Config;
  log: AgentLog;
  replication: Replication;
  flows: FlowRunner;
  distress: DistressLink;
  lastActive(): LastActive;
  power(): PowerWatch | undefined;
  /** Tags whose operator asked for a forced start (vigil force-start), until the decision takes it. */
  forceStart: Set<string>;
  /** `status` with the disks' reservations. */
  status(): Promise<object>;
  isAlive(node: string): boolean;
  powerFence: PowerFence;
  /** The stay-out record while this node is out of the cluster. */
  out(): StayOut | undefined;
  leave(reason: DistressReason, mode: SendMode, source: string, text: string): Promise<void>;
  rejoin(): Promise<object>;
  rejuvenator(): Rejuvenator | undefined;
}

export function registerControlCommands(control: ControlServer, d: ControlDeps): void {
  const db = () => d.replication.db;
  const tagParam = z.object({ tag: z.string() });
  const existing = (tag: string): AppObject => {
    const o = db().get(tag);
    if (!o) throw new ControlError('not_found', `no application ${tag}`);
    return o;
  };
  const assertMember = (): void => {
    const out = d.out();
    if (out) {
      throw new ControlError('out', `${d.self.name} is out of the cluster since ${out.since || 'an unknown time'} (distress: ${out.reason}${out.text ? `, ${out.text}` : ''}); run \`vigil rejoin\` first`);
    }
  };
  const rejuvenator = (): Rejuvenator => {
    const r = d.rejuvenator();
    if (!r) throw new ControlError('out', `${d.self.name} is out of the cluster: no rejuvenation`);
    return r;
  };
  const knownNode = (node: string): void => {
    if (!d.config.nodes.some((n) => n.name === node)) throw new ControlError('not_found', `no node ${node} in this cluster's configuration`);
  };
  /** Writes an operator's request into the node's record, and waits for that node to act on it. */
  const request = async (node: string, q: Omit<NodeRequest, 'by' | 'at'>, waitMs: number): Promise<object> => {
    const at = Date.now();
    refused(() => db().requestNode(node, { ...q, by: d.self.name, at }));
    await d.replication.changed([], [], [node]);
    const until = performance.now() + waitMs;
    for (;;) {
      const r = db().node(node);
      const handled = r?.handledRequestAt !== undefined && r.handledRequestAt >= at;
      if (handled || performance.now() >= until) return { node, action: q.action, handled, record: r ?? null };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  // Read when used: registering the methods needs none of the agent's parts.
  const switchovers = new SwitchoverRequests({ get self() { return d.self.name; }, get replication() { return d.replication; }, isAlive: (n) => d.isAlive(n) });
  control
    .handle('status', z.object({}), () => d.status(), 'read')
    .handle('db.show', z.object({}), () => ({ ...db().snapshot(), digest: db().digest() }), 'read')
    .handle('db.sync', z.object({}), async () => {
      assertMember();
      await d.replication.syncAll();
      return { digest: db().digest() };
    })
    .handle('app.load', tagParam, ({ tag }) => {
      assertMember();
      existing(tag);
      d.flows.post(tag, { type: 'load' });
      return { tag };
    })
    .handle('app.unload', tagParam, ({ tag }) => {
      assertMember();
      existing(tag);
      d.flows.post(tag, { type: 'unload' });
      return { tag };
    })
    // Planned switchover and drain (flows.ts rule 6, src/db/switchover.ts): the request is written here
    // (check-and-set on HOST), the target and the source carry it out, and the answer waits for its end.
    .handle('switchover', z.object({ tag: z.string(), to: z.string().optional(), waitMs: waitParam }), async ({ tag, to, waitMs }) => {
      assertMember();
      return switchovers.switchover(existing(tag), to, waitMs);
    })
    .handle('drain', z.object({ node: z.string(), undo: z.boolean().default(false), waitMs: waitParam }), async ({ node, undo, waitMs }) => {
      assertMember();
      if (!d.config.nodes.some((n) => n.name === node)) throw new ControlError('not_found', `no node ${node} in this cluster's configuration`);
      return { node, undo, apps: await switchovers.drain(node, undo, waitMs) };
    })
    // Rejuvenation (docs/rejuvenation.md): the available-server list, a node's plan, and the operator's
    // requests, written into the node's record and carried out by that node's agent.
    .handle('rejuvenation.status', z.object({}), () => ({ nodes: db().nodeRecords(), auto: d.config.rejuvenation.auto, mode: d.config.rejuvenation.mode }), 'read')
    .handle('rejuvenation.plan', z.object({ node: z.string() }), ({ node }) => {
      const r = rejuvenator();
      knownNode(node);
      return { node, record: db().node(node) ?? null, auto: r.plan(node, false), run: r.plan(node, true) };
    }, 'read')
    .handle('rejuvenation.run', z.object({ node: z.string(), reason: z.string().max(500).optional(), waitMs: z.number().int().min(0).max(600_000).default(15_000) }), async ({ node, reason, waitMs }) => {
      assertMember();
      knownNode(node);
      const plan = rejuvenator().plan(node, true);
      if (!plan.ok) throw new ControlError('refused', plan.why);
      return request(node, { action: 'run', ...(reason ? { reason } : {}) }, waitMs);
    })
    .handle('rejuvenation.postpone', z.object({ node: z.string(), forMs: z.number().int().min(0).max(366 * 86_400_000), waitMs: z.number().int().min(0).max(600_000).default(15_000) }), async ({ node, forMs, waitMs }) => {
      assertMember();
      knownNode(node);
      return request(node, { action: 'postpone', until: Date.now() + forMs }, waitMs);
    })
    .handle('rejuvenation.cancel', z.object({ node: z.string(), reason: z.string().max(500).optional(), waitMs: z.number().int().min(0).max(600_000).default(15_000) }), async ({ node, reason, waitMs }) => {
      assertMember();
      knownNode(node);
      return request(node, { action: 'cancel', ...(reason ? { reason } : {}) }, waitMs);
    })
    .handle('failback.approve', tagParam, ({ tag }) => (assertMember(), d.flows.answerFailback(existing(tag), 'approve')))
    .handle('failback.deny', tagParam, ({ tag }) => (assertMember(), d.flows.answerFailback(existing(tag), 'deny')))
    .handle('attr.get', z.object({ tag: z.string(), name: z.string().optional() }), ({ tag, name }) => {
      const o = existing(tag);
      if (name === undefined) return { tag, attributes: o.attributes };
      if (!(name in o.attributes)) throw new ControlError('not_found', `${tag} has no attribute ${name}`);
      return { tag, name, value: o.attributes[name] };
    }, 'read')
    .handle('attr.set', z.object({ tag: z.string(), name: z.string().min(1), value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }), async ({ tag, name, value }) => {
      assertMember();
      existing(tag);
      const o = refused(() => db().setAttributes(tag, { [name]: value }, d.self.name, Date.now()));
      await d.replication.changed([tag]); // answered once on disk: an acknowledged write survives a kill
      return { tag, attributes: o.attributes };
    })
    // Fault injection for tests and drills: blocks this agent's event loop (as a long GC or a stuck
    // synchronous call would). Only with control.debug, for admins.
    .handle('debug.stall', z.object({ ms: z.number().int().min(0).max(30_000) }), ({ ms }) => {
      setImmediate(() => {
        const end = performance.now() + ms;
        while (performance.now() < end) { /* blocked on purpose */ }
      });
      return { stallingMs: ms };
    }, 'debug')
    // Last-active server (seed 003): each app's priority, state and the decision while it waits.
    .handle('priority.show', z.object({}), () => ({ node: d.self.name, pairs: d.lastActive().status() }), 'read')
    .handle('priority.force-start', z.object({ tag: z.string().optional() }), ({ tag }) => {
      assertMember();
      const lastActive = d.lastActive();
      const waiting = lastActive.status().filter((s) => s.state === 'X' && (tag === undefined || s.tag === tag));
      if (waiting.length === 0) {
        throw new ControlError('not_found', tag === undefined ? 'no app is waiting for a decision on this node' : `${tag} is not waiting for a decision on this node`);
      }
      const results = waiting.map((s) => ({ tag: s.tag, ...lastActive.checkForce(s.tag, performance.now(), d.isAlive(s.peer)) }));
      for (const r of results) if (r.ok) d.forceStart.add(r.tag);
      return { node: d.self.name, results };
    })
    // The cluster-aware application API (src/client/cluster-app.ts).
    .handle('app.ready', tagParam, ({ tag }, ctx) => d.flows.ready(existing(tag), ctx.connection), 'app')
    .handle('app.register', z.object({ spec: z.record(z.string(), z.unknown()) }), ({ spec }) => (assertMember(), register(d, spec)))
    .handle('app.watch', tagParam, ({ tag }, ctx) => {
      const o = existing(tag);
      d.flows.watch(tag, ctx.connection);
      return { tag, host: o.host };
    }, 'app')
    .handle('marker.get', tagParam, ({ tag }) => {
      existing(tag);
      const m = db().marker(tag);
      return { tag, pointer: m?.pointer ?? null, seq: m?.seq ?? 0, writtenBy: m?.writtenBy ?? null };
    }, 'read')
    .handle('marker.set', z.object({ tag: z.string(), pointer: z.union([z.string().max(MAX_MARKER_TEXT), z.number(), z.null()]) }), async ({ tag, pointer }) => {
      assertMember();
      existing(tag);
      const m = db().writeMarker(tag, pointer, d.self.name);
      await d.replication.changed([], [tag]); // answered once on disk, as attr.set
      return { tag, pointer: m.pointer, seq: m.seq };
    }, 'app')
    // Distress (seed 002) and power (docs/power.md, docs/distress.md).
    .handle('distress.status', z.object({}), () => d.distress.status(d.out()), 'read')
    .handle('distress.test', z.object({}), () => {
      assertMember();
      return d.distress.sendTest();
    })
    .handle('distress.send', z.object({ reason: z.enum(['hardware-fault', 'unknown']).default('hardware-fault') }), ({ reason }) => {
      assertMember();
      d.distress.armed();
      void d.leave(reason, defaultSendMode(reason), 'operator', 'sent by the operator (vigil distress send)');
      return { node: d.self.name, reason, out: d.out() };
    })
    .handle('power.status', z.object({}), () => {
      const power = d.power();
      return { node: d.self.name, configured: power !== undefined, ...(power?.status() ?? {}), out: d.out() ?? null };
    }, 'read')
    .handle('rejoin', z.object({}), () => d.rejoin())
    // An operator's power fence (vigil fence NODE): no race delay, and a node still heard from is fenced
    // all the same (the operator asked). Answers once its BMC reports the power off.
    .handle('fence', z.object({ node: z.string() }), async ({ node }) => {
      if (node === d.self.name) throw new ControlError('invalid_params', `${node} is this node: fence it from a peer (or power it off here)`);
      if (!d.powerFence.canFence(node)) throw new ControlError('not_found', `${node} is not a node with a BMC in this cluster's configuration`);
      const alive = d.isAlive(node);
      d.log.warn({ node, alive }, 'power fence requested by an operator');
      try {
        const r = await d.powerFence.fence(node, 'operator', { operator: true });
        return { node, power: 'off', tookMs: r.tookMs, wasAlive: alive };
      } catch (e) {
        throw new ControlError('fence_failed', (e as Error).message);
      }
    })
    // Fault injection for tests and drills: the agent dies of this signal, and the armed sender's handler
    // sends distress (fatal-signal) on the way. Only with control.debug, for admins.
    .handle('debug.crash', z.object({ kind: z.enum(['segv', 'bus', 'abort', 'ill', 'fpe']) }), ({ kind }) => {
      assertMember();
      const sender = d.distress.armed();
      setTimeout(() => sender.crashForTest(kind), 50);
      return { node: d.self.name, crashing: kind, fatalHandlers: sender.snapshot().fatalHandlers };
    }, 'debug');
}

/** How long the answer to a switchover or drain waits for it to end (its stops and starts). */
const waitParam = z.number().int().min(0).max(600_000).default(60_000);

/** A write the database refuses (too large, too many apps) is the caller's error, said as such. */
function refused<T>(write: () => T): T {
  try {
    return write();
  } catch (e) {
    if (e instanceof DbWriteError) throw new ControlError('rejected', e.message);
    throw e;
  }
}

/**
 * FIG. 6 for an app that registers itself with its attribute values: a new TAG is stored (HOST = its
 * primary) and replicated; an existing one is checked against them. The answer says what happens next.
 */
async function register(d: ControlDeps, spec: Record<string, unknown>): Promise<object> {
  const db = d.replication.db;
  const tag = typeof spec.tag === 'string' ? spec.tag : '';
  const decision = registrationCheck(db, tag, d.self.name, { spec });
  switch (decision.kind) {
    case 'reject':
    case 'prompt-operator':
      throw new ControlError('rejected', decision.reason);
    case 'create':
      refused(() => db.upsert(decision.object, d.self.name, Date.now()));
      d.log.info({ tag }, 'registered by the application');
      await d.replication.changed([tag]);
      return { tag, decision: 'created', host: decision.object.host };
    default:
      return { tag, decision: decision.kind, host: db.get(tag)?.host ?? null };
  }
}

// The operator's planned switchover and drain (docs/rejuvenation.md), as pure decisions: whether a request
// may be written, and what it writes. The flows (flows.ts rule 6) carry it out on the source and the
// target; this module only says yes (with the check-and-set write that starts it) or no, with one reason.
import type { HostWrite } from './flows.js';
import type { AppObject, Phase, SwitchoverRecord } from './object.js';

/** The phases a switchover may start from: the app at rest on one node. */
export const AT_REST: readonly Phase[] = ['normal', 'failed-over', 'switched-over'];

export interface SwitchoverContext {
  /** The node writing the request (the operator's). */
  by: string;
  /** Wall-clock ms. */
  now: number;
  /** Membership as the requesting node sees it (itself counts as alive). */
  isAlive(node: string): boolean;
  /** Asked by a drain of the source: the record says so, and the source is kept off (keepOff). */
  drain?: boolean;
  /** An undo of a drain moving the app back: the target's own drain is lifted by the same write. */
  undrain?: boolean;
}

export type SwitchoverDecision = { ok: true; write: HostWrite; record: SwitchoverRecord } | { ok: false; reason: string };

/** `to`: the node the operator named (undefined: the other one). */
export function planSwitchover(o: AppObject, to: string | undefined, ctx: SwitchoverContext): SwitchoverDecision {
  const refuse = (reason: string): SwitchoverDecision => ({ ok: false, reason: `${o.tag}: ${reason}` });
  const from = o.host;
  if (from === null) return refuse(`it is unloaded (HOST none): load it with vigil app load ${o.tag}`);
  const other = from === o.primary ? o.backup : o.primary;
  const target = to ?? other;
  if (target !== o.primary && target !== o.backup) return refuse(`${target} is not one of its nodes (primary ${o.primary}, backup ${o.backup})`);
  if (target === from) return refuse(`it already runs on ${target}`);
  if (!AT_REST.includes(o.phase)) return refuse(`it is ${o.phase} now; try again once that has settled`);
  if (!ctx.isAlive(from)) return refuse(`its host ${from} is not alive: that is a failover, not a switchover`);
  if (!ctx.isAlive(target)) return refuse(`${target} is not alive`);
  if (o.faults.includes(target)) return refuse(`${target} carries a fault mark (vigil app load ${o.tag} on ${target} clears it)`);
  if (o.faults.includes(from)) return refuse(`it faulted on ${from} and is being handed over already`);
  if (o.keepOff === target && !ctx.undrain) return refuse(`${target} is drained (vigil drain ${target} --undo)`);
  const record: SwitchoverRecord = { from, to: target, by: ctx.by, requestedAt: Math.trunc(ctx.now), fromPhase: o.phase, ...(ctx.drain ? { drain: true } : {}) };
  const patch: HostWrite['patch'] = { phase: 'switching-over', switchover: record };
  if (ctx.drain) patch.keepOff = from;
  if (ctx.undrain && o.keepOff === target) patch.keepOff = undefined;
  return { ok: true, write: { patch, ifHost: from }, record };
}

/** What a drain (or its undo) does to one app. */
export type DrainStep =
  /** A switchover off the node (or, undoing, back to it): its write. */
  | { tag: string; action: 'switch'; write: HostWrite; record: SwitchoverRecord }
  /** Only the drain mark (written or lifted): the app is not on the node (or, undoing, stays where it is, why). */
  | { tag: string; action: 'mark'; write: HostWrite; reason?: string }
  /** Nothing can be done: it keeps running where it is (never stopped with nowhere to go). */
  | { tag: string; action: 'stay'; reason: string };

/**
 * Drain `node`: every app hosted there switches to its other node, and every app of the node is kept off
 * it (keepOff) until the drain is undone. An app that cannot move stays, with the reason.
 */
export function planDrain(apps: readonly AppObject[], node: string, ctx: Omit<SwitchoverContext, 'drain' | 'undrain'>): DrainStep[] {
  const steps: DrainStep[] = [];
  for (const o of apps) {
    if (o.primary !== node && o.backup !== node) continue;
    if (o.host === node) {
      const d = planSwitchover(o, undefined, { ...ctx, drain: true });
      if (d.ok) steps.push({ tag: o.tag, action: 'switch', write: d.write, record: d.record });
      else steps.push({ tag: o.tag, action: 'stay', reason: d.reason });
    } else if (o.keepOff !== node) {
      steps.push({ tag: o.tag, action: 'mark', write: { patch: { keepOff: node }, ifHost: o.host } });
    }
  }
  return steps;
}

/**
 * Undo a drain of `node`: the mark is lifted, and an app whose primary is the node, moved off it by the
 * drain and still parked on its backup (switched-over), is switched back (unless `moveBack` is false: a
 * rejuvenated node comes back as the spare, and its apps stay where they run).
 */
export function planUndrain(apps: readonly AppObject[], node: string, ctx: Omit<SwitchoverContext, 'drain' | 'undrain'>, moveBack = true): DrainStep[] {
  const steps: DrainStep[] = [];
  for (const o of apps) {
    if (o.keepOff !== node) continue;
    const movedByDrain = moveBack && o.primary === node && o.host === o.backup && o.phase === 'switched-over' && o.switchover?.drain === true && o.switchover.from === node;
    if (movedByDrain) {
      const d = planSwitchover(o, node, { ...ctx, undrain: true });
      if (d.ok) {
        steps.push({ tag: o.tag, action: 'switch', write: d.write, record: d.record });
        continue;
      }
      steps.push({ tag: o.tag, action: 'mark', write: { patch: { keepOff: undefined }, ifHost: o.host }, reason: `not moved back: ${d.reason}` });
      continue;
    }
    steps.push({ tag: o.tag, action: 'mark', write: { patch: { keepOff: undefined }, ifHost: o.host } });
  }
  return steps;
}

// The power policy, pure: configuration + what the sources reported + the time → what the node does.
// No timers here: the caller passes `now` (a monotonic clock in ms) with every input, asks nextDeadline()
// when to call back, and feeds { type: 'tick' } then. Table-tested in test/unit/power-policy.test.ts.
//
// The rules (issue 5 item 5, seed 002 A.2.1 and A.5):
//  - on battery → warn; with onBattery.graceMs, distress once the source has been on battery that long;
//    power back before then → cancel. graceMs 0 means distress at once; no graceMs means warn only.
//  - on battery because the UPS is testing itself (APC transfer cause 'S', NUT CAL) → notice only, no grace.
//  - low battery (NUT: OB and LB together, as upsmon counts it) or FSD → distress at once.
//  - comms lost → warn only. The last known state stands: a grace period already running keeps running
//    (silence does not mean the mains are back). Optional commsLostOnBatteryMs does what upsmon's DEADTIME
//    does: a UPS last seen on battery that stays silent that long is taken as critical.
//  - distress is latched: one decision, whatever comes after. Power coming back after it is a notice (the
//    node stays out until `vigil rejoin`, seed 002 step 508); nothing here ever "un-distresses".
//  - sources are independent: any source reaching distress decides for the node. (A node fed by two UPSes
//    through redundant supplies wants NUT's MINSUPPLIES arithmetic instead; not done, see docs/power.md.)
import type { PowerEvent, PowerState } from './source.js';

export type DistressReason = 'power-low-battery' | 'power-forced-shutdown' | 'power-on-battery-grace' | 'power-comms-lost-on-battery';
export type SendMode = 'sync' | 'async';

/**
 * Seed 002 A.5's table: a node with battery time left sends asynchronously (the thread that noticed goes on
 * with an orderly shutdown); a UPS saying "now" (LB, FSD) is sent synchronously.
 */
export const DEFAULT_MODES: Readonly<Record<DistressReason, SendMode>> = {
  'power-on-battery-grace': 'async',
  'power-comms-lost-on-battery': 'async',
  'power-low-battery': 'sync',
  'power-forced-shutdown': 'sync',
};

export interface PowerPolicyConfig {
  onBattery?: {
    /** Distress after this long on battery; 0 = at once; undefined = never on battery time alone. */
    graceMs?: number;
  };
  /** upsmon's DEADTIME: a source silent this long while last known on battery counts as critical. Undefined = never. */
  commsLostOnBatteryMs?: number;
  /** Send mode per reason, over DEFAULT_MODES. */
  modes?: Partial<Record<DistressReason, SendMode>>;
}

export type PowerDecision =
  | { action: 'warn'; source: string; text: string }
  | { action: 'notice'; source: string; text: string }
  | { action: 'cancel'; source: string; text: string }
  | { action: 'distress'; source: string; reason: DistressReason; mode: SendMode; text: string };

interface Deadline {
  at: number;
  reason: DistressReason;
  /** When the condition started (for the text). */
  since: number;
}

export interface SourceView {
  state: PowerState | undefined;
  commsLost: boolean;
  grace: Deadline | undefined;
  dead: Deadline | undefined;
}

export interface PolicyState {
  sources: Readonly<Record<string, SourceView>>;
  distressed: { source: string; reason: DistressReason; at: number } | undefined;
}

export type PolicyInput =
  | { type: 'event'; event: PowerEvent; now: number }
  | { type: 'tick'; now: number };

export interface PolicyResult {
  state: PolicyState;
  decisions: PowerDecision[];
}

export function initialPolicyState(): PolicyState {
  return { sources: {}, distressed: undefined };
}

const EMPTY_VIEW: SourceView = { state: undefined, commsLost: false, grace: undefined, dead: undefined };

/** The earliest pending deadline, when the caller must send { type: 'tick' }; undefined when none. */
export function nextDeadline(state: PolicyState): number | undefined {
  if (state.distressed) return undefined;
  let next: number | undefined;
  for (const v of Object.values(state.sources)) {
    for (const d of [v.grace, v.dead]) if (d && (next === undefined || d.at < next)) next = d.at;
  }
  return next;
}

export function decide(config: PowerPolicyConfig, state: PolicyState, input: PolicyInput): PolicyResult {
  const decisions: PowerDecision[] = [];
  const sources: Record<string, SourceView> = { ...state.sources };
  let distressed = state.distressed;
  const modeOf = (r: DistressReason): SendMode => config.modes?.[r] ?? DEFAULT_MODES[r];
  const distress = (source: string, reason: DistressReason, text: string, now: number): void => {
    if (distressed) return;
    distressed = { source, reason, at: now };
    decisions.push({ action: 'distress', source, reason, mode: modeOf(reason), text });
  };

  if (input.type === 'tick') {
    for (const [name, v] of Object.entries(sources)) {
      const due = [v.grace, v.dead].filter((d): d is Deadline => d !== undefined && d.at <= input.now).sort((a, b) => a.at - b.at);
      if (due.length === 0) continue;
      sources[name] = { ...v, grace: v.grace && v.grace.at <= input.now ? undefined : v.grace, dead: v.dead && v.dead.at <= input.now ? undefined : v.dead };
      const d = due[0]!;
      distress(name, d.reason, d.reason === 'power-on-battery-grace'
        ? `on battery for ${Math.round(input.now - d.since)} ms (grace ${config.onBattery?.graceMs} ms)`
        : `no answer for ${Math.round(input.now - d.since)} ms while last known on battery`, input.now);
    }
    return finish(sources, distressed, decisions);
  }

  const { event: e, now } = input;
  const name = e.source;
  const prev = sources[name] ?? EMPTY_VIEW;
  const v: SourceView = { ...prev };
  const what = `${name}: ${e.detail.text}`;
  const graceMs = config.onBattery?.graceMs;

  switch (e.kind) {
    case 'on-battery': {
      v.state = 'on-battery';
      if (e.detail.selfTest) {
        decisions.push({ action: 'notice', source: name, text: `${what} (self-test, not a mains failure)` });
        break;
      }
      if (prev.state === 'low-battery' || prev.state === 'forced-shutdown') {
        decisions.push({ action: 'notice', source: name, text: `${what} (${prev.state === 'low-battery' ? 'battery no longer low' : 'forced shutdown cleared'})` });
        break;
      }
      if (distressed) { decisions.push({ action: 'notice', source: name, text: `${what} (already in distress)` }); break; }
      decisions.push({ action: 'warn', source: name, text: graceMs === undefined ? `${what}: on battery`
        : `${what}: on battery, distress in ${graceMs} ms unless power returns` });
      if (graceMs !== undefined && !v.grace) {
        if (graceMs <= 0) distress(name, 'power-on-battery-grace', `${what}: on battery (grace 0)`, now);
        else v.grace = { at: now + graceMs, reason: 'power-on-battery-grace', since: now };
      }
      break;
    }
    case 'low-battery':
      v.state = 'low-battery';
      distress(name, 'power-low-battery', `${what}: battery low`, now);
      if (distressed && distressed.source !== name) decisions.push({ action: 'notice', source: name, text: `${what} (already in distress)` });
      break;
    case 'forced-shutdown':
      v.state = 'forced-shutdown';
      distress(name, 'power-forced-shutdown', `${what}: forced shutdown`, now);
      if (distressed && distressed.source !== name) decisions.push({ action: 'notice', source: name, text: `${what} (already in distress)` });
      break;
    case 'online': {
      v.state = 'online';
      const pending = v.grace;
      v.grace = undefined;
      v.dead = undefined;
      if (pending && !distressed) decisions.push({ action: 'cancel', source: name, text: `${what}: power back after ${now - pending.since} ms on battery` });
      else if (distressed) decisions.push({ action: 'notice', source: name, text: `${what}: power back; the node stays out until vigil rejoin` });
      else if (prev.state !== undefined && prev.state !== 'online') decisions.push({ action: 'notice', source: name, text: `${what}: power back` });
      break;
    }
    case 'comms-lost': {
      v.commsLost = true;
      decisions.push({ action: 'warn', source: name, text: `${what} (last known: ${prev.state ?? 'nothing yet'})` });
      const ms = config.commsLostOnBatteryMs;
      if (ms !== undefined && prev.state === 'on-battery' && !distressed && !v.dead) v.dead = { at: now + ms, reason: 'power-comms-lost-on-battery', since: now };
      break;
    }
    case 'comms-back':
      v.commsLost = false;
      v.dead = undefined;
      decisions.push({ action: 'notice', source: name, text: what });
      break;
  }
  sources[name] = v;
  return finish(sources, distressed, decisions);
}

function finish(sources: Record<string, SourceView>, distressed: PolicyState['distressed'], decisions: PowerDecision[]): PolicyResult {
  if (distressed) {
    // Latched: no timer is needed any more.
    for (const [k, v] of Object.entries(sources)) if (v.grace || v.dead) sources[k] = { ...v, grace: undefined, dead: undefined };
  }
  return { state: { sources, distressed }, decisions };
}

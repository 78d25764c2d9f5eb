// A schedule: everything one run does, drawn from its seed alone (the layout, each fault, its target, its
// start and its length, the control-socket writes), so that `--seed N` replays the same run. Faults are
// planned against the harness's own resources (a node's power and agent, each of its network links) so
// that two faults never fight over one resource (a power-off does not restore a link another fault cut);
// faults on different resources overlap freely.
import { prng } from '../support/prng.js';
import { layout, type Layout } from './layout.js';

export const NETS = ['lan1', 'lan2'] as const;

export type FaultKind =
  | 'agent-kill'      // kill -9 of the agent alone; started again after `ms`
  | 'agent-restart'   // SIGTERM (an orderly stop), started again `ms` after it exited
  | 'freeze'          // SIGSTOP of the agent process alone, SIGCONT after `ms`
  | 'power'           // powerOff; powerOn and the agent started after `ms`
  | 'cut'             // cable cut of the node on `nets` (one or both), restored after `ms`
  | 'oneway'          // every UDP datagram on `nets` dropped in one direction (`dir`), for `ms`
  | 'lossy'           // a random share (`loss`) of the UDP datagrams on `nets` dropped in `dir`, for `ms`
  | 'app-kill'        // kill -9 of the app's copy on the node (if one runs there)
  | 'app-hang'        // SIGUSR1 to the app's copy on the node: it stops listening (the health probe fails)
  | 'unload-load'     // app.unload on the node; app.load on the app's primary after `ms`
  | 'load'            // app.load on the node (clears a fault mark there)
  | 'approve'         // failback.approve on the node
  | 'deny'            // failback.deny on the node
  | 'switchover'      // an operator's switchover of the app (to its other node) asked on the node; only with `switchovers`
  // The lab rig only (lab/schedule.ts): the shared disk.
  | 'crash-mounted'   // kill -9 of the agent of the node running the app (its file system mounted); started again after `ms`
  | 'busy-mount'      // a process with its cwd in the shared file system on the node that has it mounted, for `ms`
  | 'path-loss';      // the node's path to the shared unit (its iSCSI session's TCP traffic) dropped, for `ms`

export interface Fault {
  id: number;
  kind: FaultKind;
  node: string;
  /** ms after the fault window opens. */
  at: number;
  /** How long the fault lasts (0: instantaneous). */
  ms: number;
  tag?: string;
  nets?: string[];
  dir?: 'in' | 'out' | 'both';
  loss?: number;
  /** The harness resources it holds until healed (`proc:N`, `net:N:lan`): faults on one are run in turn. */
  resources: string[];
}

export interface Write {
  id: number;
  at: number;
  node: string;
  kind: 'attr' | 'marker';
  tag: string;
  /** attr only: the attribute's name. */
  name?: string;
  /** Unique in the run, so the winner of a field can be named. */
  value: string;
}

export interface Schedule {
  seed: number;
  /** Drawn with operator switchovers among the faults (ScheduleOptions.switchovers). */
  switchovers?: boolean;
  layout: Layout;
  faults: Fault[];
  writes: Write[];
}

export interface ScheduleOptions {
  /** Overrides the layout drawn from the seed. */
  nodes?: 2 | 3;
  /** Fault kinds never drawn (exploration: e.g. leave out a kind whose violation is already known). */
  without?: FaultKind[];
  /**
   * Operator switchovers among the faults (weight SWITCHOVER_WEIGHT). Opt-in: without it the kind weighs
   * nothing, so every seed drawn before switchovers existed still draws the schedule it did.
   */
  switchovers?: boolean;
}

/** Faults start within this window; every one of them is healed at most HEAL_BY ms after it opened. */
export const WINDOW_MS = 3500;
export const HEAL_BY_MS = WINDOW_MS + 1500;

// 'switchover' first: weighing nothing there, it can never be the fallback pick (the last kind), so the
// draws of every seed stay what they were before it existed.
const WEIGHTS: [FaultKind, number][] = [
  ['switchover', 0], ['agent-kill', 2], ['agent-restart', 1], ['freeze', 2], ['power', 2], ['cut', 3], ['oneway', 2], ['lossy', 1],
  ['app-kill', 2], ['app-hang', 1], ['unload-load', 1], ['load', 1], ['approve', 1], ['deny', 0.5],
];
const SWITCHOVER_WEIGHT = 2;

/**
 * The draws both rigs' schedules make from one seeded stream (making them draws nothing, so the order of
 * draws, and so every seed's schedule, is the caller's): whole numbers, picks, a fault kind by weight, and
 * the resources a fault holds until it is healed (`proc:N` a node's agent or power, `net:N:lan` one link,
 * and whatever else a rig names), so two faults never hold one at once.
 */
export function scheduleDraws(rand: () => number, healByMs: number) {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const busy = new Map<string, number>();
  return {
    int,
    pick,
    kindBy(kinds: readonly [FaultKind, number][]): () => FaultKind {
      const total = kinds.reduce((s, [, w]) => s + w, 0);
      return () => {
        let r = rand() * total;
        for (const [k, w] of kinds) if ((r -= w) < 0) return k;
        return kinds[kinds.length - 1]![0];
      };
    },
    free: (keys: string[], at: number) => keys.every((k) => (busy.get(k) ?? -1) < at),
    take: (keys: string[], until: number) => { for (const k of keys) busy.set(k, until + 50); },
    /** A fault's length: drawn in [lo, hi], cut to end by healByMs, never below lo. */
    span: (at: number, lo: number, hi: number) => Math.max(lo, Math.min(int(lo, hi), healByMs - at)),
  };
}

export function makeSchedule(seed: number, o: ScheduleOptions = {}): Schedule {
  const rand = prng(seed);
  const { int, pick, kindBy, free, take, span } = scheduleDraws(rand, HEAL_BY_MS);
  const drawnNodes = rand() < 1 / 3 ? 3 : 2; // drawn even when overridden, so the rest of the draws stay put
  const l = layout(o.nodes ?? drawnNodes, rand);
  const weights = WEIGHTS.map(([k, w]): [FaultKind, number] => [k, k === 'switchover' && o.switchovers ? SWITCHOVER_WEIGHT : w]);
  const drawKind = kindBy(weights.filter(([k]) => !(o.without ?? []).includes(k) && (k !== 'app-hang' || l.apps.some((a) => a.monitor))));

  const times = Array.from({ length: int(3, 6) }, () => int(0, WINDOW_MS)).sort((a, b) => a - b);
  const faults: Fault[] = [];
  for (const at of times) {
    for (let attempt = 0; attempt < 8; attempt++) {
      const kind = drawKind();
      const node = pick(l.nodes);
      const app = pick(l.apps);
      const proc = [`proc:${node}`];
      const links = (nets: readonly string[]) => nets.map((n) => `net:${node}:${n}`);
      const f: Fault = { id: faults.length + 1, kind, node, at, ms: 0, resources: [] };
      let keys: string[] = [];
      switch (kind) {
        case 'agent-kill': f.ms = span(at, 300, 3000); keys = proc; break;
        case 'agent-restart': f.ms = span(at, 200, 2000); keys = proc; break;
        case 'freeze': f.ms = span(at, 200, 6000); keys = proc; break;
        // powerOff unplugs every link too: it owns them all until powerOn.
        case 'power': f.ms = span(at, 500, 3000); keys = [...proc, ...links(NETS)]; break;
        case 'cut': f.nets = rand() < 0.6 ? [...NETS] : [pick(NETS)]; f.ms = span(at, 300, 4000); keys = links(f.nets); break;
        case 'oneway': f.nets = rand() < 0.7 ? [...NETS] : [pick(NETS)]; f.dir = rand() < 0.5 ? 'in' : 'out'; f.ms = span(at, 300, 4000); keys = links(f.nets); break;
        case 'lossy': f.nets = rand() < 0.5 ? [...NETS] : [pick(NETS)]; f.dir = pick(['in', 'out', 'both'] as const); f.loss = int(10, 40) / 100; f.ms = span(at, 1000, 4000); keys = links(f.nets); break;
        case 'app-kill': f.tag = app.tag; break;
        case 'app-hang': f.tag = pick(l.apps.filter((a) => a.monitor)).tag; break;
        case 'unload-load': f.tag = app.tag; f.ms = span(at, 500, 3000); break;
        case 'load': f.tag = app.tag; f.node = rand() < 0.5 ? app.primary : app.backup; break;
        case 'approve': case 'deny': f.tag = app.tag; f.node = app.backup; break;
        case 'switchover': f.tag = app.tag; break;
      }
      if (!free(keys, at)) continue;
      take(keys, at + f.ms);
      f.resources = keys;
      faults.push(f);
      break;
    }
  }

  const writes: Write[] = Array.from({ length: int(3, 8) }, () => int(0, HEAL_BY_MS)).sort((a, b) => a - b).map((at, i) => {
    const marker = rand() < 0.3;
    const w: Write = { id: i + 1, at, node: pick(l.nodes), kind: marker ? 'marker' : 'attr', tag: pick(l.apps).tag, value: `s${seed}w${i + 1}` };
    if (!marker) w.name = `k${int(0, 2)}`;
    return w;
  });
  return { seed, layout: l, faults, writes, ...(o.switchovers ? { switchovers: true } : {}) };
}

/** One line per fault, as the timeline prints it. */
export function describeFault(f: Fault): string {
  const what = [
    `#${f.id} ${f.kind} ${f.node}`,
    f.tag && `app ${f.tag}`,
    f.nets && `nets ${f.nets.join('+')}`,
    f.dir && `dir ${f.dir}`,
    f.loss !== undefined && `loss ${Math.round(f.loss * 100)}%`,
    f.ms > 0 && `for ${f.ms} ms`,
  ].filter(Boolean).join(' ');
  return what;
}

export function describeWrite(w: Write): string {
  return `w${w.id} ${w.kind === 'attr' ? `attr.set ${w.tag}.${w.name}` : `marker.set ${w.tag}`}=${w.value} on ${w.node}`;
}

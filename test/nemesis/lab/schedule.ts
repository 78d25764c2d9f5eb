// A lab schedule (docs/nemesis.md, "The lab rig"): the namespace campaign's faults that make sense on a
// shared disk, plus the disk's own, drawn from the seed alone, on a window scaled to the emulated guest's
// timing (failAfterMs 2000 where the namespaces use 400). Two nodes, one app `x` a→b that owns the shared
// unit, mounts its ext4 file system and has a VIP; no control-socket writes (the records are the writes).
import { prng } from '../../support/prng.js';
import type { Layout } from '../layout.js';
import { NETS, scheduleDraws, type Fault, type FaultKind, type Schedule } from '../schedule.js';

/** Faults start within this window; every one is healed at most LAB_HEAL_BY_MS after it opened. */
export const LAB_WINDOW_MS = 8000;
export const LAB_HEAL_BY_MS = LAB_WINDOW_MS + 4000;

const WEIGHTS: [FaultKind, number][] = [
  ['agent-kill', 2], ['crash-mounted', 2], ['agent-restart', 1], ['freeze', 2], ['power', 2], ['cut', 3],
  ['path-loss', 3], ['busy-mount', 2], ['app-kill', 1.5], ['unload-load', 1],
];

export function labLayout(autoRecover: boolean): Layout {
  return { nodes: ['a', 'b'], apps: [{ tag: 'x', primary: 'a', backup: 'b', autoRecover, monitor: false }] };
}

export function makeLabSchedule(seed: number, o: { without?: FaultKind[] } = {}): Schedule {
  const rand = prng(seed);
  const { int, pick, kindBy, free, take, span } = scheduleDraws(rand, LAB_HEAL_BY_MS);
  const l = labLayout(rand() < 0.5);
  const drawKind = kindBy(WEIGHTS.filter(([k]) => !(o.without ?? []).includes(k)));
  // Resources as in the namespace schedule (proc:N, net:N:lan), plus path:N (a node's path to the unit) and
  // busy (the busy mount). crash-mounted picks its node when it begins (where the app runs): it holds both.

  const times = Array.from({ length: int(3, 5) }, () => int(0, LAB_WINDOW_MS)).sort((a, b) => a - b);
  const faults: Fault[] = [];
  for (const at of times) {
    for (let attempt = 0; attempt < 8; attempt++) {
      const kind = drawKind();
      const node = pick(l.nodes);
      const proc = [`proc:${node}`];
      const links = (nets: readonly string[]) => nets.map((n) => `net:${node}:${n}`);
      const f: Fault = { id: faults.length + 1, kind, node, at, ms: 0, resources: [] };
      let keys: string[] = [];
      switch (kind) {
        case 'agent-kill': f.ms = span(at, 500, 6000); keys = proc; break;
        case 'crash-mounted': f.node = 'host'; f.ms = span(at, 500, 6000); keys = l.nodes.map((n) => `proc:${n}`); break;
        case 'agent-restart': f.ms = span(at, 500, 4000); keys = proc; break;
        case 'freeze': f.ms = span(at, 500, 8000); keys = proc; break;
        case 'power': f.ms = span(at, 1000, 6000); keys = [...proc, ...links(NETS), `path:${node}`]; break;
        case 'cut': f.nets = rand() < 0.7 ? [...NETS] : [pick(NETS)]; f.ms = span(at, 1000, 8000); keys = links(f.nets); break;
        // At most 4 s: a longer silence would have the initiator's NOP-Out fail the connection, and the
        // session would log in again on a new TCP port that the rule does not name.
        case 'path-loss': f.ms = span(at, 1000, 4000); keys = [`path:${node}`]; break;
        case 'busy-mount': f.node = 'host'; f.ms = span(at, 1000, 8000); keys = ['busy']; break;
        case 'app-kill': f.node = 'host'; f.tag = 'x'; break;
        case 'unload-load': f.tag = 'x'; f.ms = span(at, 1000, 5000); break;
        default: continue;
      }
      if (!free(keys, at)) continue;
      take(keys, at + f.ms);
      f.resources = keys;
      faults.push(f);
      break;
    }
  }
  return { seed, layout: l, faults, writes: [] };
}

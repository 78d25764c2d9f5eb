// The configuration's `power:` section (src/config/schema.ts, docs/power.md) → the policy's configuration
// and the sources, built but not started: the agent starts them once it listens for their events, so the
// first (initial) event of each cannot be missed. Building opens nothing; only a NUT password file is read.
import { readFile } from 'node:fs/promises';

import type { ContactClosureSourceConfig, PowerConfig, PowerSourceConfig } from '../config/schema.js';
import { ApcSmartSource } from './apc-smart.js';
import { ContactClosureSource, genericupsMapping, type ContactClosureDeps, type ContactClosureMapping, type InputLine } from './contact-closure.js';
import { NutSource } from './nut.js';
import type { DistressReason, PowerPolicyConfig, SendMode } from './policy.js';
import type { PowerSource } from './source.js';

export interface PowerSourceDeps {
  /** Reads a password file (default: fs.readFile as UTF-8). */
  readFile?: (path: string) => Promise<string>;
  /** Wall clock for the events' `at` (default Date.now). */
  clock?: () => number;
  /** For contact closures: the watcher factory and clocks (tests; default the native watcher). */
  contactClosure?: ContactClosureDeps;
}

const REASON_OF_MODE_KEY = {
  onBatteryGrace: 'power-on-battery-grace',
  commsLostOnBattery: 'power-comms-lost-on-battery',
  lowBattery: 'power-low-battery',
  forcedShutdown: 'power-forced-shutdown',
} as const satisfies Record<keyof PowerConfig['modes'], DistressReason>;

export function powerPolicyConfig(power: PowerConfig): PowerPolicyConfig {
  const modes: Partial<Record<DistressReason, SendMode>> = {};
  for (const [key, reason] of Object.entries(REASON_OF_MODE_KEY) as [keyof PowerConfig['modes'], DistressReason][]) {
    const mode = power.modes[key];
    if (mode !== undefined) modes[reason] = mode;
  }
  // Keys left out rather than set to undefined: the policy reads `graceMs === undefined` as "warn only",
  // and an absent key says the same to anyone printing the object.
  return {
    ...(power.onBattery.graceMs !== undefined ? { onBattery: { graceMs: power.onBattery.graceMs } } : {}),
    ...(power.commsLostOnBatteryMs !== undefined ? { commsLostOnBatteryMs: power.commsLostOnBatteryMs } : {}),
    ...(Object.keys(modes).length > 0 ? { modes } : {}),
  };
}

/** The sources of `power.sources`, in order, not started. Rejects when a password file cannot be read. */
export async function createPowerSources(power: PowerConfig, deps: PowerSourceDeps = {}): Promise<PowerSource[]> {
  const read = deps.readFile ?? ((path: string) => readFile(path, 'utf8'));
  const clock = deps.clock ?? Date.now;
  // Every password first: a bad file fails the whole set before any source exists.
  const passwords = await Promise.all(power.sources.map((s) => (s.kind === 'nut' && s.passwordFile !== undefined
    ? readPassword(s.name, s.passwordFile, read) : Promise.resolve(undefined))));
  return power.sources.map((s, i) => buildSource(s, passwords[i], clock, deps.contactClosure));
}

function buildSource(s: PowerSourceConfig, password: string | undefined, clock: () => number, ccDeps: ContactClosureDeps | undefined): PowerSource {
  switch (s.kind) {
    case 'nut':
      return new NutSource({
        name: s.name, host: s.host, port: s.port, ups: s.ups,
        ...(s.user !== undefined ? { user: s.user } : {}), ...(password !== undefined ? { password } : {}),
        pollMs: s.pollMs, timeoutMs: s.timeoutMs, commsLostAfter: s.commsLostAfter,
      }, clock);
    case 'apc-smart':
      return new ApcSmartSource({ name: s.name, device: s.device, pollMs: s.pollMs, timeoutMs: s.timeoutMs, commsLostAfter: s.commsLostAfter }, clock);
    case 'contact-closure':
      return new ContactClosureSource(
        { name: s.name, device: s.device, mapping: contactClosureMapping(s), debounceMs: s.debounceMs },
        { wallClock: clock, ...ccDeps },
      );
  }
}

/**
 * With an upstype, the given keys override its table row the way genericups' OL, LB and CP do: a line
 * given without a polarity is active high ("OL=CTS"), a polarity given without a line keeps the table's
 * line. Without one, the file says everything, and an output not listed in cablePower is held low.
 */
export function contactClosureMapping(s: ContactClosureSourceConfig): ContactClosureMapping {
  const cablePower = s.cablePower && { dtr: s.cablePower.includes('DTR'), rts: s.cablePower.includes('RTS') };
  if (s.upstype !== undefined) {
    const table = genericupsMapping(s.upstype);
    const signal = (k: 'online' | 'lowBattery'): string | undefined => {
      const line = s.lines[k] ?? (s.polarity[k] !== undefined ? table[k]?.line.toUpperCase() : undefined);
      if (line === undefined) return undefined;
      return `${s.polarity[k] === 'active-low' ? '-' : ''}${line}`;
    };
    const ol = signal('online');
    const lb = signal('lowBattery');
    const cp = cablePower && ([cablePower.dtr && 'DTR', cablePower.rts && 'RTS'].filter(Boolean).join('+') || 'none');
    return genericupsMapping(s.upstype, { ...(ol ? { OL: ol } : {}), ...(lb ? { LB: lb } : {}), ...(cp ? { CP: cp } : {}) });
  }
  const rule = (line: string, polarity: string | undefined) => ({ line: line.toLowerCase() as InputLine, activeHigh: polarity !== 'active-low' });
  const online = s.lines.online;
  // crossCheck refuses this in a file; a PowerConfig built in code may still lack it.
  if (online === undefined) throw new Error(`power source ${s.name}: neither lines.online nor an upstype`);
  return {
    online: rule(online, s.polarity.online),
    ...(s.lines.lowBattery !== undefined ? { lowBattery: rule(s.lines.lowBattery, s.polarity.lowBattery) } : {}),
    cablePower: cablePower ?? { dtr: false, rts: false },
  };
}

async function readPassword(source: string, file: string, read: (path: string) => Promise<string>): Promise<string> {
  let text: string;
  try {
    text = await read(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new Error(`power source ${source}: cannot read passwordFile ${file}: ${why}`, { cause: e });
  }
  const password = text.trim();
  // An empty file is most likely one never filled in: said now, naming it, rather than sent as "".
  if (password === '') throw new Error(`power source ${source}: passwordFile ${file} is empty`);
  return password;
}

// The IPMI commands vigil uses, over any transport (/dev/ipmi0 or an RMCP+ session): each encodes its
// request, checks the completion code (IpmiCompletionError otherwise) and decodes its answer.
import { IpmiCompletionError, IpmiProtocolError } from './errors.js';
import type { IpmiRequest, IpmiTransport } from './message.js';

const NetFn = { CHASSIS: 0x00, APP: 0x06, STORAGE: 0x0a } as const;

async function call(t: IpmiTransport, req: IpmiRequest, minLength = 0, timeoutMs?: number): Promise<Buffer> {
  const res = await t.request(req, timeoutMs === undefined ? {} : { timeoutMs });
  if (res.code !== 0) throw new IpmiCompletionError(req.name, res.code);
  if (res.data.length < minLength) throw new IpmiProtocolError(`${req.name}: ${res.data.length} bytes of response data (at least ${minLength})`);
  return res.data;
}

export interface DeviceId {
  deviceId: number;
  deviceRevision: number;
  /** "major.minor", the minor in BCD as the spec encodes it ("9.08"). */
  firmware: string;
  ipmiVersion: string;
  manufacturerId: number;
  productId: number;
  deviceAvailable: boolean;
}

export async function getDeviceId(t: IpmiTransport): Promise<DeviceId> {
  const d = await call(t, { netfn: NetFn.APP, cmd: 0x01, data: Buffer.alloc(0), name: 'Get Device ID' }, 11);
  return {
    deviceId: d[0]!,
    deviceRevision: d[1]! & 0x0f,
    firmware: `${d[2]! & 0x7f}.${d[3]!.toString(16).padStart(2, '0')}`,
    ipmiVersion: `${d[4]! & 0x0f}.${d[4]! >> 4}`,
    manufacturerId: d[6]! | (d[7]! << 8) | ((d[8]! & 0x0f) << 16),
    productId: d.readUInt16LE(9),
    deviceAvailable: (d[2]! & 0x80) === 0,
  };
}

export interface ChassisStatus {
  power: 'on' | 'off';
  /** The last power event's causes, and faults the BMC reports (bits of bytes 1-2 of the answer). */
  powerFault: boolean;
  powerOverload: boolean;
  lastPowerEvent: string[];
}

export async function getChassisStatus(t: IpmiTransport, timeoutMs?: number): Promise<ChassisStatus> {
  const d = await call(t, { netfn: NetFn.CHASSIS, cmd: 0x01, data: Buffer.alloc(0), name: 'Get Chassis Status' }, 3, timeoutMs);
  const last = d[1]!;
  const events = [
    [0x10, 'power on by IPMI command'], [0x08, 'power down by power fault'], [0x04, 'power interlock'],
    [0x02, 'power overload'], [0x01, 'AC failed'],
  ] as const;
  return {
    power: (d[0]! & 0x01) !== 0 ? 'on' : 'off',
    powerFault: (d[0]! & 0x08) !== 0,
    powerOverload: (d[0]! & 0x02) !== 0,
    lastPowerEvent: events.filter(([bit]) => (last & bit) !== 0).map(([, text]) => text),
  };
}

/** Chassis Control's actions (the data byte): off is a hard power-off, soft is the ACPI button. */
export const ChassisAction = { off: 0, on: 1, cycle: 2, reset: 3, soft: 5 } as const;
export type ChassisActionName = keyof typeof ChassisAction;

export async function chassisControl(t: IpmiTransport, action: ChassisActionName, timeoutMs?: number): Promise<void> {
  await call(t, { netfn: NetFn.CHASSIS, cmd: 0x02, data: Buffer.from([ChassisAction[action]]), name: `Chassis Control (${action})` }, 0, timeoutMs);
}

const RESTART_CAUSES: Record<number, string> = {
  0: 'unknown', 1: 'chassis control command', 2: 'reset via pushbutton', 3: 'power-up via power pushbutton',
  4: 'watchdog expiration', 5: 'OEM', 6: 'automatic power-up on AC (always restore)',
  7: 'automatic power-up on AC (restore previous state)', 8: 'reset via PEF', 9: 'power-cycle via PEF',
  10: 'soft reset', 11: 'power-up via RTC wakeup',
};

export async function getSystemRestartCause(t: IpmiTransport): Promise<{ cause: number; text: string }> {
  const d = await call(t, { netfn: NetFn.CHASSIS, cmd: 0x09, data: Buffer.alloc(0), name: 'Get System Restart Cause' }, 1);
  const cause = d[0]! & 0x0f;
  return { cause, text: RESTART_CAUSES[cause] ?? `cause ${cause}` };
}

// ---- Watchdog (IPMI 2.0 section 27) -------------------------------------------------------------------

export const WatchdogAction = { none: 0, reset: 1, 'power-off': 2, 'power-cycle': 3 } as const;
export type WatchdogActionName = keyof typeof WatchdogAction;
/** Timer use 4: "SMS/OS", the one an OS-level agent owns (the BIOS and POST timers are others'). */
export const TIMER_USE_SMS_OS = 0x04;
/** Bit 6 of timer use: don't stop the timer on Set Watchdog Timer if it runs. */
const DONT_STOP = 0x40;
/** The expiration flag of a timer use is bit `use` of the flags byte. */
const SMS_OS_EXPIRED = 1 << TIMER_USE_SMS_OS;

export interface WatchdogSettings {
  action: WatchdogActionName;
  /** The countdown in milliseconds (the BMC counts in 100 ms: rounded up). */
  timeoutMs: number;
}

export async function setWatchdogTimer(t: IpmiTransport, s: WatchdogSettings, keepRunning = false): Promise<void> {
  const ticks = Math.ceil(s.timeoutMs / 100);
  if (ticks < 1 || ticks > 0xffff) throw new RangeError(`watchdog timeout ${s.timeoutMs} ms out of range (100 ms to 6553.5 s)`);
  const data = Buffer.from([
    TIMER_USE_SMS_OS | (keepRunning ? DONT_STOP : 0), WatchdogAction[s.action], 0, SMS_OS_EXPIRED /* clear the SMS/OS expiration flag */,
    ticks & 0xff, ticks >> 8,
  ]);
  await call(t, { netfn: NetFn.APP, cmd: 0x24, data, name: 'Set Watchdog Timer' });
}

/** Starts the countdown from its initial value, or restarts it (the "tickle"). */
export async function resetWatchdogTimer(t: IpmiTransport, timeoutMs?: number): Promise<void> {
  await call(t, { netfn: NetFn.APP, cmd: 0x22, data: Buffer.alloc(0), name: 'Reset Watchdog Timer' }, 0, timeoutMs);
}

export interface WatchdogStatus {
  running: boolean;
  timerUse: number;
  action: WatchdogActionName | 'unknown';
  initialMs: number;
  presentMs: number;
  /** The timers that expired since the flags were last cleared (SMS/OS's: bit 4). */
  expiredSmsOs: boolean;
}

export async function getWatchdogTimer(t: IpmiTransport): Promise<WatchdogStatus> {
  const d = await call(t, { netfn: NetFn.APP, cmd: 0x25, data: Buffer.alloc(0), name: 'Get Watchdog Timer' }, 8);
  const actionCode = d[1]! & 0x07;
  const action = (Object.entries(WatchdogAction).find(([, v]) => v === actionCode)?.[0] ?? 'unknown') as WatchdogActionName | 'unknown';
  return {
    running: (d[0]! & 0x40) !== 0,
    timerUse: d[0]! & 0x07,
    action,
    initialMs: d.readUInt16LE(4) * 100,
    presentMs: d.readUInt16LE(6) * 100,
    expiredSmsOs: (d[3]! & SMS_OS_EXPIRED) !== 0,
  };
}

/** Stops the SMS/OS watchdog (a clean stop of the agent): Set Watchdog Timer without "don't stop", action none. */
export async function disarmWatchdog(t: IpmiTransport): Promise<void> {
  const data = Buffer.from([TIMER_USE_SMS_OS, WatchdogAction.none, 0, 0, 0xff, 0xff]);
  await call(t, { netfn: NetFn.APP, cmd: 0x24, data, name: 'Set Watchdog Timer (disarm)' });
}

// ---- SEL (IPMI 2.0 section 31) ------------------------------------------------------------------------

export interface SelInfo {
  entries: number;
  /** Seconds since 1970 of the last addition, or undefined when the BMC does not know (0xffffffff). */
  lastAddition: number | undefined;
}

export async function getSelInfo(t: IpmiTransport): Promise<SelInfo> {
  const d = await call(t, { netfn: NetFn.STORAGE, cmd: 0x40, data: Buffer.alloc(0), name: 'Get SEL Info' }, 9);
  const last = d.readUInt32LE(5);
  return { entries: d.readUInt16LE(1), lastAddition: last === 0xffffffff ? undefined : last };
}

export interface SelEntry {
  id: number;
  /** 0x02 system event; 0xC0-0xDF OEM timestamped; 0xE0-0xFF OEM. */
  recordType: number;
  timestamp: number | undefined;
  /** For a system event: generator, sensor type and number, event type and data. */
  sensorType?: number;
  sensorNumber?: number;
  eventDirection?: 'assertion' | 'deassertion';
  eventData?: number[];
  raw: Buffer;
}

const SEL_FIRST = 0x0000;
const SEL_LAST = 0xffff;

async function getSelEntry(t: IpmiTransport, id: number): Promise<{ next: number; entry: SelEntry }> {
  const data = Buffer.from([0, 0, id & 0xff, id >> 8, 0, 0xff]); // no reservation, whole record
  const d = await call(t, { netfn: NetFn.STORAGE, cmd: 0x43, data, name: 'Get SEL Entry' }, 18);
  const raw = Buffer.from(d.subarray(2, 18));
  const recordType = raw[2]!;
  const entry: SelEntry = { id: raw.readUInt16LE(0), recordType, timestamp: recordType < 0xe0 ? raw.readUInt32LE(3) : undefined, raw };
  if (recordType === 0x02) {
    entry.sensorType = raw[10]!;
    entry.sensorNumber = raw[11]!;
    entry.eventDirection = (raw[12]! & 0x80) !== 0 ? 'deassertion' : 'assertion';
    entry.eventData = [raw[13]!, raw[14]!, raw[15]!];
  }
  return { next: d.readUInt16LE(0), entry };
}

/** The SEL in order, or its last `last` entries; an empty SEL answers "not present" (0xCB) to its first read. */
export async function readSel(t: IpmiTransport, last?: number): Promise<SelEntry[]> {
  const info = await getSelInfo(t);
  if (info.entries === 0) return [];
  const entries: SelEntry[] = [];
  let id = SEL_FIRST;
  for (let guard = 0; guard <= info.entries + 1 && id !== SEL_LAST; guard++) {
    const { next, entry } = await getSelEntry(t, id);
    entries.push(entry);
    id = next;
  }
  return last === undefined ? entries : entries.slice(-last);
}

/** The sensor type of a watchdog 2 event (the BMC's own record of a watchdog expiring). */
export const SENSOR_TYPE_WATCHDOG2 = 0x23;

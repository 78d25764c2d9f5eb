// `vigil scsi …`: one SCSI command to one path, for field engineers. Human output by default, --json for
// programs; exit codes as sg3_utils (see exit-codes.ts).
import { readFile } from 'node:fs/promises';

import { Command, Option } from 'commander';

import { scanPaths, identify, defaultOpener, type ScannedPath } from '../links/scan.js';
import { benchTestUnitReady } from '../scsi/bench.js';
import * as cdbs from '../scsi/cdb.js';
import { ScsiDevice } from '../scsi/device.js';
import { classify, ScsiStatusError, TransportError } from '../scsi/errors.js';
import {
  parseDeviceIdentification, parseSupportedPages, parseUnitSerialNumber, unitIdentity, VpdPage, type Designator,
} from '../scsi/inquiry.js';
import { formatKey, prTypeName, type PrReservation, type PrType } from '../scsi/pr.js';
import { decodeSense, describeSense } from '../scsi/sense.js';
import { statusName } from '../scsi/status.js';
import { Exit, exitForStatus } from './exit-codes.js';
import { hexDump, keyList, senseJson, statusLine, type Report } from './output.js';
import { act, intOption, keyOption, typeOption, usage } from './run.js';

interface ScsiOptions {
  timeout: number;
  retryUa: number;
}

async function withDevice<T>(path: string, cmd: Command, fn: (dev: ScsiDevice) => Promise<T>): Promise<T> {
  const o = cmd.optsWithGlobals() as ScsiOptions;
  const dev = await ScsiDevice.open(path, { defaultTimeoutMs: o.timeout, unitAttentionRetries: o.retryUa });
  // Reissued unit attentions are news (e.g. "Registrations preempted"): say so, on stderr.
  dev.on('unitAttention', (sense, command) => {
    process.stderr.write(`vigil: ${path}: ${command}: unit attention, reissued: ${describeSense(sense)}\n`);
  });
  try {
    return await fn(dev);
  } finally {
    dev.close();
  }
}

function done(what: string, json: Record<string, unknown>): Report {
  return { json: { status: 'GOOD', ...json }, human: what };
}

function reservationJson(r: PrReservation | null) {
  if (!r) return null;
  return { key: formatKey(r.key), type: r.type ?? `0x${r.typeCode.toString(16)}`, scope: r.scope };
}

function typeText(type: PrType | undefined, code?: number): string {
  return type ? `${type} (${prTypeName(type)})` : `obsolete or reserved type 0x${(code ?? 0).toString(16)}`;
}

function designatorLines(ds: Designator[]): string[] {
  return ds.map((d) => `  ${d.association.padEnd(6)} ${d.type.padEnd(13)} ${d.value}`);
}

async function tur(path: string, _o: unknown, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    try {
      await dev.testUnitReady();
      return { json: { status: 'GOOD', sense: null }, human: 'GOOD' };
    } catch (e) {
      if (!(e instanceof ScsiStatusError)) throw e;
      return {
        json: { status: e.statusName, sense: senseJson(e.sense) },
        human: statusLine(e.statusName, e.sense),
        exitCode: exitForStatus(e.status, e.sense),
      };
    }
  });
}

async function inquiry(path: string, o: { vpd?: number }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    if (o.vpd === undefined) {
      const q = await dev.inquiry();
      const alua = ['no', 'implicit', 'explicit', 'implicit and explicit'][q.tpgs];
      return {
        json: q,
        human: [
          `${q.vendor} ${q.product} ${q.revision}`,
          `  device type ${q.deviceTypeName} (0x${q.deviceType.toString(16)}), qualifier ${q.qualifier}, ${q.versionName}, removable ${q.removable ? 'yes' : 'no'}`,
          `  ALUA ${alua}, multi-port ${q.multiPort ? 'yes' : 'no'}, command queueing ${q.commandQueueing ? 'yes' : 'no'}, protection ${q.protect ? 'yes' : 'no'}`,
        ].join('\n'),
      };
    }
    const page = o.vpd;
    const data = await dev.vpd(page);
    switch (page) {
      case VpdPage.SUPPORTED_PAGES: {
        const pages = parseSupportedPages(data);
        return { json: { page, pages }, human: `supported VPD pages: ${pages.map((p) => `0x${p.toString(16).padStart(2, '0')}`).join(' ')}` };
      }
      case VpdPage.UNIT_SERIAL_NUMBER: {
        const serial = parseUnitSerialNumber(data);
        return { json: { page, serial }, human: `unit serial number: ${serial}` };
      }
      case VpdPage.DEVICE_IDENTIFICATION: {
        const designators = parseDeviceIdentification(data);
        const identity = unitIdentity(designators) ?? null;
        return {
          json: { page, identity, designators: designators.map(({ raw: _raw, ...d }) => d) },
          human: [`identity: ${identity ?? '(none)'}`, 'designators:', ...designatorLines(designators)].join('\n'),
        };
      }
      default:
        return { json: { page, data: data.toString('hex') }, human: `VPD page 0x${page.toString(16)} (${data.length} bytes):\n${hexDump(data)}` };
    }
  });
}

function sizeText(bytes: bigint): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Number(bytes), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

async function capacity(path: string, _o: unknown, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    const c = await dev.readCapacity();
    const extra = c.thinProvisioned === undefined ? '' : `, thin provisioning ${c.thinProvisioned ? 'yes' : 'no'}, protection ${c.protection?.enabled ? `type ${c.protection.type}` : 'no'}`;
    return {
      json: c,
      human: `${c.blocks} blocks of ${c.blockSize} bytes = ${sizeText(c.bytes)} (${c.bytes} bytes), last LBA ${c.lastLba}${extra}`,
    };
  });
}

function reserveRelease(which: 'reserve' | 'release') {
  return async (path: string, o: { size: string }, cmd: Command): Promise<Report> => {
    const ten = o.size === '10';
    return withDevice(path, cmd, async (dev) => {
      if (which === 'reserve') await (ten ? dev.reserve10() : dev.reserve6());
      else await (ten ? dev.release10() : dev.release6());
      const command = `${which === 'reserve' ? 'RESERVE' : 'RELEASE'}(${ten ? 10 : 6})`;
      return done(`${which === 'reserve' ? 'reserved' : 'released'} ${path} with ${command}`, { command });
    });
  };
}

function pathLine(p: ScannedPath): string {
  const what = [p.vendor, p.product].filter(Boolean).join(' ');
  return `  ${p.path.padEnd(10)} ${(p.blockDevice ?? '-').padEnd(10)} ${p.hctl.padEnd(10)} ${what}${p.error ? `  (${p.error})` : ''}`;
}

async function scan(target: string | undefined, _o: unknown, cmd: Command): Promise<Report> {
  const o = cmd.optsWithGlobals() as ScsiOptions;
  const open = defaultOpener({ defaultTimeoutMs: o.timeout });
  let identity: string | undefined;
  if (target?.startsWith('/')) {
    identity = await identify(target, open);
    if (!identity) usage(`${target} names no logical unit (no designator in VPD page 0x83)`);
  } else {
    identity = target;
  }
  const paths = await scanPaths({ open });
  const shown = identity ? paths.filter((p) => p.identity === identity) : paths;
  const byUnit = new Map<string, ScannedPath[]>();
  for (const p of shown) {
    const key = p.identity ?? '(unidentified)';
    byUnit.set(key, [...(byUnit.get(key) ?? []), p]);
  }
  const human = shown.length === 0
    ? identity ? `no path leads to ${identity}` : 'no SCSI generic devices (is the sg module loaded?)'
    : [...byUnit].map(([id, ps]) => [`${id}  (${ps.length} path${ps.length === 1 ? '' : 's'})`, ...ps.map(pathLine)].join('\n')).join('\n');
  return {
    json: { identity: identity ?? null, paths: shown },
    human,
    exitCode: identity && shown.length === 0 ? Exit.FILE_ERROR : Exit.OK,
  };
}

async function prKeys(path: string, _o: unknown, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    const k = await dev.prReadKeys();
    const n = k.keys.length;
    return {
      json: { generation: k.generation, keys: keyList(k.keys) },
      human: [`PR generation 0x${k.generation.toString(16)}, ${n === 0 ? 'no registered keys' : `${n} registered key${n === 1 ? '' : 's'}:`}`,
        ...k.keys.map((x) => `  ${formatKey(x)}`), ...(k.truncated ? ['  (list truncated by the device)'] : [])].join('\n'),
    };
  });
}

async function prReservation(path: string, _o: unknown, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    const r = await dev.prReadReservation();
    const res = r.reservation;
    return {
      json: { generation: r.generation, reservation: reservationJson(res) },
      human: `PR generation 0x${r.generation.toString(16)}, ${res
        ? `reservation held by key ${formatKey(res.key)}, type ${typeText(res.type, res.typeCode)}, scope ${res.scope}`
        : 'no reservation'}`,
    };
  });
}

async function prStatus(path: string, _o: unknown, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    const s = await dev.prReadFullStatus();
    const registrants = s.registrants.map((r) => ({
      key: formatKey(r.key), holder: r.holder, ...(r.holder ? { type: r.type ?? null, scope: r.scope } : {}),
      allTargetPorts: r.allTargetPorts, relativeTargetPort: r.relativeTargetPort, transportId: r.transportId,
    }));
    const lines = s.registrants.map((r) =>
      `  key ${formatKey(r.key)}  port ${r.relativeTargetPort}${r.allTargetPorts ? ' (all ports)' : ''}  ${r.transportId ? `${r.transportId.protocol} ${r.transportId.name}` : ''}` +
      (r.holder ? `  << holder: ${typeText(r.type)}, scope ${r.scope}` : ''));
    return {
      json: { generation: s.generation, registrants },
      human: [`PR generation 0x${s.generation.toString(16)}, ${s.registrants.length} registration${s.registrants.length === 1 ? '' : 's'}`, ...lines].join('\n'),
    };
  });
}

async function prCaps(path: string, _o: unknown, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    const c = await dev.prReportCapabilities();
    const yn = (b: boolean) => (b ? 'yes' : 'no');
    return {
      json: c,
      human: [
        `types supported: ${c.types ? c.types.join(', ') : '(type mask not valid)'}`,
        `persist through power loss: capable ${yn(c.persistThroughPowerLossCapable)}, active ${yn(c.persistThroughPowerLossActive)}`,
        `all target ports ${yn(c.allTargetPorts)}, specify initiator ports ${yn(c.specifyInitiatorPorts)}, compatible reservation handling ${yn(c.compatibleReservationHandling)}, replace lost reservation ${yn(c.replaceLostReservation)}`,
        `allow commands: ${c.allowCommands}`,
      ].join('\n'),
    };
  });
}

async function prRegister(path: string, o: { key: bigint; oldKey?: bigint; ignoreExisting?: boolean; aptpl?: boolean }, cmd: Command): Promise<Report> {
  if (o.ignoreExisting && o.oldKey !== undefined) usage('--old-key and --ignore-existing do not go together');
  return withDevice(path, cmd, async (dev) => {
    await dev.prRegister(o.key, { currentKey: o.oldKey ?? 0n, ignoreExisting: o.ignoreExisting ?? false, aptpl: o.aptpl ?? false });
    return done(`registered key ${formatKey(o.key)} on ${path}${o.aptpl ? ' (persist through power loss)' : ''}`,
      { action: o.ignoreExisting ? 'register-and-ignore-existing-key' : 'register', key: formatKey(o.key) });
  });
}

async function prUnregister(path: string, o: { key: bigint }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    await dev.prUnregister(o.key);
    return done(`unregistered key ${formatKey(o.key)} from ${path}`, { action: 'unregister', key: formatKey(o.key) });
  });
}

async function prReserve(path: string, o: { key: bigint; type: PrType }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    await dev.prReserve(o.key, o.type);
    return done(`reserved ${path} with key ${formatKey(o.key)}, type ${typeText(o.type)}`, { action: 'reserve', key: formatKey(o.key), type: o.type });
  });
}

async function prRelease(path: string, o: { key: bigint; type: PrType }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    await dev.prRelease(o.key, o.type);
    return done(`released the reservation of key ${formatKey(o.key)} on ${path}`, { action: 'release', key: formatKey(o.key), type: o.type });
  });
}

async function prClear(path: string, o: { key: bigint }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    await dev.prClear(o.key);
    return done(`cleared every registration and the reservation on ${path}`, { action: 'clear', key: formatKey(o.key) });
  });
}

async function prPreempt(path: string, o: { key: bigint; victim: bigint; type: PrType; abort?: boolean }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    await dev.prPreempt(o.key, o.victim, o.type, { abort: o.abort ?? false });
    return done(`preempted key ${formatKey(o.victim)}${o.abort ? ' and aborted its commands' : ''}; ${path} holds type ${typeText(o.type)} with key ${formatKey(o.key)}`,
      { action: o.abort ? 'preempt-and-abort' : 'preempt', key: formatKey(o.key), victim: formatKey(o.victim), type: o.type });
  });
}

async function raw(path: string, o: { cdb: string; in?: number; out?: string }, cmd: Command): Promise<Report> {
  let cdb: Buffer;
  try {
    cdb = cdbs.parseCdbHex(o.cdb);
  } catch (e) {
    return usage((e as Error).message);
  }
  if (o.in !== undefined && o.out !== undefined) usage('--in and --out do not go together: a command moves data one way');
  let dataOut: Buffer | undefined;
  if (o.out !== undefined) {
    try {
      dataOut = await readFile(o.out);
    } catch (e) {
      return usage(`cannot read --out ${o.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (dataOut.length === 0) usage(`--out ${o.out} is empty`);
  }
  return withDevice(path, cmd, async (dev) => {
    const r = await dev.raw({ cdb, ...(o.in ? { dataIn: o.in } : {}), ...(dataOut ? { dataOut } : {}) });
    const error = classify(path, cdb, r);
    if (error instanceof TransportError) throw error;
    const sense = r.sense && r.sense.length > 0 ? decodeSense(r.sense) : undefined;
    const name = statusName(r.status);
    // The data-in buffer means something only when the command completed; after a conflict or a check
    // condition it holds whatever the buffer held (and resid is often 0 regardless).
    const data = error ? undefined : r.data;
    const lines = [`${cdbs.commandName(cdb)}: ${statusLine(name, sense)}`];
    if (data) lines.push(`data in: ${data.length} bytes${r.resid ? ` (residual ${r.resid})` : ''}`, hexDump(data));
    return {
      json: { status: name, sense: senseJson(sense), resid: r.resid, data: data ? data.toString('hex') : null },
      human: lines.join('\n'),
      exitCode: exitForStatus(r.status, sense),
    };
  });
}

async function bench(path: string, o: { count: number; depth: number }, cmd: Command): Promise<Report> {
  return withDevice(path, cmd, async (dev) => {
    const r = await benchTestUnitReady(dev.transport, o.count, o.depth);
    const b = r.breakdown;
    return {
      json: r,
      human: [
        `${r.count} TEST UNIT READY in ${r.seconds.toFixed(3)} s, ${r.depth} in flight: ${r.perCommandUs.toFixed(1)} µs per command${r.failures ? `, ${r.failures} not GOOD` : ''}`,
        `  per command: ${b.waitUs.toFixed(1)} µs to reach the device thread, ${b.ioctlUs.toFixed(1)} µs in SG_IO, ${b.deliverUs.toFixed(1)} µs back to the event loop${r.depth === 1 ? `, ${b.jsUs.toFixed(1)} µs in JavaScript` : ''}`,
      ].join('\n'),
      exitCode: r.failures > 0 ? Exit.OTHER : Exit.OK,
    };
  });
}

export function scsiCommand(): Command {
  const scsi = new Command('scsi')
    .description('talk SCSI to one path (/dev/sgN or /dev/sdX) through SG_IO')
    .option('--timeout <ms>', 'SG_IO timeout of each command', intOption(1, 3_600_000), 30_000)
    .option('--retry-ua <n>', 'reissue a command up to n times after a unit attention (default: report it, as sg3_utils does)', intOption(0, 10), 0);

  scsi.command('tur').argument('<dev>').description('TEST UNIT READY: is the unit there and ready for this server?').action(act(tur));
  scsi.command('inquiry').argument('<dev>').description('standard INQUIRY data, or a VPD page')
    .option('--vpd <page>', 'VPD page: 0x00 supported pages, 0x80 serial number, 0x83 identification (hex with 0x, or decimal)', intOption(0, 255))
    .action(act(inquiry));
  scsi.command('capacity').argument('<dev>').description('READ CAPACITY(16), or (10) on units without it').action(act(capacity));
  for (const which of ['reserve', 'release'] as const) {
    scsi.command(which).argument('<dev>')
      .description(which === 'reserve' ? 'SCSI-2 RESERVE the whole unit for this path' : 'SCSI-2 RELEASE a reservation this path holds')
      .addOption(new Option('--size <bytes>', 'CDB size').choices(['6', '10']).default('6'))
      .action(act(reserveRelease(which)));
  }
  scsi.command('scan').argument('[dev-or-identity]', 'a path (list every path to the same unit) or an identity (naa.…)')
    .description('identify every sg device by VPD 0x83 and group paths by logical unit (the slow path)')
    .action(act(scan));

  const pr = scsi.command('pr').description('SCSI-3 persistent reservations');
  pr.command('keys').argument('<dev>').description('READ KEYS: registered reservation keys').action(act(prKeys));
  pr.command('reservation').argument('<dev>').description('READ RESERVATION: holder, type and scope').action(act(prReservation));
  pr.command('status').argument('<dev>').description('READ FULL STATUS: every registration with its initiator port').action(act(prStatus));
  pr.command('caps').argument('<dev>').description('REPORT CAPABILITIES: supported types and features').action(act(prCaps));
  const key = () => new Option('--key <key>', 'reservation key: up to 16 hex digits, 0x optional').argParser(keyOption).makeOptionMandatory();
  const type = () => new Option('--type <type>', 'reservation type: we, ea, wero, earo, wear, eaar').argParser(typeOption).makeOptionMandatory();
  pr.command('register').argument('<dev>').description('REGISTER a key for this path (I_T nexus)')
    .addOption(key())
    .addOption(new Option('--old-key <key>', 'the key this path has now, to replace it').argParser(keyOption))
    .option('--ignore-existing', 'REGISTER AND IGNORE EXISTING KEY: replace whatever key this path has')
    .option('--aptpl', 'persist through power loss')
    .action(act(prRegister));
  pr.command('unregister').argument('<dev>').description('remove this path\'s registration').addOption(key()).action(act(prUnregister));
  pr.command('reserve').argument('<dev>').description('RESERVE the unit with a registered key').addOption(key()).addOption(type()).action(act(prReserve));
  pr.command('release').argument('<dev>').description('RELEASE the reservation this path holds').addOption(key()).addOption(type()).action(act(prRelease));
  pr.command('clear').argument('<dev>').description('CLEAR every registration and the reservation').addOption(key()).action(act(prClear));
  pr.command('preempt').argument('<dev>').description('PREEMPT another key (take over its reservation)')
    .addOption(key())
    .addOption(new Option('--victim <key>', 'the key to remove').argParser(keyOption).makeOptionMandatory())
    .addOption(type())
    .option('--abort', 'PREEMPT AND ABORT: also abort the victim\'s outstanding commands')
    .action(act(prPreempt));

  scsi.command('raw').argument('<dev>').description('send any CDB and show status, sense and data')
    .requiredOption('--cdb <hex>', 'the CDB in hex, e.g. "12 00 00 00 24 00"')
    .option('--in <bytes>', 'data-in: allocation length', intOption(1, 16 * 1024 * 1024))
    .option('--out <file>', 'data-out: send the bytes of this file')
    .action(act(raw));
  scsi.command('bench').argument('<dev>').description('time TEST UNIT READY through vigil\'s SG_IO path')
    .option('--count <n>', 'commands to time', intOption(1, 10_000_000), 10_000)
    .option('--depth <n>', 'commands in flight at once (1: latency, like sg_turs -n)', intOption(1, 256), 1)
    .action(act(bench));
  return scsi;
}

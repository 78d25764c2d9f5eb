// The I/O of `vigil doctor`: reads the configuration, asks the local vigild (when it runs), scans the SCSI
// devices, sends each path of each configured disk one TEST UNIT READY, reads its persistent-reservation
// state through one path, and reads this node's mounts, addresses and stay-out record. Nothing is written
// and nothing is registered. Every failure becomes a fact (an error text), never an exception: the checks
// judge what could not be read.
import type { Config, DiskConfig } from '../config/schema.js';
import type { PairStatus } from '../daemon/last-active.js';
import type { ScannedPath } from '../links/scan.js';
import type { LinkTable } from '../links/table.js';
import type { AddressFact, AgentStatus, BmcFact, DiskFacts, DoctorFacts, PathFact, PowerFact, PrFact, RecordFact, StoredPath } from './facts.js';

export interface GatherOptions {
  config: string;
  /** The node this is; default: found as vigild finds it (host name, then addresses). */
  node?: string;
  /** How long to wait for vigild's answers. */
  agentTimeoutMs?: number;
  /** How long to wait for each BMC's answers. */
  bmcTimeoutMs?: number;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function gatherFacts(o: GatherOptions): Promise<DoctorFacts> {
  const facts: DoctorFacts = {
    configFile: o.config, config: null, configError: null, self: null, selfError: null, keyError: null,
    agent: null, agentError: null, linkTable: '', linkTableError: null, scanError: null, disks: [], addresses: [], stayOut: null, bmcs: [], records: [],
  };
  const { loadConfig } = await import('../config/load.js');
  const { ConfigError, formatProblem } = await import('../config/errors.js');
  let config: Config;
  try {
    config = await loadConfig(o.config);
  } catch (e) {
    const first = e instanceof ConfigError ? e.problems[0] : undefined;
    facts.configError = first ? formatProblem(o.config, first) : message(e);
    return facts;
  }
  facts.config = config;
  facts.linkTable = config.linkTable;
  const { resolveSelf } = await import('../daemon/self.js');
  try {
    facts.self = resolveSelf(config, o.node).name;
  } catch (e) {
    facts.selfError = message(e);
    return facts;
  }
  const keyOwners = await nodeKeys(config, facts);
  await askAgent(config, o.agentTimeoutMs ?? 5000, facts);
  await gatherDisks(config, keyOwners, facts);
  facts.addresses = await gatherAddresses(config, facts.self);
  const { readStayOut } = await import('../daemon/stay-out.js');
  facts.stayOut = (await readStayOut(config.stateDir)) ?? null;
  if (!facts.agent) facts.records = await readRecords(config, facts.self);
  facts.bmcs = await Promise.all(config.nodes.filter((n) => n.bmc).map((n) => askBmc(n.name, n.bmc!, o.bmcTimeoutMs ?? 3000)));
  return facts;
}

/** The priority records of the pairs this node is part of, as vigild would read them at start (daemon/last-active.ts). */
async function readRecords(config: Config, self: string): Promise<RecordFact[]> {
  const { join } = await import('node:path');
  const { readPriorityStore } = await import('../lastactive/priority-store.js');
  const { decide, describeView, viewOf } = await import('../lastactive/decision.js');
  const id = (name: string) => config.nodes.find((n) => n.name === name)?.id ?? 0;
  const out: RecordFact[] = [];
  for (const app of config.apps) {
    if (app.primary !== self && app.backup !== self) continue;
    const peer = app.primary === self ? app.backup : app.primary;
    const file = join(config.stateDir, 'priority', `${app.tag}.priority`);
    let own: ReturnType<typeof viewOf>;
    let missing = false;
    try {
      const reading = await readPriorityStore(file, { cluster: config.cluster, node: id(self), peer: id(peer) });
      missing = reading.kind === 'undeterminable' && reading.slots.length === 0;
      own = viewOf(reading);
    } catch (e) {
      own = { known: false, why: message(e) };
    }
    const window = config.timing.peerProbeMs;
    const d = decide({ self, peer, own, probe: { reachable: false, silentForMs: window }, probedForMs: window, probeWindowMs: window });
    out.push({ tag: app.tag, peer, priority: own.known ? own.priority : null, missing, record: describeView(own), loneStart: d.reason });
  }
  return out;
}

/** One session to the node's BMC and Get Chassis Status, at USER privilege (all a status needs). */
async function askBmc(node: string, bmc: NonNullable<Config['nodes'][number]['bmc']>, timeoutMs: number): Promise<BmcFact> {
  const { openBmc } = await import('../ipmi/bmc.js');
  const { getChassisStatus } = await import('../ipmi/commands.js');
  const { Privilege } = await import('../ipmi/lan-session.js');
  const fact: BmcFact = { node, host: bmc.host, port: bmc.port, power: null, error: null };
  try {
    const session = await openBmc({ ...bmc, kgFile: bmc.kgFile, privilege: Privilege.USER, timeoutMs });
    try {
      fact.power = (await getChassisStatus(session)).power;
    } finally {
      await session.close().catch(() => {});
    }
  } catch (e) {
    fact.error = message(e);
  }
  return fact;
}

/** Reservation key ("0x…") → node name, for every node whose key is known. */
async function nodeKeys(config: Config, facts: DoctorFacts): Promise<Map<string, string>> {
  const { formatKey } = await import('../scsi/pr.js');
  const { reservationKey } = await import('../daemon/disks.js');
  const { loadClusterKey } = await import('../wire/key.js');
  let clusterKey: Buffer | undefined;
  try {
    clusterKey = await loadClusterKey(config.keyFile);
  } catch (e) {
    facts.keyError = `the cluster key cannot be read: ${message(e)}`;
  }
  const out = new Map<string, string>();
  for (const n of config.nodes) {
    if (n.reservationKey !== undefined) out.set(formatKey(n.reservationKey), n.name);
    else if (clusterKey) out.set(formatKey(reservationKey(config, n, clusterKey)), n.name);
  }
  return out;
}

async function askAgent(config: Config, timeoutMs: number, facts: DoctorFacts): Promise<void> {
  const { controlRequest } = await import('../control/client.js');
  try {
    const status = (await controlRequest(config.control.socket, 'status', {}, { timeoutMs })) as AgentStatus;
    // An older vigild without one of these methods: that check is left out.
    const pairs = await controlRequest(config.control.socket, 'priority.show', {}, { timeoutMs }).then((r) => (r as { pairs: PairStatus[] }).pairs, () => null);
    const power = await controlRequest(config.control.socket, 'power.status', {}, { timeoutMs }).then((r) => r as PowerFact, () => null);
    facts.agent = { status, pairs, power };
  } catch (e) {
    facts.agentError = message(e);
  }
}

async function gatherDisks(config: Config, keyOwners: Map<string, string>, facts: DoctorFacts): Promise<void> {
  const { defaultOpener, scanPaths } = await import('../links/scan.js');
  const { loadLinkTable } = await import('../links/table.js');
  // Unit attentions are consumed and the command reissued, as vigild does; a UA a doctor run takes from
  // vigild's own nexus (registrations preempted, say) is also seen by vigild's next pulse, refused.
  const open = defaultOpener({ unitAttentionRetries: 3 });
  let table: LinkTable | undefined;
  try {
    table = await loadLinkTable(config.linkTable);
  } catch (e) {
    facts.linkTableError = message(e);
  }
  let scanned: ScannedPath[] = [];
  try {
    scanned = await scanPaths({ open });
  } catch (e) {
    facts.scanError = message(e);
  }
  for (const d of config.disks) {
    const paths = scanned.filter((p) => p.identity === d.identity);
    const facts1: DiskFacts = {
      name: d.name, identity: d.identity, reservation: d.reservation, heartbeat: d.heartbeat,
      users: config.apps.filter((a) => a.resources.some((r) => (r.kind === 'disk' || r.kind === 'mount') && r.disk === d.name)).map((a) => a.tag),
      paths: [], stored: table ? await storedPaths(table, d, open) : null, pr: null, mounts: [],
    };
    for (const p of paths) facts1.paths.push(await testPath(p, open));
    const through = facts1.paths.find((p) => p.readyOk)?.path;
    if (d.reservation === 'persistent' && through) facts1.pr = await readPr(through, open, keyOwners);
    facts1.mounts = await mountsOf(paths);
    facts.disks.push(facts1);
  }
}

async function storedPaths(table: LinkTable, d: DiskConfig, open: (path: string) => Promise<import('../scsi/device.js').ScsiDevice>): Promise<StoredPath[] | null> {
  const { describeCheck, verifyLinks } = await import('../links/table.js');
  const entry = table.entries.find((e) => e.identity === d.identity);
  if (!entry) return null;
  const [report] = await verifyLinks({ ...table, entries: [entry] }, open);
  return (report?.checks ?? []).map((c) => ({ path: c.path, state: c.state, detail: describeCheck(c) }));
}

async function testPath(p: ScannedPath, open: (path: string) => Promise<import('../scsi/device.js').ScsiDevice>): Promise<PathFact> {
  const { ReservationConflictError, ScsiStatusError } = await import('../scsi/errors.js');
  const { describeSense } = await import('../scsi/sense.js');
  const fact: PathFact = { path: p.path, hctl: p.hctl, blockDevice: p.blockDevice ?? null, ready: 'GOOD', readyOk: true };
  try {
    const dev = await open(p.path);
    try {
      await dev.testUnitReady();
    } finally {
      dev.close();
    }
  } catch (e) {
    fact.readyOk = e instanceof ReservationConflictError;
    fact.ready = e instanceof ScsiStatusError ? (e.sense ? `${e.statusName}: ${describeSense(e.sense)}` : e.statusName) : message(e);
  }
  return fact;
}

async function readPr(path: string, open: (path: string) => Promise<import('../scsi/device.js').ScsiDevice>, keyOwners: Map<string, string>): Promise<PrFact | { error: string }> {
  const { formatKey } = await import('../scsi/pr.js');
  try {
    const dev = await open(path);
    try {
      const s = await dev.prReadFullStatus();
      return {
        path, generation: s.generation,
        registrants: s.registrants.map((r) => {
          const key = formatKey(r.key);
          return { key, node: keyOwners.get(key) ?? null, holder: r.holder, type: r.holder ? r.type ?? null : null, transport: r.transportId ? `${r.transportId.protocol} ${r.transportId.name}` : null };
        }),
      };
    } finally {
      dev.close();
    }
  } catch (e) {
    return { error: `${path}: ${message(e)}` };
  }
}

async function mountsOf(paths: ScannedPath[]): Promise<DiskFacts['mounts']> {
  const { mountsOfDisk } = await import('../daemon/mounts.js');
  const seen = new Map<string, DiskFacts['mounts'][number]>();
  for (const p of paths) {
    if (!p.blockDevice) continue;
    for (const m of await mountsOfDisk(p.blockDevice).catch(() => [])) seen.set(m.mountPoint, { source: m.source, mountPoint: m.mountPoint, fstype: m.fstype });
  }
  return [...seen.values()];
}

async function gatherAddresses(config: Config, self: string): Promise<AddressFact[]> {
  const { hasAddress } = await import('../resources/ip-address.js');
  const out: AddressFact[] = [];
  for (const app of config.apps) {
    for (const r of app.resources) {
      if (r.kind !== 'ip') continue;
      const iface = r.interface[self];
      if (iface === undefined) continue;
      const spec = { address: r.address, prefixLength: r.prefixLength, interface: iface };
      out.push({ tag: app.tag, ...spec, up: await hasAddress(spec).catch(() => false) });
    }
  }
  return out;
}

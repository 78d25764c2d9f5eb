// What `vigil doctor` gathers before it judges anything (gather.ts fills it in; checks.ts judges it without
// any I/O, so its verdicts are unit-tested on facts written by hand).
import type { Config } from '../config/schema.js';
import type { PairStatus } from '../daemon/last-active.js';
import type { StatusLike } from '../daemon/status.js';
import type { StayOut } from '../daemon/stay-out.js';
import type { PrType } from '../scsi/pr.js';

/** One path (sg node) the scan found to a configured disk. */
export interface PathFact {
  path: string;
  hctl: string;
  blockDevice: string | null;
  /** TEST UNIT READY's answer: "GOOD", or the status (with sense) or error. */
  ready: string;
  /** The unit answered: GOOD, or RESERVATION CONFLICT (a SCSI-2 reservation elsewhere: it answers). */
  readyOk: boolean;
}

/** A path the link table stores for a disk, and where it leads now (links/table.ts verifyLinks). */
export interface StoredPath {
  path: string;
  state: 'ok' | 'moved' | 'missing' | 'error';
  detail: string;
}

export interface RegistrantFact {
  /** "0x…", as every vigil command prints keys. */
  key: string;
  /** The node whose key it is; null: no node of this cluster (or the cluster key could not be read). */
  node: string | null;
  holder: boolean;
  type: PrType | null;
  /** The registering initiator ("iscsi iqn…", "sas 0x…"), when the device says. */
  transport: string | null;
}

export interface PrFact {
  /** The path the PR state was read through. */
  path: string;
  generation: number;
  registrants: RegistrantFact[];
}

export interface DiskFacts {
  name: string;
  identity: string;
  reservation: 'persistent' | 'scsi2';
  heartbeat: boolean;
  /** Tags of the apps that have this disk among their resources (disk or mount). */
  users: string[];
  paths: PathFact[];
  /** The link table's paths for this disk; null: the table has no entry for it or could not be read. */
  stored: StoredPath[] | null;
  /** null: a SCSI-2 disk, or no path to read it through. */
  pr: PrFact | { error: string } | null;
  /** File systems of this disk mounted on this node (any of its paths' block devices, partitions, volumes). */
  mounts: { source: string; mountPoint: string; fstype: string }[];
}

/** A service address of an app (an ip resource), and whether it is up on this node's interface. */
export interface AddressFact {
  tag: string;
  address: string;
  prefixLength: number;
  interface: string;
  up: boolean;
}

/** Agent.status() with the disks' lines the control socket adds (daemon/disks.ts describe). */
export interface AgentDisk {
  disk: string;
  holder?: string | null;
  holding?: boolean;
  fenced?: boolean;
  error?: string;
}
export type AgentStatus = StatusLike & { disks?: AgentDisk[] };

/** What `power.status` answers (daemon/control-commands.ts), as far as the power check reads it. */
export interface PowerFact {
  configured: boolean;
  sources?: { source: string; type: string; connected: boolean; state?: string | null; lastError?: string | null }[];
  policy?: { source: string; graceLeftMs: number | null; deadLeftMs: number | null }[];
}

/** A node's BMC (its `bmc:`), asked Get Chassis Status over RMCP+. */
export interface BmcFact {
  node: string;
  host: string;
  port: number;
  power: 'on' | 'off' | null;
  /** Why it could not be asked (no answer, refused login, an unreadable password file). */
  error: string | null;
}

/** An app pair's priority record read from this node's store while no vigild runs, and what a lone start would decide. */
export interface RecordFact {
  tag: string;
  peer: string;
  /** null: undeterminable (missing or unreadable). */
  priority: number | null;
  /** The store file does not exist (a node never started creates it at its first start). */
  missing: boolean;
  record: string;
  /** What this node would do, started alone now with its peer silent (src/lastactive/decision.ts). */
  loneStart: string;
}

export interface DoctorFacts {
  configFile: string;
  config: Config | null;
  /** One line: the first problem of the configuration (vigil config check lists them all). */
  configError: string | null;
  self: string | null;
  selfError: string | null;
  /** The cluster key could not be read: keys of nodes without a configured reservationKey cannot be named. */
  keyError: string | null;
  /** power: null when vigild did not answer power.status (an older one). */
  agent: { status: AgentStatus; pairs: PairStatus[] | null; power?: PowerFact | null } | null;
  agentError: string | null;
  linkTable: string;
  linkTableError: string | null;
  scanError: string | null;
  disks: DiskFacts[];
  addresses: AddressFact[];
  stayOut: StayOut | null;
  bmcs: BmcFact[];
  /** Read from the store only without a running vigild (else agent.pairs says it). */
  records: RecordFact[];
}

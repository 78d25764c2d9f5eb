// Exit codes of `vigil`, the sg3_utils categories (sg_lib.h) wherever one applies, so scripts written
// around sg_turs and sg_persist keep working. docs/cli.md lists them.
import { ConfigError } from '../config/errors.js';
import { BmcCredentialError } from '../ipmi/bmc.js';
import { IpmiAuthError, IpmiCompletionError, IpmiDeviceError, IpmiProtocolError, IpmiTimeoutError, IpmiTransportError } from '../ipmi/errors.js';
import { ControlConnectionError, ControlError, ControlRemoteError, ControlTimeoutError, VigildNotRunningError } from '../control/client.js';
import { LinkTableError, StaleLinkError } from '../links/table.js';
import {
  CheckConditionError, DeviceOpenError, MalformedResponseError, ReservationConflictError, ScsiStatusError,
  ScsiTimeoutError, TransportError,
} from '../scsi/errors.js';
import { SenseKey, type Sense } from '../scsi/sense.js';
import { Status } from '../scsi/status.js';

export const Exit = {
  OK: 0,
  USAGE: 1,
  NOT_READY: 2,
  MEDIUM_HARDWARE: 3,
  LINKS_STALE: 4,
  ILLEGAL_REQUEST: 5,
  UNIT_ATTENTION: 6,
  DATA_PROTECT: 7,
  /** vigil's own: vigild is not running, or did not answer (sg3_utils leaves 8 unused). */
  AGENT_UNREACHABLE: 8,
  INVALID_OPCODE: 9,
  COPY_ABORTED: 10,
  ABORTED_COMMAND: 11,
  MISCOMPARE: 14,
  FILE_ERROR: 15,
  /** vigil's own: vigild has no such app (or attribute). */
  NOT_FOUND: 16,
  /** vigil's own: `vigil doctor` found a check that FAILs. */
  CHECK_FAILED: 17,
  /** vigil's own: vigild refused the request here (wrong_node, or a method it does not know). */
  REFUSED: 19,
  /** sg3_utils' SG_LIB_OS_BASE_ERR: an OS error opening the device exits 50 + errno (errno up to 46). */
  OS_ERROR_BASE: 50,
  NO_SENSE: 20,
  RECOVERED: 21,
  LBA_OUT_OF_RANGE: 22,
  RESERVATION_CONFLICT: 24,
  CONDITION_MET: 25,
  BUSY: 26,
  TASK_SET_FULL: 27,
  ACA_ACTIVE: 28,
  TASK_ABORTED: 29,
  /** vigil's own: the BMC answered a command with a completion code (sg3_utils leaves 30 unused). */
  IPMI_COMMAND: 30,
  /** vigil's own: the BMC refused the session (user, password, Kg, privilege, cipher suite). */
  IPMI_AUTH: 31,
  TIMEOUT: 33,
  TRANSPORT: 35,
  MALFORMED: 97,
  OTHER_SENSE: 98,
  OTHER: 99,
} as const;

/** Bad input from the person at the keyboard: one line, exit 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function exitForSense(sense: Sense | undefined): number {
  if (!sense) return Exit.OTHER_SENSE;
  switch (sense.key) {
    case SenseKey.NO_SENSE: return Exit.NO_SENSE;
    case SenseKey.RECOVERED_ERROR: return Exit.RECOVERED;
    case SenseKey.NOT_READY: return Exit.NOT_READY;
    case SenseKey.MEDIUM_ERROR:
    case SenseKey.HARDWARE_ERROR:
    case SenseKey.BLANK_CHECK: return Exit.MEDIUM_HARDWARE;
    case SenseKey.ILLEGAL_REQUEST:
      if (sense.asc === 0x20 && sense.ascq === 0x00) return Exit.INVALID_OPCODE;
      if (sense.asc === 0x21 && sense.ascq === 0x00) return Exit.LBA_OUT_OF_RANGE;
      return Exit.ILLEGAL_REQUEST;
    case SenseKey.UNIT_ATTENTION: return Exit.UNIT_ATTENTION;
    case SenseKey.DATA_PROTECT: return Exit.DATA_PROTECT;
    case SenseKey.COPY_ABORTED: return Exit.COPY_ABORTED;
    case SenseKey.ABORTED_COMMAND: return Exit.ABORTED_COMMAND;
    case SenseKey.MISCOMPARE: return Exit.MISCOMPARE;
    default: return Exit.OTHER_SENSE;
  }
}

export function exitForStatus(status: number, sense: Sense | undefined): number {
  switch (status) {
    case Status.GOOD: return Exit.OK;
    case Status.CHECK_CONDITION: return exitForSense(sense);
    case Status.CONDITION_MET: return Exit.CONDITION_MET;
    case Status.BUSY: return Exit.BUSY;
    case Status.RESERVATION_CONFLICT: return Exit.RESERVATION_CONFLICT;
    case Status.TASK_SET_FULL: return Exit.TASK_SET_FULL;
    case Status.ACA_ACTIVE: return Exit.ACA_ACTIVE;
    case Status.TASK_ABORTED: return Exit.TASK_ABORTED;
    default: return Exit.OTHER;
  }
}

export function exitForError(e: unknown): number {
  if (e instanceof UsageError || e instanceof RangeError) return Exit.USAGE;
  if (e instanceof DeviceOpenError) return e.errno > 0 && e.errno <= 46 ? Exit.OS_ERROR_BASE + e.errno : Exit.OS_ERROR_BASE;
  if (e instanceof ReservationConflictError) return Exit.RESERVATION_CONFLICT;
  if (e instanceof CheckConditionError) return exitForSense(e.sense);
  if (e instanceof ScsiStatusError) return exitForStatus(e.status, e.sense);
  if (e instanceof ScsiTimeoutError) return Exit.TIMEOUT;
  if (e instanceof TransportError) return Exit.TRANSPORT;
  if (e instanceof MalformedResponseError) return Exit.MALFORMED;
  if (e instanceof StaleLinkError) return Exit.LINKS_STALE;
  if (e instanceof LinkTableError) return Exit.FILE_ERROR;
  if (e instanceof ConfigError) return Exit.FILE_ERROR;
  if (e instanceof ControlError) return exitForControlError(e);
  if (e instanceof IpmiTimeoutError) return Exit.TIMEOUT;
  if (e instanceof IpmiTransportError) return Exit.TRANSPORT;
  if (e instanceof IpmiCompletionError) return e.transport ? Exit.TRANSPORT : Exit.IPMI_COMMAND;
  if (e instanceof IpmiAuthError) return Exit.IPMI_AUTH;
  if (e instanceof IpmiProtocolError) return Exit.MALFORMED;
  if (e instanceof IpmiDeviceError) return e.errno > 0 && e.errno <= 46 ? Exit.OS_ERROR_BASE + e.errno : Exit.OS_ERROR_BASE;
  if (e instanceof BmcCredentialError) return Exit.FILE_ERROR;
  return Exit.OTHER;
}

/** The control socket's failures: the client's own (connection) and the agent's answers (remote codes). */
export function exitForControlError(e: ControlError): number {
  if (e instanceof VigildNotRunningError || e instanceof ControlTimeoutError) return Exit.AGENT_UNREACHABLE;
  if (e.code === 'EACCES' || e.code === 'unauthorized' || e.code === 'forbidden') return Exit.OS_ERROR_BASE + 13; // as a device open: 50 + EACCES
  if (e instanceof ControlConnectionError) return Exit.AGENT_UNREACHABLE;
  if (e instanceof ControlRemoteError) {
    switch (e.code) {
      case 'not_found': return Exit.NOT_FOUND;
      case 'invalid_params':
      case 'invalid_request': return Exit.USAGE;
      case 'internal': return Exit.OTHER;
      default: return Exit.REFUSED; // wrong_node, unknown_method (an older vigild), and any code of the agent's own
    }
  }
  return Exit.OTHER;
}

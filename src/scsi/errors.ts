// Typed SCSI errors. A command either succeeds or rejects with one of these; callers branch on the class
// (a reservation conflict means "someone else owns the disk", a unit attention "something changed,
// retry", a transport error "this path is sick") rather than on numbers.
import { commandName } from './cdb.js';
import { decodeSense, describeSense, SenseKey, type Sense } from './sense.js';
import { driverStatusIsError, driverStatusName, hostStatusName, hostStatusText, Status, statusName } from './status.js';
import type { ScsiResult } from './transport.js';

/** A response too short or inconsistent to parse. */
export class MalformedResponseError extends Error {
  override name = 'MalformedResponseError';
}

export class ScsiError extends Error {
  override name = 'ScsiError';
  readonly path: string;
  readonly command: string;
  /** `op`: the CDB sent, or the name of what was done instead of a command ('LOGICAL UNIT RESET'). */
  constructor(path: string, op: Buffer | string, detail: string) {
    const command = typeof op === 'string' ? op : commandName(op);
    super(`${path}: ${command}: ${detail}`);
    this.path = path;
    this.command = command;
  }
}

/** The device answered with a status other than GOOD. */
export class ScsiStatusError extends ScsiError {
  override name = 'ScsiStatusError';
  readonly status: number;
  readonly statusName: string;
  readonly sense: Sense | undefined;
  constructor(path: string, cdb: Buffer, status: number, sense?: Sense) {
    super(path, cdb, sense ? describeSense(sense) : statusName(status));
    this.status = status;
    this.statusName = statusName(status);
    this.sense = sense;
  }
}

/** Another I_T nexus holds a reservation that forbids this command. */
export class ReservationConflictError extends ScsiStatusError {
  override name = 'ReservationConflictError';
}

/** CHECK CONDITION; the subclasses name the sense keys callers act on. */
export class CheckConditionError extends ScsiStatusError {
  override name = 'CheckConditionError';
}

/** The unit reports a change (reset, registrations preempted, ...); the command was not executed. */
export class UnitAttentionError extends CheckConditionError {
  override name = 'UnitAttentionError';
}

export class NotReadyError extends CheckConditionError {
  override name = 'NotReadyError';
}

export class IllegalRequestError extends CheckConditionError {
  override name = 'IllegalRequestError';
}

/**
 * The command did not get a status from the target: the system call failed, the initiator side gave up
 * (host status), or the driver did. errno/code are set when the system call itself failed.
 */
export class TransportError extends ScsiError {
  override name = 'TransportError';
  readonly errno: number | undefined;
  readonly code: string | undefined;
  readonly hostStatus: number;
  readonly driverStatus: number;
  constructor(path: string, op: Buffer | string, detail: string, fields: { errno?: number; code?: string; hostStatus?: number; driverStatus?: number } = {}) {
    super(path, op, detail);
    this.errno = fields.errno;
    this.code = fields.code;
    this.hostStatus = fields.hostStatus ?? 0;
    this.driverStatus = fields.driverStatus ?? 0;
  }
}

/**
 * No answer in time. `wedged` is true when vigil's own watchdog gave up because the kernel never returned
 * the command (it may still reach the device; the path refuses further commands until it comes back);
 * false when the kernel's SCSI timeout handling reported the timeout.
 */
export class ScsiTimeoutError extends TransportError {
  override name = 'ScsiTimeoutError';
  readonly wedged: boolean;
  constructor(path: string, op: Buffer | string, detail: string, wedged: boolean, fields: { hostStatus?: number; driverStatus?: number } = {}) {
    super(path, op, detail, { ...fields, code: 'ETIMEDOUT' });
    this.wedged = wedged;
  }
}

const DID_TIME_OUT = 0x03;
const DRIVER_TIMEOUT = 0x06;

/**
 * Judges a result: undefined for success (GOOD, CONDITION MET, or CHECK CONDITION with RECOVERED ERROR,
 * where the command completed and its data is valid), else the error to throw.
 */
export function classify(path: string, cdb: Buffer, r: ScsiResult): ScsiError | undefined {
  if (r.hostStatus !== 0) {
    const detail = `${hostStatusName(r.hostStatus)}: ${hostStatusText(r.hostStatus)}`;
    if (r.hostStatus === DID_TIME_OUT) return new ScsiTimeoutError(path, cdb, detail, false, r);
    return new TransportError(path, cdb, detail, r);
  }
  if (driverStatusIsError(r.driverStatus)) {
    const detail = `${driverStatusName(r.driverStatus)} (driver status 0x${r.driverStatus.toString(16)})`;
    if ((r.driverStatus & 0x0f) === DRIVER_TIMEOUT) return new ScsiTimeoutError(path, cdb, detail, false, r);
    return new TransportError(path, cdb, detail, r);
  }
  switch (r.status) {
    case Status.GOOD:
    case Status.CONDITION_MET:
      return undefined;
    case Status.RESERVATION_CONFLICT:
      return new ReservationConflictError(path, cdb, r.status);
    case Status.CHECK_CONDITION: {
      const sense = r.sense && r.sense.length > 0 ? decodeSense(r.sense) : undefined;
      if (!sense) return new CheckConditionError(path, cdb, r.status);
      switch (sense.key) {
        case SenseKey.RECOVERED_ERROR: return undefined;
        case SenseKey.UNIT_ATTENTION: return new UnitAttentionError(path, cdb, r.status, sense);
        case SenseKey.NOT_READY: return new NotReadyError(path, cdb, r.status, sense);
        case SenseKey.ILLEGAL_REQUEST: return new IllegalRequestError(path, cdb, r.status, sense);
        default: return new CheckConditionError(path, cdb, r.status, sense);
      }
    }
    default:
      return new ScsiStatusError(path, cdb, r.status);
  }
}

/** The path could not be opened as a SCSI device. */
export class DeviceOpenError extends Error {
  override name = 'DeviceOpenError';
  readonly path: string;
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  constructor(path: string, errno: number, code: string, syscall: string, detail: string) {
    super(`${path}: ${detail}`);
    this.path = path;
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

/**
 * Refused without being sent: an earlier command on this path never came back from the kernel, so
 * anything queued behind it would wait forever too. Clears when that command returns.
 */
export class PathWedgedError extends TransportError {
  override name = 'PathWedgedError';
}

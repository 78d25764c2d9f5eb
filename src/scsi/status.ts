// SCSI status bytes (SAM-5) and the Linux pass-through's host and driver status codes.

export const Status = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  INTERMEDIATE: 0x10,
  INTERMEDIATE_CONDITION_MET: 0x14,
  RESERVATION_CONFLICT: 0x18,
  COMMAND_TERMINATED: 0x22,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;

const STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'GOOD'],
  [0x02, 'CHECK CONDITION'],
  [0x04, 'CONDITION MET'],
  [0x08, 'BUSY'],
  [0x10, 'INTERMEDIATE'],
  [0x14, 'INTERMEDIATE-CONDITION MET'],
  [0x18, 'RESERVATION CONFLICT'],
  [0x22, 'COMMAND TERMINATED'],
  [0x28, 'TASK SET FULL'],
  [0x30, 'ACA ACTIVE'],
  [0x40, 'TASK ABORTED'],
]);

/** "GOOD", "RESERVATION CONFLICT", ...; an unassigned value reads "STATUS 0x.." */
export function statusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `STATUS 0x${hex2(status)}`;
}

// Linux DID_* codes (include/scsi/scsi_status.h): how the initiator side fared, apart from the target.
const HOST_STATUS_NAMES: ReadonlyMap<number, [string, string]> = new Map([
  [0x00, ['DID_OK', 'no error']],
  [0x01, ['DID_NO_CONNECT', 'could not connect to the target']],
  [0x02, ['DID_BUS_BUSY', 'bus stayed busy through the timeout']],
  [0x03, ['DID_TIME_OUT', 'the command timed out']],
  [0x04, ['DID_BAD_TARGET', 'bad target']],
  [0x05, ['DID_ABORT', 'the command was aborted']],
  [0x06, ['DID_PARITY', 'parity error']],
  [0x07, ['DID_ERROR', 'internal error in the host adapter']],
  [0x08, ['DID_RESET', 'reset by the host adapter']],
  [0x09, ['DID_BAD_INTR', 'unexpected interrupt']],
  [0x0a, ['DID_PASSTHROUGH', 'force command past the mid-layer']],
  [0x0b, ['DID_SOFT_ERROR', 'the low-level driver wants a retry']],
  [0x0c, ['DID_IMM_RETRY', 'retry without decrementing the retry count']],
  [0x0d, ['DID_REQUEUE', 'requeue the command']],
  [0x0e, ['DID_TRANSPORT_DISRUPTED', 'transport disrupted, the path may come back']],
  [0x0f, ['DID_TRANSPORT_FAILFAST', 'transport class fast-failed the command']],
  [0x11, ['DID_NEXUS_FAILURE', 'permanent nexus failure, retrying on another path will not help']],
  [0x12, ['DID_ALLOC_FAILURE', 'space allocation on the device failed']],
  [0x13, ['DID_MEDIUM_ERROR', 'medium error']],
  [0x14, ['DID_TRANSPORT_MARGINAL', 'transport is marginal']],
]);

export function hostStatusName(code: number): string {
  return HOST_STATUS_NAMES.get(code)?.[0] ?? `DID_0x${hex2(code)}`;
}

export function hostStatusText(code: number): string {
  return HOST_STATUS_NAMES.get(code)?.[1] ?? `host status 0x${hex2(code)}`;
}

// Linux DRIVER_* codes: low nibble only; DRIVER_SENSE (0x08) just says sense bytes are present.
export const DRIVER_SENSE = 0x08;
const DRIVER_STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'DRIVER_OK'],
  [0x01, 'DRIVER_BUSY'],
  [0x02, 'DRIVER_SOFT'],
  [0x03, 'DRIVER_MEDIA'],
  [0x04, 'DRIVER_ERROR'],
  [0x05, 'DRIVER_INVALID'],
  [0x06, 'DRIVER_TIMEOUT'],
  [0x07, 'DRIVER_HARD'],
  [0x08, 'DRIVER_SENSE'],
]);

export function driverStatusName(code: number): string {
  return DRIVER_STATUS_NAMES.get(code & 0x0f) ?? `DRIVER_0x${hex2(code)}`;
}

/** A driver status that means the command failed below the target (anything but OK and SENSE). */
export function driverStatusIsError(code: number): boolean {
  const low = code & 0x0f;
  return low !== 0 && low !== DRIVER_SENSE;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

// The boundary between the SCSI library and whatever carries commands: the native SG_IO path in
// production and in the lab, a scripted fake in unit tests of pure logic.

export interface ScsiRequest {
  cdb: Buffer;
  /** Allocation length for a data-in command. */
  dataIn?: number;
  /** Bytes for a data-out command. */
  dataOut?: Buffer;
  /** SG_IO timeout; the transport's default when absent. */
  timeoutMs?: number;
}

/** What came back: the device's answer, not yet judged. Status GOOD with host/driver 0 is success. */
export interface ScsiResult {
  status: number;
  hostStatus: number;
  driverStatus: number;
  /** Bytes of the data-in/out buffer not transferred. */
  resid: number;
  sense?: Buffer;
  /** Data-in bytes actually transferred. */
  data?: Buffer;
  /** Where the time went, in microseconds; zero from transports that cannot tell. */
  timing: CommandTiming;
}

export interface CommandTiming {
  /** Submission to the device thread picking the command up (thread wake-up + commands ahead). */
  waitUs: number;
  /** The SG_IO ioctl itself: kernel, fabric and target. */
  ioctlUs: number;
  /** End of the ioctl to the result reaching JavaScript (event-loop wake-up). */
  deliverUs: number;
}

/** LOGICAL UNIT RESET ('lun') or TARGET RESET ('target'): task management, not a command. */
export type ResetKind = 'lun' | 'target';

/** What a reset is called in messages and errors (SAM's names of the task management functions). */
export const RESET_NAMES: Record<ResetKind, string> = { lun: 'LOGICAL UNIT RESET', target: 'TARGET RESET' };

export interface ScsiTransport {
  readonly path: string;
  execute(request: ScsiRequest): Promise<ScsiResult>;
  /**
   * Sends a reset along this path, in order with the commands (absent: the transport cannot). Resolves
   * when the initiator's driver reports it done; `timeoutMs` bounds the wait (the ioctl has no deadline of
   * its own: each driver decides how long its reset may take, tcm_loop without limit).
   */
  reset?(kind: ResetKind, timeoutMs?: number): Promise<CommandTiming>;
  close(): void;
}

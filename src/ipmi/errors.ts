// Typed IPMI errors. A request either answers or rejects with one of these; the fence and the CLI branch on
// the class: a BMC that cannot be reached or did not answer (transport) is not the same as a BMC that
// answered "no" (a command's completion code), nor as credentials it refused.

/** The BMC, or the path to it, did not carry the request: no answer before the deadline, a link down. */
export class IpmiTransportError extends Error {
  override name = 'IpmiTransportError';
}

/** No answer before the request's deadline (after every retransmission). */
export class IpmiTimeoutError extends IpmiTransportError {
  override name = 'IpmiTimeoutError';
}

/** The BMC refused the session: an unknown user, a wrong password, a cipher suite or role it does not allow. */
export class IpmiAuthError extends Error {
  override name = 'IpmiAuthError';
}

/** A packet or response too short, or inconsistent, to be what it claims. */
export class IpmiProtocolError extends Error {
  override name = 'IpmiProtocolError';
}

/** No local BMC device (/dev/ipmi0 and its other names), or it could not be opened. */
export class IpmiDeviceError extends Error {
  override name = 'IpmiDeviceError';
  readonly errno: number;
  constructor(message: string, errno: number) {
    super(message);
    this.errno = errno;
  }
}

// Completion codes that say the request did not reach the BMC's command handler (the kernel's or the
// BMC's own transport), as opposed to a command's answer (IPMI 2.0 table 5-2).
const TRANSPORT_CODES = new Set([0xc3, 0xd2, 0xff]);

const CODE_TEXT: Record<number, string> = {
  0xc0: 'node busy',
  0xc1: 'invalid command',
  0xc2: 'command invalid for the given LUN',
  0xc3: 'timeout while processing the command',
  0xc4: 'out of space',
  0xc5: 'reservation cancelled or invalid reservation ID',
  0xc6: 'request data truncated',
  0xc7: 'request data length invalid',
  0xc8: 'request data field length limit exceeded',
  0xc9: 'parameter out of range',
  0xca: 'cannot return the number of requested data bytes',
  0xcb: 'requested sensor, data or record not present',
  0xcc: 'invalid data field in request',
  0xcd: 'command illegal for the specified sensor or record type',
  0xce: 'command response could not be provided',
  0xcf: 'cannot execute a duplicated request',
  0xd0: 'SDR repository in update mode',
  0xd1: 'device in firmware update mode',
  0xd2: 'BMC initialization in progress',
  0xd3: 'destination unavailable',
  0xd4: 'insufficient privilege level',
  0xd5: 'command not supported in the present state',
  0xd6: 'command sub-function disabled or unavailable',
  0xff: 'unspecified error',
};

export function completionCodeText(code: number): string {
  return CODE_TEXT[code] ?? `completion code 0x${code.toString(16).padStart(2, '0')}`;
}

/** The BMC answered a command with a completion code other than 0. */
export class IpmiCompletionError extends Error {
  override name = 'IpmiCompletionError';
  readonly code: number;
  /** 0xC3, 0xD2, 0xFF: the request did not get through (a hung or starting BMC), not a refusal of this command. */
  readonly transport: boolean;
  constructor(command: string, code: number) {
    super(`${command}: ${completionCodeText(code)} (0x${code.toString(16).padStart(2, '0')})`);
    this.code = code;
    this.transport = TRANSPORT_CODES.has(code);
  }
}

// The IPMI request and response as every transport carries them (netfn, command, data; a completion
// code first in every response), and the IPMB-style framing the LAN wraps them in: addresses, the
// requester's sequence number (how a response is matched to its request) and two checksums.
import { IpmiProtocolError } from './errors.js';

export interface IpmiRequest {
  netfn: number;
  cmd: number;
  data: Buffer;
  /** A name for errors and logs ('Get Device ID'). */
  name: string;
}

export interface IpmiResponse {
  /** The completion code: 0 is success. */
  code: number;
  /** The response data after the completion code. */
  data: Buffer;
}

/** Anything that carries a request to a BMC and brings back its response: /dev/ipmi0, an RMCP+ session. */
export interface IpmiTransport {
  request(req: IpmiRequest, opts?: { timeoutMs?: number }): Promise<IpmiResponse>;
  close(): Promise<void>;
}

/** The BMC's address on the IPMB (the responder of every request here). */
export const BMC_SLAVE_ADDRESS = 0x20;
/** The remote console's software ID as requester (IPMI 2.0 section 5.5: 0x81 for a remote console). */
export const REMOTE_CONSOLE_ADDRESS = 0x81;

/** The two's-complement checksum: the bytes and it sum to 0 mod 256. */
export function checksum(bytes: Buffer): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** rsAddr, netFn/rsLUN, chk1, rqAddr, rqSeq/rqLUN, cmd, data, chk2. */
export function encodeLanRequest(req: IpmiRequest, rqSeq: number): Buffer {
  const head = Buffer.from([BMC_SLAVE_ADDRESS, (req.netfn << 2) & 0xfc]);
  const body = Buffer.concat([Buffer.from([REMOTE_CONSOLE_ADDRESS, (rqSeq << 2) & 0xfc, req.cmd]), req.data]);
  return Buffer.concat([head, Buffer.from([checksum(head)]), body, Buffer.from([checksum(body)])]);
}

export interface LanResponse extends IpmiResponse {
  netfn: number;
  cmd: number;
  rqSeq: number;
}

/** rqAddr, netFn/rqLUN, chk1, rsAddr, rqSeq/rsLUN, cmd, completion code, data, chk2. */
export function decodeLanResponse(msg: Buffer): LanResponse {
  if (msg.length < 8) throw new IpmiProtocolError(`IPMI response of ${msg.length} bytes (at least 8)`);
  if (checksum(msg.subarray(0, 2)) !== msg[2]) throw new IpmiProtocolError('IPMI response: bad header checksum');
  if (checksum(msg.subarray(3, msg.length - 1)) !== msg[msg.length - 1]) throw new IpmiProtocolError('IPMI response: bad data checksum');
  return {
    netfn: msg[1]! >> 2,
    rqSeq: msg[4]! >> 2,
    cmd: msg[5]!,
    code: msg[6]!,
    data: Buffer.from(msg.subarray(7, msg.length - 1)),
  };
}

/** The request a LAN request frame carries (used by the test BMC, and to check the framing both ways). */
export function decodeLanRequest(msg: Buffer): { netfn: number; cmd: number; rqSeq: number; rqAddr: number; data: Buffer } {
  if (msg.length < 7) throw new IpmiProtocolError(`IPMI request of ${msg.length} bytes (at least 7)`);
  if (checksum(msg.subarray(0, 2)) !== msg[2]) throw new IpmiProtocolError('IPMI request: bad header checksum');
  if (checksum(msg.subarray(3, msg.length - 1)) !== msg[msg.length - 1]) throw new IpmiProtocolError('IPMI request: bad data checksum');
  return { netfn: msg[1]! >> 2, rqAddr: msg[3]!, rqSeq: msg[4]! >> 2, cmd: msg[5]!, data: Buffer.from(msg.subarray(6, msg.length - 1)) };
}

/** The response frame for a request frame (the test BMC's side). */
export function encodeLanResponse(req: { netfn: number; cmd: number; rqSeq: number; rqAddr: number }, code: number, data: Buffer): Buffer {
  const head = Buffer.from([req.rqAddr, ((req.netfn | 1) << 2) & 0xfc]);
  const body = Buffer.concat([Buffer.from([BMC_SLAVE_ADDRESS, (req.rqSeq << 2) & 0xfc, req.cmd, code]), data]);
  return Buffer.concat([head, Buffer.from([checksum(head)]), body, Buffer.from([checksum(body)])]);
}

// A scripted ScsiTransport for unit tests of pure logic (retry policy, error typing, CDB choice): each
// execute() takes the next scripted answer and records the request.
import type { ScsiRequest, ScsiResult, ScsiTransport } from '../../src/scsi/transport.js';

export type Answer = Partial<Omit<ScsiResult, 'timing'>> | ((req: ScsiRequest) => Partial<Omit<ScsiResult, 'timing'>>);

export class FakeTransport implements ScsiTransport {
  readonly path: string;
  readonly requests: ScsiRequest[] = [];
  closed = false;
  private readonly answers: Answer[];

  constructor(answers: Answer[], path = '/dev/sgFAKE') {
    this.answers = [...answers];
    this.path = path;
  }

  async execute(req: ScsiRequest): Promise<ScsiResult> {
    this.requests.push(req);
    const next = this.answers.shift();
    if (next === undefined) throw new Error(`fake transport: no answer scripted for request ${this.requests.length}`);
    const a = typeof next === 'function' ? next(req) : next;
    return { status: 0, hostStatus: 0, driverStatus: 0, resid: 0, timing: { waitUs: 1, ioctlUs: 2, deliverUs: 3 }, ...a };
  }

  close(): void {
    this.closed = true;
  }
}

/** Fixed-format sense: key/asc/ascq. */
export function fixedSense(key: number, asc: number, ascq: number): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = key;
  s[7] = 10;
  s[12] = asc;
  s[13] = ascq;
  return s;
}

export const UA_PREEMPTED = { status: 0x02, sense: fixedSense(0x6, 0x2a, 0x05) };
export const UA_RESET = { status: 0x02, sense: fixedSense(0x6, 0x29, 0x00) };
export const CONFLICT = { status: 0x18 };

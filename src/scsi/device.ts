// A logical unit seen through one path, with typed async methods. Builds CDBs, judges results into typed
// errors and parses responses; the transport carries the bytes.
//
// Unit attention retry policy. A command answered with CHECK CONDITION / UNIT ATTENTION was not executed
// (SAM-5 5.14), and reporting the condition cleared it for this I_T nexus; several can be queued (a reset,
// then "registrations preempted"). So ScsiDevice reissues the same command at once, up to
// `unitAttentionRetries` times (default 3), and emits 'unitAttention' with each decoded sense first: the
// owner must learn of them, since "Registrations preempted" means this server has been fenced off. With 0
// retries every unit attention is thrown as UnitAttentionError, as sg3_utils reports them (the CLI's
// default, so field engineers see what the device said).
import { EventEmitter } from 'node:events';

import * as cdbs from './cdb.js';
import { PrInAction, PrOutAction } from './cdb.js';
import { needsReadCapacity16, parseReadCapacity10, parseReadCapacity16, type Capacity } from './capacity.js';
import { classify, IllegalRequestError, TransportError, UnitAttentionError } from './errors.js';
import {
  parseDeviceIdentification, parseStandardInquiry, parseSupportedPages, parseUnitSerialNumber, unitIdentity,
  VpdPage, vpdLength, type Designator, type StandardInquiry,
} from './inquiry.js';
import {
  parseReadFullStatus, parseReadKeys, parseReadReservation, parseReportCapabilities, prOutParameterList, prTypeCode,
  type PrCapabilities, type PrFullStatus, type PrKeys, type PrReservationStatus, type PrType,
} from './pr.js';
import type { Sense } from './sense.js';
import { SgTransport, type SgTransportOptions } from './sg-transport.js';
import { RESET_NAMES, type CommandTiming, type ResetKind, type ScsiRequest, type ScsiResult, type ScsiTransport } from './transport.js';

export interface ScsiDeviceOptions extends SgTransportOptions {
  /** Reissues after a unit attention (default 3; 0: throw every unit attention). */
  unitAttentionRetries?: number;
}

export interface ScsiDeviceEvents {
  unitAttention: [sense: Sense, command: string];
}

// First allocation lengths: enough for nearly every device in one command, small enough for old ones
// that choke on INQUIRY allocation lengths above 255.
const STANDARD_INQUIRY_LENGTH = 96;
const VPD_FIRST_LENGTH = 252;
const PR_IN_LENGTH = 8192;

export class ScsiDevice extends EventEmitter<ScsiDeviceEvents> {
  readonly transport: ScsiTransport;
  private readonly uaRetries: number;

  static async open(path: string, options: ScsiDeviceOptions = {}): Promise<ScsiDevice> {
    return new ScsiDevice(await SgTransport.open(path, options), options);
  }

  constructor(transport: ScsiTransport, options: { unitAttentionRetries?: number } = {}) {
    super();
    this.transport = transport;
    this.uaRetries = options.unitAttentionRetries ?? 3;
  }

  get path(): string {
    return this.transport.path;
  }

  close(): void {
    this.transport.close();
  }

  /** Sends a command without judging the answer (for raw pass-through and status reports). */
  raw(request: ScsiRequest): Promise<ScsiResult> {
    return this.transport.execute(request);
  }

  /** Sends a command; resolves on success, rejects with a typed ScsiError, retrying unit attentions. */
  async run(request: ScsiRequest): Promise<ScsiResult> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.transport.execute(request);
      const error = classify(this.path, request.cdb, result);
      if (!error) return result;
      if (error instanceof UnitAttentionError && attempt < this.uaRetries) {
        this.emit('unitAttention', error.sense!, error.command);
        continue;
      }
      throw error;
    }
  }

  private async dataIn(cdb: Buffer, length: number): Promise<Buffer> {
    return (await this.run({ cdb, dataIn: length })).data ?? Buffer.alloc(0);
  }

  async testUnitReady(): Promise<void> {
    await this.run({ cdb: cdbs.testUnitReady() });
  }

  async inquiry(): Promise<StandardInquiry> {
    return parseStandardInquiry(await this.dataIn(cdbs.inquiry(STANDARD_INQUIRY_LENGTH), STANDARD_INQUIRY_LENGTH));
  }

  /** A VPD page, whole: asks again with the announced length when the first answer was cut short. */
  async vpd(page: number): Promise<Buffer> {
    let data = await this.dataIn(cdbs.inquiry(VPD_FIRST_LENGTH, page), VPD_FIRST_LENGTH);
    const full = vpdLength(data);
    if (full > data.length && data.length === VPD_FIRST_LENGTH) {
      const len = Math.min(full, 0xffff);
      data = await this.dataIn(cdbs.inquiry(len, page), len);
    }
    return data;
  }

  async supportedVpdPages(): Promise<number[]> {
    return parseSupportedPages(await this.vpd(VpdPage.SUPPORTED_PAGES));
  }

  async unitSerialNumber(): Promise<string> {
    return parseUnitSerialNumber(await this.vpd(VpdPage.UNIT_SERIAL_NUMBER));
  }

  async deviceIdentification(): Promise<Designator[]> {
    return parseDeviceIdentification(await this.vpd(VpdPage.DEVICE_IDENTIFICATION));
  }

  /** The logical unit's identity from VPD 0x83 (see unitIdentity); undefined if it has none. */
  async identity(): Promise<string | undefined> {
    return unitIdentity(await this.deviceIdentification());
  }

  /** READ CAPACITY(16), or (10) on units that do not know (16). */
  async readCapacity(): Promise<Capacity> {
    try {
      return parseReadCapacity16(await this.dataIn(cdbs.readCapacity16(32), 32));
    } catch (e) {
      if (!(e instanceof IllegalRequestError)) throw e;
    }
    const c = parseReadCapacity10(await this.dataIn(cdbs.readCapacity10(), 8));
    if (needsReadCapacity16(c)) throw new Error(`${this.path}: unit is larger than READ CAPACITY(10) can say, and refuses (16)`);
    return c;
  }

  /**
   * LOGICAL UNIT RESET ('lun') or TARGET RESET ('target') along this path, never escalated. A reset breaks
   * a SCSI-2 reservation (SPC-2 5.5.1; LIO does so on both, docs/lab.md) and aborts every initiator's
   * commands to the unit; each I_T nexus then gets UNIT ATTENTION 06/29/03 once, this one included.
   * Needs CAP_SYS_ADMIN and CAP_SYS_RAWIO. Resolves with how long it took.
   */
  async reset(kind: ResetKind, opts: { timeoutMs?: number } = {}): Promise<CommandTiming> {
    if (!this.transport.reset) throw new TransportError(this.path, RESET_NAMES[kind], 'this transport cannot send resets', { code: 'ENOTSUP' });
    return this.transport.reset(kind, opts.timeoutMs);
  }

  // SCSI-2 reservations of the whole unit, for targets without persistent reservations.
  async reserve6(): Promise<void> { await this.run({ cdb: cdbs.reserve6() }); }
  async release6(): Promise<void> { await this.run({ cdb: cdbs.release6() }); }
  async reserve10(): Promise<void> { await this.run({ cdb: cdbs.reserve10() }); }
  async release10(): Promise<void> { await this.run({ cdb: cdbs.release10() }); }

  async prReadKeys(): Promise<PrKeys> {
    return parseReadKeys(await this.dataIn(cdbs.persistentReserveIn(PrInAction.READ_KEYS, PR_IN_LENGTH), PR_IN_LENGTH));
  }

  async prReadReservation(): Promise<PrReservationStatus> {
    return parseReadReservation(await this.dataIn(cdbs.persistentReserveIn(PrInAction.READ_RESERVATION, PR_IN_LENGTH), PR_IN_LENGTH));
  }

  async prReportCapabilities(): Promise<PrCapabilities> {
    return parseReportCapabilities(await this.dataIn(cdbs.persistentReserveIn(PrInAction.REPORT_CAPABILITIES, PR_IN_LENGTH), PR_IN_LENGTH));
  }

  async prReadFullStatus(): Promise<PrFullStatus> {
    return parseReadFullStatus(await this.dataIn(cdbs.persistentReserveIn(PrInAction.READ_FULL_STATUS, PR_IN_LENGTH), PR_IN_LENGTH));
  }

  private async prOut(action: number, type: PrType | undefined, params: Parameters<typeof prOutParameterList>[0]): Promise<void> {
    const cdb = cdbs.persistentReserveOut(action, type ? prTypeCode(type) : 0);
    await this.run({ cdb, dataOut: prOutParameterList(params) });
  }

  /**
   * Registers `key` for this I_T nexus. With `ignoreExisting`, REGISTER AND IGNORE EXISTING KEY replaces
   * whatever key the nexus had; otherwise REGISTER, which needs `currentKey` (0 when not registered).
   */
  async prRegister(key: bigint, opts: { currentKey?: bigint; ignoreExisting?: boolean; aptpl?: boolean } = {}): Promise<void> {
    const action = opts.ignoreExisting ? PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY : PrOutAction.REGISTER;
    await this.prOut(action, undefined, { key: opts.currentKey ?? 0n, serviceActionKey: key, aptpl: opts.aptpl ?? false });
  }

  /** Removes this nexus's registration (REGISTER with a service action key of 0). */
  async prUnregister(currentKey: bigint): Promise<void> {
    await this.prOut(PrOutAction.REGISTER, undefined, { key: currentKey, serviceActionKey: 0n });
  }

  async prReserve(key: bigint, type: PrType): Promise<void> {
    await this.prOut(PrOutAction.RESERVE, type, { key });
  }

  async prRelease(key: bigint, type: PrType): Promise<void> {
    await this.prOut(PrOutAction.RELEASE, type, { key });
  }

  /** Removes every registration and the reservation; needs this nexus registered with `key`. */
  async prClear(key: bigint): Promise<void> {
    await this.prOut(PrOutAction.CLEAR, undefined, { key });
  }

  /**
   * Removes `victim`'s registrations (and its reservation, which this nexus then holds with `type`).
   * With `abort`, also aborts the victim's outstanding commands (PREEMPT AND ABORT): what fencing wants,
   * so no write already queued by the failed server lands after the takeover.
   */
  async prPreempt(key: bigint, victim: bigint, type: PrType, opts: { abort?: boolean } = {}): Promise<void> {
    const action = opts.abort ? PrOutAction.PREEMPT_AND_ABORT : PrOutAction.PREEMPT;
    await this.prOut(action, type, { key, serviceActionKey: victim });
  }

  async read16(lba: bigint, blocks: number, blockSize: number, opts: cdbs.ReadWriteOptions = {}): Promise<Buffer> {
    return this.dataIn(cdbs.read16(lba, blocks, opts), blocks * blockSize);
  }

  /** Writes whole blocks: data.length must be a multiple of blockSize. */
  async write16(lba: bigint, data: Buffer, blockSize: number, opts: cdbs.ReadWriteOptions = {}): Promise<void> {
    if (data.length === 0 || data.length % blockSize !== 0) {
      throw new RangeError(`write of ${data.length} bytes is not a whole number of ${blockSize}-byte blocks`);
    }
    await this.run({ cdb: cdbs.write16(lba, data.length / blockSize, opts), dataOut: data });
  }
}

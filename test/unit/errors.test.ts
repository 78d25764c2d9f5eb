import t from 'tap';

import { inquiry, persistentReserveOut, PrOutAction, read16, testUnitReady } from '../../src/scsi/cdb.js';
import {
  CheckConditionError, classify, IllegalRequestError, NotReadyError, ReservationConflictError, ScsiError, ScsiStatusError,
  ScsiTimeoutError, TransportError, UnitAttentionError,
} from '../../src/scsi/errors.js';
import { Status } from '../../src/scsi/status.js';
import type { ScsiResult } from '../../src/scsi/transport.js';
import { hex, sense } from '../support/captures.js';

const PATH = '/dev/sg3';

function result(fields: Partial<ScsiResult>): ScsiResult {
  return { status: Status.GOOD, hostStatus: 0, driverStatus: 0, resid: 0, timing: { waitUs: 0, ioctlUs: 0, deliverUs: 0 }, ...fields };
}

function checkCondition(senseBytes: Buffer): ScsiResult {
  return result({ status: Status.CHECK_CONDITION, sense: senseBytes, driverStatus: 0x08 });
}

/** Fixed-format sense with the given key/ASC/ASCQ. */
function fixedSense(key: number, asc: number, ascq: number): Buffer {
  return hex(`70 00 ${key.toString(16).padStart(2, '0')} 00 00 00 00 0a 00 00 00 00 ${asc.toString(16).padStart(2, '0')} ${ascq.toString(16).padStart(2, '0')} 00 00 00 00`);
}

t.test('GOOD and CONDITION MET are success', async (t) => {
  t.equal(classify(PATH, testUnitReady(), result({ status: Status.GOOD })), undefined);
  t.equal(classify(PATH, testUnitReady(), result({ status: Status.CONDITION_MET })), undefined);
});

t.test('GOOD with DRIVER_SENSE is success', async (t) => {
  t.equal(classify(PATH, testUnitReady(), result({ status: Status.GOOD, driverStatus: 0x08 })), undefined);
});

t.test('RESERVATION CONFLICT is a ReservationConflictError', async (t) => {
  const e = classify(PATH, read16(0n, 1), result({ status: Status.RESERVATION_CONFLICT }));
  t.type(e, ReservationConflictError);
  t.type(e, ScsiStatusError);
  t.notOk(e instanceof CheckConditionError);
  const err = e as ReservationConflictError;
  t.equal(err.name, 'ReservationConflictError');
  t.equal(err.status, 0x18);
  t.equal(err.statusName, 'RESERVATION CONFLICT');
  t.equal(err.sense, undefined);
  t.equal(err.path, PATH);
  t.equal(err.command, 'READ(16)');
  t.equal(err.message, '/dev/sg3: READ(16): RESERVATION CONFLICT');
});

t.test('captured unit attention after a preempt is a UnitAttentionError naming path, command and cause', async (t) => {
  const e = classify(PATH, testUnitReady(), checkCondition(sense('tcm_loop.tur.preempted')));
  t.type(e, UnitAttentionError);
  t.type(e, CheckConditionError);
  const err = e as UnitAttentionError;
  t.equal(err.name, 'UnitAttentionError');
  t.equal(err.status, Status.CHECK_CONDITION);
  t.equal(err.sense?.code, '06/2a/05');
  t.equal(err.command, 'TEST UNIT READY');
  t.match(err.message, PATH);
  t.match(err.message, 'TEST UNIT READY');
  t.match(err.message, 'Registrations preempted');
  t.equal(err.message, '/dev/sg3: TEST UNIT READY: UNIT ATTENTION: Registrations preempted (06/2a/05)');
});

t.test('NOT READY is a NotReadyError', async (t) => {
  const e = classify(PATH, testUnitReady(), checkCondition(fixedSense(0x2, 0x04, 0x01)));
  t.type(e, NotReadyError);
  t.type(e, CheckConditionError);
  t.equal((e as NotReadyError).sense?.code, '02/04/01');
  t.match(e?.message, 'Logical unit is in process of becoming ready');
});

t.test('captured ILLEGAL REQUEST responses are IllegalRequestErrors', async (t) => {
  const e = classify(PATH, inquiry(252, 0x99), checkCondition(sense('tcm_loop.inquiry.badpage')));
  t.type(e, IllegalRequestError);
  t.type(e, CheckConditionError);
  t.equal(e?.message, '/dev/sg3: INQUIRY (VPD 0x99): ILLEGAL REQUEST: Invalid field in CDB (05/24/00)');
  t.type(classify(PATH, hex('ff 00 00 00 00 00'), checkCondition(sense('tcm_loop.badopcode'))), IllegalRequestError);
  t.type(classify(PATH, read16(0xfffffff0n, 1), checkCondition(sense('tcm_loop.read.outofrange'))), IllegalRequestError);
});

t.test('MEDIUM ERROR is a plain CheckConditionError, not one of its subclasses', async (t) => {
  const e = classify(PATH, read16(5n, 1), checkCondition(fixedSense(0x3, 0x11, 0x00)));
  t.type(e, CheckConditionError);
  t.equal(e?.constructor, CheckConditionError);
  t.equal(e?.name, 'CheckConditionError');
  t.notOk(e instanceof UnitAttentionError);
  t.notOk(e instanceof NotReadyError);
  t.notOk(e instanceof IllegalRequestError);
  t.equal((e as CheckConditionError).sense?.code, '03/11/00');
});

t.test('RECOVERED ERROR is success: the command completed', async (t) => {
  t.equal(classify(PATH, read16(5n, 1), checkCondition(fixedSense(0x1, 0x17, 0x01))), undefined);
});

t.test('CHECK CONDITION without sense is a CheckConditionError without sense', async (t) => {
  for (const r of [result({ status: Status.CHECK_CONDITION }), result({ status: Status.CHECK_CONDITION, sense: Buffer.alloc(0) })]) {
    const e = classify(PATH, testUnitReady(), r);
    t.equal(e?.constructor, CheckConditionError);
    t.equal((e as CheckConditionError).sense, undefined);
    t.equal(e?.message, '/dev/sg3: TEST UNIT READY: CHECK CONDITION');
  }
});

t.test('BUSY is a ScsiStatusError and not a CheckConditionError', async (t) => {
  const e = classify(PATH, testUnitReady(), result({ status: Status.BUSY }));
  t.equal(e?.constructor, ScsiStatusError);
  t.equal((e as ScsiStatusError).status, 0x08);
  t.equal((e as ScsiStatusError).statusName, 'BUSY');
  t.notOk(e instanceof CheckConditionError);
  t.notOk(e instanceof ReservationConflictError);
});

t.test('host status DID_TIME_OUT is a ScsiTimeoutError that is not wedged', async (t) => {
  const e = classify(PATH, testUnitReady(), result({ hostStatus: 0x03 }));
  t.type(e, ScsiTimeoutError);
  t.type(e, TransportError);
  const err = e as ScsiTimeoutError;
  t.equal(err.wedged, false);
  t.equal(err.hostStatus, 3);
  t.equal(err.code, 'ETIMEDOUT');
  t.match(err.message, 'DID_TIME_OUT');
});

t.test('host status DID_NO_CONNECT is a TransportError with the host status', async (t) => {
  const e = classify(PATH, persistentReserveOut(PrOutAction.PREEMPT, 3), result({ hostStatus: 0x01 }));
  t.equal(e?.constructor, TransportError);
  const err = e as TransportError;
  t.equal(err.hostStatus, 1);
  t.equal(err.driverStatus, 0);
  t.equal(err.errno, undefined);
  t.equal(err.code, undefined);
  t.match(err.message, 'DID_NO_CONNECT');
  t.equal(err.message, '/dev/sg3: PERSISTENT RESERVE OUT (PREEMPT): DID_NO_CONNECT: could not connect to the target');
});

t.test('host status wins over a status byte that looks fine', async (t) => {
  t.type(classify(PATH, testUnitReady(), result({ status: Status.GOOD, hostStatus: 0x0e })), TransportError);
});

t.test('driver status DRIVER_TIMEOUT is a ScsiTimeoutError', async (t) => {
  const e = classify(PATH, testUnitReady(), result({ driverStatus: 0x06 }));
  t.type(e, ScsiTimeoutError);
  t.equal((e as ScsiTimeoutError).wedged, false);
  t.equal((e as ScsiTimeoutError).driverStatus, 6);
  t.match(e?.message, 'DRIVER_TIMEOUT');
});

t.test('other driver errors are TransportErrors', async (t) => {
  const e = classify(PATH, testUnitReady(), result({ driverStatus: 0x04 }));
  t.equal(e?.constructor, TransportError);
  t.match(e?.message, 'DRIVER_ERROR (driver status 0x4)');
});

t.test('the error classes form one hierarchy under ScsiError and Error', async (t) => {
  const ua = classify(PATH, testUnitReady(), checkCondition(sense('tcm_loop.tur.preempted')));
  for (const cls of [UnitAttentionError, CheckConditionError, ScsiStatusError, ScsiError, Error]) t.type(ua, cls);
  t.notOk(ua instanceof TransportError);

  const timeout = classify(PATH, testUnitReady(), result({ hostStatus: 0x03 }));
  for (const cls of [ScsiTimeoutError, TransportError, ScsiError, Error]) t.type(timeout, cls);
  t.notOk(timeout instanceof ScsiStatusError);
});

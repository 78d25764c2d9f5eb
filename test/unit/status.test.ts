import t from 'tap';

import { driverStatusIsError, hostStatusName, statusName } from '../../src/scsi/status.js';

t.test('status names follow SAM-5', async (t) => {
  t.equal(statusName(0x00), 'GOOD');
  t.equal(statusName(0x02), 'CHECK CONDITION');
  t.equal(statusName(0x18), 'RESERVATION CONFLICT');
  t.equal(statusName(0x28), 'TASK SET FULL');
  t.equal(statusName(0x40), 'TASK ABORTED');
  t.equal(statusName(0x3e), 'STATUS 0x3e', 'an unassigned status still prints');
});

t.test('host and driver status decode the Linux codes', async (t) => {
  t.equal(hostStatusName(0x03), 'DID_TIME_OUT');
  t.equal(hostStatusName(0x0e), 'DID_TRANSPORT_DISRUPTED');
  t.equal(hostStatusName(0x7f), 'DID_0x7f');
  t.notOk(driverStatusIsError(0x00));
  t.notOk(driverStatusIsError(0x08), 'DRIVER_SENSE only says sense is present');
  t.ok(driverStatusIsError(0x06), 'DRIVER_TIMEOUT');
});

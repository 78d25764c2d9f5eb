import t from 'tap';

import { MalformedResponseError } from '../../src/scsi/errors.js';
import {
  formatKey, parseKey, parsePrType, parseReadFullStatus, parseReadKeys, parseReadReservation, parseReportCapabilities,
  parseTransportId, PR_TYPES, prOutParameterList, prTypeCode, prTypeFromCode, prTypeName, type PrType,
} from '../../src/scsi/pr.js';
import { data, hex } from '../support/captures.js';

t.test('parseKey reads 1 to 16 hex digits with or without 0x', async (t) => {
  t.equal(parseKey('0xA1'), 0xa1n);
  t.equal(parseKey('a1'), 0xa1n);
  t.equal(parseKey('0X00ff'), 0xffn);
  t.equal(parseKey('10'), 0x10n, 'always hex, as sg_persist reads keys');
  t.equal(parseKey(' 0x1b '), 0x1bn, 'surrounding blanks are ignored');
  t.equal(parseKey('0'), 0n);
  t.equal(parseKey('ffffffffffffffff'), 2n ** 64n - 1n, '16 digits');
  t.equal(parseKey('0x0123456789abcdef'), 0x0123456789abcdefn);
});

t.test('parseKey rejects what is not 1 to 16 hex digits', async (t) => {
  for (const bad of ['1ffffffffffffffff', '0x00000000000000001', 'xyz', '-1', '', '0x', '0xg1', 'a1 b2', '1.5']) {
    t.throws(() => parseKey(bad), RangeError, JSON.stringify(bad));
  }
});

t.test('formatKey prints lower-case hex without leading zeros', async (t) => {
  t.equal(formatKey(0xa1n), '0xa1');
  t.equal(formatKey(0xABCDEFn), '0xabcdef');
  t.equal(formatKey(0x00ffn), '0xff');
  t.equal(formatKey(0n), '0x0');
  t.equal(formatKey(2n ** 64n - 1n), '0xffffffffffffffff');
  t.equal(parseKey(formatKey(0x1234n)), 0x1234n, 'parseKey reads what formatKey prints');
});

t.test('the six reservation types have their SPC codes and names', async (t) => {
  const want: [PrType, number, string][] = [
    ['we', 1, 'Write Exclusive'],
    ['ea', 3, 'Exclusive Access'],
    ['wero', 5, 'Write Exclusive, registrants only'],
    ['earo', 6, 'Exclusive Access, registrants only'],
    ['wear', 7, 'Write Exclusive, all registrants'],
    ['eaar', 8, 'Exclusive Access, all registrants'],
  ];
  t.strictSame(PR_TYPES, want.map(([type]) => type));
  for (const [type, code, name] of want) {
    t.equal(parsePrType(type), type);
    t.equal(prTypeCode(type), code, `${type} code`);
    t.equal(prTypeFromCode(code), type, `code ${code}`);
    t.equal(prTypeName(type), name);
  }
});

t.test('parsePrType ignores case and rejects unknown names', async (t) => {
  t.equal(parsePrType('WERO'), 'wero');
  t.equal(parsePrType('EaAr'), 'eaar');
  t.throws(() => parsePrType('exclusive'), RangeError);
  t.throws(() => parsePrType(''), RangeError);
});

t.test('obsolete and reserved type codes have no type', async (t) => {
  for (const code of [0, 2, 4, 9, 15]) t.equal(prTypeFromCode(code), undefined, `code ${code}`);
});

t.test('the PR OUT parameter list holds the key, the service action key and the flags', async (t) => {
  t.same(prOutParameterList({ key: 0xa1n }), hex('00 00 00 00 00 00 00 a1  00 00 00 00 00 00 00 00  00 00 00 00  00 00 00 00'));
  t.same(
    prOutParameterList({ key: 0xb2n, serviceActionKey: 0x0102030405060708n }),
    hex('00 00 00 00 00 00 00 b2  01 02 03 04 05 06 07 08  00 00 00 00  00 00 00 00'),
  );
  t.equal(prOutParameterList({ key: 1n, aptpl: true })[20], 0x01, 'APTPL is bit 0 of byte 20');
  t.equal(prOutParameterList({ key: 1n, allTargetPorts: true })[20], 0x04, 'ALL_TG_PT is bit 2 of byte 20');
  t.equal(prOutParameterList({ key: 1n, aptpl: true, allTargetPorts: true })[20], 0x05);
  t.equal(prOutParameterList({ key: 2n ** 64n - 1n }).readBigUInt64BE(0), 2n ** 64n - 1n);
});

t.test('the PR OUT parameter list rejects keys that do not fit in 8 bytes', async (t) => {
  t.throws(() => prOutParameterList({ key: 2n ** 64n }), RangeError);
  t.throws(() => prOutParameterList({ key: -1n }), RangeError);
  t.throws(() => prOutParameterList({ key: 1n, serviceActionKey: 2n ** 64n }), RangeError);
});

t.test('captured READ KEYS with no registrations', async (t) => {
  t.strictSame(parseReadKeys(data('tcm_loop.keys.empty')), { generation: 0, keys: [], truncated: false });
});

t.test('captured READ KEYS with two registrations', async (t) => {
  t.strictSame(parseReadKeys(data('tcm_loop.keys.two')), { generation: 2, keys: [0xa1n, 0xb2n], truncated: false });
});

t.test('READ KEYS cut short by the allocation length is truncated', async (t) => {
  // Additional length 24 (three keys) but only two arrived, and half of a third.
  const r = parseReadKeys(hex('00 00 00 05 00 00 00 18  00 00 00 00 00 00 00 a1  00 00 00 00 00 00 00 b2  00 00 00 00'));
  t.strictSame(r, { generation: 5, keys: [0xa1n, 0xb2n], truncated: true });
  t.strictSame(parseReadKeys(hex('00 00 00 05 00 00 00 18')), { generation: 5, keys: [], truncated: true });
});

t.test('READ KEYS ignores bytes past the additional length', async (t) => {
  const r = parseReadKeys(hex('00 00 00 01 00 00 00 08  00 00 00 00 00 00 00 a1  00 00 00 00 00 00 00 b2'));
  t.strictSame(r, { generation: 1, keys: [0xa1n], truncated: false });
});

t.test('captured READ RESERVATION with no reservation is null', async (t) => {
  t.strictSame(parseReadReservation(data('tcm_loop.reservation.none')), { generation: 0, reservation: null });
});

t.test('captured READ RESERVATION of a Write Exclusive, registrants only reservation', async (t) => {
  t.strictSame(parseReadReservation(data('tcm_loop.reservation.wero')), {
    generation: 2,
    reservation: { key: 0xa1n, type: 'wero', typeCode: 5, scope: 'lu' },
  });
});

t.test('captured all-registrants reservation reports key 0', async (t) => {
  t.strictSame(parseReadReservation(data('iscsi.reservation.eaar')), {
    generation: 2,
    reservation: { key: 0n, type: 'eaar', typeCode: 8, scope: 'lu' },
  });
});

t.test('READ RESERVATION with an obsolete type or another scope keeps the codes', async (t) => {
  const r = parseReadReservation(hex('00 00 00 09 00 00 00 10  00 00 00 00 00 00 00 07  00 00 00 00 00 22 00 00'));
  t.strictSame(r.reservation, { key: 7n, type: undefined, typeCode: 2, scope: 'element' });
  const odd = parseReadReservation(hex('00 00 00 09 00 00 00 10  00 00 00 00 00 00 00 07  00 00 00 00 00 15 00 00'));
  t.equal(odd.reservation?.scope, '0x1');
  t.equal(odd.reservation?.type, 'wero');
});

t.test('READ RESERVATION announcing a reservation it does not carry is malformed', async (t) => {
  t.throws(() => parseReadReservation(hex('00 00 00 02 00 00 00 10  00 00 00 00 00 00 00 a1')), MalformedResponseError);
});

t.test('captured REPORT CAPABILITIES of LIO', async (t) => {
  t.strictSame(parseReportCapabilities(data('tcm_loop.caps')), {
    replaceLostReservation: false,
    compatibleReservationHandling: true,
    specifyInitiatorPorts: true,
    allTargetPorts: true,
    persistThroughPowerLossCapable: true,
    persistThroughPowerLossActive: false,
    allowCommands: 1,
    types: ['we', 'ea', 'wero', 'earo', 'wear', 'eaar'],
  });
});

t.test('REPORT CAPABILITIES with TMV clear has no type list', async (t) => {
  const c = parseReportCapabilities(hex('00 08 80 01 ea 01 00 00'));
  t.equal(c.types, null);
  t.equal(c.replaceLostReservation, true);
  t.equal(c.compatibleReservationHandling, false);
  t.equal(c.persistThroughPowerLossCapable, false);
  t.equal(c.persistThroughPowerLossActive, true);
  t.equal(c.allowCommands, 0);
});

t.test('REPORT CAPABILITIES lists only the types whose mask bit is set', async (t) => {
  t.strictSame(parseReportCapabilities(hex('00 08 00 d0 20 01 00 00')).types, ['wero', 'eaar']);
  t.strictSame(parseReportCapabilities(hex('00 08 00 80 0a 00 00 00')).types, ['we', 'ea']);
  t.strictSame(parseReportCapabilities(hex('00 08 00 80 00 00 00 00')).types, []);
  t.equal(parseReportCapabilities(hex('00 08 00 d0 20 01 00 00')).allowCommands, 5);
});

t.test('captured READ FULL STATUS of a wero reservation over SAS (tcm_loop)', async (t) => {
  t.strictSame(parseReadFullStatus(data('tcm_loop.fullstatus.wero')), {
    generation: 2,
    registrants: [
      {
        key: 0xa1n, holder: true, allTargetPorts: false, type: 'wero', scope: 'lu', relativeTargetPort: 1,
        transportId: { protocol: 'sas', name: 'naa.5001405bbbb00001' },
      },
      {
        key: 0xb2n, holder: false, allTargetPorts: false, type: undefined, scope: 'lu', relativeTargetPort: 2,
        transportId: { protocol: 'sas', name: 'naa.5001405bbbb00002' },
      },
    ],
    truncated: false,
  });
});

t.test('captured READ FULL STATUS of an eaar reservation over iSCSI', async (t) => {
  const s = parseReadFullStatus(data('iscsi.fullstatus.eaar'));
  t.equal(s.generation, 2);
  t.equal(s.truncated, false);
  t.strictSame(s.registrants.map((r) => [r.key, r.holder, r.type, r.relativeTargetPort]), [
    [0x1an, true, 'eaar', 1],
    [0x1bn, true, 'eaar', 1],
  ], 'every registrant holds an all-registrants reservation');
  t.strictSame(s.registrants.map((r) => r.transportId), [
    { protocol: 'iscsi', name: 'iqn.2003-01.org.vigil.lab:server-a,i,0x00023d000002' },
    { protocol: 'iscsi', name: 'iqn.2003-01.org.vigil.lab:server-b,i,0x00023d000001' },
  ]);
});

t.test('READ FULL STATUS cut short by the allocation length is truncated', async (t) => {
  const s = parseReadFullStatus(data('tcm_loop.fullstatus.wero').subarray(0, 60));
  t.equal(s.truncated, true);
  t.equal(s.registrants.length, 1, 'only the whole first descriptor');
  t.equal(s.registrants[0]?.key, 0xa1n);
});

t.test('READ FULL STATUS entry without a TransportID has a null one', async (t) => {
  const s = parseReadFullStatus(hex([
    '00 00 00 03 00 00 00 18',
    '00 00 00 00 00 00 00 0c  00 00 00 00  03 01  00 00 00 00  00 05  00 00 00 00',
  ].join(' ')));
  t.strictSame(s.registrants, [{
    key: 0xcn, holder: true, allTargetPorts: true, type: 'we', scope: 'lu', relativeTargetPort: 5, transportId: null,
  }]);
});

t.test('a Fibre Channel TransportID gives the N_Port name', async (t) => {
  const tid = hex('00 00 00 00 00 00 00 00  21 00 00 24 ff 12 34 56  00 00 00 00 00 00 00 00');
  t.strictSame(parseTransportId(tid), { protocol: 'fc', name: 'naa.21000024ff123456' });
});

t.test('SAS, SRP and unknown TransportIDs', async (t) => {
  t.strictSame(
    parseTransportId(hex('06 00 00 00 50 01 40 5b bb b0 00 01  00 00 00 00 00 00 00 00 00 00 00 00')),
    { protocol: 'sas', name: 'naa.5001405bbbb00001' },
  );
  t.strictSame(
    parseTransportId(hex('04 00 00 00 00 00 00 00  00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff')),
    { protocol: 'srp', name: '00112233445566778899aabbccddeeff' },
  );
  t.strictSame(parseTransportId(hex('09 00 ab cd')), { protocol: '0x9', name: '0900abcd' });
});

t.test('an iSCSI TransportID gives the name up to its additional length, without NUL padding', async (t) => {
  const name = Buffer.from('iqn.2003-01.org.vigil.lab:server-a\0\0');
  const tid = Buffer.concat([hex('05 00 00 24'), name, hex('ff ff ff ff')]);
  t.strictSame(parseTransportId(tid), { protocol: 'iscsi', name: 'iqn.2003-01.org.vigil.lab:server-a' });
});

t.test('PERSISTENT RESERVE IN responses shorter than 8 bytes are malformed', async (t) => {
  const short = hex('00 00 00 02 00 00 00');
  t.throws(() => parseReadKeys(short), MalformedResponseError);
  t.throws(() => parseReadReservation(short), MalformedResponseError);
  t.throws(() => parseReportCapabilities(short), MalformedResponseError);
  t.throws(() => parseReadFullStatus(short), MalformedResponseError);
  t.throws(() => parseReadKeys(Buffer.alloc(0)), MalformedResponseError);
});

import t from 'tap';

import { MalformedResponseError } from '../../src/scsi/errors.js';
import {
  parseDeviceIdentification, parseStandardInquiry, parseSupportedPages, parseUnitSerialNumber, unitIdentity, vpdLength,
  type Designator,
} from '../../src/scsi/inquiry.js';
import { data, hex } from '../support/captures.js';

/** A VPD 0x83 page around the given designators (each already with its 4-byte header). */
function page83(...designators: string[]): Buffer {
  const body = hex(designators.join(''));
  const header = Buffer.from([0x00, 0x83, 0, 0]);
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** A designator: byte 0 protocol/code set, byte 1 PIV/association/type, byte 3 length, then the bytes. */
function designator(b0: number, b1: number, bytes: string): string {
  const d = hex(bytes);
  return Buffer.concat([Buffer.from([b0, b1, 0, d.length]), d]).toString('hex');
}

const LU_NAA = designator(0x01, 0x03, '60 01 40 55 ca 1a b1 e0 00 00 00 10 00 00 00 00');
const LU_EUI64 = designator(0x01, 0x02, '00 11 22 33 44 55 66 77');
const LU_SCSI_NAME = designator(0x03, 0x08, Buffer.from('iqn.2003-01.org.vigil.lab:lun0\0\0').toString('hex'));
const LU_T10 = designator(0x02, 0x01, Buffer.from('LIO-ORG FILEIO:1234').toString('hex'));
const PORT_NAA = designator(0x61, 0x93, '50 01 40 5a aa a0 00 01');
const PORT_REL = designator(0x61, 0x94, '00 00 00 02');

function identityOf(...designators: string[]): string | undefined {
  return unitIdentity(parseDeviceIdentification(page83(...designators)));
}

t.test('captured standard INQUIRY names the LIO fileio disk', async (t) => {
  const q = parseStandardInquiry(data('tcm_loop.inquiry.standard'));
  t.equal(q.qualifier, 0);
  t.equal(q.deviceType, 0);
  t.equal(q.deviceTypeName, 'disk');
  t.equal(q.removable, false);
  t.equal(q.version, 6);
  t.equal(q.versionName, 'SPC-4');
  t.equal(q.responseDataFormat, 2);
  t.equal(q.tpgs, 3, 'implicit and explicit ALUA');
  t.equal(q.protect, false);
  t.equal(q.multiPort, true);
  t.equal(q.commandQueueing, true);
  t.equal(q.vendor, 'LIO-ORG');
  t.equal(q.product, 'FILEIO');
  t.equal(q.revision, '4.0');
});

t.test('standard INQUIRY decodes qualifier, removable, protect and unknown types and versions', async (t) => {
  const q = parseStandardInquiry(hex('7f 80 09 12 1f 01 00 00 41 42 43 00 00 00 00 00'));
  t.equal(q.qualifier, 3);
  t.equal(q.deviceType, 0x1f);
  t.equal(q.deviceTypeName, 'unknown or no device type');
  t.equal(q.removable, true);
  t.equal(q.versionName, '0x9');
  t.equal(q.responseDataFormat, 2);
  t.equal(q.protect, true);
  t.equal(q.tpgs, 0);
  t.equal(q.vendor, 'ABC', 'NULs and padding trimmed');
  t.equal(q.product, '', 'absent past the end of the buffer');
  t.equal(parseStandardInquiry(hex('0b 00 07 02 1f')).deviceTypeName, 'type 0xb');
  t.equal(parseStandardInquiry(hex('0b 00 07 02 1f')).versionName, 'SPC-5');
});

t.test('standard INQUIRY of 5 bytes decodes with the optional fields false or empty', async (t) => {
  const q = parseStandardInquiry(hex('00 00 06 02 1f'));
  t.equal(q.tpgs, 0);
  t.equal(q.multiPort, false);
  t.equal(q.commandQueueing, false);
  t.equal(q.vendor, '');
});

t.test('standard INQUIRY shorter than 5 bytes is malformed', async (t) => {
  t.throws(() => parseStandardInquiry(hex('00 00 06 02')), MalformedResponseError);
  t.throws(() => parseStandardInquiry(Buffer.alloc(0)), MalformedResponseError);
});

t.test('captured VPD 0x00 lists the supported pages', async (t) => {
  t.same(parseSupportedPages(data('tcm_loop.inquiry.vpd00')), [0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2, 0xb3]);
});

t.test('captured VPD 0x80 gives the unit serial number without its NUL', async (t) => {
  t.equal(parseUnitSerialNumber(data('tcm_loop.inquiry.vpd80')), '5ca1ab1e00000001');
});

t.test('captured tcm_loop VPD 0x83 lists every designator', async (t) => {
  const ds = parseDeviceIdentification(data('tcm_loop.inquiry.vpd83'));
  const brief = ds.map((d) => [d.type, d.association, d.codeSet, d.protocol, d.value]);
  t.strictSame(brief, [
    ['naa', 'lu', 'binary', null, 'naa.60014055ca1ab1e00000001000000000'],
    ['t10', 'lu', 'ascii', null, 't10.LIO-ORG FILEIO:5ca1ab1e00000001'],
    ['relative-port', 'port', 'binary', 6, '1'],
    ['port-group', 'port', 'binary', 6, '0'],
    ['lu-group', 'lu', 'binary', null, '0'],
    ['scsi-name', 'port', 'utf8', 6, 'naa.5001405aaaa00001,t,0x0001'],
    ['scsi-name', 'target', 'utf8', 6, 'naa.5001405aaaa00001'],
  ]);
  t.same(ds[0]!.raw, hex('60 01 40 55 ca 1a b1 e0 00 00 00 10 00 00 00 00'), 'raw is the designator body');
  t.equal(unitIdentity(ds), 'naa.60014055ca1ab1e00000001000000000');
});

t.test('captured iSCSI VPD 0x83 names the target port by its iSCSI name', async (t) => {
  const ds = parseDeviceIdentification(data('iscsi.inquiry.vpd83'));
  t.equal(unitIdentity(ds), 'naa.60014055ca1ab1e00000003000000000');
  const portName = ds.find((d) => d.type === 'scsi-name' && d.association === 'port');
  t.equal(portName?.value, 'iqn.2003-01.org.vigil.lab:shared,t,0x0001');
  t.equal(portName?.protocol, 5, 'iSCSI');
  const targetName = ds.find((d) => d.type === 'scsi-name' && d.association === 'target');
  t.equal(targetName?.value, 'iqn.2003-01.org.vigil.lab:shared');
  t.equal(ds.find((d) => d.type === 't10')?.value, 't10.LIO-ORG FILEIO:5ca1ab1e00000003');
  t.equal(ds.find((d) => d.type === 'relative-port')?.value, '1');
});

t.test('EUI-64 designators of 8, 12 and 16 bytes read as eui. and their hex', async (t) => {
  const [eui8, eui12, eui16] = parseDeviceIdentification(page83(
    LU_EUI64,
    designator(0x01, 0x02, '00 11 22 33 44 55 66 77 88 99 aa bb'),
    designator(0x01, 0x02, '00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff'),
  ));
  t.equal(eui8?.type, 'eui64');
  t.equal(eui8?.value, 'eui.0011223344556677');
  t.equal(eui12?.value, 'eui.00112233445566778899aabb');
  t.equal(eui16?.value, 'eui.00112233445566778899aabbccddeeff');
});

t.test('an 8-byte NAA 5 designator reads as naa. and its hex', async (t) => {
  const [d] = parseDeviceIdentification(page83(designator(0x01, 0x03, '50 01 40 5a aa a0 00 01')));
  t.equal(d?.type, 'naa');
  t.equal(d?.value, 'naa.5001405aaaa00001');
});

t.test('a UUID designator (type 0xa) reads as uuid. and the 16 UUID bytes', async (t) => {
  const [d] = parseDeviceIdentification(page83(
    designator(0x01, 0x0a, '10 00 12 34 56 78 9a bc 4d ef 81 23 45 67 89 ab cd ef'),
  ));
  t.equal(d?.type, 'uuid');
  t.equal(d?.value, 'uuid.123456789abc4def8123456789abcdef');
  t.equal(unitIdentity([d as Designator]), 'uuid.123456789abc4def8123456789abcdef');
});

t.test('vendor-specific, MD5 and reserved designators read as text when ASCII, else as hex', async (t) => {
  const ds = parseDeviceIdentification(page83(
    designator(0x02, 0x00, Buffer.from(' serial 42 ').toString('hex')),
    designator(0x01, 0x00, 'de ad be ef'),
    designator(0x01, 0x07, '00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff'),
    designator(0x00, 0x0c, 'ab cd'),
    designator(0x01, 0x14, '00 07'),
    designator(0x01, 0x06, ''),
  ));
  t.strictSame(ds.map((d) => [d.type, d.codeSet, d.value]), [
    ['vendor', 'ascii', 'serial 42'],
    ['vendor', 'binary', 'deadbeef'],
    ['md5', 'binary', '00112233445566778899aabbccddeeff'],
    ['reserved', 'reserved', 'abcd'],
    ['relative-port', 'binary', '0'],
    ['lu-group', 'binary', '0'],
  ]);
});

t.test('the protocol identifier counts only when PIV is set', async (t) => {
  const [withPiv, withoutPiv] = parseDeviceIdentification(page83(
    designator(0x51, 0x94, '00 00 00 03'),
    designator(0x51, 0x14, '00 00 00 03'),
  ));
  t.equal(withPiv?.protocol, 5);
  t.equal(withoutPiv?.protocol, null);
  t.equal(withoutPiv?.association, 'port');
});

t.test('unit identity prefers NAA over EUI-64 over SCSI name over T10 vendor ID', async (t) => {
  t.equal(identityOf(LU_T10, LU_SCSI_NAME, LU_EUI64, LU_NAA), 'naa.60014055ca1ab1e00000001000000000');
  t.equal(identityOf(LU_T10, LU_SCSI_NAME, LU_EUI64), 'eui.0011223344556677');
  t.equal(identityOf(LU_T10, LU_SCSI_NAME), 'iqn.2003-01.org.vigil.lab:lun0');
  t.equal(identityOf(LU_T10), 't10.LIO-ORG FILEIO:1234');
});

t.test('a port-associated NAA is not the unit identity', async (t) => {
  t.equal(identityOf(PORT_NAA, LU_T10), 't10.LIO-ORG FILEIO:1234');
  t.equal(identityOf(PORT_NAA, PORT_REL), undefined);
});

t.test('a unit with no logical-unit designator has no identity', async (t) => {
  t.equal(identityOf(PORT_REL), undefined);
  t.equal(identityOf(), undefined);
  t.strictSame(parseDeviceIdentification(page83()), []);
});

t.test('a VPD response for another page than asked is malformed', async (t) => {
  t.throws(() => parseDeviceIdentification(data('tcm_loop.inquiry.vpd80')), MalformedResponseError);
  t.throws(() => parseUnitSerialNumber(data('tcm_loop.inquiry.vpd83')), {
    name: 'MalformedResponseError',
    message: 'asked for VPD page 0x80, got page 0x83',
  });
  t.throws(() => parseSupportedPages(data('tcm_loop.inquiry.vpd80')), MalformedResponseError);
});

t.test('a VPD response shorter than its header is malformed', async (t) => {
  t.throws(() => parseSupportedPages(hex('00 00 00')), MalformedResponseError);
  t.throws(() => parseDeviceIdentification(Buffer.alloc(0)), MalformedResponseError);
});

t.test('a designator running past the page end is malformed', async (t) => {
  const d = page83(LU_NAA);
  d[7] = 17; // the NAA designator claims one byte more than the page holds
  t.throws(() => parseDeviceIdentification(d), MalformedResponseError);

  const cut = data('tcm_loop.inquiry.vpd83').subarray(0, 40); // allocation length too small for the page
  t.throws(() => parseDeviceIdentification(cut), MalformedResponseError);
});

t.test('vpdLength gives the full page size the header announces', async (t) => {
  t.equal(vpdLength(data('tcm_loop.inquiry.vpd83')), 148);
  t.equal(vpdLength(data('iscsi.inquiry.vpd83')), 172);
  t.equal(vpdLength(hex('00 83 01 00')), 260, 'from the header alone');
  t.equal(vpdLength(hex('00 83 01')), 0, 'no header yet');
});

import t from 'tap';

import { ascText } from '../../src/scsi/asc-table.js';
import { decodeSense, describeSense, SenseKey, senseKeyName } from '../../src/scsi/sense.js';
import { hex, sense } from '../support/captures.js';

/** Fixed-format sense data laid out as SPC-6 table 48 (18 bytes unless `length` cuts or pads it). */
function fixed(f: {
  responseCode?: number; valid?: boolean; flags?: number; key: number; information?: number; additionalLength?: number;
  commandSpecific?: number; asc?: number; ascq?: number; fru?: number; sks?: [number, number, number]; length?: number;
}): Buffer {
  const b = Buffer.alloc(Math.max(18, f.length ?? 18));
  b[0] = (f.valid ? 0x80 : 0) | (f.responseCode ?? 0x70);
  b[2] = (f.flags ?? 0) | f.key;
  b.writeUInt32BE(f.information ?? 0, 3);
  b[7] = f.additionalLength ?? 10;
  b.writeUInt32BE(f.commandSpecific ?? 0, 8);
  b[12] = f.asc ?? 0;
  b[13] = f.ascq ?? 0;
  b[14] = f.fru ?? 0;
  if (f.sks) b.set(f.sks, 15);
  return b.subarray(0, f.length ?? 18);
}

/** Descriptor-format sense data (SPC-6 table 27): an 8-byte header, then the descriptors. */
function descriptor(key: number, asc: number, ascq: number, descriptors: string, responseCode = 0x72): Buffer {
  const body = hex(descriptors);
  return Buffer.concat([Buffer.from([responseCode, key, asc, ascq, 0, 0, 0, body.length]), body]);
}

t.test('captured unit attention after a preempt decodes as 06/2a/05 Registrations preempted', async (t) => {
  const raw = sense('tcm_loop.tur.preempted');
  const s = decodeSense(raw);
  t.equal(s.format, 'fixed');
  t.equal(s.responseCode, 0x70);
  t.equal(s.current, true);
  t.equal(s.key, SenseKey.UNIT_ATTENTION);
  t.equal(s.keyName, 'UNIT ATTENTION');
  t.equal(s.asc, 0x2a);
  t.equal(s.ascq, 0x05);
  t.equal(s.code, '06/2a/05');
  t.equal(s.text, 'Registrations preempted');
  t.equal(s.information, undefined, 'VALID is clear in the capture');
  t.equal(s.commandSpecific, undefined);
  t.equal(s.fieldPointer, undefined);
  t.equal(s.fru, undefined);
  t.equal(s.raw, raw, 'the raw bytes are kept');
  t.equal(describeSense(s), 'UNIT ATTENTION: Registrations preempted (06/2a/05)');
});

t.test('captured ILLEGAL REQUEST responses decode to their codes and texts', async (t) => {
  const cases: [string, string, string][] = [
    ['tcm_loop.inquiry.badpage', '05/24/00', 'Invalid field in CDB'],
    ['tcm_loop.badopcode', '05/20/00', 'Invalid command operation code'],
    ['tcm_loop.read.outofrange', '05/21/00', 'Logical block address out of range'],
  ];
  for (const [name, code, text] of cases) {
    const s = decodeSense(sense(name));
    t.equal(s.format, 'fixed', name);
    t.equal(s.key, SenseKey.ILLEGAL_REQUEST, name);
    t.equal(s.keyName, 'ILLEGAL REQUEST', name);
    t.equal(s.code, code, name);
    t.equal(s.text, text, name);
    t.equal(s.fieldPointer, undefined, `${name}: LIO leaves SKSV clear`);
    t.equal(describeSense(s), `ILLEGAL REQUEST: ${text} (${code})`, name);
  }
});

t.test('fixed sense with response code 0x71 is a deferred error', async (t) => {
  const s = decodeSense(fixed({ responseCode: 0x71, key: SenseKey.MEDIUM_ERROR, asc: 0x0c, ascq: 0x00 }));
  t.equal(s.format, 'fixed');
  t.equal(s.responseCode, 0x71);
  t.equal(s.current, false);
  t.equal(s.code, '03/0c/00');
  t.equal(describeSense(s), 'deferred error: MEDIUM ERROR: Write error (03/0c/00)');
});

t.test('fixed sense with VALID set reports the INFORMATION field', async (t) => {
  const s = decodeSense(fixed({ valid: true, key: SenseKey.MEDIUM_ERROR, information: 0x0001e240, asc: 0x11, ascq: 0x00 }));
  t.equal(s.responseCode, 0x70, 'the VALID bit is not part of the response code');
  t.equal(s.current, true);
  t.equal(s.information, 123456n);
  t.equal(describeSense(s), 'MEDIUM ERROR: Unrecovered read error (03/11/00), information 0x1e240');
});

t.test('fixed sense with VALID clear has no information', async (t) => {
  const s = decodeSense(fixed({ valid: false, key: SenseKey.MEDIUM_ERROR, information: 0x0001e240, asc: 0x11 }));
  t.equal(s.information, undefined);
  t.notMatch(describeSense(s), /information/);
});

t.test('fixed sense reports stream flags, command-specific information and FRU', async (t) => {
  const s = decodeSense(fixed({ flags: 0xe0, key: SenseKey.MEDIUM_ERROR, commandSpecific: 0xdeadbeef, asc: 0x11, fru: 0x42 }));
  t.equal(s.key, SenseKey.MEDIUM_ERROR, 'the flags do not leak into the key');
  t.equal(s.filemark, true);
  t.equal(s.eom, true);
  t.equal(s.ili, true);
  t.equal(s.commandSpecific, 0xdeadbeefn);
  t.equal(s.fru, 0x42);

  const plain = decodeSense(fixed({ key: SenseKey.MEDIUM_ERROR, asc: 0x11 }));
  t.equal(plain.filemark, undefined);
  t.equal(plain.eom, undefined);
  t.equal(plain.ili, undefined);
  t.equal(plain.commandSpecific, undefined, 'an all-zero command-specific field is left out');
  t.equal(plain.fru, undefined, 'FRU code 0 means none');
});

t.test('ILLEGAL REQUEST field pointer into the CDB without a bit pointer', async (t) => {
  // SKSV | C/D, BPV clear, field pointer 0x0002
  const s = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x24, sks: [0xc0, 0x00, 0x02] }));
  t.strictSame(s.fieldPointer, { in: 'cdb', byte: 2 });
  t.equal(describeSense(s), 'ILLEGAL REQUEST: Invalid field in CDB (05/24/00), field in cdb byte 2');
});

t.test('ILLEGAL REQUEST field pointer into the CDB with a bit pointer', async (t) => {
  // SKSV | C/D | BPV | bit 5, field pointer 0x0001
  const s = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x24, sks: [0xcd, 0x00, 0x01] }));
  t.strictSame(s.fieldPointer, { in: 'cdb', byte: 1, bit: 5 });
  t.equal(describeSense(s), 'ILLEGAL REQUEST: Invalid field in CDB (05/24/00), field in cdb byte 1 bit 5');
});

t.test('ILLEGAL REQUEST field pointer into the parameter list, with and without a bit pointer', async (t) => {
  // SKSV | BPV | bit 3, C/D clear, field pointer 0x0114 (two-byte pointer, high byte used)
  const withBit = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, sks: [0x8b, 0x01, 0x14] }));
  t.strictSame(withBit.fieldPointer, { in: 'parameter list', byte: 0x114, bit: 3 });
  t.equal(describeSense(withBit), 'ILLEGAL REQUEST: Invalid field in parameter list (05/26/00), field in parameter list byte 276 bit 3');

  // SKSV only, bit pointer bits set but BPV clear: no bit
  const noBit = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x26, sks: [0x87, 0x00, 0x14] }));
  t.strictSame(noBit.fieldPointer, { in: 'parameter list', byte: 20 });
});

t.test('sense-key specific bytes are ignored when SKSV is clear', async (t) => {
  const s = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x24, sks: [0x4d, 0x00, 0x02] }));
  t.equal(s.fieldPointer, undefined);
  t.equal(s.progress, undefined);
});

t.test('NOT READY progress indication is a fraction of 65536', async (t) => {
  const s = decodeSense(fixed({ key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x04, sks: [0x80, 0x40, 0x00] }));
  t.equal(s.progress, 0.25);
  t.equal(s.fieldPointer, undefined, 'not a field pointer outside ILLEGAL REQUEST');
  t.equal(describeSense(s), 'NOT READY: Logical unit not ready, format in progress (02/04/04), 25.0% done');

  const noSense = decodeSense(fixed({ key: SenseKey.NO_SENSE, asc: 0x00, ascq: 0x16, sks: [0x80, 0xff, 0xff] }));
  t.equal(noSense.progress, 0xffff / 0x10000, 'NO SENSE carries progress too');
});

t.test('sense-key specific bytes of other sense keys are not interpreted', async (t) => {
  const s = decodeSense(fixed({ key: SenseKey.UNIT_ATTENTION, asc: 0x29, sks: [0xc0, 0x12, 0x34] }));
  t.equal(s.fieldPointer, undefined);
  t.equal(s.progress, undefined);
});

t.test('a fixed buffer of only 8 bytes decodes with ASC and ASCQ 0 and does not throw', async (t) => {
  const raw = hex('70 00 06 00 00 00 00 0a');
  const s = decodeSense(raw);
  t.equal(s.format, 'fixed');
  t.equal(s.key, SenseKey.UNIT_ATTENTION);
  t.equal(s.asc, 0);
  t.equal(s.ascq, 0);
  t.equal(s.code, '06/00/00');
  t.equal(s.text, 'No additional sense information');
  t.equal(s.commandSpecific, undefined);
  t.equal(s.raw.length, 8);
});

t.test('a fixed buffer too short for INFORMATION has none even with VALID set', async (t) => {
  const s = decodeSense(hex('f0 00 03 00 01'));
  t.equal(s.format, 'fixed');
  t.equal(s.key, SenseKey.MEDIUM_ERROR);
  t.equal(s.information, undefined);
});

t.test('a fixed buffer cut after the ASC has ASCQ 0', async (t) => {
  const s = decodeSense(fixed({ key: SenseKey.UNIT_ATTENTION, asc: 0x2a, ascq: 0x05, length: 13 }));
  t.equal(s.asc, 0x2a);
  t.equal(s.ascq, 0);
});

t.test('a fixed buffer cut inside the sense-key specific bytes has no field pointer', async (t) => {
  const s = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x24, sks: [0xc0, 0x00, 0x02], length: 17 }));
  t.equal(s.code, '05/24/00');
  t.equal(s.fieldPointer, undefined);
});

t.test('fixed sense bytes past the additional sense length are ignored', async (t) => {
  // Additional length 4: only the command-specific field follows byte 7; ASC, ASCQ, FRU and SKS are stale.
  const s = decodeSense(fixed({
    key: SenseKey.ILLEGAL_REQUEST, additionalLength: 4, commandSpecific: 0x1234, asc: 0x24, ascq: 0x01, fru: 9, sks: [0xc0, 0, 2],
  }));
  t.equal(s.commandSpecific, 0x1234n);
  t.equal(s.asc, 0);
  t.equal(s.ascq, 0);
  t.equal(s.fru, undefined);
  t.equal(s.fieldPointer, undefined);

  const none = decodeSense(fixed({ key: SenseKey.ILLEGAL_REQUEST, additionalLength: 0, commandSpecific: 0x1234, asc: 0x24 }));
  t.equal(none.commandSpecific, undefined);
  t.equal(none.code, '05/00/00');
});

t.test('an empty buffer decodes as unknown format without throwing', async (t) => {
  const s = decodeSense(Buffer.alloc(0));
  t.equal(s.format, 'unknown');
  t.equal(s.responseCode, 0);
  t.equal(s.key, 0);
  t.equal(s.code, '00/00/00');
  t.equal(describeSense(s), 'unrecognised sense data (response code 0x0)');
});

t.test('an unknown response code decodes as unknown format, keeping the raw bytes', async (t) => {
  const raw = hex('7f 00 06 00 00 00 00 0a 00 00 00 00 2a 05 00 00 00 00');
  const s = decodeSense(raw);
  t.equal(s.format, 'unknown');
  t.equal(s.responseCode, 0x7f);
  t.equal(s.key, 0, 'nothing is read from a format vigil does not know');
  t.equal(s.asc, 0);
  t.equal(s.raw, raw);
  t.equal(describeSense(s), 'unrecognised sense data (response code 0x7f)');
});

t.test('descriptor sense header gives key, ASC and ASCQ', async (t) => {
  const s = decodeSense(descriptor(0x06, 0x2a, 0x05, ''));
  t.equal(s.format, 'descriptor');
  t.equal(s.responseCode, 0x72);
  t.equal(s.current, true);
  t.equal(s.code, '06/2a/05');
  t.equal(s.text, 'Registrations preempted');
  t.equal(s.otherDescriptors, undefined);
  t.equal(describeSense(s), 'UNIT ATTENTION: Registrations preempted (06/2a/05)');
});

t.test('descriptor sense with response code 0x73 is a deferred error', async (t) => {
  const s = decodeSense(descriptor(0x03, 0x0c, 0x00, '', 0x73));
  t.equal(s.format, 'descriptor');
  t.equal(s.current, false);
  t.match(describeSense(s), /^deferred error: MEDIUM ERROR: Write error \(03\/0c\/00\)$/);
});

t.test('descriptor type 0 gives the 64-bit information when VALID is set', async (t) => {
  const s = decodeSense(descriptor(0x03, 0x11, 0x00, '00 0a 80 00 01 23 45 67 89 ab cd ef'));
  t.equal(s.information, 0x0123456789abcdefn);
  t.equal(describeSense(s), 'MEDIUM ERROR: Unrecovered read error (03/11/00), information 0x123456789abcdef');

  const invalid = decodeSense(descriptor(0x03, 0x11, 0x00, '00 0a 00 00 01 23 45 67 89 ab cd ef'));
  t.equal(invalid.information, undefined, 'VALID clear');
});

t.test('descriptor type 1 gives the command-specific information', async (t) => {
  const s = decodeSense(descriptor(0x0e, 0x1d, 0x00, '01 0a 00 00 00 00 00 00 00 00 02 00'));
  t.equal(s.commandSpecific, 0x200n);
  t.equal(s.text, 'Miscompare during verify operation');
});

t.test('descriptor type 2 gives the field pointer for ILLEGAL REQUEST', async (t) => {
  const s = decodeSense(descriptor(0x05, 0x24, 0x00, '02 06 00 00 cf 00 01 00'));
  t.strictSame(s.fieldPointer, { in: 'cdb', byte: 1, bit: 7 });
});

t.test('descriptor type 2 gives the progress for NOT READY', async (t) => {
  const s = decodeSense(descriptor(0x02, 0x04, 0x04, '02 06 00 00 80 80 00 00'));
  t.equal(s.progress, 0.5);
  t.match(describeSense(s), /, 50\.0% done$/);

  const sksvClear = decodeSense(descriptor(0x02, 0x04, 0x04, '02 06 00 00 00 80 00 00'));
  t.equal(sksvClear.progress, undefined, 'SKSV clear');
});

t.test('descriptor type 3 gives the FRU code', async (t) => {
  t.equal(decodeSense(descriptor(0x04, 0x44, 0x00, '03 02 00 07')).fru, 7);
  t.equal(decodeSense(descriptor(0x04, 0x44, 0x00, '03 02 00 00')).fru, undefined, 'FRU code 0 means none');
});

t.test('descriptor type 4 gives filemark, EOM and ILI', async (t) => {
  const all = decodeSense(descriptor(0x08, 0x00, 0x05, '04 02 00 e0'));
  t.equal(all.filemark, true);
  t.equal(all.eom, true);
  t.equal(all.ili, true);

  const eomOnly = decodeSense(descriptor(0x0d, 0x00, 0x02, '04 02 00 40'));
  t.equal(eomOnly.filemark, undefined);
  t.equal(eomOnly.eom, true);
  t.equal(eomOnly.ili, undefined);
});

t.test('descriptor type 5 gives ILI', async (t) => {
  t.equal(decodeSense(descriptor(0x05, 0x24, 0x00, '05 02 00 20')).ili, true);
  t.equal(decodeSense(descriptor(0x05, 0x24, 0x00, '05 02 00 00')).ili, undefined);
});

t.test('descriptors vigil does not interpret are kept in otherDescriptors', async (t) => {
  const s = decodeSense(descriptor(0x05, 0x24, 0x00, '80 03 aa bb cc 03 02 00 09'));
  t.equal(s.otherDescriptors?.length, 1);
  t.equal(s.otherDescriptors?.[0]?.type, 0x80);
  t.same(s.otherDescriptors?.[0]?.bytes, hex('80 03 aa bb cc'), 'the whole descriptor, header included');
  t.equal(s.fru, 9, 'the descriptor after it is still read');
});

t.test('several descriptors in one response are all read', async (t) => {
  const s = decodeSense(descriptor(0x05, 0x24, 0x00, [
    '00 0a 80 00 00 00 00 00 00 00 10 00',
    '01 0a 00 00 00 00 00 00 00 00 00 2a',
    '02 06 00 00 c0 00 04 00',
    '03 02 00 05',
  ].join(' ')));
  t.equal(s.information, 0x1000n);
  t.equal(s.commandSpecific, 0x2an);
  t.strictSame(s.fieldPointer, { in: 'cdb', byte: 4 });
  t.equal(s.fru, 5);
  t.equal(describeSense(s), 'ILLEGAL REQUEST: Invalid field in CDB (05/24/00), field in cdb byte 4, information 0x1000');
});

t.test('descriptors past the additional sense length are ignored', async (t) => {
  const raw = descriptor(0x05, 0x24, 0x00, '03 02 00 05 03 02 00 06');
  raw[7] = 4; // only the first descriptor counts
  const s = decodeSense(raw);
  t.equal(s.fru, 5);

  const none = Buffer.from(raw);
  none[7] = 0;
  t.equal(decodeSense(none).fru, undefined);
});

t.test('a descriptor cut short by the buffer end is not read and does not throw', async (t) => {
  const raw = descriptor(0x03, 0x11, 0x00, '00 0a 80 00 00 00 00 00 00 00 10 00').subarray(0, 16);
  const s = decodeSense(raw);
  t.equal(s.code, '03/11/00');
  t.equal(s.information, undefined);

  const header = decodeSense(hex('72 06 2a'));
  t.equal(header.format, 'descriptor');
  t.equal(header.code, '06/2a/00', 'a missing ASCQ reads 0');
});

t.test('senseKeyName names all sixteen sense keys', async (t) => {
  const names = [
    'NO SENSE', 'RECOVERED ERROR', 'NOT READY', 'MEDIUM ERROR', 'HARDWARE ERROR', 'ILLEGAL REQUEST',
    'UNIT ATTENTION', 'DATA PROTECT', 'BLANK CHECK', 'VENDOR SPECIFIC', 'COPY ABORTED', 'ABORTED COMMAND',
    'RESERVED', 'VOLUME OVERFLOW', 'MISCOMPARE', 'COMPLETED',
  ];
  names.forEach((name, key) => t.equal(senseKeyName(key), name, `key 0x${key.toString(16)}`));
  t.equal(senseKeyName(0x25), 'ILLEGAL REQUEST', 'only the low nibble counts');
});

t.test('ascText gives the SPC text of known codes', async (t) => {
  t.equal(ascText(0x2a, 0x05), 'Registrations preempted');
  t.equal(ascText(0x2a, 0x03), 'Reservations preempted');
  t.equal(ascText(0x29, 0x00), 'Power on, reset, or bus device reset occurred');
  t.equal(ascText(0x04, 0x0a), 'Logical unit not accessible, asymmetric access state transition');
  t.equal(ascText(0x00, 0x00), 'No additional sense information');
});

t.test('ascText names the parameter of ranged codes', async (t) => {
  t.equal(ascText(0x40, 0x85), 'Diagnostic failure on component 0x85');
  t.equal(ascText(0x4d, 0x1f), 'Tagged overlapped commands (task tag 0x1f)');
});

t.test('ascText falls back to hex for unknown and vendor-specific codes', async (t) => {
  t.equal(ascText(0x12, 0x34), 'ASC 0x12, ASCQ 0x34');
  t.equal(ascText(0x40, 0x00), 'ASC 0x40, ASCQ 0x00', 'below 0x80 ASCQ 0x40 is not a component number');
  t.equal(ascText(0x80, 0x01), 'Vendor specific ASC 0x80, ASCQ 0x01');
  t.equal(ascText(0x04, 0x99), 'Vendor specific ASC 0x04, ASCQ 0x99');
  t.equal(decodeSense(fixed({ key: SenseKey.HARDWARE_ERROR, asc: 0x12, ascq: 0x34 })).text, 'ASC 0x12, ASCQ 0x34');
});

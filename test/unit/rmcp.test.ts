// RMCP+ cryptography and packets against a real exchange (ipmitool 1.8.19 ↔ ipmi_sim 2.0.33, user admin,
// password secret, suite 3; the vectors of ../shared/notes, each recomputed there independently), and the
// packet codec's refusals: a forged, truncated or replayed packet is never taken as an answer.
import t from 'tap';

import { IpmiProtocolError } from '../../src/ipmi/errors.js';
import { checksum, decodeLanRequest, decodeLanResponse, encodeLanRequest, encodeLanResponse } from '../../src/ipmi/message.js';
import {
  cipherSuite, decryptPayload, encryptPayload, integrityCode, keyFromSecret, rakp2Code, rakp3Code, rakp4Icv,
  sessionIntegrityKey, sessionKeys, type RakpContext,
} from '../../src/ipmi/rmcp-crypto.js';
import {
  decodeOpenSessionRequest, decodeOpenSessionResponse, decodePacket, decodeRakp1, decodeRakp2, encodeOpenSessionRequest,
  encodeOpenSessionResponse, encodeRakp1, encodeRakp2, encodeV15, encodeV2, PayloadType,
} from '../../src/ipmi/rmcp-packet.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const CTX: RakpContext = {
  suite: cipherSuite(3),
  consoleSessionId: hex('a4a3a2a0').readUInt32LE(0),
  bmcSessionId: hex('02020000').readUInt32LE(0),
  consoleRandom: hex('86 1c 96 7a 07 61 b6 fd c6 bf 34 fc 2a 32 0b 8c'),
  bmcRandom: hex('f1 f2 15 6e f8 eb 5a 97 10 63 79 ff 3e bc 99 20'),
  bmcGuid: hex('a1 23 45 67 89 ab cd ef a1 23 45 67 89 ab cd ef'),
  role: 0x14,
  user: Buffer.from('admin'),
};
const KUID = keyFromSecret(Buffer.from('secret'));
const SIK = hex('e4 fe b7 65 90 05 a2 2c e0 de 20 3e 55 6b 0f ae d4 92 50 dc');
const K1 = hex('aa 90 f9 ab 9c 4b 85 a9 d2 28 d7 69 e8 e4 04 1c d2 f7 8b 37');
const K2 = hex('39 76 1e 7a e7 ce f7 8c 99 27 73 13 47 80 e5 25 b6 f7 29 85');
// The first encrypted request of that exchange, Set Session Privilege Level, from the RMCP header on.
const FIRST_REQUEST = hex(`06 00 ff 07
  06 c0 02 02 00 00 03 00 00 00 20 00
  21 1c 97 a1 2d 3c 9b 2e 58 d1 04 6a 34 9b 9d ff
  b4 83 f9 ba e6 1c 48 72 fa a7 99 2b 47 b7 e3 16
  ff ff 02 07
  12 3b 3e 98 65 50 39 ef e2 69 9c c2`);
const FIRST_PLAINTEXT = hex('20 18 c8 81 04 3b 04 3c');

t.test('the RAKP codes and the session keys are those of a real ipmitool-ipmi_sim exchange (suite 3)', async (t) => {
  t.same(rakp2Code(CTX, KUID), hex('84 7f f4 ec 01 79 98 ce ed ef d3 56 6e 51 24 cc 58 ad bb 36'), 'RAKP 2');
  t.same(rakp3Code(CTX, KUID), hex('5f e2 3b 53 c5 68 e9 5c a7 e5 b1 b7 82 1f 6f c1 da a3 2e 5a'), 'RAKP 3');
  t.same(sessionIntegrityKey(CTX, KUID), SIK, 'SIK, with Kg = Kuid');
  const { k1, k2 } = sessionKeys(CTX.suite, SIK);
  t.same(k1, K1, 'K1');
  t.same(k2, K2, 'K2');
  t.same(rakp4Icv(CTX, SIK), hex('51 71 78 d0 97 e8 f2 b1 95 2c 7a 7c'), 'RAKP 4 ICV, 12 bytes');
});

t.test('the first encrypted request decodes to Set Session Privilege Level, and re-encodes byte for byte with its IV', async (t) => {
  const keys = { suite: CTX.suite, k1: K1, k2: K2 };
  const d = decodePacket(FIRST_REQUEST, keys);
  t.equal(d.version, '2.0');
  if (d.version !== '2.0') return;
  t.same({ type: d.payloadType, sid: d.sessionId, seq: d.sequence, enc: d.encrypted, auth: d.authenticated }, { type: 0, sid: CTX.bmcSessionId, seq: 3, enc: true, auth: true });
  t.same(d.payload, FIRST_PLAINTEXT);
  const req = decodeLanRequest(d.payload);
  t.same({ netfn: req.netfn, cmd: req.cmd, data: [...req.data], rqSeq: req.rqSeq }, { netfn: 6, cmd: 0x3b, data: [4], rqSeq: 1 });
  t.same(encodeLanRequest({ netfn: 6, cmd: 0x3b, data: Buffer.from([4]), name: 'x' }, 1), FIRST_PLAINTEXT, 'the LAN framing and checksums');
  t.same(encryptPayload(K2, FIRST_PLAINTEXT, FIRST_REQUEST.subarray(16, 32)), FIRST_REQUEST.subarray(16, 48), 'AES-CBC with the pad 01..07, 07');
  t.same(integrityCode(CTX.suite, K1, FIRST_REQUEST.subarray(4, 52)), FIRST_REQUEST.subarray(52), 'HMAC-SHA1-96 over authtype..next header');
});

t.test('a session packet is refused when any byte is changed, when it is not encrypted, or when its trailer lies', async (t) => {
  const keys = { suite: CTX.suite, k1: K1, k2: K2 };
  for (let i = 4; i < FIRST_REQUEST.length; i++) {
    const forged = Buffer.from(FIRST_REQUEST);
    forged[i]! ^= 0x01;
    t.throws(() => decodePacket(forged, keys), IpmiProtocolError, `byte ${i} flipped`);
  }
  const plain = encodeV2({ payloadType: 0, sessionId: 1, sequence: 1, payload: FIRST_PLAINTEXT });
  t.throws(() => decodePacket(plain, keys), /not both authenticated and encrypted/, 'a clear packet inside a session');
  t.throws(() => decodePacket(FIRST_REQUEST), /outside a session/, 'an authenticated packet without keys');
  t.throws(() => decodePacket(FIRST_REQUEST.subarray(0, 40), keys), IpmiProtocolError, 'truncated');
  t.throws(() => decodePacket(Buffer.from([6, 0, 0xff, 6, 0]), keys), /not an RMCP packet of class IPMI/, 'ASF class');
});

t.test('suite 17: HMAC-SHA256 codes, 16-byte ICVs, keys from 20 bytes of 0x01/0x02', async (t) => {
  const ctx = { ...CTX, suite: cipherSuite(17) };
  t.equal(rakp2Code(ctx, KUID).length, 32);
  const sik = sessionIntegrityKey(ctx, KUID);
  t.equal(sik.length, 32);
  t.equal(rakp4Icv(ctx, sik).length, 16);
  const { k1, k2 } = sessionKeys(ctx.suite, sik);
  const keys = { suite: ctx.suite, k1, k2 };
  const packet = encodeV2({ payloadType: 0, sessionId: 7, sequence: 9, payload: FIRST_PLAINTEXT }, keys);
  t.equal((packet.length - 4 - 16) % 4, 0, 'the integrity pad makes authtype..next header a multiple of 4');
  const d = decodePacket(packet, keys);
  t.same(d.version === '2.0' && d.payload, FIRST_PLAINTEXT);
  t.throws(() => decodePacket(packet, { suite: ctx.suite, k1: K1, k2 }), /integrity code does not match/, 'another K1');
});

t.test('AES payloads: every length round-trips; a wrong pad or length is refused', async (t) => {
  for (let n = 0; n <= 40; n++) {
    const p = Buffer.alloc(n, n);
    const c = encryptPayload(K2, p);
    t.equal(c.length % 16, 0);
    t.same(decryptPayload(K2, c), p, `${n} bytes`);
  }
  t.throws(() => decryptPayload(K2, Buffer.alloc(24)), /IV and whole blocks/);
  t.throws(() => decryptPayload(Buffer.alloc(20, 9), encryptPayload(K2, Buffer.alloc(5))), IpmiProtocolError, 'another key: the pad does not check');
});

t.test('set-up payloads encode and decode both ways; refusals are short', async (t) => {
  const suite = cipherSuite(3);
  const req = { tag: 7, privilege: 4, consoleSessionId: 0xa0a2a3a4, suite };
  const dreq = decodeOpenSessionRequest(encodeOpenSessionRequest(req));
  t.same(dreq, { tag: 7, privilege: 4, consoleSessionId: 0xa0a2a3a4, suite: { authAlgorithm: 1, integrityAlgorithm: 1, confidentialityAlgorithm: 1 } });
  const res = { tag: 7, status: 0, privilege: 4, consoleSessionId: 1, bmcSessionId: 2, authAlgorithm: 3, integrityAlgorithm: 4, confidentialityAlgorithm: 1 };
  t.same(decodeOpenSessionResponse(encodeOpenSessionResponse(res)), res);
  t.equal(encodeOpenSessionResponse({ ...res, status: 0x11 }).length, 8);
  t.equal(decodeOpenSessionResponse(encodeOpenSessionResponse({ ...res, status: 0x11 })).status, 0x11);
  const r1 = { tag: 1, bmcSessionId: 5, consoleRandom: CTX.consoleRandom, role: 0x14, user: Buffer.from('admin') };
  t.same(decodeRakp1(encodeRakp1(r1)), r1);
  t.throws(() => encodeRakp1({ ...r1, user: Buffer.alloc(17, 0x61) }), /at most 16 bytes/);
  const r2 = { tag: 1, status: 0, consoleSessionId: 5, bmcRandom: CTX.bmcRandom, bmcGuid: CTX.bmcGuid, code: Buffer.alloc(20, 3) };
  t.same(decodeRakp2(encodeRakp2(r2)), r2);
  t.throws(() => decodeRakp2(Buffer.alloc(20)), IpmiProtocolError, 'a RAKP 2 of status 0 without its randoms');
  t.throws(() => decodeOpenSessionResponse(Buffer.alloc(12)), IpmiProtocolError);
});

t.test('the IPMI 1.5 session-less wrapper and the LAN framing: checksums checked', async (t) => {
  const msg = encodeLanResponse({ netfn: 6, cmd: 0x38, rqSeq: 5, rqAddr: 0x81 }, 0, Buffer.from([1, 0x80, 0, 2]));
  const d = decodePacket(encodeV15(msg));
  t.same(d.version === '1.5' && d.message, msg);
  const r = decodeLanResponse(msg);
  t.same({ netfn: r.netfn, cmd: r.cmd, rqSeq: r.rqSeq, code: r.code, data: [...r.data] }, { netfn: 7, cmd: 0x38, rqSeq: 5, code: 0, data: [1, 0x80, 0, 2] });
  const bad = Buffer.from(msg);
  bad[bad.length - 1]! ^= 1;
  t.throws(() => decodeLanResponse(bad), /bad data checksum/);
  bad[2]! ^= 1;
  t.throws(() => decodeLanResponse(bad), /bad header checksum/);
  t.equal(checksum(Buffer.from([0x20, 0x18])), 0xc8);
  t.throws(() => keyFromSecret(Buffer.alloc(21)), /at most 20 bytes/);
  t.throws(() => cipherSuite(0), /not supported/);
});

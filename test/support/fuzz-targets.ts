// Every parser that faces the outside, fed random and mutated inputs through the product's own code:
// datagrams, distress, RMCP+ packets, control request lines (a live ControlServer), the configuration, NUT replies (a
// live NutSource against a fake upsd) and APC smart replies. Each input is answered or dropped with a
// reason, counted; an exception of a kind the parser does not report is a crash, recorded with the input.
// test/unit/fuzz.test.ts runs a bounded number in CI, bench/fuzz.ts a million each (VIGIL_FUZZ_COUNT).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { z } from 'zod';

import { ConfigError, parseConfig } from '../../src/config/load.js';
import { IpmiProtocolError } from '../../src/ipmi/errors.js';
import { decodeLanResponse, encodeLanResponse } from '../../src/ipmi/message.js';
import { cipherSuite, sessionKeys } from '../../src/ipmi/rmcp-crypto.js';
import {
  decodeOpenSessionResponse, decodePacket, decodeRakp2, decodeRakp3or4, encodeOpenSessionResponse, encodeRakp2, encodeRakp3or4,
  encodeV15, encodeV2, PayloadType,
} from '../../src/ipmi/rmcp-packet.js';
import { LineSplitter } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { ApcLineParser, parseApcStatus } from '../../src/power/apc-smart.js';
import { NutSource } from '../../src/power/nut.js';
import { packageRoot } from '../../src/util/package-root.js';
import { clusterTag, decodeDatagram, encodeDatagram } from '../../src/wire/datagram.js';
import { distressHeader, DistressReceiver, encodeDistressPayload, REASON_CODES } from '../../src/wire/distress.js';
import { mutate, MUTATIONS } from './datagram-fuzz.js';
import { prng } from './prng.js';

export interface FuzzReport {
  target: string;
  inputs: number;
  /** Outcome → count: "accepted", or "dropped: REASON" / "refused: ..." as the parser reports it. */
  outcomes: Map<string, number>;
  /** Inputs that threw something the parser does not report: the input (hex or text) and the error. */
  crashes: string[];
  /** The slowest single input, in ms (a hang shows here, or as a timeout of the run). */
  maxMs: number;
  seconds: number;
}

export interface FuzzTarget {
  name: string;
  run(count: number, seed: number): Promise<FuzzReport>;
}

class Tally {
  readonly outcomes = new Map<string, number>();
  readonly crashes: string[] = [];
  maxMs = 0;
  inputs = 0;
  private readonly started = performance.now();
  constructor(private readonly target: string) {}

  count(outcome: string, ms: number): void {
    this.inputs++;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    if (ms > this.maxMs) this.maxMs = ms;
  }

  crash(input: string, e: unknown, ms: number): void {
    this.count('crash', ms);
    if (this.crashes.length < 20) this.crashes.push(`${input.slice(0, 400)}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  }

  report(): FuzzReport {
    return { target: this.target, inputs: this.inputs, outcomes: this.outcomes, crashes: this.crashes, maxMs: this.maxMs, seconds: (performance.now() - this.started) / 1000 };
  }
}

/** Runs `parse` on each input synchronously; its returned string is the outcome. */
function syncTarget(name: string, make: (rand: () => number, n: number) => Uint8Array | string, parse: (input: Uint8Array | string) => string): FuzzTarget {
  return {
    name,
    async run(count, seed) {
      const rand = prng(seed);
      const tally = new Tally(name);
      for (let n = 0; n < count; n++) {
        const input = make(rand, n);
        const t0 = performance.now();
        try {
          const outcome = parse(input);
          tally.count(outcome, performance.now() - t0);
        } catch (e) {
          tally.crash(typeof input === 'string' ? JSON.stringify(input) : Buffer.from(input).toString('hex'), e, performance.now() - t0);
        }
      }
      return tally.report();
    },
  };
}

const KEY = randomBytes(32);
const TAG = clusterTag('fuzz');
const SHAPE = { keepHeader: 6, payloadBelow: 200, flipFrom: 0, clusterTag: TAG };

const datagramSeeds = ([0, 1, 2] as const).map((stream) => encodeDatagram(KEY, { type: 2, stream, sender: 2, clusterTag: TAG, incarnation: 5n, sequence: 7n }, randomBytes(40)));

const datagram = syncTarget('datagram', (rand, n) => mutate(n % MUTATIONS, datagramSeeds[n % datagramSeeds.length]!, rand, SHAPE), (b) => {
  const r = decodeDatagram(KEY, b as Uint8Array, TAG);
  return r.ok ? 'accepted' : `dropped: ${r.reason}`;
});

function distressDatagram(event: bigint): Buffer {
  const p = { reasonCode: REASON_CODES['power-low-battery'], node: 2, incarnation: 5n, event, repeat: 0, repeats: 3, armedAtMs: 1n };
  return encodeDatagram(KEY, distressHeader(TAG, p), encodeDistressPayload(p));
}
const distressSeeds = [1n, 4n, 7n].map(distressDatagram);
let distressReceiver = new DistressReceiver({ key: KEY, clusterTag: TAG, selfId: 1, peers: [2, 3] });
const distress: FuzzTarget = {
  name: 'distress',
  run(count, seed) {
    distressReceiver = new DistressReceiver({ key: KEY, clusterTag: TAG, selfId: 1, peers: [2, 3] });
    return syncTarget('distress', (rand, n) => mutate(n % MUTATIONS, distressSeeds[n % distressSeeds.length]!, rand, SHAPE), (b) => {
      const r = distressReceiver.receive(b as Uint8Array);
      return r.ok ? 'accepted' : `dropped: ${r.reason}`;
    }).run(count, seed);
  },
};

/** One to eight character changes, a deleted, doubled or swapped line, random printable text, a cut. */
function mutateText(text: string, rand: () => number, n: number): string {
  const int = (k: number) => Math.floor(rand() * k);
  const lines = text.split('\n');
  switch (n % 6) {
    case 0: {
      const chars = [...text];
      for (let k = 0; k < 1 + int(8); k++) chars[int(chars.length)] = String.fromCharCode(int(2) ? 32 + int(95) : int(256));
      return chars.join('');
    }
    case 1: lines.splice(int(lines.length), 1); return lines.join('\n');
    case 2: { const i = int(lines.length); lines.splice(i, 0, lines[i]!); return lines.join('\n'); }
    case 3: { const [i, j] = [int(lines.length), int(lines.length)]; [lines[i], lines[j]] = [lines[j]!, lines[i]!]; return lines.join('\n'); }
    case 4: return Array.from({ length: int(400) }, () => String.fromCharCode(9 + int(118))).join('');
    default: return text.slice(0, int(text.length));
  }
}

const CONFIG_TEXT = readFileSync(join(packageRoot(), 'hw-fixtures', 'cluster', 'lab-two-node.yaml'), 'utf8');
const config = syncTarget('config', (rand, n) => mutateText(CONFIG_TEXT, rand, n), (text) => {
  try {
    parseConfig(text as string, 'fuzz.yaml', { baseDir: '/etc/vigil' });
    return 'accepted';
  } catch (e) {
    if (e instanceof ConfigError) return `refused: ${e.problems.length === 1 ? 'one problem' : 'several problems'}`;
    throw e;
  }
});

/** Bytes as an APC smart UPS might send them: answers, alerts, noise, no newline at all. */
const apcSeeds = ['08\r\n', '18\r\n', '50\r\n', '!', '$', 'NA\r\n', '2:1\r\n'];
const apc: FuzzTarget = {
  name: 'apc',
  run(count, seed) {
    let lines: string[] = [];
    let alerts = 0;
    const parser = new ApcLineParser(() => { alerts++; }, (l) => lines.push(l));
    return syncTarget('apc', (rand, n) => {
      const int = (k: number) => Math.floor(rand() * k);
      if (n % 2 === 0) return Buffer.from(Array.from({ length: int(80) }, () => int(256)));
      const b = Buffer.from(apcSeeds[int(apcSeeds.length)]!.repeat(1 + int(3)));
      for (let k = 0; k < int(3); k++) b[int(b.length)] = int(256);
      return b;
    }, (b) => {
      lines = [];
      alerts = 0;
      parser.push(Buffer.from(b as Uint8Array));
      const statuses = lines.map((l) => parseApcStatus(l));
      const parsed = statuses.filter((s) => s !== undefined).length;
      return `${alerts ? 'alert' : 'no alert'}, ${parsed ? 'a status' : lines.length ? 'lines, no status' : 'no line yet'}`;
    }).run(count, seed);
  },
};

/** A live ControlServer, one connection; every line must get exactly one answer, an error or a result. */
const control: FuzzTarget = {
  name: 'control',
  async run(count, seed) {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-fuzz-'));
    const server = new ControlServer({ path: join(dir, 'ctl.sock') });
    server.handle('echo', z.object({ text: z.string() }), ({ text }) => ({ text }), 'read');
    await server.start();
    const socket = createConnection(join(dir, 'ctl.sock'));
    await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
    const waiting: ((l: string) => void)[] = [];
    const split = new LineSplitter(1 << 24, (l) => waiting.shift()?.(l));
    socket.on('data', (c: Buffer) => split.push(c));
    const rand = prng(seed);
    const int = (k: number) => Math.floor(rand() * k);
    const good = JSON.stringify({ id: 1, method: 'echo', params: { text: 'hi' } });
    const tally = new Tally('control');
    try {
      for (let n = 0; n < count; n++) {
        let line: string;
        if (n % 2 === 0) {
          line = Array.from({ length: int(160) }, () => String.fromCharCode(int(4) ? 32 + int(95) : 128 + int(1000))).join('');
        } else {
          const chars = [...good];
          for (let k = 0; k < 1 + int(3); k++) chars[int(chars.length)] = String.fromCharCode(32 + int(95));
          line = chars.join('');
        }
        line = line.replace(/\n/g, ' ');
        if (line.trim() === '') line = '?';
        const t0 = performance.now();
        const answer = await Promise.race([
          new Promise<string>((r) => { waiting.push(r); socket.write(`${line}\n`); }),
          new Promise<string>((r) => setTimeout(() => r('(no answer within 5 s)'), 5000).unref()),
        ]);
        const ms = performance.now() - t0;
        try {
          const a = JSON.parse(answer) as { error?: { code?: string }; result?: unknown };
          if (a.error) tally.count(`answered: error ${a.error.code}`, ms);
          else if ('result' in a) tally.count('answered: result', ms);
          else tally.crash(JSON.stringify(line), new Error(`neither error nor result: ${answer}`), ms);
        } catch (e) {
          tally.crash(JSON.stringify(line), new Error(`not an answer: ${answer} (${String(e)})`), ms);
        }
      }
    } finally {
      socket.destroy();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
    return tally.report();
  },
};

/**
 * A live NutSource polling a fake upsd that answers each GET VAR with a random or mutated line. When the
 * next command arrives the source has dealt with the last answer: taken as a status (a poll counted) or a
 * failure (counted, with its error); an answer it neither took nor counted is a crash.
 */
const nut: FuzzTarget = {
  name: 'nut',
  async run(count, seed) {
    const rand = prng(seed);
    const int = (k: number) => Math.floor(rand() * k);
    const seeds = ['VAR ups1 ups.status "OL"', 'VAR ups1 ups.status "OB LB"', 'ERR UNKNOWN-UPS', 'VAR ups1 ups.status "OB DISCHRG"', 'VAR ups1 ups.status "WAIT"'];
    const tally = new Tally('nut');
    let source: NutSource | undefined;
    let asked = 0;
    let answered: { at: number; line: string; polls: number; failed: number } | undefined;
    let done!: () => void;
    const finished = new Promise<void>((r) => { done = r; });
    const settle = (): void => {
      if (!answered || !source) return;
      const s = source.status();
      const ms = performance.now() - answered.at;
      if (s.polls > answered.polls) tally.count(`taken: ${s.state}`, ms);
      else if (s.failedPolls > answered.failed) {
        const e = s.lastError ?? '';
        const kind = /ERR /.test(e) ? 'an ERR reply' : /says nothing/.test(e) ? 'no mains state in it' : /unexpected answer/.test(e) ? 'not a VAR ups.status line' : e.split(':')[0];
        tally.count(`failure counted: ${kind}`, ms);
      } else tally.crash(JSON.stringify(answered.line), new Error('the answer was neither taken nor counted as a failure'), ms);
      answered = undefined;
    };
    const server = createServer((sock) => {
      sock.setEncoding('utf8');
      let buf = '';
      sock.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const cmd = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          settle();
          if (cmd.startsWith('LIST VAR')) { sock.write('BEGIN LIST VAR ups1\nVAR ups1 ups.status "OL"\nEND LIST VAR ups1\n'); continue; }
          if (!cmd.startsWith('GET VAR')) { sock.write('OK\n'); continue; }
          if (asked >= count) { done(); continue; }
          let line: string;
          if (asked % 2 === 0) line = Array.from({ length: int(120) }, () => String.fromCharCode(int(8) ? 32 + int(95) : 1 + int(255))).join('').replace(/[\r\n]/g, ' ');
          else {
            const chars = [...seeds[int(seeds.length)]!];
            for (let k = 0; k < int(4); k++) chars[int(chars.length)] = String.fromCharCode(32 + int(95));
            line = chars.join('');
          }
          asked++;
          const st = source!.status();
          answered = { at: performance.now(), line, polls: st.polls, failed: st.failedPolls };
          sock.write(`${line}\n`);
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    source = new NutSource({ host: '127.0.0.1', port, ups: 'ups1', pollMs: 0, timeoutMs: 5000, backoffMs: 1, backoffMaxMs: 1 });
    source.on('event', () => {});
    source.start();
    await finished;
    await source.stop();
    await new Promise<void>((r) => server.close(() => r()));
    return tally.report();
  },
};

// RMCP+ packets as the client receives them: a session's encrypted and authenticated response, set-up
// answers (Open Session, RAKP 2 and 4) and the IPMI 1.5 session-less answer, mutated. Each is decoded
// (and its payload parsed) or refused as an IpmiProtocolError; anything else is a crash.
const RMCP_SUITE = cipherSuite(17);
const RMCP_KEYS = { suite: RMCP_SUITE, ...sessionKeys(RMCP_SUITE, randomBytes(32)) };
const lanAnswer = encodeLanResponse({ netfn: 0, cmd: 1, rqSeq: 9, rqAddr: 0x81 }, 0, Buffer.from([1, 0, 0, 0]));
const rmcpSeeds: { packet: Buffer; keyed: boolean }[] = [
  { packet: encodeV2({ payloadType: PayloadType.IPMI, sessionId: 7, sequence: 3, payload: lanAnswer }, RMCP_KEYS), keyed: true },
  { packet: encodeV2({ payloadType: PayloadType.OPEN_SESSION_RESPONSE, sessionId: 0, sequence: 0, payload: encodeOpenSessionResponse({ tag: 1, status: 0, privilege: 4, consoleSessionId: 7, bmcSessionId: 9, authAlgorithm: 3, integrityAlgorithm: 4, confidentialityAlgorithm: 1 }) }), keyed: false },
  { packet: encodeV2({ payloadType: PayloadType.RAKP2, sessionId: 0, sequence: 0, payload: encodeRakp2({ tag: 1, status: 0, consoleSessionId: 7, bmcRandom: randomBytes(16), bmcGuid: randomBytes(16), code: randomBytes(32) }) }), keyed: false },
  { packet: encodeV2({ payloadType: PayloadType.RAKP4, sessionId: 0, sequence: 0, payload: encodeRakp3or4({ tag: 1, status: 0, sessionId: 7, code: randomBytes(16) }) }), keyed: false },
  { packet: encodeV15(encodeLanResponse({ netfn: 6, cmd: 0x38, rqSeq: 1, rqAddr: 0x81 }, 0, Buffer.from([1, 0x80, 4, 2, 0, 0, 0, 0]))), keyed: false },
];
const rmcpTarget: FuzzTarget = {
  name: 'rmcp',
  run(count, seed) {
    // Every seed meets every mutation (the seed changes every MUTATIONS inputs).
    const seedOf = (i: number) => rmcpSeeds[Math.floor(i / MUTATIONS) % rmcpSeeds.length]!;
    let n = 0;
    return syncTarget('rmcp', (rand, i) => { n = i; return mutate(i % MUTATIONS, seedOf(i).packet, rand, { ...SHAPE, keepHeader: 6, flipFrom: 4 }); }, (b) => {
      try {
        const d = decodePacket(Buffer.from(b as Uint8Array), seedOf(n).keyed ? RMCP_KEYS : undefined);
        if (d.version === '1.5') decodeLanResponse(d.message);
        else if (d.payloadType === PayloadType.IPMI) decodeLanResponse(d.payload);
        else if (d.payloadType === PayloadType.OPEN_SESSION_RESPONSE) decodeOpenSessionResponse(d.payload);
        else if (d.payloadType === PayloadType.RAKP2) decodeRakp2(d.payload);
        else if (d.payloadType === PayloadType.RAKP4) decodeRakp3or4(d.payload, 'RAKP 4');
        return 'accepted';
      } catch (e) {
        if (e instanceof IpmiProtocolError) return `refused: ${e.message.replace(/\d+/g, 'N').slice(0, 60)}`;
        throw e;
      }
    }).run(count, seed);
  },
};

export const FUZZ_TARGETS: FuzzTarget[] = [datagram, distress, control, config, nut, apc, rmcpTarget];

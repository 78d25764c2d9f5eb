// Mutations of a genuine datagram for the fuzz tests of its receivers (src/wire/datagram.ts,
// src/wire/distress.ts): whatever they produce must be dropped with a reason, never accepted or thrown.
import { HEADER_LENGTH, MAC_LENGTH, MAX_DATAGRAM } from '../../src/wire/datagram.js';

export interface Shape {
  /** Leading bytes of the genuine header kept in front of random bytes (4: magic and version; 6: type and stream too). */
  keepHeader: number;
  /** Random payload length of the header-fronted case is below this. */
  payloadBelow: number;
  /** Bit flips land at or after this offset (HEADER_LENGTH: payload or MAC only, with a consistent length field). */
  flipFrom: number;
  clusterTag: number;
}

/** The kinds mutate() knows, 0 .. MUTATIONS - 1. */
export const MUTATIONS = 5;

/**
 * 0 random bytes of any length up to a bit over the maximum; 1 random bytes behind a genuine header start
 * and the cluster tag (reaching the later checks); 2 one to eight random byte changes; 3 truncated or
 * extended; 4 one bit flipped (only the HMAC can tell).
 */
export function mutate(kind: number, base: Buffer, rand: () => number, shape: Shape): Buffer {
  const int = (n: number) => Math.floor(rand() * n);
  switch (kind) {
    case 0: {
      const b = Buffer.alloc(int(MAX_DATAGRAM + 100));
      for (let i = 0; i < b.length; i++) b[i] = int(256);
      return b;
    }
    case 1: {
      const b = Buffer.alloc(HEADER_LENGTH + MAC_LENGTH + int(shape.payloadBelow));
      for (let i = 0; i < b.length; i++) b[i] = int(256);
      base.copy(b, 0, 0, shape.keepHeader);
      b.writeUInt32BE(shape.clusterTag, 8);
      if (rand() < 0.5) b.writeUInt16BE(b.length - HEADER_LENGTH - MAC_LENGTH, 28);
      return b;
    }
    case 2: {
      const b = Buffer.from(base);
      for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] = int(256);
      return b;
    }
    case 3:
      return rand() < 0.5 ? Buffer.from(base.subarray(0, int(base.length))) : Buffer.concat([base, Buffer.alloc(1 + int(64), int(256))]);
    default: {
      const b = Buffer.from(base);
      const i = shape.flipFrom + int(b.length - shape.flipFrom);
      b[i] = b[i]! ^ (1 << int(8));
      return b;
    }
  }
}

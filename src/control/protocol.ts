// The control socket's wire format, shared by server and client: newline-delimited JSON. No schema library
// here: the client (every `vigil` command that asks vigild) loads this; the server's checks are in
// request-schema.ts.
//
//   request        {"id": 1, "method": "status", "params": {...}}      id: string or number; params optional
//   response       {"id": 1, "result": ...}
//                  {"id": 1, "error": {"code": "unknown_method", "message": "..."}}
//                  (id null when the error cannot be tied to a request: an unparsable or oversized line)
//   notification   {"event": "unload", "data": ...}                    server to client, on a kept connection
/** Longest line the server accepts (bytes, without the newline); longer: error response, connection closed. */
export const MAX_REQUEST_LINE = 64 * 1024;
/** Longest line the client accepts from the server (a status snapshot can be large). */
export const MAX_RESPONSE_LINE = 16 * 1024 * 1024;

export const ERROR_CODES = [
  'unauthorized',   // the peer's credentials are not allowed (connection closed)
  'forbidden',      // this peer may not call this method (a reader and a mutation, debug off, not the app's process)
  'line_too_long',  // a line over MAX_REQUEST_LINE (connection closed)
  'parse_error',    // not JSON
  'invalid_request',// JSON, but not {id, method, params}
  'unknown_method',
  'invalid_params', // params failed the method's schema
  'internal',       // the handler threw something that is not a ControlError, or its result is not JSON
] as const;

export type RequestId = string | number;

export interface WireError {
  code: string;
  message: string;
}

export type ServerLine =
  | { id: RequestId | null; result: unknown }
  | { id: RequestId | null; error: WireError }
  | { event: string; data: unknown };

/**
 * An error with a code the other side can act on. A handler throws one to answer with that code; the
 * client throws one (or a subclass below) for every failure.
 */
export class ControlError extends Error {
  override name = 'ControlError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Splits a byte stream into lines (LF, an optional CR before it is dropped). `push` returns false, and
 * keeps nothing, once a line grows past `maxBytes`: the caller answers and closes.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxBytes: number, private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): boolean {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      if (this.length + piece.length > this.maxBytes) {
        this.parts = [];
        this.length = 0;
        return false;
      }
      if (nl < 0) {
        if (piece.length > 0) {
          this.parts.push(piece);
          this.length += piece.length;
        }
        return true;
      }
      const line = this.parts.length ? Buffer.concat([...this.parts, piece]) : piece;
      this.parts = [];
      this.length = 0;
      start = nl + 1;
      let text = line.toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (text.trim() !== '') this.onLine(text);
    }
  }
}

// Client side of the control socket (protocol.ts): one-shot requests for the CLI, and kept connections
// that receive notifications for the cluster-aware application API.
import { createConnection, type Socket } from 'node:net';

import { ControlError, LineSplitter, MAX_RESPONSE_LINE, type RequestId, type WireError } from './protocol.js';

export { ControlError };

/** Nothing answers on the socket path: the file is missing (ENOENT) or nothing listens (ECONNREFUSED). */
export class VigildNotRunningError extends ControlError {
  override name = 'VigildNotRunningError';
  constructor(readonly path: string, code: 'ENOENT' | 'ECONNREFUSED') {
    super(code, code === 'ENOENT'
      ? `vigild is not running (no socket at ${path})`
      : `vigild is not running (nothing listens on ${path}; the socket file is left from an earlier run)`);
  }
}

/** No answer within timeoutMs. */
export class ControlTimeoutError extends ControlError {
  override name = 'ControlTimeoutError';
  constructor(what: string, timeoutMs: number) {
    super('ETIMEDOUT', `vigild did not answer ${what} within ${timeoutMs} ms`);
  }
}

/** The server answered with an error; code is the protocol's (unknown_method, invalid_params, ...). */
export class ControlRemoteError extends ControlError {
  override name = 'ControlRemoteError';
}

/** The connection failed or closed before the answer (EACCES, ECONNRESET, closed, ...). */
export class ControlConnectionError extends ControlError {
  override name = 'ControlConnectionError';
}

export interface ControlEvent {
  event: string;
  data: unknown;
}

export interface ControlRequestOptions {
  /** Default 5000. */
  timeoutMs?: number | undefined;
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One connection: requests (answered by id, concurrently) and the notifications pushed on it. */
export class ControlClient {
  private readonly pending = new Map<RequestId, Pending>();
  private readonly queue: ControlEvent[] = [];
  private readonly waiters: ((r: IteratorResult<ControlEvent>) => void)[] = [];
  private nextId = 1;
  private ended: ControlError | undefined;

  private constructor(private readonly socket: Socket, readonly path: string) {
    const lines = new LineSplitter(MAX_RESPONSE_LINE, (line) => this.onLine(line));
    socket.on('data', (chunk: Buffer) => {
      if (!lines.push(chunk)) this.fail(new ControlConnectionError('EMSGSIZE', `a line from vigild exceeds ${MAX_RESPONSE_LINE} bytes`));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => this.fail(new ControlConnectionError(e.code ?? 'EIO', `${path}: ${e.message}`)));
    socket.on('close', () => this.fail(new ControlConnectionError('ECONNRESET', 'vigild closed the connection')));
  }

  static connect(path: string, options: ControlRequestOptions = {}): Promise<ControlClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ControlTimeoutError(`the connection on ${path}`, timeoutMs));
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new VigildNotRunningError(path, e.code));
        else if (e.code === 'EACCES') reject(new ControlConnectionError('EACCES', `permission denied on ${path} (vigil needs root or the control group)`));
        else reject(new ControlConnectionError(e.code ?? 'EIO', `${path}: ${e.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket, path));
      });
    });
  }

  /** Resolves with the result, or rejects with a ControlError (ControlRemoteError for the server's). */
  request(method: string, params?: unknown, options: ControlRequestOptions = {}): Promise<unknown> {
    if (this.ended) return Promise.reject(this.ended);
    const timeoutMs = options.timeoutMs ?? 5000;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      this.socket.write(JSON.stringify({ id, method, params: params ?? {} }) + '\n');
    });
  }

  /** Notifications in arrival order (those before the first call are kept); ends when the connection does. */
  events(): AsyncIterableIterator<ControlEvent> {
    const it: AsyncIterableIterator<ControlEvent> = {
      next: () => {
        const e = this.queue.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiters.push(r));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  close(): void {
    this.fail(new ControlConnectionError('ECONNRESET', 'the connection was closed'));
  }

  private onLine(line: string): void {
    let msg: { id?: unknown; result?: unknown; error?: WireError; event?: unknown; data?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.fail(new ControlConnectionError('EPROTO', 'vigild sent a line that is not JSON'));
      return;
    }
    if (typeof msg.event === 'string') {
      const e = { event: msg.event, data: msg.data ?? null };
      const w = this.waiters.shift();
      if (w) w({ value: e, done: false });
      else this.queue.push(e);
      return;
    }
    const error = msg.error ? new ControlRemoteError(String(msg.error.code), String(msg.error.message)) : undefined;
    if (msg.id === null || msg.id === undefined) {
      // Not tied to a request (refused, oversized line): it concerns them all.
      if (error) this.fail(error);
      return;
    }
    const p = this.pending.get(msg.id as RequestId);
    if (!p) return; // answered after its timeout
    this.pending.delete(msg.id as RequestId);
    clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(msg.result);
  }

  private fail(e: ControlError): void {
    if (this.ended) return;
    this.ended = e;
    this.socket.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }
}

/** One request on a fresh connection, closed afterwards. */
export async function controlRequest(path: string, method: string, params?: unknown, options: ControlRequestOptions = {}): Promise<unknown> {
  const client = await ControlClient.connect(path, options);
  try {
    return await client.request(method, params, options);
  } finally {
    client.close();
  }
}

/**
 * A request whose connection stays open for the notifications that follow it (a subscription):
 * resolves with its result and the client; iterate `client.events()`, and `client.close()` when done.
 */
export async function controlStream(path: string, method: string, params?: unknown, options: ControlRequestOptions = {}): Promise<{ result: unknown; client: ControlClient }> {
  const client = await ControlClient.connect(path, options);
  try {
    return { result: await client.request(method, params, options), client };
  } catch (e) {
    client.close();
    throw e;
  }
}

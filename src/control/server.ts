// The control socket: how `vigil` (and applications, through the client API) talk to vigild.
//
// A unix stream socket, mode 0660 (group: the configured control group), in a directory created 0750.
// The mode is defence in depth; the real check is SO_PEERCRED, taken from the kernel for each accepted
// connection, which gives the peer a role: admin (root, the agent's own uid, a member of the admin group)
// or reader (a member of the control group; primary gid, or supplementary through /proc/<pid>/status).
// Anyone else gets one error line and the connection is closed. Each method says who may call it
// (Access): a reader only the read-only ones; `app` methods an admin or the app's own processes; `debug`
// methods an admin, and only where the config enables them. A refused call is answered `forbidden`.
//
// Protocol (protocol.ts): newline-delimited JSON requests {id, method, params}, answered {id, result} or
// {id, error:{code, message}}; requests on one connection run concurrently, so answers can come out of
// order (match them by id). A handler keeps its connection simply by holding on to `ctx.connection` and
// calling `notify(event, data)` later; `onClose` tells it when to stop.
import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';

import type { z } from 'zod';

import { getPeerCred, type PeerCred } from '../native.js';
import {
  ControlError, LineSplitter, MAX_REQUEST_LINE, type RequestId, type ServerLine,
} from './protocol.js';
import { describeIssues, requestSchema } from './request-schema.js';

export type { PeerCred };

/** What a connected peer may do: every method (admin), or the read-only ones (reader). */
export type Role = 'admin' | 'reader';

/** The role of a connected peer; undefined (or false): it may not use the socket. Throwing counts as a refusal. */
export type Authorizer = (peer: PeerCred) => Role | boolean | undefined | Promise<Role | boolean | undefined>;

/**
 * Who may call a method: `read` any peer; `admin` an admin; `app` an admin, or a process of the app the
 * request names (params.tag; ControlServerOptions.isAppProcess); `debug` an admin where debug methods are
 * enabled (ControlServerOptions.debug).
 */
export type Access = 'read' | 'admin' | 'app' | 'debug';

/** pino-compatible subset. */
export interface ControlLog {
  warn(fields: object, message: string): void;
}

export interface ControlServerOptions {
  path: string;
  /** The control group: the socket's group, and its members are allowed. */
  gid?: number | undefined;
  /** Members of this group are admins. */
  adminGid?: number | undefined;
  /** Default: makeAuthorizer({ uids: [0, own uid], gid, adminGid }). */
  authorize?: Authorizer | undefined;
  /** `debug` methods answer (default: refused). */
  debug?: boolean | undefined;
  /** Whether process `pid` is one of the app `tag`'s (for `app` methods); default: none is. */
  isAppProcess?: ((tag: string, pid: number) => boolean | Promise<boolean>) | undefined;
  /** Connections beyond this are closed at once by Node (default 64). */
  maxConnections?: number | undefined;
  /** A connection whose unread output exceeds this is dropped (a client that stopped reading). */
  maxBufferedBytes?: number | undefined;
  log?: ControlLog | undefined;
}

export interface RequestContext {
  id: RequestId;
  method: string;
  peer: PeerCred;
  role: Role;
  /** Keep it to push notifications on this connection later. */
  connection: ControlConnection;
}

export type Handler<S extends z.ZodType> = (params: z.output<S>, ctx: RequestContext) => unknown;

/** Another agent answers on the socket path. */
export class ControlSocketInUseError extends Error {
  override name = 'ControlSocketInUseError';
  readonly code = 'EADDRINUSE';
  constructor(readonly path: string) {
    super(`another vigild is listening on ${path}`);
  }
}

/** The Groups: line of a /proc/<pid>/status text (supplementary groups only). */
export function parseGroups(status: string): number[] {
  const line = /^Groups:(.*)$/m.exec(status);
  return (line?.[1] ?? '').trim().split(/\s+/).filter((g) => g !== '').map(Number);
}

/** The supplementary groups of a process, from /proc/<pid>/status; [] if unreadable. */
export async function supplementaryGroups(pid: number): Promise<number[]> {
  try {
    return parseGroups(await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return [];
  }
}

/**
 * Admins: the listed uids and members of `adminGid`; readers: members of `gid`. Membership is the peer's
 * primary gid, else its supplementary groups read from /proc. The pid is the one the kernel recorded at
 * connect time; the connecting process normally still holds the connection while we read its /proc
 * entry. (As with any SO_PEERCRED check, a socket handed on to another process keeps the credentials of
 * the one that connected.)
 */
export function makeAuthorizer(options: {
  uids: readonly number[];
  gid?: number | undefined;
  adminGid?: number | undefined;
  groupsOf?: (pid: number) => Promise<number[]>;
}): (peer: PeerCred) => Promise<Role | undefined> {
  const groupsOf = options.groupsOf ?? supplementaryGroups;
  return async (peer) => {
    if (options.uids.includes(peer.uid)) return 'admin';
    if (options.gid === undefined && options.adminGid === undefined) return undefined;
    const groups = [peer.gid, ...(await groupsOf(peer.pid))];
    if (options.adminGid !== undefined && groups.includes(options.adminGid)) return 'admin';
    if (options.gid !== undefined && groups.includes(options.gid)) return 'reader';
    return undefined;
  };
}

/**
 * The file descriptor of an accepted unix-socket connection, -1 if unknown. Node has no public API for
 * it: on Linux the socket wraps a libuv Pipe handle whose `fd` getter returns the descriptor. We need it
 * once, right after accept, to ask the kernel for SO_PEERCRED. Should Node change this, the check fails
 * closed (EBADF: every connection refused) and the control tests say so.
 */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

export class ControlConnection {
  private readonly closeListeners: (() => void)[] = [];
  private ended = false;

  constructor(
    readonly id: number,
    readonly peer: PeerCred,
    readonly role: Role,
    private readonly socket: Socket,
    private readonly maxBufferedBytes: number,
    private readonly log: ControlLog,
  ) {
    socket.once('close', () => {
      this.ended = true;
      for (const fn of this.closeListeners.splice(0)) {
        try {
          fn();
        } catch (e) {
          this.log.warn({ err: e, connection: id }, 'control: a close listener threw');
        }
      }
    });
  }

  get closed(): boolean {
    return this.ended || this.socket.destroyed;
  }

  /** Pushes {event, data}. False if the connection is gone (or was just dropped for not reading). */
  notify(event: string, data?: unknown): boolean {
    return this.send({ event, data: data ?? null });
  }

  onClose(fn: () => void): void {
    if (this.closed) queueMicrotask(fn);
    else this.closeListeners.push(fn);
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
  }

  /** Sends one line; false if it could not. */
  send(line: ServerLine): boolean {
    if (this.closed || !this.socket.writable) return false;
    let text: string;
    try {
      text = JSON.stringify(line);
    } catch (e) {
      if (!('id' in line)) throw e;
      text = JSON.stringify({ id: line.id, error: { code: 'internal', message: `the result is not JSON: ${(e as Error).message}` } });
    }
    if (this.socket.writableLength > this.maxBufferedBytes) {
      this.log.warn({ connection: this.id, pid: this.peer.pid, buffered: this.socket.writableLength }, 'control: client is not reading; dropping it');
      this.close();
      return false;
    }
    this.socket.write(text + '\n');
    return true;
  }

  /** Sends a last line, then closes once it is written. */
  sendAndEnd(line: ServerLine): void {
    if (this.closed) return;
    this.ended = true;
    this.socket.end(JSON.stringify(line) + '\n', () => this.socket.destroy());
  }
}

interface Registered {
  schema: z.ZodType;
  handler: (params: unknown, ctx: RequestContext) => unknown;
  access: Access;
}

const NO_LOG: ControlLog = { warn: () => {} };

export class ControlServer {
  readonly path: string;
  private readonly handlers = new Map<string, Registered>();
  private readonly live = new Set<ControlConnection>();
  private readonly sockets = new Set<Socket>();
  private readonly authorize: Authorizer;
  private readonly log: ControlLog;
  private server: Server | undefined;
  private nextId = 1;

  constructor(private readonly options: ControlServerOptions) {
    this.path = options.path;
    this.log = options.log ?? NO_LOG;
    this.authorize = options.authorize ?? makeAuthorizer({ uids: [0, process.getuid!()], gid: options.gid, adminGid: options.adminGid });
  }

  /**
   * Registers `method`, callable as `access` says (default admin: a method is a mutation unless said
   * otherwise); params are validated with `schema` (absent params are validated as {}).
   */
  handle<S extends z.ZodType>(method: string, schema: S, handler: Handler<S>, access: Access = 'admin'): this {
    if (this.handlers.has(method)) throw new Error(`control method ${method} is registered twice`);
    this.handlers.set(method, { schema, handler: handler as Registered['handler'], access });
    return this;
  }

  /** Who may call each method (the docs' table is checked against it). */
  methods(): { method: string; access: Access }[] {
    return [...this.handlers].map(([method, r]) => ({ method, access: r.access }));
  }

  /** Authorised connections now open. */
  get connections(): ReadonlySet<ControlConnection> {
    return this.live;
  }

  async start(): Promise<void> {
    if (this.server) throw new Error('the control server is already started');
    await mkdir(dirname(this.path), { recursive: true, mode: 0o750 });
    await this.removeStale();
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      this.accept(socket).catch((e: unknown) => {
        this.log.warn({ err: e }, 'control: connection failed');
        socket.destroy();
      });
    });
    server.maxConnections = this.options.maxConnections ?? 64;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new ControlSocketInUseError(this.path) : e));
      server.listen(this.path, () => resolve());
    });
    server.on('error', (e) => this.log.warn({ err: e }, 'control: server error'));
    this.server = server;
    try {
      // Between listen and chmod the socket has the umask's mode; the credential check covers that.
      await chmod(this.path, 0o660);
      if (this.options.gid !== undefined) await chown(this.path, -1, this.options.gid);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** Stops listening (libuv unlinks the socket file) and drops every connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // A socket file left by a crashed agent is replaced; one that answers belongs to a running agent, and
  // anything that is not a socket is not ours to delete.
  private async removeStale(): Promise<void> {
    let st;
    try {
      st = await lstat(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    if (!st.isSocket()) throw new Error(`${this.path} exists and is not a socket; refusing to replace it`);
    if (await isListening(this.path)) throw new ControlSocketInUseError(this.path);
    await unlink(this.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  private async accept(socket: Socket): Promise<void> {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {}); // a client that vanished; 'close' follows
    const id = this.nextId++;
    let peer: PeerCred;
    try {
      peer = getPeerCred(socketFd(socket));
    } catch (e) {
      this.log.warn({ err: e, connection: id }, 'control: cannot read the peer credentials; refusing');
      socket.destroy();
      return;
    }
    let role: Role | undefined;
    try {
      const r = await this.authorize(peer);
      role = r === true ? 'admin' : r === false ? undefined : r;
    } catch (e) {
      this.log.warn({ err: e, peer }, 'control: the authoriser threw; refusing');
    }
    const connection = new ControlConnection(id, peer, role ?? 'reader', socket, this.options.maxBufferedBytes ?? 1024 * 1024, this.log);
    if (role === undefined) {
      this.log.warn({ peer }, 'control: peer refused');
      connection.sendAndEnd({ id: null, error: { code: 'unauthorized', message: `uid ${peer.uid} (pid ${peer.pid}) may not use ${this.path}` } });
      return;
    }
    if (socket.destroyed) return;
    this.live.add(connection);
    connection.onClose(() => this.live.delete(connection));
    const lines = new LineSplitter(MAX_REQUEST_LINE, (line) => {
      this.request(connection, line).catch((e: unknown) => {
        this.log.warn({ err: e }, 'control: request failed');
        connection.close();
      });
    });
    socket.on('data', (chunk: Buffer) => {
      if (connection.closed) return;
      if (!lines.push(chunk)) {
        connection.sendAndEnd({ id: null, error: { code: 'line_too_long', message: `a request line is limited to ${MAX_REQUEST_LINE} bytes` } });
      }
    });
    socket.resume();
  }

  private async request(connection: ControlConnection, line: string): Promise<void> {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      connection.send({ id: null, error: { code: 'parse_error', message: `not JSON: ${(e as Error).message}` } });
      return;
    }
    const envelope = requestSchema.safeParse(json);
    if (!envelope.success) {
      const raw = (json as { id?: unknown } | null)?.id;
      const id = typeof raw === 'string' || typeof raw === 'number' ? raw : null;
      connection.send({ id, error: { code: 'invalid_request', message: `a request is {id, method, params}: ${describeIssues(envelope.error)}` } });
      return;
    }
    const { id, method } = envelope.data;
    const registered = this.handlers.get(method);
    if (!registered) {
      connection.send({ id, error: { code: 'unknown_method', message: `unknown method ${JSON.stringify(method)}` } });
      return;
    }
    const params = registered.schema.safeParse(envelope.data.params ?? {});
    if (!params.success) {
      connection.send({ id, error: { code: 'invalid_params', message: `${method}: ${describeIssues(params.error)}` } });
      return;
    }
    const refusal = await this.refusal(registered.access, method, params.data, connection);
    if (refusal !== undefined) {
      this.log.warn({ method, peer: connection.peer, role: connection.role }, 'control: call refused');
      connection.send({ id, error: { code: 'forbidden', message: refusal } });
      return;
    }
    try {
      const result = await registered.handler(params.data, { id, method, peer: connection.peer, role: connection.role, connection });
      connection.send({ id, result: result ?? null });
    } catch (e) {
      if (e instanceof ControlError) {
        connection.send({ id, error: { code: e.code, message: e.message } });
      } else {
        this.log.warn({ err: e, method }, 'control: handler failed');
        connection.send({ id, error: { code: 'internal', message: e instanceof Error ? e.message : String(e) } });
      }
    }
  }

  /** Why this connection may not call `method`; undefined: it may. */
  private async refusal(access: Access, method: string, params: unknown, connection: ControlConnection): Promise<string | undefined> {
    const who = `uid ${connection.peer.uid} (pid ${connection.peer.pid})`;
    switch (access) {
      case 'read':
        return undefined;
      case 'debug':
        if (!this.options.debug) return `${method} is a debug method, off unless the config sets control.debug: true`;
        return connection.role === 'admin' ? undefined : `${method} is for root or the admin group (control.adminGroup); ${who} is a reader`;
      case 'app': {
        if (connection.role === 'admin') return undefined;
        const tag = (params as { tag?: unknown }).tag;
        const own = typeof tag === 'string' && (await Promise.resolve(this.options.isAppProcess?.(tag, connection.peer.pid)).catch(() => false));
        return own ? undefined : `${method} acts for ${typeof tag === 'string' ? tag : 'an app'}: for root, the admin group or that app's own processes; ${who} is none of them`;
      }
      case 'admin':
        return connection.role === 'admin' ? undefined : `${method} changes the cluster: for root or the admin group (control.adminGroup); ${who} is a reader`;
    }
  }
}

/** Whether something accepts connections on the unix socket at `path`. */
async function isListening(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    const done = (v: boolean | Error): void => {
      clearTimeout(timer);
      s.destroy();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    // No answer in time (a listener too busy to accept) still means someone listens.
    const timer = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') done(false);
      else if (e.code === 'EAGAIN') done(true); // its backlog is full
      else done(e);
    });
  });
}

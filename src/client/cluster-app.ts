// The client API for cluster-aware applications (seed 001 claims 23/24, 31/32): what an application
// started by vigild uses to take part in its own failover, over the agent's control socket.
//
//   const app = await ClusterApp.connect();          // VIGIL_SOCKET and VIGIL_APP, set by vigild
//   app.onUnload(async ({ reason }) => { await flush(); await app.setMarker(position); process.exit(0); });
//   await app.ready();                                // pauses until this node is HOST
//   const { pointer } = await app.marker();           // where the previous host left off
//
// Everything here is the JSON-lines protocol of docs/cli.md ("the application API"), which programs in
// other languages speak directly.
import { DEFAULT_CONTROL_SOCKET } from '../config/schema.js';
import { ControlClient, ControlRemoteError, type ControlRequestOptions } from '../control/client.js';

export interface ClusterAppOptions {
  /** Default: $VIGIL_SOCKET, else vigild's default socket. */
  socket?: string | undefined;
  /** The app's TAG. Default: $VIGIL_APP (set by vigild for the process it starts). */
  tag?: string | undefined;
  /** For each request but ready() (which waits as long as it takes). Default 5000. */
  timeoutMs?: number | undefined;
}

/** The registration values (seed 001 §2.2): TYPE, COMMAND, PRIMARY, BACKUP, RESOURCE LIST, AUTO-RECOVER, attributes. */
export interface AppRegistration {
  type?: 'cluster-aware' | 'cluster-capable';
  command: { argv: string[]; cwd?: string; env?: Record<string, string> };
  primary: string;
  backup: string;
  resources?: Record<string, unknown>[];
  autoRecover?: boolean;
  attributes?: Record<string, string | number | boolean>;
}

export interface RegisterResult {
  tag: string;
  /** 'created', or FIG. 6's answer for an app already registered ('sync-all-then-run', 'paused', ...). */
  decision: string;
  host: string | null;
}

export interface UnloadRequest {
  tag: string;
  /** Why the agent stops the app here (failback, HOST moved, operator unload, ...). */
  reason: string;
  /** How long the app has to exit by itself before it is sent SIGTERM. */
  graceMs: number;
}

export interface ResumeMarker {
  pointer: string | number | null;
  /** Grows with every write; 0: never written. */
  seq: number;
  writtenBy: string | null;
}

/** ready() and the requests never time out this way; one day is "for as long as the app waits". */
const FOREVER_MS = 24 * 3600 * 1000;

export class ClusterApp {
  private watcher: ControlClient | undefined;

  private constructor(private readonly client: ControlClient, readonly tag: string, readonly socket: string,
    private readonly options: ControlRequestOptions) {}

  static async connect(options: ClusterAppOptions = {}): Promise<ClusterApp> {
    const tag = options.tag ?? process.env.VIGIL_APP;
    if (!tag) throw new Error('ClusterApp: no tag (pass { tag } or run under vigild, which sets VIGIL_APP)');
    const socket = options.socket ?? process.env.VIGIL_SOCKET ?? DEFAULT_CONTROL_SOCKET;
    const requestOptions = { timeoutMs: options.timeoutMs ?? 5000 };
    return new ClusterApp(await ControlClient.connect(socket, requestOptions), tag, socket, requestOptions);
  }

  /** FIG. 6: registers this app with its values (a new TAG), or checks them against the registered object. */
  async register(values: AppRegistration): Promise<RegisterResult> {
    const spec = { type: 'cluster-aware', ...values, tag: this.tag };
    return await this.client.request('app.register', { spec }, this.options) as RegisterResult;
  }

  /** Resolves once this node hosts the app and the agent lets it run; until then the app is paused here. */
  async ready(): Promise<{ tag: string; host: string }> {
    return await this.client.request('app.ready', { tag: this.tag }, { timeoutMs: FOREVER_MS }) as { tag: string; host: string };
  }

  /**
   * Asks to be told before the agent stops the app here: `handler` gets the request, and the app has
   * `graceMs` to save its state (setMarker) and exit by itself. Uses a connection of its own.
   */
  async onUnload(handler: (request: UnloadRequest) => void | Promise<void>): Promise<void> {
    if (this.watcher) throw new Error('ClusterApp: onUnload is already set');
    const watcher = await ControlClient.connect(this.socket, this.options);
    try {
      await watcher.request('app.watch', { tag: this.tag }, this.options);
    } catch (e) {
      watcher.close();
      throw e;
    }
    this.watcher = watcher;
    void (async () => {
      for await (const e of watcher.events()) {
        if (e.event === 'unload') await handler(e.data as UnloadRequest);
      }
    })();
  }

  /** The resume marker: where the app was when it last wrote one, on whichever node. */
  async marker(): Promise<ResumeMarker> {
    const r = await this.client.request('marker.get', { tag: this.tag }, this.options) as ResumeMarker & { tag: string };
    return { pointer: r.pointer, seq: r.seq, writtenBy: r.writtenBy };
  }

  /** Writes the resume marker; it is replicated to every node, so the next host reads it. */
  async setMarker(pointer: string | number | null): Promise<{ seq: number }> {
    const r = await this.client.request('marker.set', { tag: this.tag, pointer }, this.options) as { seq: number };
    return { seq: r.seq };
  }

  close(): void {
    this.watcher?.close();
    this.client.close();
  }
}

export { ControlRemoteError };

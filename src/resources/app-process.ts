// The application process from COMMAND: spawned in a process group of its own (so a shell command's
// children go with it), stopped with SIGTERM to the group and, after the app's stop timeout, SIGKILL.
// "Stopped" means the process has exited and been reaped, never merely signalled (seed 001 §3.3: verified
// unloaded).
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';

import { runCommand } from './run-command.js';
import { refuseIfStale, type StaleCheck } from './stale-start.js';

export interface AppCommandSpec {
  argv: string[];
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  /** Run as this account (its primary group unless `group`; supplementary groups `groups`, else its own). */
  user?: string | undefined;
  group?: string | undefined;
  groups?: string[] | undefined;
}

/** An entry of this node's user or group database (NSS: files, LDAP, ...), split into its fields. */
export async function getent(db: 'passwd' | 'group', name: string): Promise<string[] | undefined> {
  const { stdout } = await runCommand(['getent', db, name]).catch(() => ({ stdout: '' }));
  const fields = stdout.trim().split(':');
  return fields.length >= (db === 'passwd' ? 7 : 3) ? fields : undefined;
}

async function account(user: string): Promise<{ gid: string; home: string }> {
  const fields = await getent('passwd', user);
  if (!fields) throw new Error(`no user ${user} on this node (getent passwd ${user} found nothing)`);
  return { gid: fields[3]!, home: fields[5]! };
}

/**
 * The argv that runs `spec` as its account: setpriv(1) sets the real and effective ids and the groups,
 * then execs the program (so the pid is the program's), and the change of uid drops root's capabilities.
 * Without a user: the argv itself.
 */
export async function asAccount(spec: AppCommandSpec): Promise<{ argv: string[]; env: Record<string, string> }> {
  if (spec.user === undefined) return { argv: spec.argv, env: {} };
  const { gid, home } = await account(spec.user);
  const groups = spec.groups === undefined ? ['--init-groups'] : spec.groups.length ? [`--groups=${spec.groups.join(',')}`] : ['--clear-groups'];
  return {
    argv: ['setpriv', `--reuid=${spec.user}`, `--regid=${spec.group ?? gid}`, ...groups, '--', ...spec.argv],
    env: { USER: spec.user, LOGNAME: spec.user, HOME: home },
  };
}

export class AppProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Set when the process exits without having been asked to stop. */
  onUnexpectedExit: ((code: number | null, signal: string | null) => void) | undefined;
  private stopping = false;

  constructor(readonly tag: string, readonly spec: AppCommandSpec, private readonly output: 'inherit' | 'ignore' = 'inherit') {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Resolves once the process is spawned; rejects when it cannot be (no such program, bad cwd, no such
   * user here), and with StaleStartError when `stale` says the decision to start no longer holds.
   */
  async start(stale?: StaleCheck): Promise<void> {
    if (this.child) return;
    this.stopping = false;
    const run = await asAccount(this.spec).catch((e: unknown) => {
      throw new Error(`${this.tag}: cannot start ${this.spec.argv[0]}: ${e instanceof Error ? e.message : String(e)}`);
    });
    refuseIfStale(stale, `${this.tag}: starting ${this.spec.argv[0]}`);
    return new Promise((resolve, reject) => {
      const child = spawn(run.argv[0]!, run.argv.slice(1), {
        cwd: this.spec.cwd, env: { ...process.env, ...run.env, ...this.spec.env, VIGIL_APP: this.tag },
        detached: true, stdio: ['ignore', this.output, this.output],
      });
      this.exited = new Promise((done) => {
        child.once('exit', (code, signal) => {
          if (this.child === child) this.child = undefined;
          if (!this.stopping) this.onUnexpectedExit?.(code, signal);
          done();
        });
      });
      child.once('error', (e) => {
        if (this.child === child) this.child = undefined;
        reject(new Error(`${this.tag}: cannot start ${this.spec.argv[0]}: ${e.message}`));
      });
      child.once('spawn', () => {
        this.child = child;
        resolve();
      });
    });
  }

  /**
   * Waits up to `timeoutMs` for the process to exit by itself after it was asked to (a cluster-aware app's
   * unload request): its exit is then not unexpected. True if it exited.
   */
  async awaitRequestedExit(timeoutMs: number): Promise<boolean> {
    const pid = this.child?.pid;
    if (pid === undefined) return true;
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    const exited = await Promise.race([this.exited.then(() => true as const), timedOut]);
    clearTimeout(timer);
    // Whatever of the group outlived its leader goes with it, as in stop().
    if (exited) try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
    return exited;
  }

  /** SIGTERM to the group, SIGKILL after `timeoutMs`; resolves when the process has exited. */
  async stop(timeoutMs: number): Promise<{ killed: boolean }> {
    const child = this.child;
    if (!child || child.pid === undefined) return { killed: false };
    this.stopping = true;
    const group = -child.pid;
    const signal = (s: NodeJS.Signals) => { try { process.kill(group, s); } catch { /* already gone */ } };
    signal('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => { killed = true; signal('SIGKILL'); }, timeoutMs);
    await this.exited;
    clearTimeout(timer);
    signal('SIGKILL'); // whatever of the group outlived its leader
    return { killed };
  }
}

/**
 * One TCP health probe: connected within the timeout. The connection is then closed gently (FIN, and its
 * answer read and dropped): a reset would make a service that writes a greeting see ECONNRESET, and a
 * careless one die of it.
 */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => { settle(false); socket.destroy(); });
    socket.on('error', () => settle(false));
    socket.on('data', () => {});
    socket.once('connect', () => {
      settle(true);
      socket.setTimeout(0);
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  });
}

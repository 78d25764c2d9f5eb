// A real NUT server for the NUT power source's tests: Debian's dummy-ups driver and upsd (nut-server), run as
// root in a temporary directory from the fixture in hw-fixtures/nut/.
//
// How Debian's binaries find their files: NUT reads NUT_CONFPATH (ups.conf, upsd.conf, upsd.users, the .dev
// file when its path is relative), NUT_STATEPATH (the driver's socket, dummy-ups-<ups>) and NUT_ALTPIDPATH
// (pid files) from the environment. /sbin/upsd is a shell wrapper that reads /etc/nut/nut.conf (hard-coded)
// and refuses to run unless MODE is standalone or netserver, so the real binary /lib/nut/upsd is run
// directly (the fixture's nut.conf documents the mode it would need). Both drop privileges to the build-time
// user (nut) unless given `-u root`; as nut they could not create the socket in a root-owned temp dir.
// The driver is run directly (/lib/nut/dummy-ups -a <ups> -F) rather than through upsdrvctl, so the test
// owns its pid (to kill, stop and continue it).
//
// Moving ups.status: dummy-ups accepts SET VAR ups.status through upsd (what `upsrw` does) and applies it at
// once; or the .dev file is rewritten, which dummy-ups in dummy-once mode (*.dev, NUT >= 2.8.0) reads again
// when the file's mtime changes in whole seconds, checked once per driver cycle (pollinterval 1 s, plus a 1 s
// sleep inside dummy-ups), so each rewrite sets a new, later mtime second. FSD is set by upsd itself
// (the FSD command of a primary upsmon) and is a latch until upsd restarts.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile, appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { NutConnection, quoteNut, splitNutLine } from '../../src/power/nut.js';
import { repoFile } from './paths.js';

const FIXTURE = `${repoFile('hw-fixtures', 'nut')}/`;
export const UPSD = '/lib/nut/upsd';
export const DUMMY_UPS = '/lib/nut/dummy-ups';
export const UPSC = '/bin/upsc';
export const UPS_NAME = 'vigil-ups';
export const ADMIN = { user: 'admin', password: 'admin-secret' };
export const MONITOR = { user: 'vigil', password: 'vigil s3cret' };

/** Why the real NUT server cannot run here, or undefined when it can. */
export function nutUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (upsd and dummy-ups run as root in a temp dir)';
  for (const f of [UPSD, DUMMY_UPS, UPSC, '/bin/upsrw']) if (!existsSync(f)) return `${f} is missing (scripts/setup installs nut-server and nut-client)`;
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NutServer {
  private driver: ChildProcess | undefined;
  private upsd: ChildProcess | undefined;
  private admin: NutConnection | undefined;
  private mtime = Math.floor(Date.now() / 1000);
  readonly log: string[] = [];

  private constructor(readonly dir: string, readonly port: number) {}

  get confDir(): string { return join(this.dir, 'etc'); }
  get stateDir(): string { return join(this.dir, 'run'); }
  get devFile(): string { return join(this.confDir, `${UPS_NAME}.dev`); }
  get ups(): string { return UPS_NAME; }

  static async start(): Promise<NutServer> {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-nut-'));
    const s = new NutServer(dir, await freePort());
    await mkdir(s.confDir);
    await mkdir(s.stateDir, { mode: 0o750 });
    for (const f of await readdir(FIXTURE)) await copyFile(join(FIXTURE, f), join(s.confDir, f));
    await appendFile(join(s.confDir, 'upsd.conf'), `LISTEN 127.0.0.1 ${s.port}\nSTATEPATH ${s.stateDir}\n`);
    try {
      await s.startDriver();
      await s.startUpsd();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, NUT_CONFPATH: this.confDir, NUT_STATEPATH: this.stateDir, NUT_ALTPIDPATH: this.stateDir };
  }

  private spawnLogged(argv: string[]): ChildProcess {
    const child = spawn(argv[0]!, argv.slice(1), { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    const tag = argv[0]!.split('/').pop();
    for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => { for (const l of d.toString().split('\n')) if (l.trim()) this.log.push(`${tag}: ${l}`); });
    return child;
  }

  async startDriver(): Promise<void> {
    const sock = join(this.stateDir, `dummy-ups-${UPS_NAME}`);
    await rm(sock, { force: true });
    this.driver = this.spawnLogged([DUMMY_UPS, '-a', UPS_NAME, '-F', '-u', 'root']);
    for (let i = 0; i < 100 && !existsSync(sock); i++) await sleep(50);
    if (!existsSync(sock)) throw new Error(`dummy-ups did not create ${sock}:\n${this.log.join('\n')}`);
  }

  async startUpsd(): Promise<void> {
    this.upsd = this.spawnLogged([UPSD, '-F', '-u', 'root']);
    // Ready when it answers with a status the driver gave it.
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        if (/^(OL|OB|FSD)/.test(await this.getStatus())) return;
      } catch { /* not yet */ }
      if (Date.now() > until) throw new Error(`upsd on port ${this.port} did not come up:\n${this.log.join('\n')}`);
      await sleep(100);
    }
  }

  private async stop(child: ChildProcess | undefined): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }

  async stopDriver(): Promise<void> { await this.stop(this.driver); this.driver = undefined; }
  async stopUpsd(): Promise<void> {
    this.admin?.close();
    this.admin = undefined;
    await this.stop(this.upsd);
    this.upsd = undefined;
  }
  /** SIGSTOP / SIGCONT the driver: upsd keeps its socket but the data goes stale after MAXAGE (5 s in the fixture). */
  freezeDriver(): void { this.driver?.kill('SIGSTOP'); }
  thawDriver(): void { this.driver?.kill('SIGCONT'); }

  /** ups.status through a fresh anonymous connection (the protocol, not upsc). */
  async getStatus(): Promise<string> {
    const c = await NutConnection.open('127.0.0.1', this.port, 2000);
    try {
      const w = splitNutLine(await c.command(`GET VAR ${UPS_NAME} ups.status`));
      return w[3] ?? '';
    } finally {
      c.close();
    }
  }

  /**
   * Resolves with performance.now() when upsd first serves ups.status === expected, looking every 5 ms on a
   * connection of its own: the moment the client could first have seen it, so event time minus this is the
   * client's own share of the latency (its poll phase), without the driver's.
   */
  async whenServed(expected: string, timeoutMs = 5000): Promise<number> {
    const c = await NutConnection.open('127.0.0.1', this.port, 2000);
    try {
      const until = performance.now() + timeoutMs;
      for (;;) {
        const w = splitNutLine(await c.command(`GET VAR ${UPS_NAME} ups.status`));
        const now = performance.now();
        if (w[3] === expected) return now;
        if (now > until) throw new Error(`upsd did not serve "${expected}" within ${timeoutMs} ms (last "${w[3]}")`);
        await sleep(5);
      }
    } finally {
      c.close();
    }
  }

  /** What Debian's upsc says (nut-client), to compare with the client. */
  async upsc(variable = 'ups.status'): Promise<string> {
    const { stdout } = await promisify(execFile)(UPSC, [`${UPS_NAME}@127.0.0.1:${this.port}`, variable], { env: this.env() });
    return stdout.trim();
  }

  private async adminConnection(): Promise<NutConnection> {
    if (this.admin && !this.admin.isClosed) return this.admin;
    const c = await NutConnection.open('127.0.0.1', this.port, 2000);
    await c.command(`USERNAME ${ADMIN.user}`);
    await c.command(`PASSWORD ${ADMIN.password}`);
    this.admin = c;
    return c;
  }

  /**
   * SET VAR ups.status, as `upsrw -s ups.status=…` does: upsd answers OK once it has handed the value to the
   * driver; dummy-ups applies it at once and sends it back. Resolves at the OK (performance.now() is returned).
   */
  async setStatus(status: string): Promise<number> {
    const c = await this.adminConnection();
    const reply = await c.command(`SET VAR ${UPS_NAME} ups.status ${quoteNut(status)}`);
    const at = performance.now();
    if (!reply.startsWith('OK')) throw new Error(`SET ups.status: ${reply}`);
    return at;
  }

  /** The same SET through Debian's upsrw (nut-client), to show the tool and the protocol agree. */
  async upsrw(status: string): Promise<void> {
    await promisify(execFile)('/bin/upsrw', ['-s', `ups.status=${status}`, '-u', ADMIN.user, '-p', ADMIN.password, `${UPS_NAME}@127.0.0.1:${this.port}`], { env: this.env() });
  }

  /** Rewrites the .dev file's ups.status line and moves its mtime to a new second (dummy-ups compares whole seconds). */
  async writeDevStatus(status: string): Promise<number> {
    const text = await readFile(this.devFile, 'utf8');
    await writeFile(this.devFile, text.replace(/^ups\.status:.*$/m, `ups.status: ${status}`));
    this.mtime = Math.max(this.mtime + 1, Math.floor(Date.now() / 1000) + 1);
    await utimes(this.devFile, this.mtime, this.mtime);
    return performance.now();
  }

  /** upsd's FSD command (what a primary upsmon sends): "FSD" is put in front of ups.status until upsd restarts. */
  async setFsd(): Promise<number> {
    const c = await this.adminConnection();
    const reply = await c.command(`FSD ${UPS_NAME}`);
    const at = performance.now();
    if (!reply.startsWith('OK')) throw new Error(`FSD: ${reply}`);
    return at;
  }

  async close(): Promise<void> {
    this.admin?.close();
    this.admin = undefined;
    await this.stop(this.upsd);
    await this.stop(this.driver);
    await rm(this.dir, { recursive: true, force: true });
  }
}

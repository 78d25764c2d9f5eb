// A connected pair of ptys from socat (Debian package socat): whatever is written on one end is read on the
// other, like a null-modem cable without modem lines (a pty has none: TIOCMGET fails with ENOTTY). The ends
// are reached through symlinks that stay the same when the pair is recreated (a "cable" unplugged and
// plugged back), although the /dev/pts numbers change.
//
//   socat -d -d pty,raw,echo=0,link=DIR/ups pty,raw,echo=0,link=DIR/host
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class PtyPair {
  /** @param {string} dir where the links `ups` and `host` are made */
  constructor(dir) {
    this.dir = dir;
    this.ups = join(dir, 'ups');
    this.host = join(dir, 'host');
    this.child = undefined;
    this.log = [];
  }

  async start() {
    await rm(this.ups, { force: true });
    await rm(this.host, { force: true });
    const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.ups}`, `pty,raw,echo=0,link=${this.host}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d) => this.log.push(d.toString()));
    this.child = child;
    const spawnError = new Promise((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    for (let i = 0; i < 200; i++) {
      if (existsSync(this.ups) && existsSync(this.host) && this.log.join('').includes('starting data transfer loop')) return this;
      if (child.exitCode !== null) break;
      await Promise.race([sleep(10), spawnError]);
    }
    throw new Error(`socat did not make the pty pair: ${this.log.join('')}`);
  }

  /** Ends socat: both ptys go away (the readers see a hang-up). */
  async stop() {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
}

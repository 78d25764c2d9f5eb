// A watchdog device for the namespace cluster tests, where the host has none (and where arming a real one
// would reset the machine): a FIFO that the agent's keeper (native/watchdog_keeper.cc) opens as it opens a
// driver. Its ioctls fail on a FIFO and its keep-alives fall back to one-byte writes, as for a driver
// without WDIOC_KEEPALIVE; they are read here. Once the first byte came, no byte for `timeoutMs` "resets"
// the node: `onExpire` runs (the tests kill every process of the node's namespace, as a reset would). A
// 'V' (the keeper's magic close on a clean stop) disarms it until the next byte. The real devices, QEMU's
// BMC and softdog, are the lab's (test/lab/watchdog.test.ts); this stands in for them only where the
// cluster's rule for tickling is what a test is about.
import { spawnSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { Socket } from 'node:net';

export class FifoWatchdog {
  /** When the first keep-alive came (Date.now()), and when it expired. */
  armedAt: number | undefined;
  firedAt: number | undefined;
  keepAlives = 0;
  private lastAt = 0;
  private disarmed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly socket: Socket;

  constructor(readonly path: string, private readonly timeoutMs: number, private readonly onExpire: () => Promise<unknown>) {
    const made = spawnSync('mkfifo', ['-m', '0600', path], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`mkfifo ${path}: ${made.stderr}`);
    // Read and write: the FIFO never reads as ended while no keeper holds it open (before the agent starts).
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    this.socket = new Socket({ fd, readable: true, writable: false });
    this.socket.on('data', (chunk: Buffer) => {
      this.lastAt = Date.now();
      this.armedAt ??= this.lastAt;
      this.keepAlives += chunk.length;
      this.disarmed = chunk[chunk.length - 1] === 0x56; // 'V'
    });
    this.timer = setInterval(() => {
      if (this.armedAt === undefined || this.firedAt !== undefined || this.disarmed) return;
      if (Date.now() - this.lastAt >= this.timeoutMs) {
        this.firedAt = Date.now();
        void this.onExpire();
      }
    }, 50);
  }

  close(): void {
    clearInterval(this.timer);
    this.socket.destroy();
  }
}

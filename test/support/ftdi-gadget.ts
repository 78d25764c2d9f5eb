// The emulated FTDI adapter of the lab (hw-fixtures/lab/ftdi-gadget.c): an FT232BM on the guest's software
// USB bus, driven by the guest's own ftdi_sio, whose modem lines a test sets (docs/lab.md, "Modem lines").
import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { packageRoot } from '../../src/util/package-root.js';

export /** The emulated adapter: one line per command in, one line per answer or host request out. */
class Gadget {
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  tty = '';

  constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly traceFile: string) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`ftdi-gadget: ${d.toString()}`));
  }

  /** The first line matching re, waiting for it; consumed. */
  async next(re: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex((l) => re.test(l));
      if (i >= 0) return re.exec(this.lines.splice(i, 1)[0]!)!;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`ftdi-gadget: no line matching ${re} within ${timeoutMs} ms; lines: ${this.lines.join(' | ')}\n${this.traceTail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Sends a command; resolves with [t0, t1] (CLOCK_MONOTONIC ns before and after the status packet(s)). */
  async command(cmd: string): Promise<{ t0: bigint; t1: bigint; rest: string }> {
    this.child.stdin.write(`${cmd}\n`);
    const verb = cmd.split(' ')[0]!;
    const m = await this.next(new RegExp(`^(ok ${verb} (\\d+) (\\d+)(.*)|err .*)$`));
    if (m[1]!.startsWith('err')) throw new Error(`ftdi-gadget ${cmd}: ${m[1]}`);
    return { t0: BigInt(m[2]!), t1: BigInt(m[3]!), rest: (m[4] ?? '').trim() };
  }

  /** The adapter's last `n` trace lines (ep0 events, control requests, status packets; FTDI_TRACE). */
  traceTail(n = 40): string {
    let text: string;
    try {
      text = readFileSync(this.traceFile, 'utf8');
    } catch (e) {
      return `adapter trace: ${String(e)}`;
    }
    return `adapter trace, last ${n} lines (CLOCK_MONOTONIC s, the kernel log's clock):\n${text.trimEnd().split('\n').slice(-n).join('\n')}`;
  }

  forget(re: RegExp): void {
    for (let i = this.lines.length - 1; i >= 0; i--) if (re.test(this.lines[i]!)) this.lines.splice(i, 1);
  }

  quit(): Promise<void> {
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.end('quit\n');
    });
  }
}

/** Builds the emulator, starts it and waits for its ttyUSB. */
export async function startGadget(): Promise<Gadget> {
  const dir = mkdtempSync(join(tmpdir(), 'ftdi-gadget-'));
  const binary = join(dir, 'ftdi-gadget');
  await promisify(execFile)('cc', ['-O2', '-Wall', '-o', binary, join(packageRoot(), 'hw-fixtures', 'lab', 'ftdi-gadget.c'), '-lpthread']);
  const traceFile = join(dir, 'trace.log');
  const gadget = new Gadget(spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FTDI_TRACE: traceFile } }), traceFile);
  gadget.tty = (await gadget.next(/^(?:tty (\S+)|err (.*))$/, 60_000))[1] ?? '';
  if (!gadget.tty) throw new Error('the emulated adapter did not come up');
  return gadget;
}

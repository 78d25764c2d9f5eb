// The application's health probe (config `monitor`): a TCP connect or a command, every intervalMs, each
// given timeoutMs. `failures` failed probes in a row mean the app has failed even though its process
// runs (hung, deadlocked, not listening): a fault, which the flows restart in place or fail over (flows.ts 4a).
import { spawn } from 'node:child_process';

import type { MonitorConfig } from '../config/schema.js';
import { asAccount, probeTcp, type AppCommandSpec } from '../resources/app-process.js';

/** The account an app runs as (config `user`, `group`, `groups`): its command probe runs as it too. */
export type ProbeAccount = Pick<AppCommandSpec, 'user' | 'group' | 'groups'>;

/**
 * One probe: resolves with undefined when healthy, else why not. A command probe runs as the app's account
 * when it has one (setpriv, as the app itself: the probe is the app's code, not vigild's).
 */
export async function probeOnce(m: MonitorConfig, account: ProbeAccount = {}): Promise<string | undefined> {
  if (m.probe.kind === 'tcp') {
    const ok = await probeTcp(m.probe.host, m.probe.port, m.timeoutMs);
    return ok ? undefined : `no TCP connection to ${m.probe.host}:${m.probe.port} within ${m.timeoutMs} ms`;
  }
  const argv = m.probe.command;
  let run: { argv: string[]; env: Record<string, string> };
  try {
    run = await asAccount({ argv, ...account });
  } catch (e) {
    return `${argv[0]}: ${e instanceof Error ? e.message : String(e)}`;
  }
  return new Promise((resolve) => {
    const child = spawn(run.argv[0]!, run.argv.slice(1), { stdio: 'ignore', env: { ...process.env, ...run.env } });
    const timer = setTimeout(() => child.kill('SIGKILL'), m.timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); resolve(`${argv[0]}: ${e.message}`); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? undefined : signal === 'SIGKILL' ? `${argv.join(' ')} took over ${m.timeoutMs} ms` : `${argv.join(' ')} exited ${code ?? signal}`);
    });
  });
}

/**
 * Failed probes before the app first answers are not counted for this long after it starts: a service
 * takes a while to listen, and one killed before it ever could would look like a crash loop.
 */
export const START_GRACE_MS = 10_000;

export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private failed = 0;
  private stopped = false;
  private answered = false;
  private startedAt = 0;

  constructor(private readonly monitor: MonitorConfig, private readonly onFailure: (detail: string) => void,
    private readonly probe: (m: MonitorConfig) => Promise<string | undefined> = probeOnce,
    private readonly graceMs = START_GRACE_MS) {}

  start(): void {
    this.startedAt = performance.now();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), this.monitor.intervalMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const why = await this.probe(this.monitor);
    if (this.stopped) return;
    if (why === undefined) this.answered = true;
    const counts = this.answered || performance.now() - this.startedAt >= this.graceMs;
    this.failed = why === undefined || !counts ? 0 : this.failed + 1;
    if (why !== undefined && this.failed >= this.monitor.failures) {
      this.stopped = true;
      this.onFailure(`health probe failed ${this.failed} times in a row (${why})`);
      return;
    }
    this.schedule();
  }
}

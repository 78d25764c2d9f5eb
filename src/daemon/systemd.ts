// systemd integration (hw-fixtures/systemd/vigild.service: Type=notify, WatchdogSec): readiness, status
// text, stopping and watchdog keep-alives over the sd_notify protocol. Outside systemd (NOTIFY_SOCKET
// unset) every notify is a no-op returning false. A failed send throws the addon's NativeSystemError.
import { sdNotify } from '../native.js';

/** Logger subset (AgentLog fits). */
export interface SystemdLog {
  warn(fields: object, message: string): void;
}

/** Tells systemd start-up is complete (Type=notify: `systemctl start` returns, dependents start). */
export function notifyReady(status?: string): boolean {
  return sdNotify(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
}

/** Tells systemd the service is shutting down (shown as "deactivating"; no watchdog kill meanwhile). */
export function notifyStopping(): boolean {
  return sdNotify('STOPPING=1');
}

/** The one-line status `systemctl status vigild` shows. */
export function notifyStatus(text: string): boolean {
  return sdNotify(`STATUS=${oneLine(text)}`);
}

/** A watchdog keep-alive. */
export function notifyWatchdog(): boolean {
  return sdNotify('WATCHDOG=1');
}

// THE WATCHDOG AND WHAT ITS KILL MEANS. The pings come from the event loop, so they stop when the loop
// hangs. The stalls vigil rides out are shorter than the heartbeat lease (timing.agentLeaseMs, 5 s): the
// native heartbeat thread keeps sending meanwhile and nothing happens. A stall longer than the lease
// silences the heartbeats, and the peers take the node's apps over (it stands down when it wakes). A loop
// hung for WatchdogSec (15 s in the shipped unit) is killed by systemd with SIGKILL (WatchdogSignal=) and
// restarted: a hang is not a hardware fault, so the node is not taken out of the cluster (no fatal-signal
// distress, no stay-out record, which SIGABRT, systemd's default, would have caused), and it rejoins when
// restarted. A ping every WatchdogSec / 10 (at most every second) lets a stall of nine tenths of
// WatchdogSec pass; watchdogWarning() says so at start when the unit's WatchdogSec would kill a stall the
// lease rides out.

/**
 * How often to send WATCHDOG=1: a tenth of WatchdogSec (systemd passes it as WATCHDOG_USEC), at most every
 * second, or undefined when the watchdog is off or meant for another process (WATCHDOG_PID set and not
 * ours), as sd_watchdog_enabled(3) decides.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | undefined {
  const usec = env['WATCHDOG_USEC'];
  if (usec === undefined || !/^\d{1,15}$/.test(usec) || Number(usec) === 0) return undefined;
  const forPid = env['WATCHDOG_PID'];
  if (forPid !== undefined && forPid !== '' && (!/^\d{1,10}$/.test(forPid) || Number(forPid) !== pid)) return undefined;
  return Math.max(1, Math.min(1000, Math.floor(Number(usec) / 10_000)));
}

/** The longest event-loop stall the watchdog lets pass: WatchdogSec less one ping interval (ms). */
export function watchdogToleratesMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const interval = watchdogIntervalMs(env);
  return interval === undefined ? undefined : Math.floor(Number(env['WATCHDOG_USEC']) / 1000) - interval;
}

/**
 * A warning when systemd would kill a stall the heartbeat lease rides out (the agent restarted although
 * the cluster never noticed): WatchdogSec must exceed agentLeaseMs by at least a ping interval.
 */
export function watchdogWarning(agentLeaseMs: number, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const tolerates = watchdogToleratesMs(env);
  if (tolerates === undefined || tolerates >= agentLeaseMs) return undefined;
  return `systemd's WatchdogSec (${Number(env['WATCHDOG_USEC']) / 1e6} s) kills a stall of ${tolerates} ms, shorter than the heartbeat lease `
    + `(timing.agentLeaseMs ${agentLeaseMs} ms) that the cluster rides out: raise WatchdogSec (the shipped unit has 15 s)`;
}

/**
 * Sends WATCHDOG=1 every watchdogIntervalMs() while `healthy()` says so (a ping skipped is how the agent
 * asks systemd to restart it). The pings run on the event loop, so a loop stalled past WatchdogSec also
 * stops them. undefined when there is no watchdog. A failed send is logged (once per error code in a row)
 * and retried at the next interval.
 */
export function startWatchdog(log: SystemdLog, healthy: () => boolean = () => true,
  env: NodeJS.ProcessEnv = process.env): { stop(): void } | undefined {
  const interval = watchdogIntervalMs(env);
  if (interval === undefined) return undefined;
  let lastError: string | undefined;
  const timer = setInterval(() => {
    if (!healthy()) return;
    try {
      notifyWatchdog();
      lastError = undefined;
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e);
      if (code !== lastError) log.warn({ err: e instanceof Error ? e.message : String(e) }, 'systemd watchdog: keep-alive not sent');
      lastError = code;
    }
  }, interval);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

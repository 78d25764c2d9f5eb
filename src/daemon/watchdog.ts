// The node's watchdog (watchdog self-fencing): armed when the agent starts, tickled by the addon's own
// thread (native/watchdog_keeper.cc) only while the agent renews its lease on every tick, disarmed by a
// clean stop or when the node leaves the cluster. A hung or stopped agent (SIGSTOP, a wedged event loop, a
// crash that leaves the disk mounted) stops the tickles, and the watchdog resets the node after
// timing.agentLeaseMs + watchdog.timeoutMs at most. Which device: the BMC's own (IPMI, through /dev/ipmi0:
// its expiry is recorded in the SEL, and it resets even a hung kernel), else a /dev/watchdog driver (softdog
// is a kernel timer: it cannot reset a hung kernel, and says so in the log).
import { existsSync } from 'node:fs';

import type { WatchdogConfig } from '../config/schema.js';
import { getWatchdogTimer, TIMER_USE_SMS_OS, type WatchdogStatus } from '../ipmi/commands.js';
import { LOCAL_BMC_PATHS, LocalBmc } from '../ipmi/local.js';
import { nativeAddon, type NativeWatchdogKeeper, type WatchdogSnapshot } from '../native.js';
import type { AgentLog } from './log.js';

const IPMI_ACTIONS = { none: 0, reset: 1, 'power-off': 2, 'power-cycle': 3 } as const;

export interface WatchdogChoice {
  kind: 'ipmi' | 'device';
  path: string;
}

/** The device the configuration names, or undefined (none; auto with no device here). */
export function chooseWatchdog(device: string, exists: (p: string) => boolean = existsSync): WatchdogChoice | undefined {
  if (device === 'none') return undefined;
  const ipmi = LOCAL_BMC_PATHS.find(exists);
  if (device === 'ipmi') {
    if (!ipmi) throw new Error(`watchdog.device ipmi: no local BMC (${LOCAL_BMC_PATHS.join(', ')}); load ipmi_si and ipmi_devintf`);
    return { kind: 'ipmi', path: ipmi };
  }
  if (device === 'auto') {
    if (ipmi) return { kind: 'ipmi', path: ipmi };
    return exists('/dev/watchdog') ? { kind: 'device', path: '/dev/watchdog' } : undefined;
  }
  if (!exists(device)) throw new Error(`watchdog.device ${device}: no such device`);
  return { kind: 'device', path: device };
}

/** Whether a BMC's watchdog, just armed and reset, really counts down; why, either way. */
export interface CountdownCheck { counts: boolean; why: string }

/**
 * Judges Get Watchdog Timer read back after arming. A BMC can accept Set and Reset Watchdog Timer and
 * still never count (OpenIPMI's ipmi_sim as QEMU's external BMC keeps the settings, answers every tickle,
 * and never fires): published as a bound, such a watchdog would let peers count this node as self-fenced
 * while it runs. So the settings must read back as set, and the countdown must run: above 0 (QEMU's BMC
 * leaves the "running" bit clear, but its countdown is 0 only when stopped) and at most the timeout.
 */
export function checkCountdown(read: WatchdogStatus | Error, timeoutMs: number, action: string): CountdownCheck {
  if (read instanceof Error) return { counts: false, why: read.message.startsWith('Get Watchdog Timer') ? read.message : `Get Watchdog Timer: ${read.message}` };
  const initialMs = Math.ceil(timeoutMs / 100) * 100;
  if (read.timerUse !== TIMER_USE_SMS_OS) return { counts: false, why: `its timer use is ${read.timerUse}, not SMS/OS (4): another user set it` };
  if (read.action !== action) return { counts: false, why: `its action reads ${read.action}, not ${action}` };
  if (read.initialMs !== initialMs) return { counts: false, why: `its timeout reads ${read.initialMs} ms, not ${initialMs}` };
  if (read.presentMs === 0) return { counts: false, why: 'its countdown is stopped (0) right after a reset' };
  if (read.presentMs > read.initialMs) return { counts: false, why: `its countdown reads ${read.presentMs} ms, more than its ${read.initialMs} ms timeout: it does not count down` };
  return { counts: true, why: `counting down: ${read.presentMs} ms of ${read.initialMs}` };
}

/** The timeout a /dev/watchdog driver really runs at, when it can be counted on; else why not. */
export type DriverTimeoutCheck = { ok: true; timeoutMs: number; note?: string } | { ok: false; why: string };

/**
 * Judges what a /dev/watchdog driver took of the timeout asked for (whole seconds, rounded up). A driver
 * may refuse it (WDIOC_SETTIMEOUT fails: out of its range, and it keeps its own, e.g. 30 or 60 s) or take
 * another value (WDIOC_GETTIMEOUT says which). Peers are told this node's bound, so it must be the
 * driver's timeout when that is longer: a bound shorter than the real timeout lets a peer count this node
 * as reset while it still runs. A driver's timeout shorter than the one configured is refused: the keeper
 * tickles every quarter of the configured timeout and could let it fire on a healthy node. A driver that
 * refused the timeout and does not say its own cannot be bounded at all.
 */
export function checkDriverTimeout(s: Pick<WatchdogSnapshot, 'errno' | 'failedCall' | 'driverTimeoutS'>, configuredMs: number, vouched = false): DriverTimeoutCheck {
  const askedS = Math.ceil(configuredMs / 1000);
  const refused = s.failedCall === 'WDIOC_SETTIMEOUT' ? `the driver refused a ${askedS} s timeout (errno ${s.errno})` : undefined;
  if (s.driverTimeoutS <= 0) {
    if (!refused) return { ok: true, timeoutMs: configuredMs, note: 'the driver does not say its timeout (WDIOC_GETTIMEOUT); taken as set' };
    if (vouched) return { ok: true, timeoutMs: configuredMs, note: `${refused} and does not say its own; watchdog.vouchTimeout: the operator vouches for ${configuredMs} ms` };
    return { ok: false, why: `${refused} and does not say its own (WDIOC_GETTIMEOUT): if its timeout is fixed at most watchdog.timeoutMs (a module parameter), set watchdog.vouchTimeout: true` };
  }
  const driverMs = s.driverTimeoutS * 1000;
  const runsAt = `${refused ? `${refused}; it runs at` : 'the driver runs it at'} ${s.driverTimeoutS} s`;
  if (driverMs < configuredMs) return { ok: false, why: `${runsAt}, shorter than watchdog.timeoutMs ${configuredMs}: set watchdog.timeoutMs to at most ${driverMs}` };
  if (driverMs > configuredMs) return { ok: true, timeoutMs: driverMs, note: `${runsAt}, longer than watchdog.timeoutMs ${configuredMs}: peers are told ${driverMs} ms` };
  return { ok: true, timeoutMs: driverMs };
}

export class NodeWatchdog {
  private keeper: NativeWatchdogKeeper | undefined;
  readonly choice: WatchdogChoice | undefined;
  /** The BMC's countdown as read back after arming (a driver's is taken on trust: undefined). */
  private countdown: CountdownCheck | undefined;
  /** The timeout it runs at: the configured one, or a /dev/watchdog driver's when that is longer. */
  private timeoutMs: number;

  constructor(private readonly config: WatchdogConfig, private readonly leaseMs: number, private readonly log: AgentLog) {
    this.choice = chooseWatchdog(config.device);
    this.timeoutMs = config.timeoutMs;
  }

  /** Arms it; resolves once the thread has armed it (or says why it could not: then it throws). */
  async start(): Promise<void> {
    if (!this.choice) {
      if (this.config.device === 'auto') this.log.warn({}, 'watchdog: none here (no /dev/ipmi0, no /dev/watchdog): a hung agent will not reset this node');
      return;
    }
    const { kind, path } = this.choice;
    // Tickled four times per timeout: one lost or late tickle never trips it (sbd warns at 3/5).
    const keeper = new (nativeAddon().WatchdogKeeper)({
      kind, path, timeoutMs: this.config.timeoutMs, tickleMs: Math.floor(this.config.timeoutMs / 4), leaseMs: this.leaseMs, action: IPMI_ACTIONS[this.config.action],
    });
    this.keeper = keeper;
    for (let i = 0; i < 100; i++) {
      const s = keeper.snapshot();
      if (s.armed) break;
      if (s.ended || s.errno) {
        this.keeper = undefined;
        keeper.stop(false);
        throw new Error(`watchdog ${path}: ${s.failedCall} failed (errno ${s.errno})`);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
    const s = keeper.snapshot();
    if (!s.armed) throw new Error(`watchdog ${path}: not armed after 3 s`);
    if (kind === 'device') {
      const taken = checkDriverTimeout(s, this.config.timeoutMs, this.config.vouchTimeout);
      if (!taken.ok) {
        this.keeper = undefined;
        keeper.stop(true);
        throw new Error(`watchdog ${path}: ${taken.why}`);
      }
      this.timeoutMs = taken.timeoutMs;
      if (taken.note) this.log.warn({ path, driverTimeoutS: s.driverTimeoutS }, `watchdog: ${taken.note}`);
    }
    if (s.identity === 'Software Watchdog') this.log.warn({ path }, 'watchdog: softdog is a kernel timer; it cannot reset a hung kernel (a hardware or BMC watchdog can)');
    if (kind === 'ipmi' && this.config.action !== 'none') {
      this.countdown = await this.readCountdown(path);
      if (!this.countdown.counts) {
        this.log.error({ path, why: this.countdown.why }, 'watchdog: the BMC took the settings but its watchdog is not counting down; it cannot reset this node, and no bound is published for peers to count on');
      }
    }
    this.log.info({ path, kind, timeoutMs: this.timeoutMs, action: kind === 'ipmi' ? this.config.action : 'reset', identity: s.identity || undefined, driverTimeoutS: s.driverTimeoutS || undefined, countdown: this.countdown?.why }, 'watchdog armed');
  }

  /** Get Watchdog Timer through a handle of its own (the keeper's thread owns the other). */
  private async readCountdown(path: string): Promise<CountdownCheck> {
    let bmc: LocalBmc | undefined;
    try {
      bmc = await LocalBmc.open({ path });
      return checkCountdown(await getWatchdogTimer(bmc), this.config.timeoutMs, this.config.action);
    } catch (e) {
      return checkCountdown(e instanceof Error ? e : new Error(String(e)), this.config.timeoutMs, this.config.action);
    } finally {
      await bmc?.close().catch(() => {});
    }
  }

  /** Every tick of a healthy agent. */
  renew(): void {
    this.keeper?.renewLease();
  }

  /**
   * With `resets`: whether its expiry resets the node (a BMC's action none only records it, and a BMC whose
   * countdown does not run resets nothing); `countdown`: the BMC's read back after arming.
   */
  snapshot(): (WatchdogSnapshot & WatchdogChoice & { timeoutMs: number; resets: boolean; countdown?: CountdownCheck }) | undefined {
    if (!this.keeper || !this.choice) return undefined;
    const resets = this.choice.kind === 'device' || (this.config.action !== 'none' && this.countdown?.counts === true);
    return { ...this.keeper.snapshot(), ...this.choice, timeoutMs: this.timeoutMs, resets, ...(this.countdown ? { countdown: this.countdown } : {}) };
  }

  /**
   * A clean stop, or leaving the cluster: disarmed, so the node is not reset for it. Resolves once the
   * thread has disarmed it (the process may exit next; a disarm cut short would reset the node).
   */
  async stop(): Promise<void> {
    const keeper = this.keeper;
    this.keeper = undefined;
    if (!keeper) return;
    keeper.stop(true);
    for (let i = 0; i < 300 && !keeper.snapshot().ended; i++) await new Promise((r) => setTimeout(r, 10));
    const s = keeper.snapshot();
    if (s.armed) this.log.error({ errno: s.errno, failedCall: s.failedCall }, 'watchdog: could not disarm it; the node will be reset');
    else this.log.info({}, 'watchdog disarmed');
  }
}

/** What `vigil status` shows of it. */
export function watchdogStatus(s: ReturnType<NodeWatchdog['snapshot']>): { path: string; kind: string; timeoutMs: number; armed: boolean; resets: boolean; countdown?: CountdownCheck; tickles: number; withheld: number; tickleErrors: number } | null {
  if (!s) return null;
  return { path: s.path, kind: s.kind, timeoutMs: s.timeoutMs, armed: s.armed, resets: s.resets, ...(s.countdown ? { countdown: s.countdown } : {}), tickles: s.tickles, withheld: s.withheld, tickleErrors: s.tickleErrors };
}

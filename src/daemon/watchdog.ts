// The node's watchdog (watchdog self-fencing): armed when the agent starts, tickled by the addon's own
// thread (native/watchdog_keeper.cc) only while the agent renews its lease on every tick, disarmed by a
// clean stop or when the node leaves the cluster. A hung or stopped agent (SIGSTOP, a wedged event loop, a
// crash that leaves the disk mounted) stops the tickles, and the watchdog resets the node after
// timing.agentLeaseMs + watchdog.timeoutMs at most. Which device: the BMC's own (IPMI, through /dev/ipmi0:
// its expiry is recorded in the SEL, and it resets even a hung kernel), else a /dev/watchdog driver (softdog
// is a kernel timer: it cannot reset a hung kernel, and says so in the log).
import { existsSync } from 'node:fs';

import type { WatchdogConfig } from '../config/schema.js';
import { LOCAL_BMC_PATHS } from '../ipmi/local.js';
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

export class NodeWatchdog {
  private keeper: NativeWatchdogKeeper | undefined;
  readonly choice: WatchdogChoice | undefined;

  constructor(private readonly config: WatchdogConfig, private readonly leaseMs: number, private readonly log: AgentLog) {
    this.choice = chooseWatchdog(config.device);
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
    if (s.identity === 'Software Watchdog') this.log.warn({ path }, 'watchdog: softdog is a kernel timer; it cannot reset a hung kernel (a hardware or BMC watchdog can)');
    this.log.info({ path, kind, timeoutMs: this.config.timeoutMs, action: kind === 'ipmi' ? this.config.action : 'reset', identity: s.identity || undefined, driverTimeoutS: s.driverTimeoutS || undefined }, 'watchdog armed');
  }

  /** Every tick of a healthy agent. */
  renew(): void {
    this.keeper?.renewLease();
  }

  /** With `resets`: whether its expiry resets the node (a BMC's action none only records it). */
  snapshot(): (WatchdogSnapshot & WatchdogChoice & { timeoutMs: number; resets: boolean }) | undefined {
    if (!this.keeper || !this.choice) return undefined;
    return { ...this.keeper.snapshot(), ...this.choice, timeoutMs: this.config.timeoutMs, resets: this.choice.kind === 'device' || this.config.action !== 'none' };
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
export function watchdogStatus(s: ReturnType<NodeWatchdog['snapshot']>): { path: string; kind: string; timeoutMs: number; armed: boolean; tickles: number; withheld: number; tickleErrors: number } | null {
  if (!s) return null;
  return { path: s.path, kind: s.kind, timeoutMs: s.timeoutMs, armed: s.armed, tickles: s.tickles, withheld: s.withheld, tickleErrors: s.tickleErrors };
}

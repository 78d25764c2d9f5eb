#!/usr/bin/env node
// vigild: the agent. One per node: `vigild --config FILE [--node NAME]`. Logs are JSON lines on stdout
// (journald keeps them); SIGTERM stops the applications it runs and exits 0.
import { Command } from 'commander';
import { pino } from 'pino';

import { ConfigError, loadConfig } from '../config/load.js';
import { clearLeftoversNow } from '../daemon/clear-leftovers.js';
import { Agent } from '../daemon/agent.js';
import { startMetrics, type MetricsServer } from '../daemon/metrics.js';
import { notifyReady, notifyStopping, startWatchdog, watchdogWarning } from '../daemon/systemd.js';
import { resolveSelf, SelfError } from '../daemon/self.js';
import { KeyFileError } from '../wire/key.js';
import { drainLog } from '../util/drain-log.js';
import { packageVersion } from '../util/package-root.js';

interface Options { config: string; node?: string; heartbeatPriority: string; leaveApps?: boolean; clearLeftovers?: boolean }

async function main(o: Options): Promise<void> {
  const config = await loadConfig(o.config);
  const self = resolveSelf(config, o.node);
  // Asynchronous, as pino's default (the event loop never waits on a slow reader of stdout); drained by
  // drainLog before the agent re-executes itself.
  const out = pino.destination({ dest: 1, sync: false });
  const log = pino({ level: config.log.level, base: { node: self.name, cluster: config.cluster } }, out);
  if (o.clearLeftovers) {
    await clearLeftoversNow(config, self, log);
    return;
  }
  let metrics: MetricsServer | undefined;
  let stopping = false;
  // `vigil rejoin` on a node that stays out after its distress: this agent stops and a new one starts, with
  // a new incarnation, in the same process (its peers ignore the incarnation that sent distress).
  const rejoin = () => {
    if (stopping) return;
    log.warn({}, 'rejoining: restarting the agent');
    const old = agent;
    agent = new Agent(config, self, log, agentOptions);
    void old.stop().then(() => agent.start()).then(() => notifyReady(`${self.name}: running (rejoined)`), (e: unknown) => {
      log.error({ err: e instanceof Error ? e.message : String(e) }, 'rejoin failed: exiting');
      process.exit(1);
    });
  };
  const agentOptions = { heartbeatPriority: Number(o.heartbeatPriority), onRejoin: rejoin, drainLog: () => drainLog(out) };
  let agent = new Agent(config, self, log, agentOptions);
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    try { notifyStopping(); } catch { /* nobody to tell */ }
    void metrics?.close();
    agent.stop(o.leaveApps === true).then(() => process.exit(0), (e: unknown) => {
      log.error({ err: String(e) }, 'stop failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const wdWarning = watchdogWarning(config.timing.agentLeaseMs);
  if (wdWarning) log.warn({}, wdWarning);
  startWatchdog(log);
  // Before the agent starts: a metrics port already taken stops vigild before any app runs.
  if (config.metrics) metrics = await startMetrics(config.metrics.listen, () => agent.metricsStatus(), log);
  await agent.start();
  notifyReady(`${self.name}: running`);
}

new Command('vigild')
  .description('vigil agent: membership, the cluster database, failover and failback for one node')
  .version(packageVersion())
  .requiredOption('--config <file>', 'cluster configuration (see docs/config.md; check it with `vigil config check`)')
  .option('--node <name>', 'which configured node this is (default: the host name, else the node whose address is configured here)')
  .option('--heartbeat-priority <n>', 'SCHED_FIFO priority of the heartbeat thread, 0 for normal scheduling', '10')
  .option('--clear-leftovers', 'do not start: stop the apps a dead agent of this node left running and remove their service addresses, then exit (the systemd unit\'s ExecStopPost)')
  .option('--leave-apps', 'on SIGTERM, leave the applications running (agent upgrade); default stops them. The next vigild stops what it finds left before it starts them again: never two copies')
  .action(async (o: Options) => {
    try {
      await main(o);
    } catch (e) {
      const known = e instanceof ConfigError || e instanceof SelfError || e instanceof KeyFileError;
      process.stderr.write(`vigild: ${known ? (e as Error).message : (e instanceof Error ? e.stack ?? e.message : String(e))}\n`);
      process.exit(1);
    }
  })
  .parseAsync(process.argv);


// The operator's distress and power commands (seed 002; docs/distress.md, docs/power.md): `vigil distress
// test|status|send`, `vigil power status`, `vigil rejoin`. Requests to the local vigild like the others in
// cluster-commands.ts.
import { Option, type Command } from 'commander';

import { agentCommand, confirm, field, request, sameSocket } from './cluster-commands.js';
import type { Report } from './output.js';
import { act } from './run.js';
import { formatDuration, list, obj, outOfClusterLines, str, table } from './status-format.js';

const text = (v: unknown): string => str(v) ?? (typeof v === 'boolean' ? String(v) : '-');

async function distressStatus(_o: unknown, cmd: Command): Promise<Report> {
  const r = obj(await request(cmd, 'distress.status'));
  const lines = outOfClusterLines(r.out, sameSocket(cmd));
  const s = r.sender === null || r.sender === undefined ? undefined : obj(r.sender);
  if (s) {
    lines.push(`sender: ${s.armed === true ? 'armed' : 'NOT ARMED'}, ${s.realtime === true ? `SCHED_FIFO ${text(s.priority)}` : 'normal priority'}` +
      `, memory ${s.memoryLocked === true ? 'locked' : 'not locked'}, fatal-signal handlers ${s.fatalHandlers === true ? 'installed' : 'not installed'}` +
      `, ${text(s.destinations)} destinations on ${text(s.networks)} networks, ${text(s.repeats)} copies per event`);
    const reasons = list(s.reasons);
    if (reasons.length) {
      lines.push('sent');
      lines.push(table([['  reason', 'triggers', 'events', 'datagrams', 'errors', 'last sent'],
        ...reasons.map((x) => [`  ${text(x.reason)}`, text(x.triggers), text(x.events), text(x.datagrams), text(x.errors),
          typeof x.lastSentAtMs === 'number' && x.lastSentAtMs > 0 ? new Date(x.lastSentAtMs).toISOString() : '-'])]));
    } else {
      lines.push('sent: nothing since it was armed');
    }
    if (typeof s.lastError === 'string') lines.push(`last send error: ${s.lastError}`);
  } else if (lines.length === 0) {
    lines.push('sender: not armed');
  }
  const received = list(r.received);
  lines.push(received.length ? 'received (newest first)' : 'received: nothing');
  for (const x of received) lines.push(`  ${text(x.at)}  from ${text(x.from)} (incarnation ${text(x.incarnation)}): ${text(x.reason)}${x.acted === true ? '  → failed over' : ''}`);
  const dropped = Object.entries(obj(r.dropped)).filter(([, v]) => typeof v === 'number' && v > 0);
  if (dropped.length) lines.push(`dropped: ${dropped.map(([k, v]) => `${k} ${String(v)}`).join(', ')}`);
  return { json: r, human: lines.join('\n') };
}

async function distressTest(_o: unknown, cmd: Command): Promise<Report> {
  const r = await request(cmd, 'distress.test');
  return { json: r, human: `distress test sent to ${text(field(r, 'destinations'))} destinations; peers log it (vigil distress status there) and do nothing else` };
}

async function distressSend(o: { reason: string; yes?: boolean }, cmd: Command): Promise<Report> {
  if (!o.yes && !(await confirm(`send distress from this node? its peers take its apps over at once, and it stays out of the cluster until vigil rejoin [y/N] `, 'distress send'))) {
    return { json: { cancelled: true }, human: 'not sent' };
  }
  const r = await request(cmd, 'distress.send', { reason: o.reason });
  return { json: r, human: `distress sent (${o.reason}): this node is leaving the cluster; it stays out until: vigil rejoin${sameSocket(cmd)}` };
}

async function powerStatus(_o: unknown, cmd: Command): Promise<Report> {
  const r = obj(await request(cmd, 'power.status'));
  const lines = outOfClusterLines(r.out, sameSocket(cmd));
  if (r.configured !== true) {
    lines.push('no power sources configured (power: in the configuration, docs/power.md)');
    return { json: r, human: lines.join('\n') };
  }
  const policy = new Map(list(r.policy).map((p) => [text(p.source), p]));
  for (const s of list(r.sources)) {
    const name = text(s.source);
    const last = s.last === undefined || s.last === null ? undefined : obj(s.last);
    lines.push(`${name} (${text(s.type)}): ${s.connected === true ? 'connected' : 'NOT CONNECTED'}, state ${text(s.state)}${s.raw ? ` (${text(s.raw)})` : ''}`);
    if (last) lines.push(`  last event: ${text(last.kind)} at ${typeof last.at === 'number' ? new Date(last.at).toISOString() : '?'}: ${text(obj(last.detail).text)}`);
    const p = policy.get(name);
    if (p && typeof p.graceLeftMs === 'number') lines.push(`  on battery: distress in ${formatDuration(p.graceLeftMs)} unless power returns`);
    if (p && typeof p.deadLeftMs === 'number') lines.push(`  silent while on battery: distress in ${formatDuration(p.deadLeftMs)} unless it answers`);
    lines.push(`  polls ${text(s.polls)}, failed ${text(s.failedPolls)}, reconnects ${text(s.reconnects)}${s.lastError ? `; last error: ${text(s.lastError)}` : ''}`);
  }
  const d = r.distressed === null || r.distressed === undefined ? undefined : obj(r.distressed);
  if (d) lines.push(`distress decided: ${text(d.reason)} from ${text(d.source)}, ${formatDuration(Number(d.agoMs))} ago`);
  const decisions = list(r.decisions);
  if (decisions.length) {
    lines.push('decisions (newest first)');
    for (const x of decisions.slice(0, 10)) lines.push(`  ${text(x.at)}  ${text(x.action)}: ${text(x.text)}`);
  }
  return { json: r, human: lines.join('\n') };
}

async function rejoin(_o: unknown, cmd: Command): Promise<Report> {
  const r = obj(await request(cmd, 'rejoin'));
  return {
    json: r,
    human: r.restarting === true
      ? `${text(r.node)}: the stay-out record is removed; vigild restarts its agent with a new incarnation and joins (follow it with vigil status${sameSocket(cmd)})`
      : `${text(r.node)}: the stay-out record is removed; ${text(r.next)}`,
  };
}

export function distressCommands(): Command[] {
  const distress = agentCommand('distress', 'the distress signal (seed 002): what the armed sender holds and has sent, a test, a manual send');
  distress.command('status').description('armed?, thread priority, what was sent per reason and when, what was received from peers').action(act(distressStatus));
  distress.command('test').description('send a test distress: peers log it and do nothing else').action(act(distressTest));
  distress.command('send').description('send distress now and leave the cluster: peers take the apps over at once; this node stays out until vigil rejoin')
    .addOption(new Option('--reason <reason>', 'the reason peers log').choices(['hardware-fault', 'unknown']).default('hardware-fault'))
    .option('--yes', 'do not ask for confirmation')
    .action(act(distressSend));

  const power = agentCommand('power', "the node's UPS watch (docs/power.md)");
  power.command('status').description('each power source: connected?, state, last event; the policy\'s timers and decisions').action(act(powerStatus));

  const rejoinCommand = agentCommand('rejoin', 'bring back a node that sent distress and stays out of the cluster (new incarnation)').action(act(rejoin));
  return [distress, power, rejoinCommand];
}

// The operator's commands to the local vigild, over its control socket (docs/cli.md "vigild"): status,
// app load/unload, failback approve/deny, switchover, drain, attr get/set, db show/sync. Each is one request on a fresh
// connection; errors (not running, a refusal from the agent) become one line and an exit code as every
// other vigil error (exit-codes.ts).
import { Command, Option } from 'commander';

import { DEFAULT_CONTROL_SOCKET } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import type { Report } from './output.js';
import { act, intOption, usage } from './run.js';
import { formatAttributes, formatDb, formatStatus, formatValue } from './status-format.js';

interface AgentOptions {
  socket?: string;
  config?: string;
  timeout?: number;
}

/** Default answer time; `db sync` waits for every live peer, so it gets longer. */
const TIMEOUT_MS = 5000;
const SYNC_TIMEOUT_MS = 30_000;
/** A switchover or drain: how long vigild waits for it to end, and this client a little longer. */
const SWITCHOVER_WAIT_MS = 60_000;
/** A fence: the session, the power-off and its confirmation (fencing.confirmTimeoutMs, 10 s by default). */
const FENCE_TIMEOUT_MS = 30_000;

/** Where the socket comes from: `--socket`, else `--config FILE`'s control.socket, else $VIGIL_SOCKET, else the default. */
export async function resolveSocket(o: AgentOptions, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (o.socket !== undefined && o.config !== undefined) usage('--socket and --config do not go together');
  if (o.socket !== undefined) return o.socket;
  if (o.config !== undefined) {
    try {
      // Loaded when needed: the parser and the schema (yaml, zod) cost every other command its start-up.
      const { loadConfig } = await import('../config/load.js');
      return (await loadConfig(o.config)).control.socket;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      // One line: the first problem; `vigil config check` lists them all.
      const [first] = e.problems;
      const more = e.problems.length > 1 ? ` (and ${e.problems.length - 1} more: vigil config check ${o.config})` : '';
      throw new ConfigError(o.config, first ? [{ ...first, message: first.message + more }] : []);
    }
  }
  const fromEnv = env.VIGIL_SOCKET;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_CONTROL_SOCKET;
}

function options(cmd: Command): AgentOptions {
  return cmd.optsWithGlobals() as AgentOptions;
}

export async function request(cmd: Command, method: string, params?: object, timeoutMs?: number): Promise<unknown> {
  const o = options(cmd);
  const socket = await resolveSocket(o);
  const { controlRequest } = await import('../control/client.js');
  return controlRequest(socket, method, params, { timeoutMs: o.timeout ?? timeoutMs ?? TIMEOUT_MS });
}

/** The options to repeat in a suggested command: the same --socket or --config, if one was given. */
export function sameSocket(cmd: Command): string {
  const o = options(cmd);
  const quote = (s: string) => (/^[A-Za-z0-9_./:=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  if (o.socket !== undefined) return ` --socket ${quote(o.socket)}`;
  if (o.config !== undefined) return ` --config ${quote(o.config)}`;
  return '';
}

export function field(result: unknown, name: string): unknown {
  return result !== null && typeof result === 'object' ? (result as Record<string, unknown>)[name] : undefined;
}

/** VALUE of `attr set`: true/false → boolean, a decimal number → number, anything else (or --string) → string. */
export function parseAttributeValue(text: string, asString = false): string | number | boolean {
  if (asString) return text;
  if (text === 'true') return true;
  if (text === 'false') return false;
  // Only numbers that read back the same kind of way: "007" and 2^53 stay strings (an id, a serial number).
  if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n) && (text.includes('.') || Number.isSafeInteger(n))) return n;
  }
  return text;
}

async function status(_o: unknown, cmd: Command): Promise<Report> {
  const result = await request(cmd, 'status');
  return { json: result, human: formatStatus(result, { options: sameSocket(cmd) }) };
}

function tagCommand(method: string, human: (tag: string, result: unknown) => string) {
  return async (tag: string, _o: unknown, cmd: Command): Promise<Report> => {
    const result = await request(cmd, method, { tag });
    return { json: result, human: human(tag, result) };
  };
}

async function attrGet(tag: string, name: string | undefined, _o: unknown, cmd: Command): Promise<Report> {
  const result = await request(cmd, 'attr.get', name === undefined ? { tag } : { tag, name });
  if (name === undefined) return { json: result, human: formatAttributes(tag, field(result, 'attributes')) };
  // One value alone, as `git config --get` prints it: a string as it is, the rest as JSON.
  const value = field(result, 'value');
  return { json: result, human: typeof value === 'string' ? value : formatValue(value) };
}

async function attrSet(tag: string, name: string, text: string | undefined, o: { string?: boolean; delete?: boolean }, cmd: Command): Promise<Report> {
  if (o.delete && text !== undefined) usage('--delete takes no VALUE');
  if (!o.delete && text === undefined) usage('a VALUE is needed (or --delete to remove the attribute)');
  if (o.delete && o.string) usage('--string and --delete do not go together');
  const value = o.delete ? null : parseAttributeValue(text!, o.string === true);
  const result = await request(cmd, 'attr.set', { tag, name, value });
  return { json: result, human: value === null ? `${tag}: ${name} removed` : `${tag}: ${name} = ${formatValue(value)}` };
}

interface SwitchoverLine { tag: string; outcome: string; reason?: string; from?: string; to?: string; gapMs?: number; tookMs?: number }

function switchoverLine(r: SwitchoverLine): string {
  switch (r.outcome) {
    case 'complete': return `${r.tag}: switched over from ${r.from} to ${r.to}${r.gapMs !== undefined ? `; service gap ${r.gapMs} ms` : ''} (${r.tookMs} ms in all)`;
    case 'under-way': return `${r.tag}: switchover from ${r.from} to ${r.to} still under way (follow it with vigil status)`;
    case 'marked': return `${r.tag}: kept off the node`;
    case 'unmarked': return `${r.tag}: no longer kept off the node${r.reason ? ` (${r.reason})` : ''}`;
    default: return `${r.tag}: ${r.outcome}${r.reason ? `: ${r.reason}` : ''}`;
  }
}

/** The wait vigild is asked for: --timeout less a margin for the answer to travel, else the default. */
function switchoverTimes(cmd: Command): { waitMs: number; timeoutMs: number } {
  const timeout = options(cmd).timeout;
  const waitMs = timeout !== undefined ? Math.max(0, timeout - 1000) : SWITCHOVER_WAIT_MS;
  return { waitMs, timeoutMs: timeout ?? SWITCHOVER_WAIT_MS + 5000 };
}

async function switchover(tag: string, o: { to?: string }, cmd: Command): Promise<Report> {
  const { waitMs, timeoutMs } = switchoverTimes(cmd);
  const result = await request(cmd, 'switchover', { tag, ...(o.to !== undefined ? { to: o.to } : {}), waitMs }, timeoutMs);
  return { json: result, human: switchoverLine(result as SwitchoverLine) };
}

async function drain(node: string, o: { undo?: boolean }, cmd: Command): Promise<Report> {
  const { waitMs, timeoutMs } = switchoverTimes(cmd);
  const result = await request(cmd, 'drain', { node, undo: o.undo === true, waitMs }, timeoutMs);
  const apps = (field(result, 'apps') ?? []) as SwitchoverLine[];
  const head = o.undo ? `${node}: drain undone` : `${node}: drained`;
  return { json: result, human: [apps.length ? `${head}:` : `${head}; no app of ${node} to move or mark`, ...apps.map((a) => `  ${switchoverLine(a)}`)].join('\n') };
}

async function dbShow(_o: unknown, cmd: Command): Promise<Report> {
  const result = await request(cmd, 'db.show');
  return { json: result, human: formatDb(result) };
}

async function dbSync(_o: unknown, cmd: Command): Promise<Report> {
  const result = await request(cmd, 'db.sync', {}, SYNC_TIMEOUT_MS);
  const digest = field(result, 'digest');
  return {
    json: result,
    human: `synced with the live peers${typeof digest === 'number' ? `; digest ${(digest >>> 0).toString(16).padStart(8, '0')}` : ''}`,
  };
}

interface PairLine { tag: string; peer: string; state: string; priority: number | null; sequence: string | null; record: string; decision: string | null; peerState: string | null }

async function priorityShow(_o: unknown, cmd: Command): Promise<Report> {
  const result = await request(cmd, 'priority.show');
  const pairs = (field(result, 'pairs') ?? []) as PairLine[];
  const lines = pairs.map((p) => [
    `${p.tag}  with ${p.peer}  state ${p.state}  priority ${p.priority ?? '?'}  sequence ${p.sequence ?? '-'}  (${p.record})${p.peerState ? `  peer reports ${p.peerState}` : ''}`,
    ...(p.decision ? [`  ${p.decision}`] : []),
  ].join('\n'));
  return { json: result, human: lines.length ? lines.join('\n') : 'no application pairs this node is part of' };
}

async function forceStart(tag: string | undefined, o: { yes?: boolean }, cmd: Command): Promise<Report> {
  if (!o.yes) {
    const shown = await request(cmd, 'priority.show');
    const waiting = ((field(shown, 'pairs') ?? []) as PairLine[]).filter((p) => p.state === 'X' && (tag === undefined || p.tag === tag));
    for (const p of waiting) process.stderr.write(`${p.tag}: ${p.decision ?? 'deciding'}\n`);
    if (!(await confirm(`force-start ${tag ?? 'every waiting app'} on ${String(field(shown, 'node'))}? updates only its peer had are given up [y/N] `))) {
      return { json: { cancelled: true }, human: 'not forced' };
    }
  }
  const result = await request(cmd, 'priority.force-start', tag === undefined ? {} : { tag });
  const results = (field(result, 'results') ?? []) as { tag: string; ok: boolean; reason: string }[];
  return { json: result, human: results.map((r) => `${r.tag}: ${r.ok ? 'forced start accepted' : 'refused'}: ${r.reason}`).join('\n') };
}

async function fence(node: string, o: { yes?: boolean }, cmd: Command): Promise<Report> {
  if (!o.yes && !(await confirm(`power ${node} off through its BMC (a hard power-off: whatever runs there stops at once)? [y/N] `, 'fence'))) {
    return { json: { cancelled: true }, human: 'not fenced' };
  }
  const result = await request(cmd, 'fence', { node }, FENCE_TIMEOUT_MS);
  const took = field(result, 'tookMs');
  return { json: result, human: `${node}: power off confirmed by its BMC (${String(took)} ms)${field(result, 'wasAlive') ? '; it was still heard from' : ''}` };
}

/** One line from the terminal; anything but y/yes is a no (and so is no terminal: use --yes in scripts). */
export async function confirm(question: string, command = 'force-start'): Promise<boolean> {
  if (!process.stdin.isTTY) usage(`${command} asks for confirmation on a terminal; give --yes to confirm in a script`);
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** The options every command to vigild takes (on the command or group, before or after the subcommand). */
export function agentCommand(name: string, description: string): Command {
  return new Command(name).description(description)
    .addOption(new Option('--socket <path>', "vigild's control socket (default: $VIGIL_SOCKET, else " + DEFAULT_CONTROL_SOCKET + ')'))
    .addOption(new Option('--config <file>', 'take the socket from this cluster configuration (control.socket)'))
    .addOption(new Option('--timeout <ms>', `how long to wait for vigild's answer (default ${TIMEOUT_MS}, db sync ${SYNC_TIMEOUT_MS}, fence ${FENCE_TIMEOUT_MS}, switchover and drain ${SWITCHOVER_WAIT_MS + 5000})`).argParser(intOption(1)));
}

/** `vigil status`, `vigil app …`, `vigil failback …`, `vigil attr …`, `vigil db …`: the commands to vigild. */
export function clusterCommands(): Command[] {
  const st = agentCommand('status', 'the cluster as this node sees it: peers, heartbeats, apps, failback prompts, notices')
    .action(act(status));

  const app = agentCommand('app', 'load or unload an application (its HOST in the cluster database)');
  app.command('load').argument('<tag>').description('load the app: start it where it belongs (also restarts a halted app)')
    .action(act(tagCommand('app.load', (tag) => `${tag}: load requested (follow it with vigil status)`)));
  app.command('unload').argument('<tag>').description('unload the app: HOST none, stop it and its resources, no failover')
    .action(act(tagCommand('app.unload', (tag) => `${tag}: unload requested (follow it with vigil status)`)));

  const failback = agentCommand('failback', "answer a failback prompt, on the backup that hosts the app");
  failback.command('approve').argument('<tag>').description('hand the app back to its primary')
    .action(act(tagCommand('failback.approve', (tag) => `${tag}: failback approved`)));
  failback.command('deny').argument('<tag>').description('keep the app on the backup for now (the prompt repeats)')
    .action(act(tagCommand('failback.deny', (tag) => `${tag}: failback denied; the prompt will repeat`)));

  const sw = agentCommand('switchover', 'move an app to its other node now, planned: the target checks first, then the host stops it and hands it over')
    .argument('<tag>')
    .addOption(new Option('--to <node>', 'the node to move it to (it must be the app\'s other node)'))
    .action(act(switchover));

  const drainCmd = agentCommand('drain', 'switch every app hosted on NODE to its other node and keep them off NODE (no failback, no switchover to it)')
    .argument('<node>')
    .option('--undo', 'end the drain: the apps the drain moved off NODE, its own, go back to it')
    .action(act(drain));

  const attr = agentCommand('attr', "an application's additional attributes");
  attr.command('get').argument('<tag>').argument('[name]').description('every attribute (name = value), or the value of one')
    .action(act(attrGet));
  attr.command('set').argument('<tag>').argument('<name>').argument('[value]', 'true/false: boolean; a decimal number: number; else a string')
    .option('--string', 'store VALUE as a string, even if it looks like a number or boolean')
    .option('--delete', 'remove the attribute (no VALUE)')
    .description('set (or with --delete remove) one attribute; replicated to every node')
    .action(act(attrSet));

  const db = agentCommand('db', "this node's replica of the cluster database");
  db.command('show').description('every object: tag, version, updated by, HOST, phase').action(act(dbShow));
  db.command('sync').description('exchange the database with every live peer now').action(act(dbSync));

  const priority = agentCommand('priority', 'last-active server (seed 003): each app pair\'s priority record and state');
  priority.command('show').description('state, priority, sequence, and what this node would decide now and why').action(act(priorityShow));

  const force = agentCommand('force-start', 'start an app that waits after an outage (its peer silent, its priority not 1) as single master here')
    .argument('[tag]', 'one app (default: every app waiting on this node)')
    .option('--yes', 'do not ask for confirmation')
    .action(act(forceStart));

  const fenceCmd = agentCommand('fence', "power a node off through its BMC (its config's bmc:), confirmed by the BMC's status")
    .argument('<node>')
    .option('--yes', 'do not ask for confirmation')
    .action(act(fence));

  return [st, app, failback, sw, drainCmd, attr, db, priority, force, fenceCmd];
}

// `vigil rejuvenation status|plan|run|postpone|cancel` (docs/cli.md; docs/rejuvenation.md): the
// available-server list, what a node's rejuvenation would do, and the operator's requests, which the
// named node's agent carries out (they travel in its record of the cluster database).
import { Command, InvalidArgumentError } from 'commander';

import { agentCommand, request } from './cluster-commands.js';
import type { Report } from './output.js';
import { act } from './run.js';
import { formatRecord, type NodeRecordView as Rec } from './status-format.js';

type Plan = { ok: true; when: string; why: string; moves: { tag: string; to: string }[] } | { ok: false; why: string };

function planLine(label: string, p: Plan): string {
  if (!p.ok) return `${label}: not possible: ${p.why}`;
  return `${label}: ${p.when}: ${p.why}`;
}

async function status(_o: unknown, cmd: Command): Promise<Report> {
  const r = (await request(cmd, 'rejuvenation.status')) as { nodes: Rec[]; auto: boolean; mode: string };
  const head = `rejuvenation: ${r.mode}, ${r.auto ? 'automatic on the aging monitor\'s judgement' : 'by operators only (rejuvenation.auto false)'}`;
  return { json: r, human: [head, ...(r.nodes.length ? r.nodes.flatMap(formatRecord) : ['no node has published its record yet'])].join('\n') };
}

async function plan(node: string, _o: unknown, cmd: Command): Promise<Report> {
  const r = (await request(cmd, 'rejuvenation.plan', { node })) as { record: Rec | null; auto: Plan; run: Plan };
  return { json: r, human: [...(r.record ? formatRecord(r.record) : [`${node}: no record yet`]), planLine('on its own (aging)', r.auto), planLine('vigil rejuvenation run', r.run)].join('\n') };
}

function requestCommand(method: string, params: (node: string, o: Record<string, unknown>) => object, say: string) {
  return async (node: string, o: Record<string, unknown>, cmd: Command): Promise<Report> => {
    const r = (await request(cmd, method, { node, ...params(node, o) }, 30_000)) as { handled: boolean; record: Rec | null };
    const tail = r.handled ? (r.record ? formatRecord(r.record) : []) : [`${node} has not acted on it yet (it will when it hears of it): vigil rejuvenation status`];
    return { json: r, human: [`${node}: ${say}`, ...tail].join('\n') };
  };
}

/** 30s, 15m, 2h, 1d → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError('expected a duration: a number and s, m, h or d (90m, 2h, 1d)');
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export function rejuvenationCommand(): Command {
  const rj = agentCommand('rejuvenation', 'seed 000: the available-server list, and planned rejuvenation of a node (docs/rejuvenation.md)');
  rj.command('status').description('every node\'s record: state, role, headroom, aging verdict, and its rejuvenation\'s timeline').action(act(status));
  rj.command('plan').argument('<node>').description('what a rejuvenation of NODE would do now: its targets, now or later, or why not').action(act(plan));
  rj.command('run').argument('<node>').option('--reason <text>', 'why, kept in the record')
    .description('rejuvenate NODE now: its apps switched over, the ladder climbed, probation, back as the spare')
    .action(act(requestCommand('rejuvenation.run', (_n, o) => (o.reason ? { reason: o.reason } : {}), 'rejuvenation requested')));
  rj.command('postpone').argument('<node>').requiredOption('--for <duration>', 'no automatic rejuvenation of NODE before then (90m, 2h, 1d)', parseDuration)
    .description('no rejuvenation of NODE on its own for a while (an operator\'s run still works)')
    .action(act(requestCommand('rejuvenation.postpone', (_n, o) => ({ forMs: o.for }), 'postponed')));
  rj.command('cancel').argument('<node>').option('--reason <text>', 'why, kept in the record')
    .description('stop NODE\'s rejuvenation: it returns to the available list as it is; apps stay where they run')
    .action(act(requestCommand('rejuvenation.cancel', (_n, o) => (o.reason ? { reason: o.reason } : {}), 'cancel requested')));
  return rj;
}

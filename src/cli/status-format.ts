// The human renderings of what vigild answers on its control socket (`vigil status`, `vigil db show`, …).
// Pure: the agent's JSON in, lines of text out. The input is read defensively (every field may be missing
// or of another type in an agent of another version): what is not there is left out, never a crash.
import { CLOCK_WARN_MS } from '../daemon/peer-clocks.js';

export type Obj = Record<string, unknown>;

export function obj(v: unknown): Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}
export function list(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map(obj) : [];
}
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : undefined;
}

/** 850 → "850 ms", 12_300 → "12.3 s", 185_000 → "3m 5s", 8_040_000 → "2h 14m", 100h → "4d 4h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** Round trip in µs → "0.21 ms" / "12 ms". */
function formatRtt(us: number): string {
  const ms = us / 1000;
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

/** A value as an operator typed it: strings quoted, so "true" and true differ. */
export function formatValue(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

export interface FormatOptions {
  /** Options to append to the commands suggested (the --socket used, if any): " --socket /x". */
  options?: string;
  /** Notices shown (default 10, the newest). */
  notices?: number;
}

function peerLine(p: Obj): string {
  const name = str(p.peer) ?? '?';
  const state = str(p.state) ?? '?';
  const forMs = num(p.forMs);
  const head = `  ${name}  ${state === 'alive' ? 'alive' : state.toUpperCase()}${forMs === undefined ? '' : ` for ${formatDuration(forMs)}`}`;
  const channels = list(p.channels);
  const links = list(p.links);
  // One entry per network: the heartbeat thread's view (links) and membership's (channels, "net:<name>").
  const names = [...links.map((l) => str(l.network) ?? '?')];
  for (const c of channels) {
    const n = (str(c.channel) ?? '?').replace(/^net:/, '');
    if (!names.includes(n)) names.push(n);
  }
  const nets = names.map((n) => {
    const l = links.find((x) => (str(x.network) ?? '?') === n);
    const c = channels.find((x) => (str(x.channel) ?? '?').replace(/^net:/, '') === n);
    const cstate = str(c?.state);
    const heard = num(l?.heardAgoMs) ?? num(c?.lastHeardAgeMs);
    const heardText = heard === undefined || heard < 0 || (l === undefined && c?.lastHeardAgeMs === null) ? 'never heard' : `heard ${formatDuration(heard)} ago`;
    const rtt = num(l?.rttUs);
    const acked = num(l?.ackedAgoMs);
    const rttText = rtt !== undefined && rtt > 0 && (acked === undefined || acked >= 0) ? `, rtt ${formatRtt(rtt)}` : '';
    const loss = num(l?.loss);
    const lossText = loss !== undefined && loss > 0 ? `, ${Math.round(loss * 1000) / 10}% lost` : '';
    return `${n}${cstate === 'down' ? ' DOWN' : ''}: ${heardText}${rttText}${lossText}`;
  });
  // The peer's clock only when it is off by enough to matter (doctor's threshold): the line stays short.
  const offset = num(obj(p.clock).offsetMs);
  const clock = offset !== undefined && Math.abs(offset) >= CLOCK_WARN_MS ? `   CLOCK ${offset > 0 ? '+' : ''}${offset} ms (synchronise the clocks)` : '';
  return (nets.length ? `${head}   ${nets.join('   ')}` : head) + clock;
}

function counters(label: string, o: Obj, keys: [string, string][]): string {
  const parts: string[] = [];
  for (const [key, text] of keys) {
    const n = num(o[key]);
    if (n !== undefined && (n !== 0 || key === 'sent' || key === 'received')) parts.push(`${text} ${n}`);
  }
  return `${label}: ${parts.join(', ')}`;
}

function heartbeatLines(hb: Obj): string[] {
  const line = counters('heartbeats', hb, [['sent', 'sent'], ['received', 'received'], ['sendErrors', 'send errors'], ['leaseLapsed', 'lease lapsed']]);
  const prio = hb.realtime === true ? ' (SCHED_FIFO)' : hb.realtime === false ? ' (normal priority)' : '';
  const out = [line + prio];
  out.push(...dropLines(hb.dropped));
  return out;
}

/** Dropped datagrams by reason ({hmac: 3, replay: 0}) or a plain count: only what is non-zero, or nothing. */
function dropLines(dropped: unknown): string[] {
  const drops = Object.entries(obj(dropped)).filter(([, v]) => typeof v === 'number' && v !== 0).map(([k, v]) => `${k} ${String(v)}`);
  if (typeof dropped === 'number' && dropped !== 0) drops.push(String(dropped));
  return drops.length ? [`  dropped: ${drops.join(', ')}`] : [];
}

/** One shared disk: the path, who holds the reservation, who is registered, and this node's key. */
function diskLine(d: Obj): string {
  const parts = [`  ${str(d.disk) ?? '?'}`];
  const path = str(d.path);
  if (path) parts.push(path);
  const error = str(d.error);
  if (error !== undefined) return [...parts, `ERROR: ${error}`].join('  ');
  const holder = str(d.holder);
  const type = str(d.type);
  parts.push(holder ? `reserved by ${holder}${type ? ` (${type})` : ''}` : 'not reserved');
  if (Array.isArray(d.registered)) parts.push(`registered: ${d.registered.map((r) => str(r) ?? '?').join(' ') || 'none'}`);
  const key = str(d.myKey);
  if (key) parts.push(`my key ${key}`);
  if (d.heartbeat === false) parts.push('no disk heartbeat');
  if (d.fenced === true) parts.push('FENCED');
  return parts.join('  ');
}

function appLines(a: Obj, opts: string): string[] {
  const tag = str(a.tag) ?? '?';
  const host = a.host === null ? 'none (unloaded)' : str(a.host) ?? '?';
  const out = [
    `  ${tag} (${str(a.type) ?? '?'})  HOST ${host}  primary ${str(a.primary) ?? '?'}  backup ${str(a.backup) ?? '?'}  phase ${str(a.phase) ?? '?'}` +
      (a.autoRecover === true ? '  auto-failback' : ''),
  ];
  const resources = Array.isArray(a.resources) ? a.resources.map((r) => str(r) ?? formatValue(r)) : [];
  const here = a.here === null || a.here === undefined ? undefined : obj(a.here);
  if (here) {
    const pid = num(here.pid);
    const app = `app ${str(here.app) ?? '?'}${pid !== undefined ? ` (pid ${pid})` : ''}`;
    out.push(`    here: ${app}, resources ${str(here.resources) ?? '?'}${resources.length ? ` (${resources.join(', ')})` : ''}`);
    const pending = str(here.pending);
    if (pending) out.push(`    pending: ${pending}`);
    const halted = str(here.halted);
    if (halted) out.push(`    halted: ${halted}; not started again until: vigil app load ${tag}${opts}`);
    if (here.gated === true) out.push('    gated: starts nothing here until its last-active decision (vigil priority show)');
  } else if (resources.length) {
    out.push(`    resources: ${resources.join(', ')}`);
  }
  const la = a.lastActive === null || a.lastActive === undefined ? undefined : obj(a.lastActive);
  if (la) {
    const decision = str(la.decision);
    out.push(`    last-active: ${str(la.state) ?? '?'}, priority ${num(la.priority) ?? '?'}${decision ? `; ${decision}` : ''}`);
  }
  const faults = Array.isArray(a.faults) ? a.faults.map((f) => str(f) ?? '?') : [];
  if (faults.length) {
    out.push(`    faulted on ${faults.join(' and ')}: it goes there neither by failover nor by failback until cleared by: vigil app load ${tag}${opts} (on that node)`);
  }
  const keepOff = str(a.keepOff);
  if (keepOff) out.push(`    drained off ${keepOff}: no failback or switchover to it until: vigil drain ${keepOff} --undo${opts}`);
  if (a.switchover !== undefined && a.switchover !== null) out.push(`    ${switchoverSummary(obj(a.switchover), str(a.phase))}`);
  const prompt = str(a.prompt);
  if (prompt) {
    out.push(`    failback: ${prompt}`);
    out.push(`      answer: vigil failback approve ${tag}${opts}   or   vigil failback deny ${tag}${opts}`);
  }
  return out;
}

/** The last switchover, in one line: where it went, how far it got, the service gap. */
function switchoverSummary(r: Obj, phase: string | undefined): string {
  const route = `${str(r.from) ?? '?'} to ${str(r.to) ?? '?'}${r.drain === true ? ' (drain)' : ''}`;
  const refused = str(r.refused);
  if (refused !== undefined) return `switchover ${route}: not done: ${refused}`;
  const gap = num(r.gapMs);
  if (phase === 'switching-over') return `switchover ${route}: ${r.appStoppedAt !== undefined ? 'handed over, starting' : r.ready === true ? 'target ready, stopping' : 'target checking'}`;
  if (r.appStartedAt !== undefined) return `switchover ${route}: done${gap !== undefined ? `, service gap ${gap} ms` : ''}`;
  return `switchover ${route}: ended without the target starting it (phase ${phase ?? '?'})`;
}

/** 52_428_800 bytes → "50.0 MiB"; a load per CPU with two decimals; a count as it is. */
function agingValue(v: number, unit: string | undefined): string {
  if (unit === 'bytes') return `${(v / 1_048_576).toFixed(1)} MiB`;
  if (unit === 'load/cpu') return `${v.toFixed(2)}/cpu`;
  if (unit === 'seconds') return formatDuration(v * 1000);
  return String(Math.round(v * 10) / 10);
}

interface StepView { step: string; outcome?: string; detail?: string; startedAt: number }
/** A node's record in the available-server list, as the agent answers it (src/db/node-record.ts). */
export interface NodeRecordView {
  node: string; role: string; state: string; since: number;
  headroom?: { cpus: number; load: number; memTotal: number; memAvailable: number };
  aging?: { unstable: boolean; why: string; etaMs: number | null };
  rejuvenation?: { startedAt: number; by: string; reason: string; moved: { tag: string; to: string }[]; steps: StepView[]; absentUntil?: number; outcome?: string; endedAt?: number; why?: string };
  notBefore?: number;
}
const iso = (ms: number) => new Date(ms).toISOString();

/** One node's line, and its rejuvenation's timeline under it. */
export function formatRecord(r: NodeRecordView): string[] {
  const h = r.headroom;
  const room = h ? `, load ${(h.load / h.cpus).toFixed(2)}/cpu, memory available ${(100 * h.memAvailable / h.memTotal).toFixed(0)}%` : '';
  const aging = r.aging?.unstable ? `, aging: ${r.aging.why}` : '';
  const lines = [`${r.node}: ${r.state} (${r.role}) since ${iso(r.since)}${room}${aging}${r.notBefore && r.notBefore > Date.now() ? `, postponed until ${iso(r.notBefore)}` : ''}`];
  const j = r.rejuvenation;
  if (j) {
    lines.push(`  rejuvenation started ${iso(j.startedAt)} by ${j.by}: ${j.reason}`);
    if (j.moved.length) lines.push(`    moved: ${j.moved.map((m) => `${m.tag} to ${m.to}`).join(', ')}`);
    for (const s of j.steps) lines.push(`    rung ${s.step} at ${iso(s.startedAt)}: ${s.outcome ?? 'under way'}${s.detail ? ` (${s.detail})` : ''}`);
    if (j.absentUntil && !j.outcome) lines.push(`    planned absence until ${iso(j.absentUntil)}`);
    if (j.outcome) lines.push(`    ended ${j.endedAt ? iso(j.endedAt) : ''}: ${j.outcome}${j.why ? ` (${j.why})` : ''}`);
  }
  return lines;
}

/**
 * The available-server list, only while a node is out of it (or its rejuvenation failed): that node's
 * line and its rejuvenation's timeline, as `vigil rejuvenation status` prints them.
 */
export function rejuvenationLines(rejuvenation: unknown): string[] {
  if (rejuvenation === undefined || rejuvenation === null) return [];
  const nodes = list(obj(rejuvenation).nodes) as unknown as NodeRecordView[];
  const out = nodes.filter((r) => r.state !== 'available');
  return out.length ? ['rejuvenation', ...out.flatMap((r) => formatRecord(r).map((l) => `  ${l}`))] : [];
}

/**
 * The aging monitor: one line per signal that is unstable (or whose condition holds, pending the hold
 * time), with what makes it so; nothing while every signal is stable (`vigil status --json` has them all).
 */
export function agingLines(aging: unknown): string[] {
  if (aging === undefined || aging === null) return [];
  const a = obj(aging);
  const subjects = [{ who: 'node', signals: list(a.node) },
    ...list(a.apps).map((x) => ({ who: `app ${str(x.tag) ?? '?'}`, signals: list(x.signals) }))];
  const out: string[] = [];
  const error = str(a.error);
  if (error) out.push(`  cannot read /proc: ${error}`);
  for (const { who, signals } of subjects) {
    for (const j of signals) {
      const unstable = j.state === 'unstable';
      const condition = str(j.condition);
      if (!unstable && !condition) continue;
      const unit = str(j.unit);
      const parts = [`  ${who} ${str(j.signal) ?? '?'} ${unstable ? 'UNSTABLE' : `pending (${condition})`}: ${agingValue(num(j.value) ?? NaN, unit)}`];
      const slope = num(j.slopePerHour);
      if (slope !== undefined) parts.push(`trend ${slope >= 0 ? '+' : '-'}${agingValue(Math.abs(slope), unit)}/h`);
      const eta = num(j.etaMs);
      if (eta !== undefined) parts.push(`exhausted in ~${formatDuration(eta)}`);
      const enter = num(j.enter);
      if (condition === 'threshold' && enter !== undefined) parts.push(`threshold ${agingValue(enter, unit)}`);
      if (unstable && !condition) parts.push('clearing');
      const since = str(j.since);
      if (since) parts.push(`since ${since}`);
      out.push(parts.join(', '));
    }
  }
  return out.length ? ['aging', ...out] : [];
}

/** A node that sent distress and stays out (seed 002): what happened and the command that brings it back. */
export function outOfClusterLines(out: unknown, opts = ''): string[] {
  if (out === undefined || out === null) return [];
  const o = obj(out);
  return [`OUT OF THE CLUSTER since ${str(o.since) || 'an unknown time'}: sent distress (${str(o.reason) ?? '?'}${str(o.text) ? `: ${str(o.text)}` : ''})`,
    `  no heartbeat, no apps; bring it back with: vigil rejoin${opts}`];
}

/** `vigil status` for people: who is alive and how well heard, the counters, each app, the last notices. */
export function formatStatus(status: unknown, options: FormatOptions = {}): string {
  const s = obj(status);
  const opts = options.options ?? '';
  const uptime = num(s.uptimeMs);
  const lines = [
    `cluster ${str(s.cluster) ?? '?'}, node ${str(s.node) ?? '?'}, incarnation ${str(s.incarnation) ?? '?'}` +
      (uptime === undefined ? '' : `, up ${formatDuration(uptime)}`),
  ];
  lines.push(...outOfClusterLines(s.out, opts));
  const distress = s.distress === undefined || s.distress === null ? undefined : obj(s.distress);
  if (distress) lines.push(`distress sender: ${distress.armed === true ? 'armed' : 'NOT ARMED'}${distress.realtime === true ? ' (SCHED_FIFO)' : distress.realtime === false ? ' (normal priority)' : ''}`);
  const watchdog = s.watchdog === undefined || s.watchdog === null ? undefined : obj(s.watchdog);
  if (watchdog) {
    const withheld = num(watchdog.withheld) ?? 0;
    lines.push(`watchdog ${str(watchdog.path) ?? '?'}: ${watchdog.armed === true ? 'armed' : 'NOT ARMED'}, ${formatDuration(num(watchdog.timeoutMs) ?? 0)}, ${num(watchdog.tickles) ?? 0} tickles${withheld ? `, ${withheld} withheld (the lease ran out: a hung agent, or a lost view)` : ''}`);
    const countdown = watchdog.countdown === undefined ? undefined : obj(watchdog.countdown);
    if (countdown?.counts === false) lines.push(`  NOT COUNTING DOWN: ${str(countdown.why) ?? '?'}; it cannot reset this node`);
  }
  // The view behind the watchdog's tickles (docs/ipmi.md, "The valid view"): shown with a watchdog, or once lost.
  const view = s.view === undefined || s.view === null ? undefined : obj(s.view);
  if (view && (watchdog || view.valid === false)) {
    const bound = num(view.watchdogBoundMs);
    lines.push(`view: ${view.valid === true ? 'valid' : 'LOST'} (${str(view.why) ?? '?'})${bound === undefined ? '' : `; reset within ${formatDuration(bound)} of a cut`}`);
  }
  const peers = list(s.peers);
  lines.push(peers.length ? 'peers' : 'peers: none configured');
  for (const p of peers) lines.push(peerLine(p));
  if (s.heartbeat !== undefined && s.heartbeat !== null) lines.push(...heartbeatLines(obj(s.heartbeat)));
  if (s.messages !== undefined && s.messages !== null) {
    const m = obj(s.messages);
    lines.push(counters('messages', m, [['sent', 'sent'], ['received', 'received']]), ...dropLines(m.dropped));
  }
  const stall = num(s.ownStallMs);
  if (stall !== undefined && stall > 0) lines.push(`own stalls: ${formatDuration(stall)} of this node's event-loop stalls discounted`);
  const disks = list(s.disks);
  if (disks.length) lines.push('disks', ...disks.map(diskLine));
  const apps = list(s.apps);
  lines.push(apps.length ? 'apps' : 'apps: none');
  for (const a of apps) lines.push(...appLines(a, opts));
  lines.push(...agingLines(s.aging));
  lines.push(...rejuvenationLines(s.rejuvenation));
  const notices = list(s.notices).slice(-(options.notices ?? 10));
  if (notices.length) {
    lines.push('notices (newest last)');
    for (const n of notices) {
      lines.push(`  ${str(n.at) ?? '?'}  ${str(n.tag) ?? '?'}  ${str(n.notice) ?? '?'}: ${str(n.message) ?? ''}`);
    }
  }
  return lines.join('\n');
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

/** `vigil db show` for people: one row per object (a removed app shows as deleted), then the digest. */
export function formatDb(snapshot: unknown): string {
  const s = obj(snapshot);
  const apps = list(s.apps);
  const rows = [['TAG', 'VERSION', 'UPDATED-BY', 'HOST', 'PHASE']];
  for (const a of apps) {
    const deleted = a.deleted === true;
    rows.push([
      str(a.tag) ?? '?', str(a.version) ?? '?', str(a.updatedBy) ?? '?',
      deleted ? '-' : a.host === null ? '(unloaded)' : str(a.host) ?? '?',
      deleted ? '(deleted)' : str(a.phase) ?? '?',
    ]);
  }
  const lines = [apps.length ? table(rows) : 'no applications in the database'];
  const digest = num(s.digest);
  const markers = list(s.markers).length;
  const foot = [`${apps.length} object${apps.length === 1 ? '' : 's'}`, `${markers} marker${markers === 1 ? '' : 's'}`];
  if (digest !== undefined) foot.push(`digest ${(digest >>> 0).toString(16).padStart(8, '0')}`);
  lines.push(foot.join(', '));
  return lines.join('\n');
}

/** `vigil attr get TAG` for people: one `name = value` a line, sorted. */
export function formatAttributes(tag: string, attributes: unknown): string {
  const entries = Object.entries(obj(attributes)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!entries.length) return `${tag}: no attributes`;
  return entries.map(([k, v]) => `${k} = ${formatValue(v)}`).join('\n');
}

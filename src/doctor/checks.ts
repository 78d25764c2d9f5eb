// The verdicts of `vigil doctor`: pure functions of the gathered facts (facts.ts), each returning checks
// with OK / WARN / FAIL and one line saying what to do. No I/O here: test/unit/doctor-checks.test.ts feeds
// them facts written by hand.
import type { PairStatus } from '../daemon/last-active.js';
import { CLOCK_WARN_MS } from '../daemon/peer-clocks.js';
import type { AgentStatus, DiskFacts, DoctorFacts, RecordFact } from './facts.js';
import { fail, ok, warn, type Check } from './report.js';

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export function checkConfig(f: DoctorFacts): Check {
  if (!f.config) return fail('config', f.configError ?? `${f.configFile}: cannot be read`, `fix the configuration: vigil config check ${f.configFile} lists every problem`);
  const c = f.config;
  const summary = `cluster ${c.cluster}: ${plural(c.nodes.length, 'node')}, ${plural(c.networks.length, 'network')}, ${plural(c.disks.length, 'disk')}, ${plural(c.apps.length, 'app')}`;
  if (!f.self) return fail('config', `${summary}; ${f.selfError ?? 'cannot tell which node this is'}`, 'give the node with --node NAME, or run doctor on a node of the cluster');
  if (f.keyError) return fail('config', `${summary}; this is ${f.self}; ${f.keyError}`, `make ${c.keyFile} readable by vigild (and by doctor: run it as root)`);
  if (c.networks.length < 2) return warn('config', `${summary}; this is ${f.self}; one network only: its loss looks like a dead peer`, 'configure a second heartbeat network (docs/config.md)');
  return ok('config', `${summary}; this is ${f.self}`, { file: f.configFile, cluster: c.cluster, node: f.self });
}

export function checkAgent(f: DoctorFacts): Check {
  if (f.agent) {
    const s = f.agent.status;
    return ok('agent', `vigild answers on ${f.config?.control.socket ?? '?'}: node ${s.node}, up ${seconds(s.uptimeMs)}`, { node: s.node, incarnation: s.incarnation, uptimeMs: s.uptimeMs });
  }
  return warn('agent', `vigild does not answer (${f.agentError ?? 'not running'}): networks, disk heartbeats, power sources and who should hold each disk are not checked`,
    'start it (systemctl start vigild) or look at its log (journalctl -u vigild) if it should be running');
}

/** The node that should hold the disk by the agent's view: the host of the apps using it. undefined: no agent. */
export function expectedHolder(status: AgentStatus | undefined, d: DiskFacts): { node: string | null; why: string } | undefined {
  if (!status) return undefined;
  const using = status.apps.filter((a) => d.users.includes(a.tag));
  const hosted = using.filter((a) => a.host !== null);
  const hosts = [...new Set(hosted.map((a) => a.host!))];
  if (hosts.length === 0) return { node: null, why: using.length ? `no node hosts ${using.map((a) => a.tag).join(', ')}` : 'no app uses it' };
  return { node: hosts.join(' and '), why: hosted.map((a) => `${a.tag} is hosted by ${a.host}`).join(', ') };
}

export function checkPaths(f: DoctorFacts, d: DiskFacts): Check {
  const id = `disk.${d.name}.paths`;
  const found = d.paths.map((p) => p.path);
  const detail = { identity: d.identity, paths: d.paths };
  if (f.scanError) return fail(id, `the SCSI devices cannot be scanned: ${f.scanError}`, 'load the sg module (modprobe sg) and run doctor as root', detail);
  if (found.length === 0) return fail(id, `no path leads to ${d.name} (${d.identity})`, 'check the HBA, cabling and the LUN mapping on the storage, then: vigil links save', detail);
  const gone = (d.stored ?? []).filter((s) => !found.includes(s.path) && s.state !== 'moved').map((s) => s.path);
  const list = d.paths.map((p) => `${p.path}${p.blockDevice ? ` (${p.blockDevice.replace('/dev/', '')})` : ''}`).join(', ');
  if (gone.length) {
    return warn(id, `${plural(found.length, 'path')} to ${d.name} (${list}); gone since the link table was saved: ${gone.join(', ')}`,
      `check the HBA, cable and switch port behind ${gone.join(', ')}; once it is back (or for good gone): vigil links save`, { ...detail, gone });
  }
  return ok(id, `${plural(found.length, 'path')} to ${d.name}: ${list}`, detail);
}

export function checkLinks(f: DoctorFacts, d: DiskFacts): Check {
  const id = `disk.${d.name}.links`;
  const save = `vigil links save --file ${f.linkTable}`;
  if (f.linkTableError) return warn(id, `link table unusable: ${f.linkTableError}`, `save one: ${save} (until then a takeover scans every device)`);
  if (d.stored === null) return warn(id, `${f.linkTable} has no entry for ${d.name} (${d.identity})`, `${save} (until then a takeover scans every device)`);
  const bad = d.stored.filter((s) => s.state === 'moved' || s.state === 'error');
  const working = d.stored.filter((s) => s.state === 'ok');
  const detail = { file: f.linkTable, stored: d.stored };
  if (bad.length) {
    return warn(id, `link table stale for ${d.name}: ${bad.map((s) => `${s.path} ${s.state === 'moved' ? s.detail : `fails (${s.detail})`}`).join('; ')}`,
      `rescan and store the paths again: ${save}`, detail);
  }
  if (working.length === 0) return warn(id, `no stored path of ${d.name} works (${d.stored.map((s) => s.path).join(', ')})`, `rescan and store the paths again: ${save}`, detail);
  return ok(id, `link table agrees: ${working.map((s) => s.path).join(', ')} lead${working.length === 1 ? 's' : ''} to ${d.name}`, detail);
}

export function checkReady(d: DiskFacts): Check {
  const id = `disk.${d.name}.ready`;
  const detail = { paths: d.paths.map((p) => ({ path: p.path, ready: p.ready })) };
  if (d.paths.length === 0) return fail(id, `${d.name} cannot be read: no path`, 'see the paths check', detail);
  const bad = d.paths.filter((p) => !p.readyOk);
  if (bad.length === d.paths.length) return fail(id, `no path of ${d.name} answers TEST UNIT READY: ${bad.map((p) => `${p.path}: ${p.ready}`).join('; ')}`, 'check the storage (is the LUN online?) and the paths to it', detail);
  if (bad.length) return warn(id, `${bad.map((p) => `${p.path}: ${p.ready}`).join('; ')} (the other paths answer)`, `check the path${bad.length === 1 ? '' : 's'} ${bad.map((p) => p.path).join(', ')} (HBA, cable, switch port)`, detail);
  return ok(id, `every path of ${d.name} answers TEST UNIT READY`, detail);
}

/** Persistent reservation as vigil keeps it: none and nobody registered, or WRITE EXCLUSIVE - REGISTRANTS ONLY held by its only registrant's node. */
export function checkPr(f: DoctorFacts, d: DiskFacts): Check | undefined {
  if (d.reservation !== 'persistent') return undefined;
  const id = `disk.${d.name}.pr`;
  if (d.pr === null) return fail(id, `the PR state of ${d.name} cannot be read: no path`, 'see the paths check');
  if ('error' in d.pr) return fail(id, `the PR state of ${d.name} cannot be read: ${d.pr.error}`, 'check the paths and that the storage supports persistent reservations');
  const pr = d.pr;
  const name = (r: { key: string; node: string | null }) => (r.node ? `${r.node} (${r.key})` : `${r.key} (no node of this cluster)`);
  const holder = pr.registrants.find((r) => r.holder);
  const keys = [...new Set(pr.registrants.map((r) => r.key))];
  const detail = { generation: pr.generation, path: pr.path, holder: holder ? { key: holder.key, node: holder.node, type: holder.type } : null, registrants: pr.registrants };
  const state = `generation ${pr.generation}, ${holder ? `held by ${name(holder)} type ${holder.type ?? '?'}` : 'no reservation'}, registered: ${keys.length ? [...new Map(pr.registrants.map((r) => [r.key, name(r)])).values()].join(', ') : 'none'}`;
  const unknown = [...new Set(pr.registrants.filter((r) => r.node === null).map((r) => r.key))];
  if (unknown.length) {
    const why = f.keyError ? ' (the cluster key could not be read to name them)' : '';
    return fail(id, `${d.name}: ${state}; key${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} belong${unknown.length === 1 ? 's' : ''} to no node of this cluster${why}`,
      `find who registered it (another cluster, a tool?) and remove it from that initiator: vigil scsi pr unregister DEV --key ${unknown[0]}`, detail);
  }
  if (holder && holder.type !== 'wero') {
    return fail(id, `${d.name}: ${state}; vigil holds WRITE EXCLUSIVE - REGISTRANTS ONLY (wero), not ${holder.type ?? 'an obsolete type'}`, 'find what reserved it (not vigil) and release it; vigil then takes it as it should', detail);
  }
  const nodes = [...new Set(pr.registrants.map((r) => r.node!))];
  if (holder && nodes.length > 1) {
    const others = nodes.filter((n) => n !== holder.node);
    return fail(id, `${d.name}: ${state}; ${others.join(', ')} registered beside the holder: under wero every registrant may write`,
      `find why ${others.join(', ')} registered (its vigild removes a stray registration at start: restart it) or unregister it: vigil scsi pr unregister DEV --key KEY on that node`, detail);
  }
  if (!holder && nodes.length) {
    return warn(id, `${d.name}: ${state}; registered without a reservation (an earlier agent's, or a takeover under way)`,
      `if it stays, restart vigild on ${nodes.join(', ')} (it removes its stray registration at start)`, detail);
  }
  return ok(id, `${d.name}: ${state}`, detail);
}

/** Who holds the disk against who should: the host of the apps using it, as the agent sees the cluster. */
export function checkReservation(f: DoctorFacts, d: DiskFacts): Check | undefined {
  const id = `disk.${d.name}.reservation`;
  const status = f.agent?.status;
  const expected = expectedHolder(status, d);
  if (d.reservation === 'scsi2') {
    const seen = status?.disks?.find((x) => x.disk === d.name);
    if (!expected || !seen) return undefined;
    const here = f.self;
    if (expected.node === here && seen.holder !== here) return fail(id, `${d.name} (SCSI-2): ${expected.why}, but this node does not hold it (${seen.holder ?? 'nobody does'})`, 'look at vigild\'s log on this node: the app runs without its disk reserved', { expected: expected.node, holder: seen.holder ?? null });
    if (expected.node !== here && seen.holder === here) return fail(id, `${d.name} (SCSI-2): this node holds it, but ${expected.why}`, 'look at vigild\'s log on this node: it should have released the disk', { expected: expected.node, holder: here });
    return ok(id, `${d.name} (SCSI-2): held by ${seen.holder ?? 'nobody'}; ${expected.why}`, { expected: expected.node, holder: seen.holder ?? null });
  }
  if (d.pr === null || 'error' in d.pr) return undefined; // the pr check says why
  const holder = d.pr.registrants.find((r) => r.holder);
  const holderName = holder ? holder.node ?? holder.key : null;
  const detail = { expected: expected?.node ?? null, holder: holderName, known: expected !== undefined };
  if (!expected) {
    return ok(id, `${d.name}: ${holderName ? `held by ${holderName}` : 'not held'} (no agent here to say who should hold it)`, detail);
  }
  if (holderName === expected.node) return ok(id, `${d.name}: ${holderName ? `held by ${holderName}` : 'not held'}, as it should be: ${expected.why}`, detail);
  if (expected.node === null) {
    return fail(id, `${d.name}: held by ${holderName}, but ${expected.why}: nobody should hold it`,
      `vigild on ${holderName} gives up within seconds a disk no app of its uses; if it stays, release it on ${holderName}: vigil scsi pr release DEV --key ${holder!.key} --type wero, then vigil scsi pr unregister DEV --key ${holder!.key}`, detail);
  }
  if (!holder) return fail(id, `${d.name}: not held, but ${expected.why}: its writes are not fenced`, `look at vigild's log on ${expected.node}: it should have taken the disk before starting the app`, detail);
  return fail(id, `${d.name}: held by ${holderName}, but ${expected.why}`,
    `the app's host cannot write: move the app where the disk is (vigil app unload, then load) and look at both nodes' vigild logs`, detail);
}

export function checkDiskHeartbeat(f: DoctorFacts, d: DiskFacts): Check | undefined {
  const status = f.agent?.status;
  if (!status) return undefined;
  const id = `disk.${d.name}.heartbeat`;
  if (!d.heartbeat) return ok(id, `${d.name}: the disk heartbeat is off in the configuration`);
  const mine = status.disks?.find((x) => x.disk === d.name);
  if (mine?.error) return fail(id, `${d.name}: vigild cannot use the disk: ${mine.error}`, 'see the paths and links checks; vigild finds the disk again by itself once a path works');
  if (mine?.fenced) return fail(id, `${d.name}: this node was fenced off the disk (its key preempted)`, 'its apps were stopped; find why in vigild\'s log, then restart vigild here to rejoin');
  const holder = mine?.holder ?? null;
  if (holder === null || holder === f.self) return ok(id, holder ? `${d.name}: this node holds it and pulses` : `${d.name}: not held: nobody pulses`);
  const peer = status.peers.find((p) => p.peer === holder);
  const ch = peer?.channels.find((c) => c.channel === `disk:${d.name}`);
  if (!peer || !ch) return ok(id, `${d.name}: held by ${holder}`);
  if (ch.state === 'down') return warn(id, `${d.name}: no pulse from the holder ${holder} for ${seconds(ch.silentMs)}`, `check ${holder}'s paths to ${d.name} and its vigild (vigil status there)`, { holder, state: ch.state, silentMs: ch.silentMs });
  return ok(id, `${d.name}: ${holder}'s pulse ${ch.state === 'up' ? `heard ${ch.lastHeardAgeMs === null ? 'never' : `${seconds(ch.lastHeardAgeMs)} ago`}` : ch.state}`, { holder, state: ch.state });
}

/** A network losing this share of its heartbeats (over vigild's last 10 s) is still up, and failing. */
export const LOSS_WARN = 0.05;

const lossText = (loss: number) => `${Math.round(loss * 1000) / 10}%`;

/** Each network's heartbeats with each peer: heard, round trip, loss; a peer silent on every network fails. */
export function checkNetworks(f: DoctorFacts): Check[] {
  const status = f.agent?.status;
  if (!status || !f.config) return [];
  return f.config.networks.map((net) => {
    const id = `network.${net.name}`;
    const rows = status.peers.map((p) => {
      const link = p.links.find((l) => l.network === net.name);
      const ch = p.channels.find((c) => c.channel === `net:${net.name}`);
      return {
        peer: p.peer, peerState: p.state, state: ch?.state ?? 'unknown',
        heardAgoMs: link && link.heardAgoMs >= 0 ? link.heardAgoMs : null,
        rttUs: link && link.rttUs >= 0 ? link.rttUs : null,
        loss: link?.loss ?? null,
      };
    });
    const detail = { port: net.port, peers: rows };
    const silent = rows.filter((r) => r.state !== 'up');
    const heard = (r: (typeof rows)[number]) => (r.heardAgoMs === null ? 'never heard' : `heard ${seconds(r.heardAgoMs)} ago`);
    const rtt = (r: (typeof rows)[number]) => (r.rttUs === null ? '' : `, rtt ${(r.rttUs / 1000).toFixed(2)} ms`);
    // A silent peer's round trip is its last one measured: shown as that.
    const loss = (r: (typeof rows)[number]) => (r.loss !== null && r.loss > 0 ? `, ${lossText(r.loss)} lost` : '');
    const text = (r: (typeof rows)[number]) => (r.state === 'up' ? `${r.peer} ${heard(r)}${rtt(r)}${loss(r)}` : `${r.peer} ${r.state.toUpperCase()}, last ${heard(r)}${r.rttUs === null ? '' : `, last rtt ${(r.rttUs / 1000).toFixed(2)} ms`}`);
    if (rows.length === 0) return ok(id, `${net.name}: no peers`, detail);
    const dead = silent.filter((r) => r.peerState === 'failed');
    if (dead.length) return fail(id, `${net.name}: ${rows.map(text).join('; ')}; ${dead.map((r) => r.peer).join(', ')} failed (silent on every network)`, `find out whether ${dead.map((r) => r.peer).join(', ')} is down (power, vigild) or cut off from this node`, detail);
    if (silent.length) return warn(id, `${net.name}: ${rows.map(text).join('; ')}`, `check ${net.name} between this node and ${silent.map((r) => r.peer).join(', ')}: cable, switch port, firewall (UDP ${net.port} and ${net.port + 1})`, detail);
    const lossy = rows.filter((r) => r.loss !== null && r.loss >= LOSS_WARN);
    if (lossy.length) {
      return warn(id, `${net.name}: ${rows.map(text).join('; ')}`, `${net.name} drops heartbeats between this node and ${lossy.map((r) => r.peer).join(', ')}: look for errors and drops on both ends (ip -s link), a duplex mismatch, a congested or failing switch port; it is the network to fail next`, detail);
    }
    return ok(id, `${net.name}: ${rows.map(text).join('; ')}`, detail);
  });
}

/**
 * Each peer's wall clock against this node's, as vigild estimates it (daemon/peer-clocks.ts). Replicated
 * attributes and markers merge by the wall time of their write, so a peer whose clock runs behind can
 * lose a newer write to an older one; `vigil timeline` and the switchover's service gap read both clocks.
 */
export function checkClocks(f: DoctorFacts): Check | undefined {
  const status = f.agent?.status;
  if (!status || status.peers.length === 0) return undefined;
  const rows = status.peers.map((p) => ({ peer: p.peer, offsetMs: p.clock?.offsetMs ?? null, rttMs: p.clock?.rttMs ?? null }));
  const detail = { warnAtMs: CLOCK_WARN_MS, peers: rows };
  const text = (r: (typeof rows)[number]) => (r.offsetMs === null ? `${r.peer} not measured yet` : `${r.peer} ${r.offsetMs >= 0 ? '+' : ''}${r.offsetMs} ms${r.rttMs === null ? '' : ` (±${r.rttMs} ms)`}`);
  const line = `clocks against this node's: ${rows.map(text).join('; ')}`;
  const off = rows.filter((r) => r.offsetMs !== null && Math.abs(r.offsetMs) >= CLOCK_WARN_MS);
  if (off.length) {
    return warn('clocks', line, `synchronise the clocks of this node and ${off.map((r) => r.peer).join(', ')} (chrony or systemd-timesyncd against one source): replicated attributes merge by the time of their write`, detail);
  }
  return ok('clocks', line, detail);
}

export function checkPriority(f: DoctorFacts): Check[] {
  if (!f.agent) return f.records.map(checkRecord);
  const pairs: PairStatus[] = f.agent.pairs ?? [];
  return pairs.map((p) => {
    const id = `priority.${p.tag}`;
    const line = `${p.tag} with ${p.peer}: state ${p.state}, priority ${p.priority ?? '?'} (${p.record})${p.decision ? `; ${p.decision}` : ''}`;
    if (p.priority === null) return fail(id, line, `the priority record cannot be read: see vigild's log; vigil force-start ${p.tag} once you know which node has the newest data`, p);
    if (p.state === 'X') return warn(id, line, `waiting for ${p.peer} or an operator: bring ${p.peer} up, or vigil force-start ${p.tag} if this node has the newest data`, p);
    return ok(id, line, p);
  });
}

/** A pair's record read from the store while vigild is not running: what a lone start would decide. */
function checkRecord(r: RecordFact): Check {
  const id = `priority.${r.tag}`;
  const summary = `${r.tag} with ${r.peer}: ${r.record}; started alone now: ${r.loneStart}`;
  if (r.missing) return warn(id, summary, `if this node ever ran ${r.tag}, its record was lost: start it only with vigil force-start once you know ${r.peer} is down with older data; a node never started creates it`, r);
  if (r.priority === null) return fail(id, summary, `the record cannot be read: vigil force-start ${r.tag} once you know which node has the newest data`, r);
  return ok(id, summary, r);
}

/** The power sources as this node's vigild watches them (power.status). */
export function checkPower(f: DoctorFacts): Check | undefined {
  const power = f.agent?.power;
  if (!f.config?.power) return ok('power', 'no power sources configured');
  if (!power) return undefined;
  const sources = power.sources ?? [];
  const detail = { sources };
  const text = (s: (typeof sources)[number]) => `${s.source} ${s.connected ? s.state ?? 'no state yet' : 'NOT CONNECTED'}`;
  const summary = sources.map(text).join('; ');
  const down = sources.filter((s) => s.state === 'low-battery' || s.state === 'forced-shutdown');
  if (down.length) return fail('power', summary, `${down.map((s) => s.source).join(', ')}: the UPS is about to cut the power: restore mains power now, or move the apps off this node`, detail);
  const battery = sources.filter((s) => s.state === 'on-battery');
  const lost = sources.filter((s) => !s.connected);
  if (battery.length || lost.length) {
    return warn('power', summary, [
      ...battery.map((s) => `${s.source} runs on battery: restore its mains power`),
      ...lost.map((s) => `${s.source} does not answer${s.lastError ? ` (${s.lastError})` : ''}: check its cable or upsd`),
    ].join('; '), detail);
  }
  return ok('power', summary || 'no sources', detail);
}

/** Each configured BMC: reachable, and its power state against whether the node is heard. */
export function checkBmcs(f: DoctorFacts): Check[] {
  const peers = f.agent?.status.peers;
  return f.bmcs.map((b) => {
    const id = `bmc.${b.node}`;
    const where = `${b.host}${b.port === 623 ? '' : `:${b.port}`}`;
    const detail = { host: b.host, port: b.port, power: b.power, error: b.error };
    if (b.error !== null) {
      return warn(id, `${b.node}'s BMC at ${where} cannot be asked: ${b.error}`,
        `check the BMC's network, user and password file (vigil ipmi power status --host ${b.host} --user USER --password-file FILE): until it answers, ${b.node} cannot be power-fenced`, detail);
    }
    const state = peers?.find((p) => p.peer === b.node)?.state;
    if (b.power === 'off' && b.node !== f.self) {
      return warn(id, `${b.node}'s BMC at ${where} answers: power off`, `${b.node} is off: power it on (vigil ipmi power on --host ${b.host} …) when it should rejoin`, detail);
    }
    if (b.power === 'on' && state === 'failed') {
      return warn(id, `${b.node}'s BMC at ${where} answers: power on, but ${b.node} is not heard`, `${b.node} runs but is silent: look at its console and vigild`, detail);
    }
    return ok(id, `${b.node}'s BMC at ${where} answers: power ${b.power}`, detail);
  });
}

export function checkStayOut(f: DoctorFacts): Check | undefined {
  if (!f.config) return undefined;
  const out = f.stayOut;
  if (!out) return ok('stay-out', 'no stay-out record: this node may join the cluster');
  return fail('stay-out', `this node stays out of the cluster since ${out.since || '?'} (${out.reason}${out.source ? `, from ${out.source}` : ''}): ${out.text}`,
    'once the node is fit to take work again: vigil rejoin', out);
}

/** Mounts of cluster disks on this node while no app of this node uses the disk. */
export function checkLeftoverMounts(f: DoctorFacts): Check | undefined {
  if (!f.config) return undefined;
  const status = f.agent?.status;
  const stale: { disk: string; source: string; mountPoint: string; why: string }[] = [];
  let owned = 0;
  for (const d of f.disks) {
    if (d.mounts.length === 0) continue;
    const hostedHere = status?.apps.some((a) => d.users.includes(a.tag) && a.host === f.self);
    if (hostedHere) { owned += d.mounts.length; continue; }
    const why = !status ? 'vigild is not running here' : d.users.length ? `${d.users.join(', ')} ${d.users.length === 1 ? 'is' : 'are'} not hosted here` : 'no app uses the disk';
    for (const m of d.mounts) stale.push({ disk: d.name, source: m.source, mountPoint: m.mountPoint, why });
  }
  if (stale.length) {
    return fail('leftovers.mounts', stale.map((s) => `${s.disk} mounted at ${s.mountPoint} (${s.source}) but ${s.why}`).join('; '),
      `unmount it: umount ${stale.map((s) => s.mountPoint).join(' ')} (a mount writes to the disk beside its owner)`, { stale });
  }
  return ok('leftovers.mounts', owned ? `${plural(owned, 'mount')} of cluster disks, each of an app hosted here` : 'no cluster disk mounted here', { stale });
}

/** Service addresses up on this node for apps another node hosts (or, without an agent, any). */
export function checkLeftoverAddresses(f: DoctorFacts): Check | undefined {
  if (!f.config) return undefined;
  const status = f.agent?.status;
  const up = f.addresses.filter((a) => a.up);
  const stale = up.filter((a) => !status || status.apps.find((x) => x.tag === a.tag)?.host !== f.self);
  if (stale.length) {
    const host = (tag: string) => status?.apps.find((x) => x.tag === tag)?.host;
    return fail('leftovers.addresses', stale.map((a) => `${a.address}/${a.prefixLength} of ${a.tag} is up on ${a.interface}, but ${!status ? 'vigild is not running here' : host(a.tag) ? `${a.tag} is hosted by ${host(a.tag)}` : `${a.tag} is hosted nowhere`}`).join('; '),
      `remove it: ${stale.map((a) => `ip addr del ${a.address}/${a.prefixLength} dev ${a.interface}`).join('; ')}`, { stale });
  }
  return ok('leftovers.addresses', up.length ? `${plural(up.length, 'service address')} up here, each of an app hosted here` : 'no service address of another node up here', { stale: [] });
}

/** Every check, in the order a person reads them: configuration, agent, disks, networks, records, leftovers. */
export function runChecks(f: DoctorFacts): Check[] {
  const out: Check[] = [checkConfig(f)];
  if (!f.config || !f.self) return out;
  out.push(checkAgent(f));
  for (const d of f.disks) {
    out.push(checkPaths(f, d), checkLinks(f, d));
    // Without a path nothing more can be read: the paths check's FAIL says it once.
    if (d.paths.length === 0) continue;
    out.push(checkReady(d));
    for (const c of [checkPr(f, d), checkReservation(f, d), checkDiskHeartbeat(f, d)]) if (c) out.push(c);
  }
  out.push(...checkNetworks(f));
  const clocks = checkClocks(f);
  if (clocks) out.push(clocks);
  out.push(...checkPriority(f), ...checkBmcs(f));
  for (const c of [checkPower(f), checkStayOut(f), checkLeftoverMounts(f), checkLeftoverAddresses(f)]) if (c) out.push(c);
  return out;
}

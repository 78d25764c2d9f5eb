// `vigil distress status|test|send`, `vigil power status`, `vigil rejoin`, and the out-of-the-cluster lines
// of `vigil status`: the CLI run as a process against a ControlServer answering as vigild does.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';
import { z } from 'zod';

import { formatStatus } from '../../src/cli/status-format.js';
import { ControlError } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { runVigilBatch } from '../support/vigil-batch.js';

const OUT = { since: '2026-11-24T06:10:00.000Z', reason: 'power-low-battery', source: 'nut:rack1@ups', incarnation: '17', text: 'ups.status "OB LB"' };

const DISTRESS = {
  node: 'node-a', out: null,
  sender: {
    armed: true, priority: 20, realtime: true, memoryLocked: true, fatalHandlers: true, destinations: 2, networks: 2, repeats: 3,
    sendErrors: 0, lastError: null,
    reasons: [{ code: 8, reason: 'operator-test', triggers: 1, events: 1, datagrams: 6, errors: 0, lastSentAtMs: Date.parse('2026-11-24T06:00:00.000Z'), lastSentAgoMs: 5 }],
    perNetwork: [],
  },
  received: [{ at: '2026-11-24T06:05:00.000Z', from: 'node-b', reason: 'hardware-fault', incarnation: '99', acted: true }],
  dropped: { hmac: 2, duplicate: 0 },
  distressedPeers: [{ peer: 'node-b', incarnation: '99' }],
};

const POWER = {
  node: 'node-a', configured: true, out: OUT,
  sources: [{ source: 'nut:rack1@ups', type: 'nut', connected: true, state: 'online', raw: 'OL', polls: 40, failedPolls: 0, reconnects: 0, lastError: undefined,
    last: { kind: 'online', source: 'nut:rack1@ups', at: Date.parse('2026-11-24T06:12:00.000Z'), detail: { text: 'ups.status "OL"' } } }],
  policy: [{ source: 'nut:rack1@ups', state: 'online', commsLost: false, graceLeftMs: null, deadLeftMs: null }],
  distressed: { source: 'nut:rack1@ups', reason: 'power-low-battery', agoMs: 120_000 },
  decisions: [{ at: '2026-11-24T06:10:00.000Z', action: 'distress', source: 'nut:rack1@ups', reason: 'power-low-battery', mode: 'sync', text: 'battery low' }],
};

async function fakeAgent(t: Test): Promise<{ path: string; calls: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-distress-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'ctl.sock');
  const server = new ControlServer({ path });
  const calls: string[] = [];
  let out = false;
  server
    .handle('distress.status', z.object({}), () => (calls.push('distress.status'), DISTRESS))
    .handle('distress.test', z.object({}), () => (calls.push('distress.test'), { node: 'node-a', sent: true, destinations: 2 }))
    .handle('distress.send', z.object({ reason: z.string() }), ({ reason }) => {
      calls.push(`distress.send ${reason}`);
      out = true;
      return { node: 'node-a', reason, out: OUT };
    })
    .handle('power.status', z.object({}), () => (calls.push('power.status'), POWER))
    .handle('rejoin', z.object({}), () => {
      calls.push('rejoin');
      if (!out) throw new ControlError('not_out', 'node-a is a member of the cluster: nothing to rejoin');
      out = false;
      return { node: 'node-a', was: OUT, restarting: true };
    });
  await server.start();
  t.teardown(() => server.close());
  return { path, calls };
}

t.test('distress status, test, send (confirmed only with --yes without a terminal), rejoin', async (t) => {
  const { path, calls } = await fakeAgent(t);
  const [status, test, unconfirmed, member, send, rejoin] = await runVigilBatch([
    { args: ['distress', 'status', '--socket', path] },
    { args: ['distress', 'test', '--socket', path] },
    { args: ['distress', 'send', '--socket', path] },
    { args: ['rejoin', '--socket', path] },
    { args: ['distress', 'send', '--reason', 'unknown', '--yes', '--socket', path] },
    { args: ['rejoin', '--socket', path] },
  ]);
  t.equal(status!.code, 0, status!.stderr);
  t.match(status!.stdout, /^sender: armed, SCHED_FIFO 20, memory locked, fatal-signal handlers installed, 2 destinations on 2 networks, 3 copies per event\n/);
  t.match(status!.stdout, /operator-test +1 +1 +6 +0 +2026-11-24T06:00:00.000Z/);
  t.match(status!.stdout, /2026-11-24T06:05:00.000Z {2}from node-b \(incarnation 99\): hardware-fault {2}→ failed over/);
  t.match(status!.stdout, /dropped: hmac 2\n?$/, 'only the non-zero drops');
  t.equal(test!.code, 0, test!.stderr);
  t.match(test!.stdout, /distress test sent to 2 destinations/);
  t.equal(unconfirmed!.code, 1, 'a usage error: no terminal to confirm on');
  t.match(unconfirmed!.stderr, /distress send asks for confirmation on a terminal; give --yes/);
  t.not(member!.code, 0, 'rejoin on a member is refused');
  t.match(member!.stderr, /nothing to rejoin/);
  t.equal(send!.code, 0, send!.stderr);
  t.match(send!.stdout, /distress sent \(unknown\): this node is leaving the cluster; it stays out until: vigil rejoin --socket /);
  t.equal(rejoin!.code, 0, rejoin!.stderr);
  t.match(rejoin!.stdout, /node-a: the stay-out record is removed; vigild restarts its agent/);
  t.same(calls, ['distress.status', 'distress.test', 'rejoin', 'distress.send unknown', 'rejoin'], 'nothing sent without the confirmation');
});

t.test('power status: each source, the decision, and that the node stays out', async (t) => {
  const { path } = await fakeAgent(t);
  const [power, json] = await runVigilBatch([
    { args: ['power', 'status', '--socket', path] },
    { args: ['--json', 'power', 'status', '--socket', path] },
  ]);
  t.equal(power!.code, 0, power!.stderr);
  t.match(power!.stdout, /^OUT OF THE CLUSTER since 2026-11-24T06:10:00.000Z: sent distress \(power-low-battery: ups.status "OB LB"\)\n {2}no heartbeat, no apps; bring it back with: vigil rejoin --socket /);
  t.match(power!.stdout, /\nnut:rack1@ups \(nut\): connected, state online \(OL\)\n {2}last event: online at 2026-11-24T06:12:00.000Z: ups.status "OL"\n/);
  t.match(power!.stdout, /distress decided: power-low-battery from nut:rack1@ups, 2m 0s ago/);
  t.match(power!.stdout, /2026-11-24T06:10:00.000Z {2}distress: battery low/);
  t.match(JSON.parse(json!.stdout), { configured: true, distressed: { reason: 'power-low-battery' } });
});

t.test('vigil status of a node that stays out says so first, with the command that brings it back', async (t) => {
  const text = formatStatus({ cluster: 'lab', node: 'node-a', incarnation: '17', uptimeMs: 1000, peers: [], apps: [], notices: [], out: OUT, distress: null }, { options: ' --socket /s' });
  t.match(text, /\nOUT OF THE CLUSTER since 2026-11-24T06:10:00.000Z: sent distress \(power-low-battery: ups.status "OB LB"\)\n {2}no heartbeat, no apps; bring it back with: vigil rejoin --socket \/s\n/);
  const member = formatStatus({ cluster: 'lab', node: 'node-a', incarnation: '17', peers: [], apps: [], notices: [], out: null, distress: { armed: true, realtime: false } });
  t.notMatch(member, /OUT OF THE CLUSTER/);
  t.match(member, /distress sender: armed \(normal priority\)/);
});

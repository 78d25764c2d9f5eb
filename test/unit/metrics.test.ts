// The Prometheus endpoint against a real HTTP server on 127.0.0.1:0, fed a canned status snapshot.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { metricsRegistry, startMetrics } from '../../src/daemon/metrics.js';
import type { NoticeStatus, StatusLike } from '../../src/daemon/status.js';
import { packageRoot } from '../../src/util/package-root.js';

const noDrops = {
  short: 0, magic: 0, type: 0, length: 0, cluster: 0, hmac: 0, unknownSender: 0, replay: 0, staleIncarnation: 0, misdirected: 0,
};

function canned(): StatusLike {
  return {
    cluster: 'lab', node: 'alpha', incarnation: '1700000000000', uptimeMs: 12_500,
    peers: [
      {
        peer: 'beta', state: 'alive', forMs: 1000,
        channels: [
          { channel: 'net:public', state: 'up', lastHeardAgeMs: 40, silentMs: 40 },
          { channel: 'net:private', state: 'down', lastHeardAgeMs: null, silentMs: 900 },
        ],
        links: [
          { network: 'public', heardAgoMs: 40, ackedAgoMs: 45, rttUs: 250, loss: 0.02 },
          { network: 'private', heardAgoMs: -1, ackedAgoMs: -1, rttUs: -1, loss: null },
        ],
      },
      { peer: 'gamma', state: 'failed', forMs: 5000, channels: [], links: [] },
    ],
    heartbeat: { sent: 1234, received: 1200, sendErrors: 2, dropped: { ...noDrops, hmac: 3, replay: 1 }, realtime: true, leaseLapsed: 0 },
    messages: { sent: 10, received: 9, dropped: { decode: 4 } },
    apps: [
      {
        tag: 'db', type: 'cluster-capable', host: 'alpha', primary: 'beta', backup: 'alpha', phase: 'failed-over', faults: ['beta'],
        autoRecover: false, version: 7, here: { app: 'up', resources: 'up', pending: null, halted: null, gated: false, pid: 4242 },
        prompt: null, resources: ['disk shared0'],
      },
      {
        tag: 'web', type: 'cluster-aware', host: null, primary: 'alpha', backup: 'beta', phase: 'normal', faults: [],
        autoRecover: true, version: 3, here: undefined, prompt: null, resources: [],
      },
    ],
    notices: [
      { at: '2024-01-01T00:00:00.000Z', tag: 'db', notice: 'primary-failed', message: 'beta failed' },
      { at: '2024-01-01T00:00:01.000Z', tag: 'db', notice: 'failover-complete', message: 'db runs on alpha' },
    ],
    ownStallMs: 1500,
  };
}

const logged: { level: string; message: string }[] = [];
const log = {
  info: (_f: object, message: string) => void logged.push({ level: 'info', message }),
  warn: (_f: object, message: string) => void logged.push({ level: 'warn', message }),
  error: (_f: object, message: string) => void logged.push({ level: 'error', message }),
};

/** The value of the sample whose line starts with `series` (name and labels, exactly as printed). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('GET /metrics serves the status snapshot taken at scrape time', async (t) => {
  let status = canned();
  let calls = 0;
  const server = await startMetrics({ host: '127.0.0.1', port: 0 }, () => (calls++, status), log);
  t.teardown(() => server.close());
  t.ok(server.port > 0, 'port 0 binds a free port and reports it');
  t.equal(calls, 0, 'nothing is read before a scrape');

  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  t.equal(calls, 1, 'one status() per scrape, shared by every collector');

  const expect: [string, number][] = [
    ['vigil_uptime_seconds', 12.5],
    ['vigil_peer_up{peer="beta"}', 1],
    ['vigil_peer_up{peer="gamma"}', 0],
    ['vigil_peer_state{peer="beta",state="alive"}', 1],
    ['vigil_peer_state{peer="beta",state="failed"}', 0],
    ['vigil_peer_state{peer="gamma",state="failed"}', 1],
    ['vigil_peer_state{peer="gamma",state="unknown"}', 0],
    ['vigil_channel_up{peer="beta",channel="net:public"}', 1],
    ['vigil_channel_up{peer="beta",channel="net:private"}', 0],
    ['vigil_channel_heard_age_seconds{peer="beta",network="public"}', 0.04],
    ['vigil_channel_rtt_seconds{peer="beta",network="public"}', 0.00025],
    ['vigil_channel_loss_ratio{peer="beta",network="public"}', 0.02],
    ['vigil_own_stall_seconds_total', 1.5],
    ['vigil_heartbeats_sent_total', 1234],
    ['vigil_heartbeats_received_total', 1200],
    ['vigil_heartbeat_send_errors_total', 2],
    ['vigil_heartbeat_realtime', 1],
    ['vigil_heartbeat_drops_total{reason="hmac"}', 3],
    ['vigil_heartbeat_drops_total{reason="replay"}', 1],
    ['vigil_heartbeat_drops_total{reason="short"}', 0],
    ['vigil_messages_sent_total', 10],
    ['vigil_messages_dropped_total{reason="decode"}', 4],
    ['vigil_app_hosted_here{tag="db"}', 1],
    ['vigil_app_hosted_here{tag="web"}', 0],
    ['vigil_app_running{tag="db"}', 1],
    ['vigil_app_running{tag="web"}', 0],
    ['vigil_app_info{tag="db",host="alpha",primary="beta",backup="alpha",phase="failed-over"}', 1],
    ['vigil_app_info{tag="web",host="",primary="alpha",backup="beta",phase="normal"}', 1],
    ['vigil_app_faulted{tag="db",node="beta"}', 1],
    ['vigil_app_faulted{tag="db",node="alpha"}', 0],
    ['vigil_app_faulted{tag="web",node="alpha"}', 0],
    ['vigil_notices_total{notice="failover-complete"}', 1],
    ['vigil_notices_total{notice="primary-failed"}', 1],
    ['vigil_failovers_total', 1],
    ['vigil_failbacks_total', 0],
  ];
  for (const [series, v] of expect) t.equal(value(text, series), v, series);
  t.notOk(/network="private"/.test(text), 'a network never heard has no age and no rtt sample');
  t.match(text, /# TYPE vigil_heartbeats_sent_total counter/);
  t.match(text, /# TYPE vigil_peer_up gauge/);
  t.match(text, /# HELP vigil_app_info /);
  t.match(text, /^process_cpu_user_seconds_total /m, 'default process metrics, in the private registry');
  t.match(text, /^nodejs_heap_size_used_bytes /m);

  // The next scrape reads the new snapshot; notices are counted once each as the list moves on.
  status = canned();
  status.peers[0]!.state = 'failed';
  status.heartbeat!.sent = 1300;
  status.notices = [
    ...status.notices.slice(1),
    { at: '2024-01-01T00:10:00.000Z', tag: 'db', notice: 'failback-complete', message: 'db runs on beta again' },
  ];
  const text2 = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  t.equal(value(text2, 'vigil_peer_up{peer="beta"}'), 0);
  t.equal(value(text2, 'vigil_heartbeats_sent_total'), 1300);
  t.equal(value(text2, 'vigil_failovers_total'), 1, 'a notice already counted is not counted again');
  t.equal(value(text2, 'vigil_failbacks_total'), 1);
  t.equal(value(text2, 'vigil_notices_total{notice="primary-failed"}'), 1, 'a notice that left the list stays counted');
});

t.test('the agent\'s own notice counts win; absent parts read as 0 or no samples', async (t) => {
  const status = canned();
  status.noticeCounts = { 'failover-complete': 4, 'failback-complete': 2 };
  status.heartbeat = undefined;
  delete status.ownStallMs;
  const { scrape } = metricsRegistry(() => status);
  const text = await scrape();
  t.equal(value(text, 'vigil_failovers_total'), 4);
  t.equal(value(text, 'vigil_failbacks_total'), 2);
  t.equal(value(text, 'vigil_notices_total{notice="primary-failed"}'), undefined, 'the list is not read');
  // An unlabelled counter always has its one sample (prom-client's reset); a labelled one has none.
  t.equal(value(text, 'vigil_heartbeats_sent_total'), 0, 'no heartbeat engine yet: 0');
  t.notOk(/^vigil_heartbeat_drops_total\{/m.test(text), 'no drop reasons without the engine');
  t.equal(value(text, 'vigil_own_stall_seconds_total'), 0);
});

t.test('other paths are 404; a status that throws is 503; close stops the server', async (t) => {
  let fail = false;
  const server = await startMetrics({ host: '127.0.0.1', port: 0 }, () => {
    if (fail) throw new Error('agent not started');
    return canned();
  }, log);
  const base = `http://127.0.0.1:${server.port}`;
  for (const path of ['/', '/metricsx', '/favicon.ico']) {
    const res = await fetch(base + path);
    t.equal(res.status, 404, path);
    await res.text();
  }
  const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
  t.equal(post.status, 404, 'POST /metrics');
  await post.text();
  const query = await fetch(`${base}/metrics?x=1`);
  t.equal(query.status, 200, 'a query string is ignored');
  await query.text();

  fail = true;
  const bad = await fetch(`${base}/metrics`);
  t.equal(bad.status, 503);
  t.match(await bad.text(), /agent not started/);
  t.ok(logged.some((l) => l.level === 'warn' && /scrape failed/.test(l.message)));

  // A keep-alive connection (fetch pools them) must not hold close() up.
  await server.close();
  await t.rejects(fetch(`${base}/metrics`), 'nothing listens after close');
});

t.test('a port in use rejects', async (t) => {
  const a = await startMetrics({ host: '127.0.0.1', port: 0 }, canned, log);
  t.teardown(() => a.close());
  await t.rejects(startMetrics({ host: '127.0.0.1', port: a.port }, canned, log), { code: 'EADDRINUSE' });
});

t.test('distress: out of the cluster, the sender armed, distress acted on', async (t) => {
  const member = canned();
  member.out = null;
  member.distress = { armed: true, realtime: true };
  member.noticeCounts = { 'peer-distress': 2 };
  let text = await metricsRegistry(() => member).scrape();
  t.equal(value(text, 'vigil_out_of_cluster'), 0);
  t.equal(value(text, 'vigil_distress_armed'), 1);
  t.equal(value(text, 'vigil_distress_received_total'), 2);
  const out = canned();
  out.out = { since: '2026-11-24T06:00:00.000Z', reason: 'power-low-battery', source: 'ups', text: 'battery low' };
  out.distress = null;
  text = await metricsRegistry(() => out).scrape();
  t.equal(value(text, 'vigil_out_of_cluster'), 1, 'out: 1');
  t.equal(value(text, 'vigil_distress_armed'), 0, 'no sender while out');
});

t.test('what an alert needs: channel states, the last failover by phase, fences, disk holders, power sources, the watchdog', async (t) => {
  const st = canned();
  st.peers[0]!.channels.push({ channel: 'disk:shared0', state: 'idle', lastHeardAgeMs: null, silentMs: 0 });
  st.noticeCounts = { 'distress-sent': 1 };
  st.failovers = [{ tag: 'db', from: 'beta', completedAt: 1_700_000_000_500, phases: { detection: 1500, fence: 820.5, address: 12, app_start: 30, total: 2400 } }];
  st.powerFence = [
    { node: 'beta', counts: { off: 1, failed: 2, moot: 0 }, inProgress: false, keptOff: true },
    { node: 'gamma', counts: { off: 0, failed: 0, moot: 0 }, inProgress: true, keptOff: false },
  ];
  st.diskMetrics = [
    { disk: 'shared0', readable: true, holder: 'alpha', expected: 'alpha', fenced: false, preempts: 2, resets: 0 },
    { disk: 'shared1', readable: true, holder: 'beta', expected: 'alpha', fenced: true, preempts: 0, resets: 0 },
    { disk: 'shared2', readable: true, holder: 'another initiator', expected: 'beta', fenced: false, preempts: 0, resets: 3 },
    { disk: 'shared3', readable: true, holder: null, expected: null, fenced: false, preempts: 0, resets: 0 },
    { disk: 'shared4', readable: false, holder: null, expected: 'alpha', fenced: false, preempts: 0, resets: 0 },
  ];
  st.power = [{ source: 'ups1', connected: true, state: 'on-battery' }, { source: 'ups2', connected: false, state: null }];
  st.watchdog = {
    path: '/dev/ipmi0', kind: 'ipmi', timeoutMs: 20_000, armed: true, resets: false, countdown: { counts: false, why: 'its countdown is stopped' },
    tickles: 50, withheld: 2, tickleErrors: 1,
  };
  st.view = { valid: false, bound: true, why: 'hears 1 of 3 nodes', watchdogBoundMs: null, peers: {} };
  const text = await metricsRegistry(async () => st).scrape();
  const expect: [string, number][] = [
    ['vigil_channel_state{peer="beta",channel="net:public",state="up"}', 1],
    ['vigil_channel_state{peer="beta",channel="net:private",state="down"}', 1],
    ['vigil_channel_state{peer="beta",channel="net:private",state="up"}', 0],
    ['vigil_channel_state{peer="beta",channel="disk:shared0",state="idle"}', 1],
    ['vigil_channel_state{peer="beta",channel="disk:shared0",state="down"}', 0],
    ['vigil_distress_sent_total', 1],
    ['vigil_last_failover_seconds{tag="db",phase="detection"}', 1.5],
    ['vigil_last_failover_seconds{tag="db",phase="fence"}', 0.8205],
    ['vigil_last_failover_seconds{tag="db",phase="address"}', 0.012],
    ['vigil_last_failover_seconds{tag="db",phase="app_start"}', 0.03],
    ['vigil_last_failover_seconds{tag="db",phase="total"}', 2.4],
    ['vigil_last_failover_timestamp_seconds{tag="db"}', 1_700_000_000.5],
    ['vigil_power_fences_total{peer="beta",result="off"}', 1],
    ['vigil_power_fences_total{peer="beta",result="failed"}', 2],
    ['vigil_power_fences_total{peer="gamma",result="moot"}', 0],
    ['vigil_power_fence_in_progress{peer="gamma"}', 1],
    ['vigil_peer_fenced_off{peer="beta"}', 1],
    ['vigil_peer_fenced_off{peer="gamma"}', 0],
    ['vigil_disk_reservation_holder{disk="shared0",holder="alpha"}', 1],
    ['vigil_disk_reservation_holder{disk="shared2",holder="another initiator"}', 1],
    ['vigil_disk_reservation_holder{disk="shared3",holder=""}', 1],
    ['vigil_disk_reservation_unexpected{disk="shared0"}', 0],
    ['vigil_disk_reservation_unexpected{disk="shared1"}', 1],
    ['vigil_disk_reservation_unexpected{disk="shared2"}', 0],
    ['vigil_disk_reservation_unexpected{disk="shared3"}', 0],
    ['vigil_disk_readable{disk="shared4"}', 0],
    ['vigil_disk_fenced{disk="shared1"}', 1],
    ['vigil_disk_preempts_total{disk="shared0"}', 2],
    ['vigil_disk_resets_total{disk="shared2"}', 3],
    ['vigil_power_source_state{source="ups1",state="on-battery"}', 1],
    ['vigil_power_source_state{source="ups1",state="online"}', 0],
    ['vigil_power_source_connected{source="ups2"}', 0],
    ['vigil_watchdog_armed{kind="ipmi"}', 1],
    ['vigil_watchdog_resets_node{kind="ipmi"}', 0],
    ['vigil_watchdog_countdown_running{kind="ipmi"}', 0],
    ['vigil_watchdog_timeout_seconds{kind="ipmi"}', 20],
    ['vigil_watchdog_tickles_total{kind="ipmi"}', 50],
    ['vigil_watchdog_tickles_withheld_total{kind="ipmi"}', 2],
    ['vigil_watchdog_tickle_errors_total{kind="ipmi"}', 1],
    ['vigil_view_valid', 0],
  ];
  for (const [series, v] of expect) t.equal(value(text, series), v, series);
  t.notOk(/^vigil_last_failover_seconds\{tag="db",phase="mount"\}/m.test(text), 'a phase the failover did not go through has no sample');
  t.notOk(/^vigil_disk_reservation_holder\{disk="shared4"/m.test(text), 'an unreadable disk names no holder');
  t.notOk(/^vigil_disk_reservation_unexpected\{disk="shared4"/m.test(text), 'nor a judgement of it');
  t.notOk(/^vigil_power_source_state\{source="ups2"/m.test(text), 'a source that never answered has no state');

  // A node without watchdog, power sources, BMCs or disks: those metrics are declared, with no samples.
  const bare = await metricsRegistry(canned).scrape();
  for (const name of ['vigil_watchdog_armed', 'vigil_watchdog_resets_node', 'vigil_power_source_state', 'vigil_disk_reservation_holder', 'vigil_power_fences_total', 'vigil_last_failover_seconds']) {
    t.match(bare, new RegExp(`^# TYPE ${name} `, 'm'), `${name} declared`);
    t.notOk(new RegExp(`^${name}[ {]`, 'm').test(bare), `${name} without samples`);
  }
});

t.test("docs/cluster.md's table names every vigil metric the endpoint declares, with its type and labels, and no other", async (t) => {
  const doc = readFileSync(join(packageRoot(), 'docs/cluster.md'), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `(vigil_[a-z0-9_]+)` \| (\w+) \|([^|]*)\|/gm)].map((m) => [m[1]!, { type: m[2]!, labels: m[3]!.trim() }]));
  const { registry } = metricsRegistry(canned);
  const declared = registry.getMetricsAsArray().filter((m) => m.name.startsWith('vigil_'));
  for (const m of declared) {
    const row = rows.get(m.name);
    t.ok(row, `${m.name} documented`);
    if (!row) continue;
    t.equal(row.type, m.type, `${m.name}: type`);
    t.equal(row.labels, ((m as unknown as { labelNames?: string[] }).labelNames ?? []).join(', '), `${m.name}: labels`);
  }
  t.same([...rows.keys()].filter((name) => !declared.some((m) => m.name === name)), [], 'no documented metric that is not declared');
});

t.test('rejuvenation: each node\'s state in the available-server list, its last rejuvenation, and a switchover\'s service gap', async (t) => {
  const st = canned();
  st.rejuvenation = {
    auto: true, mode: 'active-standby', ladder: ['apps'],
    nodes: [
      { node: 'alpha', seq: 1, writtenBy: 'alpha', role: 'spare', state: 'available', since: 0,
        rejuvenation: { startedAt: 1_000_000, by: 'aging', reason: 'x', moved: [], steps: [], endedAt: 1_090_000, outcome: 'spare' } },
      { node: 'beta', seq: 1, writtenBy: 'beta', role: 'primary', state: 'probation', since: 0 },
    ],
  };
  st.apps[0]!.switchover = { from: 'alpha', to: 'beta', by: 'alpha', requestedAt: 1, fromPhase: 'normal', appStoppedAt: 10, appStartedAt: 236, gapMs: 226 };
  const text = await metricsRegistry(() => st).scrape();
  t.equal(value(text, 'vigil_node_list_state{node="beta",state="probation"}'), 1);
  t.equal(value(text, 'vigil_node_list_state{node="beta",state="available"}'), 0);
  t.equal(value(text, 'vigil_rejuvenation_last_end_timestamp_seconds{node="alpha",outcome="spare"}'), 1090);
  t.equal(value(text, 'vigil_rejuvenation_last_duration_seconds{node="alpha",outcome="spare"}'), 90);
  t.notOk(/vigil_rejuvenation_last_duration_seconds\{node="beta"/.test(text), 'none for a node not rejuvenated yet');
  t.equal(value(text, `vigil_switchover_gap_seconds{tag="${st.apps[0]!.tag}",from="alpha",to="beta"}`), 0.226);
});

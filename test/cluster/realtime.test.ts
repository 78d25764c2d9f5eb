// The heartbeat thread's real-time scheduling, seen from the kernel: a vigild started with its default
// --heartbeat-priority (10) has exactly one thread at SCHED_FIFO 10, the one blocked in ppoll (the native
// heartbeat engine; Node's own threads wait in epoll_pwait or futex), the armed distress sender's thread at
// SCHED_FIFO 20 (distress.priority), and every other thread, and the app it starts, at SCHED_OTHER. When the kernel refuses (RLIMIT_RTPRIO 0 and no CAP_SYS_NICE) the agent runs
// on, logs the warning and says "normal priority" in its status. The other cluster tests run agents with
// --heartbeat-priority 0; these two set it themselves.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import t from 'tap';

import { packageRoot } from '../../src/util/package-root.js';
import { createCluster, until, type Status, type TestCluster } from '../support/cluster.js';

const SCHED_OTHER = 0;
const SCHED_FIFO = 1;
/** x86_64 syscall numbers, as the first field of /proc/<pid>/task/<tid>/syscall shows them. */
const SYSCALLS: Record<string, string> = { 7: 'poll', 202: 'futex', 232: 'epoll_wait', 271: 'ppoll', 281: 'epoll_pwait' };
const CAP_SYS_NICE = 23n;

interface Thread { tid: number; comm: string; rtPriority: number; policy: number; syscall: string }

/** One thread's stat fields 40 (rt_priority) and 41 (policy), and the system call it is blocked in. */
function thread(pid: number, tid: number): Thread {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const close = stat.lastIndexOf(')');
  // Fields from 3 on follow the parenthesised comm, which may hold spaces.
  const fields = stat.slice(close + 2).trim().split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  const raw = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').trim().split(' ')[0] ?? '?';
  return { tid, comm: stat.slice(stat.indexOf('(') + 1, close), rtPriority: field(40), policy: field(41), syscall: SYSCALLS[raw] ?? raw };
}

function threads(pid: number): Thread[] {
  return readdirSync(`/proc/${pid}/task`).map(Number).sort((x, y) => x - y).map((tid) => thread(pid, tid));
}

/** The thread blocked in ppoll: the heartbeat engine's. Sampled a few times, as it may be running at a sample. */
async function heartbeatThread(pid: number): Promise<Thread> {
  return until('a thread of vigild in ppoll', async () => {
    const inPpoll = threads(pid).filter((x) => x.syscall === 'ppoll');
    return inPpoll.length === 1 ? inPpoll[0] : undefined;
  }, 5000, 20);
}

const describe = (ts: Thread[]) => ts.map((x) => `${x.tid} ${x.comm} policy ${x.policy} rt_priority ${x.rtPriority} in ${x.syscall}`).join('; ');

async function vigilStatus(c: TestCluster, node: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(packageRoot(), 'dist/src/cli/vigil.js'), 'status', '--socket', c.socket(node)]);
  return stdout;
}

async function alive(c: TestCluster): Promise<Status> {
  return until('a and b alive to each other', async () => {
    const [sa, sb] = [await c.status('a'), await c.status('b')];
    const up = (s: Status, p: string) => s.peers.find((x) => x.peer === p)?.state === 'alive';
    return up(sa, 'b') && up(sb, 'a') ? sa : undefined;
  });
}

t.test('the default priority: exactly the heartbeat thread runs SCHED_FIFO 10 and the distress sender 20; the others and the app do not', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  const agent = c.start('a', { heartbeatPriority: null }); // no flag: vigild's default
  c.start('b');
  const pid = agent.pid!;
  const sa = await alive(c);
  t.equal(sa.heartbeat?.realtime, true, 'vigil status --json: heartbeat.realtime is true');
  t.match(await vigilStatus(c, 'a'), /^heartbeats: sent \d+, received \d+[^\n]* \(SCHED_FIFO\)$/m, 'vigil status says SCHED_FIFO');

  const hb = await heartbeatThread(pid);
  const all = threads(pid);
  t.comment(`vigild ${pid}: ${describe(all)}`);
  t.equal(hb.policy, SCHED_FIFO, `the heartbeat thread (${hb.tid}, in ppoll) has policy SCHED_FIFO`);
  t.equal(hb.rtPriority, 10, 'at rt_priority 10');
  t.not(hb.tid, pid, 'it is not the main thread');
  // The armed distress sender (docs/distress.md) has its own thread, above the heartbeat's (distress.priority 20).
  const distress = all.filter((x) => x.comm === 'vigil-distress');
  t.match(distress, [{ policy: SCHED_FIFO, rtPriority: 20 }], 'the distress sender\'s thread runs SCHED_FIFO 20');
  const others = all.filter((x) => x.tid !== hb.tid && x.comm !== 'vigil-distress');
  t.ok(others.length >= 2, `Node's own threads are there too (${others.length})`);
  t.same(others.filter((x) => x.policy !== SCHED_OTHER || x.rtPriority !== 0).map((x) => x.tid), [], 'every other thread is SCHED_OTHER, rt_priority 0');

  const web = await until('a runs web', async () => (await c.status('a')).apps.find((x) => x.tag === 'web')?.here?.pid ?? undefined);
  const app = threads(web);
  t.same(app.filter((x) => x.policy !== SCHED_OTHER).map((x) => x.tid), [], `the app (${web}, forked from the event loop) runs SCHED_OTHER in all its ${app.length} threads`);

  await sleep(300);
  t.equal(thread(pid, hb.tid).policy, SCHED_FIFO, 'still SCHED_FIFO once the peers talk');
  t.notMatch(c.log('a'), /SCHED_FIFO refused/, 'no warning logged');
});

t.test('refused by the kernel (RLIMIT_RTPRIO 0, no CAP_SYS_NICE): the agent runs at normal priority, warns and says so', async (t) => {
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true }]);
  const agent = c.start('a', {
    heartbeatPriority: null,
    // Root keeps CAP_SYS_NICE unless it leaves the bounding and inheritable sets (root's permitted set is
    // rebuilt from them at execve); either alone (the rlimit, or the capability) would not be refused.
    wrap: ['prlimit', '--rtprio=0', '--', 'setpriv', '--inh-caps=-sys_nice', '--bounding-set=-sys_nice', '--'],
  });
  c.start('b');
  const pid = agent.pid!;
  await alive(c);
  const proc = readFileSync(`/proc/${pid}/status`, 'utf8');
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(proc)?.[1] ?? '0'}`);
  t.equal((capEff >> CAP_SYS_NICE) & 1n, 0n, 'vigild runs without CAP_SYS_NICE');
  t.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), /^Max realtime priority\s+0\s+0\s*$/m, 'and with RLIMIT_RTPRIO 0');

  const warning = c.log('a').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; errno?: number })
    .find((l) => /SCHED_FIFO refused/.test(l.msg));
  t.match(warning, { level: 40, errno: 1, msg: 'heartbeat thread: SCHED_FIFO refused, running at normal priority' }, 'a JSON warning (pino level 40) with errno 1, EPERM');

  const sa = await c.status('a');
  t.equal(sa.heartbeat?.realtime, false, 'vigil status --json: heartbeat.realtime is false');
  t.match(await vigilStatus(c, 'a'), /^heartbeats: sent \d+, received \d+[^\n]* \(normal priority\)$/m, 'vigil status says normal priority');

  const hb = await heartbeatThread(pid);
  const all = threads(pid);
  t.comment(`vigild ${pid}: ${describe(all)}`);
  t.same(all.filter((x) => x.policy !== SCHED_OTHER || x.rtPriority !== 0).map((x) => x.tid), [], `every thread, the heartbeat thread (${hb.tid}) and the distress sender's included, is SCHED_OTHER`);
  t.ok(c.log('a').includes('distress thread: SCHED_FIFO 20 refused (errno 1)'), 'the distress sender warns too');
  t.match((await c.request('a', 'distress.status')) as object, { sender: { armed: true, realtime: false } }, 'armed, at normal priority');
  t.ok((sa.heartbeat?.sent ?? 0) > 0 && (sa.heartbeat?.received ?? 0) > 0, 'and heartbeats flow both ways');
  await until('a runs web', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 15_000);
  t.pass('the agent works: a serves web at the VIP');
});

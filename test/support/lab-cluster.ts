// Two agents in the lab guest on the shared LIO unit (each in its own network namespaces and on its own
// tcm_loop nexus), one app `web` a→b that owns the disk, mounts its ext4 file system and serves a virtual
// IP: started, heard on the disk, settled. The lab tests of failover (test/lab/cluster.test.ts) and of the
// planned switchover (test/lab/switchover.test.ts) both begin here.
import type { ChildProcess } from 'node:child_process';

import { createCluster, logAndServe, settled, until, type Status, type TestCluster } from './cluster.js';
import { lab, prepareSharedUnit } from './lab.js';

/** Under TCG the agents' JavaScript runs ~30× slower than on hardware: wider margins than the defaults. */
export const LAB_TIMING = { heartbeatIntervalMs: 200, failAfterMs: 2000, diskHeartbeatIntervalMs: 400, recoverAfterMs: 2000, failbackDwellMs: 60_000 };

export interface DiskStatus { disk: string; holder: string | null; registered: string[]; fenced: boolean }
export const disks = (s: Status) => (s as unknown as { disks: DiskStatus[] }).disks;
export const peer = (s: Status, name: string) => s.peers.find((p) => p.peer === name);

/** `extra`: more configuration lines (e.g. metrics). Resolves once a serves the VIP and both are settled. */
export async function startSharedDiskCluster(t: { teardown(fn: () => unknown): void }, extra?: () => string[]): Promise<{ c: TestCluster; agents: Record<'a' | 'b', ChildProcess> }> {
  await prepareSharedUnit();
  const c = await createCluster(t, ['a', 'b'], [{ tag: 'web', primary: 'a', backup: 'b', vip: true, disk: true, mount: true, command: logAndServe }],
    { timing: LAB_TIMING, disk: { identity: lab.sharedId, paths: { a: lab.a, b: lab.b }, preemptAndAbort: false }, ...(extra ? { extra } : {}) });
  const agents = { a: c.start('a'), b: c.start('b') };
  await until('a serves the VIP', async () => ((await c.probe(c.vip())) === 'a' ? true : undefined), 120_000, 500);
  await until('both nodes heard on the disk', async () => {
    const sb = await c.status('b');
    return peer(sb, 'a')?.channels.find((x) => x.channel === 'disk:shared0')?.state === 'up' ? true : undefined;
  }, 60_000, 500);
  await settled(c, ['a', 'b'], 120_000);
  return { c, agents };
}

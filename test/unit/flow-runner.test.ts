// The flow runner's app.ready waiters (src/daemon/flow-runner.ts): bounded per app, and dropped with the
// connection that asked, so a client that keeps asking, or keeps reconnecting, cannot grow the agent.
import t from 'tap';

import { parseConfig } from '../../src/config/load.js';
import type { ControlConnection } from '../../src/control/server.js';
import { FailoverTimes } from '../../src/daemon/failover-times.js';
import { FlowRunner, MAX_READY_WAITERS } from '../../src/daemon/flow-runner.js';
import { ClusterDb } from '../../src/db/database.js';
import { app } from '../support/flow-sim.js';

const config = parseConfig(`
cluster: unit
keyFile: /etc/vigil/cluster.key
networks: [ { name: lan1, port: 7400 } ]
nodes:
  - { name: p, id: 1, addresses: { lan1: 10.1.0.1 } }
  - { name: b, id: 2, addresses: { lan1: 10.1.0.2 } }
`, '/etc/vigil/cluster.yaml');

/** A runner on p whose flows never run (stopped): the app is never up, so every ready() waits. */
function onP() {
  const db = new ClusterDb();
  const o = db.upsert(app('CA-1', 'p', 'b', { type: 'cluster-aware' }), 'p', 0);
  const runner = new FlowRunner({
    config, self: config.nodes[0]!, log: { info() {}, warn() {}, error() {}, debug() {} } as never, notices: { add() {} } as never,
    failoverTimes: new FailoverTimes(), replication: { db } as never, pidFiles: {} as never, appOutput: 'ignore', resources: () => ({}) as never,
    lastActive: () => ({ isOpen: () => false, has: () => true }) as never, peerStates: () => [], declaredFailed: () => false,
    isAlive: () => true, isOut: () => false, isDistressed: () => false, distressLeftAppsRunning: () => false, isStopped: () => true, staleSince: () => undefined,
    powerFence: { canFence: () => false } as never, selfFence: { inMinority: () => false, lostQuorum: () => false, fencesItself: () => false, selfFencedInMs: () => undefined },
  });
  return { runner, o };
}

/** A connection that can be closed by the test. */
function connection(): ControlConnection & { closeNow(): void } {
  const listeners: (() => void)[] = [];
  return { onClose: (fn: () => void) => listeners.push(fn), closeNow: () => { for (const fn of listeners.splice(0)) fn(); } } as never;
}

t.test('an app has at most MAX_READY_WAITERS app.ready requests waiting; one more is refused as busy', async (t) => {
  const { runner, o } = onP();
  for (let i = 0; i < MAX_READY_WAITERS; i++) void runner.ready(o, connection());
  await t.rejects(runner.ready(o, connection()), { code: 'busy' });
});

t.test('a waiter leaves with its connection: a client that reconnects and asks again does not accumulate', async (t) => {
  const { runner, o } = onP();
  for (let i = 0; i < 3 * MAX_READY_WAITERS; i++) {
    const c = connection();
    void runner.ready(o, c);
    c.closeNow();
  }
  const c = connection();
  const waiting = runner.ready(o, c);
  t.equal(runner.flowFor('CA-1').readyWaiters.length, 1, 'only the open connection\'s waiter is held');
  c.closeNow();
  t.equal(runner.flowFor('CA-1').readyWaiters.length, 0);
  void waiting;
});

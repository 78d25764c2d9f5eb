// Power fencing (src/daemon/power-fence.ts) against a real BMC, ipmi_sim: "off" is confirmed by status, a
// failed or unconfirmed fence is an error (never "assume fenced"), the lower id wins a race, and the
// takeovers of several apps share one fence.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { DEFAULT_FENCING, type FencingConfig, type NodeConfig } from '../../src/config/schema.js';
import { FenceFailedError, FenceMootError, PowerFence, type PowerFenceDeps } from '../../src/daemon/power-fence.js';
import { BMC_PASSWORD, BMC_USER, IpmiSim, ipmiSimUnavailable } from '../support/ipmi-sim.js';
import { TestBmc } from '../support/test-bmc.js';

const quiet = { info() {}, warn() {}, error() {} };

if (ipmiSimUnavailable()) {
  t.fail(`ipmi_sim cannot run here: ${ipmiSimUnavailable()}`);
} else {
  const sim = await IpmiSim.start();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-fence-'));
  t.teardown(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${BMC_PASSWORD}\n`, { mode: 0o600 });
  const wrongFile = join(dir, 'wrong');
  await writeFile(wrongFile, 'nope\n', { mode: 0o600 });

  const node = (name: string, id: number, bmc?: Partial<NonNullable<NodeConfig['bmc']>>): NodeConfig => ({
    name, id, addresses: {}, reservationKey: undefined,
    bmc: bmc && { host: sim.address, port: sim.port, user: BMC_USER, passwordFile, cipherSuite: 3, kgFile: undefined, ...bmc },
  });
  const fence = (o: { selfId?: number; target?: Partial<NonNullable<NodeConfig['bmc']>> | null; alive?: () => boolean; sleep?: PowerFenceDeps['sleep']; fencing?: Partial<FencingConfig> } = {}) => {
    const self = node('a', o.selfId ?? 1);
    const b = o.target === null ? node('b', 2) : node('b', 2, o.target ?? {});
    return new PowerFence({
      self, nodes: [self, b], fencing: { ...DEFAULT_FENCING, requestTimeoutMs: 500, confirmTimeoutMs: 1000, ...o.fencing },
      isAlive: o.alive ?? (() => false), log: quiet, ...(o.sleep ? { sleep: o.sleep } : {}),
    });
  };
  const reset = async () => {
    await sim.setPower(true);
    await rm(join(sim.dir, 'actions'), { force: true });
    await rm(join(sim.dir, 'on-power-off'), { force: true });
  };

  t.test('a fence powers the node off and returns once the BMC reports off; a second is answered from that', async (t) => {
    await reset();
    const f = fence();
    const r = await f.fence('b', 'test');
    t.equal(r.node, 'b');
    t.equal(await sim.power(), 'off');
    t.same(await sim.actions(), ['power 0']);
    t.equal((await f.fence('b', 'again')).at, r.at, 'the same record');
    t.same(await sim.actions(), ['power 0'], 'nothing more sent');
  });

  t.test('fencing.action reboot: the node is confirmed off, then powered on again', async (t) => {
    await reset();
    await fence({ fencing: { action: 'reboot' } }).fence('b', 'test');
    t.same(await sim.actions(), ['power 0', 'power 1'], 'off, then on');
    t.equal(await sim.power(), 'on');
  });

  t.test('a node fenced off stays out of the quorum only while its BMC says off: on again, or silent, it counts at once', async (t) => {
    await reset();
    let now = 1000;
    let alive = false;
    const f = fence({ alive: () => alive });
    t.same(f.keptOffNodes(now, 6000), [], 'nothing fenced yet');
    await f.fence('b', 'test');
    const fencedAt = performance.now();
    t.same(f.keptOffNodes(fencedAt, 6000), ['b'], 'confirmed off');
    t.same(f.keptOffNodes(fencedAt + 7000, 6000), [], 'an answer holds 6 s');
    await f.recheckKeptOff(() => now);
    t.same(f.keptOffNodes(now, 6000), ['b'], 'read again: still off');
    await sim.setPower(true);
    now = 2000;
    await f.recheckKeptOff(() => now);
    t.same(f.keptOffNodes(now, 6000), [], 'its BMC says on: counted again');

    await reset();
    const g = fence({ alive: () => alive });
    await g.fence('b', 'test');
    sim.freeze();
    try {
      await g.recheckKeptOff(() => now);
    } finally {
      sim.thaw();
    }
    t.same(g.keptOffNodes(now, 6000), [], 'its BMC does not answer: counted again');

    await reset();
    const h = fence({ alive: () => alive });
    await h.fence('b', 'test');
    alive = true;
    t.same(h.keptOffNodes(performance.now(), 6000), [], 'heard from again: counted');
    alive = false;

    await reset();
    const r = fence({ fencing: { action: 'reboot' } });
    await r.fence('b', 'test');
    t.same(r.keptOffNodes(performance.now(), 6000), [], 'fencing.action reboot: it comes back by design, never kept off');
  });

  t.test('the takeovers of several apps from one node share one fence', async (t) => {
    await reset();
    const f = fence();
    const all = await Promise.all([f.fence('b', 'x'), f.fence('b', 'y'), f.fence('b', 'z')]);
    t.ok(all.every((r) => r === all[0]));
    t.same(await sim.actions(), ['power 0']);
  });

  t.test('a node heard from again is fenced anew next time (its restart is not the old fence)', async (t) => {
    await reset();
    let alive = false;
    const f = fence({ alive: () => alive });
    await f.fence('b', 'first');
    alive = true;
    t.equal(f.fencedRecord('b'), undefined);
    alive = false;
    await sim.setPower(true);
    await f.fence('b', 'second');
    t.same(await sim.actions(), ['power 0', 'power 0']);
  });

  t.test('a wrong password: FenceFailedError, and the node keeps its power', async (t) => {
    await reset();
    await t.rejects(fence({ target: { passwordFile: wrongFile } }).fence('b', 'test'), FenceFailedError);
    t.equal(await sim.power(), 'on');
  });

  t.test('a BMC that does not answer: FenceFailedError within the request timeout, never assumed fenced', async (t) => {
    await reset();
    sim.freeze();
    t.teardown(() => sim.thaw());
    const start = Date.now();
    const err = await fence().fence('b', 'test').then(() => undefined, (e: unknown) => e);
    sim.thaw();
    t.type(err, FenceFailedError);
    t.match((err as Error).message, /no answer/);
    t.ok(Date.now() - start < 1500, `gave up after ${Date.now() - start} ms`);
  });

  t.test('a BMC that acknowledges "off" but keeps reporting on: FenceFailedError after confirmTimeoutMs', async (t) => {
    await reset();
    await sim.onPower('off', `echo 1 > ${sim.dir}/power`);
    const err = await fence({ fencing: { confirmTimeoutMs: 400 } }).fence('b', 'test').then(() => undefined, (e: unknown) => e);
    t.type(err, FenceFailedError);
    t.match((err as Error).message, /still reports on 400 ms after power off/);
  });

  t.test('a node without a BMC cannot be fenced', async (t) => {
    const f = fence({ target: null });
    t.equal(f.canFence('b'), false);
    await t.rejects(f.fence('b', 'test'), { name: 'FenceFailedError', message: /b has no BMC configured/ });
  });

  t.test('the race: the higher id waits raceDelayMs first; the lower id at once', async (t) => {
    await reset();
    const waits: number[] = [];
    const sleep = async (ms: number) => { waits.push(ms); };
    await fence({ selfId: 1, sleep, fencing: { raceDelayMs: 5000 } }).fence('b', 'x');
    t.same(waits.filter((w) => w === 5000), [], 'id 1 fences id 2 without waiting');
    await sim.setPower(true);
    await fence({ selfId: 3, sleep, fencing: { raceDelayMs: 5000 } }).fence('b', 'x');
    t.same(waits.filter((w) => w === 5000), [5000], 'id 3 waits before fencing id 2');
  });

  t.test('after a distress there is no race: the higher id fences at once', async (t) => {
    await reset();
    const waits: number[] = [];
    const sleep = async (ms: number) => { waits.push(ms); };
    await fence({ selfId: 3, sleep, fencing: { raceDelayMs: 5000 } }).fence('b', 'x', { afterDistress: true });
    t.same(waits.filter((w) => w === 5000), [], 'id 3 fences id 2 without waiting');
    t.equal(await sim.power(), 'off');
  });

  t.test('the race: a target heard from during the delay is not fenced (FenceMootError)', async (t) => {
    await reset();
    let alive = false;
    const sleep = async () => { alive = true; };
    await t.rejects(fence({ selfId: 3, alive: () => alive, sleep }).fence('b', 'x'), FenceMootError);
    t.same(await sim.actions(), [], 'nothing sent');
  });

  t.test('a BMC user with operator privilege is enough to fence (a BMC that holds users to their limit)', async (t) => {
    const bmc = await TestBmc.start('admin', BMC_PASSWORD);
    t.teardown(() => bmc.close());
    bmc.maxPrivilege = 3;
    await fence({ target: { host: '127.0.0.1', port: bmc.port, cipherSuite: 17 } }).fence('b', 'test');
    t.equal(bmc.power, 'off');
    t.same(bmc.actions, ['off']);
  });
}

// SCSI-2 ownership without a device: when a takeover may reset a unit and with which reset, the bounded
// RESERVE → reset → RESERVE loop against a scripted device (real error classification through ScsiDevice),
// and the configuration of scsi2 disks (no disk heartbeat, the reset policy). The lab test
// (test/lab/scsi2-takeover.test.ts) runs the same against LIO.
import t from 'tap';

import { ConfigError, parseConfig, type Problem } from '../../src/config/load.js';
import { scsi2ResetDecision, takeOverScsi2, type PeerLiveness, type Scsi2TakeoverOptions } from '../../src/daemon/scsi2.js';
import { ScsiDevice } from '../../src/scsi/device.js';
import { ReservationConflictError, ScsiTimeoutError, TransportError } from '../../src/scsi/errors.js';
import { RESET_NAMES, type CommandTiming, type ResetKind } from '../../src/scsi/transport.js';
import { CONFLICT, FakeTransport, UA_RESET, type Answer } from '../support/fake-transport.js';
import { MINIMAL_CONFIG } from '../support/minimal-config.js';

const dead = (name: string): PeerLiveness => ({ name, alive: false });
const alive = (name: string): PeerLiveness => ({ name, alive: true });

t.test('the reset decision', async (t) => {
  const base = { disk: 'd0', policy: 'lun' as const, attempt: 1, lunResetFailed: false };
  t.same(scsi2ResetDecision({ ...base, others: [dead('b')] }), { reset: 'lun' }, 'the only other node failed: LUN reset');
  t.same(scsi2ResetDecision({ ...base, others: [dead('b'), dead('c')] }), { reset: 'lun' }, 'every other node failed');
  const refused = scsi2ResetDecision({ ...base, others: [dead('b'), alive('c')] });
  t.match(refused, { refuse: /disk d0 is reserved \(SCSI-2\) by another initiator and c is alive: not resetting it/ },
    'one other node alive: refused, since SCSI-2 cannot say who holds the unit');
  t.match(scsi2ResetDecision({ ...base, others: [alive('b'), alive('c')] }), { refuse: /b, c are alive/ });
  t.match(scsi2ResetDecision({ ...base, others: [] }), { refuse: /by an initiator outside the cluster/ }, 'no other node: never');
  t.same(scsi2ResetDecision({ ...base, others: [dead('b')], attempt: 3, lunResetFailed: true }), { reset: 'lun' },
    'policy lun: never a target reset');
  const escalating = { ...base, policy: 'lun-then-target' as const, others: [dead('b')] };
  t.same(scsi2ResetDecision(escalating), { reset: 'lun' }, 'lun-then-target starts with a LUN reset');
  t.same(scsi2ResetDecision({ ...escalating, lunResetFailed: true }), { reset: 'target' }, 'and sends a target reset once it failed');
  t.same(scsi2ResetDecision({ ...escalating, attempt: 2 }), { reset: 'target' }, 'or once it did not free the unit');
});

type ResetAnswer = CommandTiming | { code: string };

/** A FakeTransport that also takes resets, answering each from its own script. */
class ResettableTransport extends FakeTransport {
  readonly resets: ResetKind[] = [];
  constructor(answers: Answer[], private readonly resetAnswers: ResetAnswer[]) {
    super(answers);
  }

  async reset(kind: ResetKind): Promise<CommandTiming> {
    this.resets.push(kind);
    const a = this.resetAnswers.shift();
    if (a === undefined) throw new Error('fake transport: no reset answer scripted');
    if ('code' in a) {
      if (a.code === 'ETIMEDOUT') throw new ScsiTimeoutError(this.path, RESET_NAMES[kind], 'no answer', true);
      throw new TransportError(this.path, RESET_NAMES[kind], `SG_SCSI_RESET failed: (${a.code})`, { code: a.code });
    }
    return a;
  }
}

const DONE: CommandTiming = { waitUs: 10, ioctlUs: 1500, deliverUs: 20 };
const GOOD = {};

function rig(answers: Answer[], resetAnswers: ResetAnswer[], others: PeerLiveness[][] | PeerLiveness[] = [dead('b')]) {
  const transport = new ResettableTransport(answers, resetAnswers);
  const dev = new ScsiDevice(transport, { unitAttentionRetries: 3 });
  const views = Array.isArray(others[0]) ? [...(others as PeerLiveness[][])] : [];
  const options: Scsi2TakeoverOptions = {
    disk: 'd0', policy: 'lun', busyRetryMs: 1,
    others: () => (views.length > 1 ? views.shift()! : views[0] ?? (others as PeerLiveness[])),
  };
  const sent = () => transport.requests.map((r) => r.cdb[0]);
  return { transport, dev, options, sent };
}

const RESERVE = 0x16;

t.test('a free unit, or one this node holds: one RESERVE, no reset', async (t) => {
  const { dev, options, transport, sent } = rig([GOOD], []);
  t.same(await takeOverScsi2(dev, options), { resets: [] });
  t.same(sent(), [RESERVE]);
  t.same(transport.resets, []);
});

t.test('reserved by the failed holder: LUN reset, our own reset unit attention, then RESERVE is GOOD', async (t) => {
  const { dev, options, transport, sent } = rig([CONFLICT, UA_RESET, GOOD], [DONE]);
  const reported: string[] = [];
  t.same(await takeOverScsi2(dev, { ...options, onReset: (kind, ms, attempt) => reported.push(`${kind} ${ms} ms, attempt ${attempt}`) }),
    { resets: [{ kind: 'lun', ms: 1.5 }] });
  t.same(transport.resets, ['lun']);
  t.same(sent(), [RESERVE, RESERVE, RESERVE], 'RESERVE, then (after the reset) RESERVE answered with the unit attention, reissued');
  t.same(reported, ['lun 1.5 ms, attempt 1']);
});

t.test('reserved while another node is alive: refused, and no reset is sent', async (t) => {
  const { dev, options, transport } = rig([CONFLICT], [], [alive('b')]);
  await t.rejects(takeOverScsi2(dev, options), /disk d0 is reserved \(SCSI-2\) by another initiator and b is alive/);
  t.same(transport.resets, []);
});

t.test('membership is read again before each reset: a node back between tries stops the takeover', async (t) => {
  const { dev, options, transport } = rig([CONFLICT, CONFLICT], [DONE], [[dead('b')], [alive('b')]]);
  await t.rejects(takeOverScsi2(dev, options), /b is alive/);
  t.same(transport.resets, ['lun'], 'one reset, then refused');
});

t.test('the unit keeps refusing: three resets at most, then a clear error', async (t) => {
  const { dev, options, transport } = rig([CONFLICT, CONFLICT, CONFLICT, CONFLICT], [DONE, DONE, DONE]);
  const e = await takeOverScsi2(dev, options).catch((x: unknown) => x);
  t.match(e, { message: /disk d0: RESERVE\(6\) still refused with RESERVATION CONFLICT after 3 reset\(s\) \(lun, lun, lun\)/ });
  t.notOk(e instanceof ReservationConflictError, 'the error says what was tried, not only the last status');
  t.same(transport.resets, ['lun', 'lun', 'lun']);
});

t.test('lun-then-target: a LUN reset the driver cannot do (EIO) is followed by a target reset', async (t) => {
  const { dev, options, transport } = rig([CONFLICT, CONFLICT, UA_RESET, GOOD], [{ code: 'EIO' }, DONE]);
  t.same(await takeOverScsi2(dev, { ...options, policy: 'lun-then-target' }), { resets: [{ kind: 'target', ms: 1.5 }] });
  t.same(transport.resets, ['lun', 'target']);
});

t.test('lun-then-target: a LUN reset that did not free the unit is followed by a target reset', async (t) => {
  const { dev, options, transport } = rig([CONFLICT, CONFLICT, GOOD], [DONE, DONE]);
  await takeOverScsi2(dev, { ...options, policy: 'lun-then-target' });
  t.same(transport.resets, ['lun', 'target']);
});

t.test('a failed reset is reported with its errno; policy lun says what would come next', async (t) => {
  const eio = rig([CONFLICT], [{ code: 'EIO' }]);
  await t.rejects(takeOverScsi2(eio.dev, eio.options),
    /^disk d0: cannot break the failed holder's SCSI-2 reservation: .*\(EIO\) \(reset: lun-then-target would try a target reset next\)$/);
  const eacces = rig([CONFLICT], [{ code: 'EACCES' }]);
  await t.rejects(takeOverScsi2(eacces.dev, eacces.options), /cannot break the failed holder's SCSI-2 reservation: .*\(EACCES\)$/);
  const stuck = rig([CONFLICT], [{ code: 'ETIMEDOUT' }]);
  await t.rejects(takeOverScsi2(stuck.dev, stuck.options), ScsiTimeoutError, 'a reset that never came back is not retried');
});

t.test('a host in error recovery (EAGAIN) is waited out within the bound', async (t) => {
  const { dev, options, transport } = rig([CONFLICT, CONFLICT, GOOD], [{ code: 'EAGAIN' }, DONE]);
  t.same(await takeOverScsi2(dev, options), { resets: [{ kind: 'lun', ms: 1.5 }] });
  t.same(transport.resets, ['lun', 'lun']);
});

t.test('other errors of the RESERVE itself are not takeovers', async (t) => {
  const { dev, options, transport } = rig([{ status: 0x02, sense: Buffer.from([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0]) }], []);
  await t.rejects(takeOverScsi2(dev, options), { name: 'IllegalRequestError' });
  t.same(transport.resets, []);
});

t.test('ScsiDevice.reset on a transport that cannot reset', async (t) => {
  const dev = new ScsiDevice(new FakeTransport([]));
  await t.rejects(dev.reset('lun'), { name: 'TransportError', code: 'ENOTSUP', message: '/dev/sgFAKE: LOGICAL UNIT RESET: this transport cannot send resets' });
});

// ---- configuration ----

const CONFIG = (disk: string) => `${MINIMAL_CONFIG}disks:
  - ${disk}
`;

function problems(text: string): Problem[] {
  try {
    parseConfig(text, 'cluster.yaml', { baseDir: '/etc/vigil' });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

t.test('a scsi2 disk: the disk heartbeat (the holder\'s toggle) by default, a LUN reset by default', async (t) => {
  const c = parseConfig(CONFIG('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2 }'), 'c.yaml', { baseDir: '/etc' });
  t.same(c.disks, [{ name: 'd0', identity: 'naa.5001405aaaa00000', reservation: 'scsi2', heartbeat: true, reset: 'lun', preemptAndAbort: false }]);
  const escalating = parseConfig(CONFIG('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2, reset: lun-then-target }'), 'c.yaml');
  t.equal(escalating.disks[0]!.reset, 'lun-then-target');
  const persistent = parseConfig(CONFIG('{ name: d0, identity: naa.5001405aaaa00000 }'), 'c.yaml');
  t.same(persistent.disks, [{ name: 'd0', identity: 'naa.5001405aaaa00000', reservation: 'persistent', heartbeat: true, preemptAndAbort: true }],
    'a persistent disk keeps its heartbeat and has no reset policy');
});

t.test('a reset policy on a persistent disk is refused by line', async (t) => {
  const reset = problems(CONFIG('{ name: d0, identity: naa.5001405aaaa00000, reset: lun }'));
  t.match(reset, [{ line: 9, path: 'disks[0].reset', message: /^reset applies to reservation: scsi2 only/ }]);
  t.match(problems(CONFIG('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2, reset: bus }')), [{ path: 'disks[0].reset' }]);
});

t.test('a disk that carries the heartbeat, scsi2 or not, bounds failAfterMs by its interval; one that does not, does not', async (t) => {
  const timing = 'timing: { failAfterMs: 300, diskHeartbeatIntervalMs: 1000 }\n';
  t.match(problems(CONFIG('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2 }') + timing), [{ message: /while a disk carries heartbeats/ }]);
  t.match(problems(CONFIG('{ name: d0, identity: naa.5001405aaaa00000 }') + timing), [{ message: /while a disk carries heartbeats/ }]);
  t.same(problems(CONFIG('{ name: d0, identity: naa.5001405aaaa00000, reservation: scsi2, heartbeat: false }') + timing), []);
});

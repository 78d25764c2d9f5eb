// The recovery decision of seed 003 (src/lastactive/decision.ts, which LastActive runs in vigild), case
// by case: the behaviours of ../shared/notes/seed002_003.md B.12 it covers, the forced start, and the
// shared disk's cross-check. The same decision over two real LastActive instances, with failures and
// crashes, is test/unit/lastactive-model.test.ts.
import t from 'tap';

import type { State } from '../../src/lastactive/chart.js';
import { checkForcedStart, crossCheckDisks, decide, type DecisionInput, type DiskEvidence, type Holder } from '../../src/lastactive/decision.js';

const A_ = 'a';
const B_ = 'b';
type View = Extract<DecisionInput['own'], { known: true }>;
const v = (priority: 1 | 2 | 3, transition: View['transition'], forced = false): View => ({
  known: true, priority, transition, forced, state: priority === 1 ? 'SM' : priority === 2 ? 'M' : 'SL',
});
const LOST: DecisionInput['own'] = { known: false, why: 'no valid priority record (8192 bytes; slot 0: checksum, slot 1: checksum)' };
const alone = (own: DecisionInput['own'], over: Partial<DecisionInput> = {}): DecisionInput => ({
  self: A_, peer: B_, own, probe: { reachable: false, silentForMs: 12_000 }, probedForMs: 12_000, probeWindowMs: 10_000, ...over,
});
const withPeer = (own: DecisionInput['own'], peer: DecisionInput['own'], state: State = 'X', over: Partial<DecisionInput> = {}): DecisionInput => ({
  self: A_, peer: B_, own, probe: { reachable: true, state, record: peer }, probedForMs: 0, probeWindowMs: 10_000, ...over,
});

t.test('alone with priority 3: wait, and say why in words a person reads', async (t) => {
  const d = decide(alone(v(3, '3-1-1')));
  t.same(d, {
    action: 'wait', forceAccepted: true,
    reason: 'waiting: own priority 3 (was slave when the cluster stopped); peer b unreachable for 12 s; run vigil force-start on this node if b is known to be down',
  });
  t.match(decide(alone(v(2, '1-2-2'))), { action: 'wait', reason: /own priority 2 \(was master with an in-sync slave/ }, 'B.12 #9: 2 alone waits too');
});

t.test('alone with priority 1: start after the probing window, not before; not at all if lone starts are disabled (B.12 #8, #22)', async (t) => {
  t.match(decide(alone(v(1, '4-4'), { probedForMs: 3_400 })), { action: 'wait', reason: /^waiting: probing peer b \(3.4 s of 10 s\)/ });
  t.match(decide(alone(v(1, '4-4'))), { action: 'become-sm', basis: 'alone', reason: /^starting alone as single master: own priority 1/ });
  t.match(decide(alone(v(1, '4-4'), { allowLoneAutoStart: false })), { action: 'wait', forceAccepted: true, reason: /lone automatic start is disabled/ });
  t.match(decide(alone(v(1, '4-4'), { probe: { reachable: false, silentForMs: 5000, signsOfLife: ['disk heartbeat on d1 0.8 s ago'] } })),
    { action: 'wait', forceAccepted: false, reason: /alive \(disk heartbeat on d1 0.8 s ago\)/ }, 'a live peer behind a cut network: wait for the network');
});

t.test('an undeterminable record never starts by itself (B.12 #23)', async (t) => {
  t.match(decide(alone(LOST)), { action: 'wait', forceAccepted: true, reason: /own priority undeterminable \(no valid priority record/ });
  t.match(decide(withPeer(LOST, v(2, '1-2-2'))), { action: 'wait', reason: /a lost record may have held a 1/ });
  t.match(decide(withPeer(LOST, v(1, '2-1'))), { action: 'join-sl', basis: 'comparison' }, 'the peer\'s 1 outranks it');
  t.match(decide(withPeer(v(1, '4-2'), LOST)), { action: 'become-sm', basis: 'comparison' });
});

t.test('a processing peer is joined as slave, whatever the own record says, a stale 1 included (B.12 #11)', async (t) => {
  for (const own of [v(1, '2-2'), v(2, '1-2-2'), v(3, '3-2-1'), LOST]) {
    for (const state of ['SM', 'M'] as const) {
      t.match(decide(withPeer(own, v(1, '2-1'), state)), { action: 'join-sl', basis: 'peer-processing', reason: `joining as slave: peer b is processing (${state})` });
    }
  }
  t.match(decide(withPeer(v(1, '2-2'), v(3, '3-2-1'), 'SL')), { action: 'wait', reason: /still reports SL/ });
});

t.test('both up: the lower number starts, the other joins, and the peer\'s value is read even when ours is 1 (B.12 #6, #7, #24)', async (t) => {
  t.match(decide(withPeer(v(2, 'init'), v(3, 'init'))), { action: 'become-sm', basis: 'comparison', reason: /a processed last/ });
  t.match(decide(withPeer(v(3, '1-1-1'), v(1, '4-4'))), { action: 'join-sl', basis: 'comparison', reason: /b processed last/ });
  const tie = decide(withPeer(v(1, '2-2'), v(1, '2-1', true)));
  t.match(tie, { action: 'wait', forceAccepted: true, reason: /both priorities 1 \(a: lone, b: forced\)/ }, 'a tie is seen and waits for an operator (B.12 #21)');
  t.match(decide(withPeer(v(1, '4-2'), v(1, '2-1', true))), { action: 'join-sl', basis: 'comparison', reason: /b's comes from a forced start after a's/ },
    'a paired 1 is older than a forced 1 held by the peer');
  t.match(decide(withPeer(v(1, '2-2', true), v(1, '1-1-1'))), { action: 'become-sm', basis: 'comparison', tieBrokenByForcedStart: true });
  t.match(decide(withPeer(v(3, '3-1-1'), v(3, '1-2-1'))), { action: 'wait', reason: /never produces: a store was restored or edited/ });
});

t.test('both 1 without a forced start (a split brain, then both restarted): HOST, where both replicas agree, names the one that starts; the other joins', async (t) => {
  // Nemesis seed 1344696897: b took x over from a across a network cut while a, counting b failed,
  // kept its own 1; both agents restarted before the loser stood down, and both waited for good.
  const split = withPeer(v(1, '4-2'), v(1, '4-4'));
  t.match(decide(split), { action: 'wait', reason: /both priorities 1 \(a: paired, b: paired\)/ }, 'replicas not known to agree: wait');
  t.match(decide({ ...split, hostAgreed: 'b' }), { action: 'join-sl', basis: 'comparison', reason: /a split brain\): HOST, on which both replicas agree, is b/ });
  t.match(decide({ ...withPeer(v(1, '4-4'), v(1, '4-2')), self: 'b', peer: 'a', hostAgreed: 'b' }), { action: 'become-sm', basis: 'comparison' }, 'the other side of the same comparison');
  t.match(decide({ ...split, hostAgreed: null }), { action: 'wait' }, 'unloaded: no tie-break');
  t.match(decide({ ...withPeer(v(1, '2-2'), v(1, '2-1', true)), hostAgreed: 'a' }), { action: 'wait', reason: /a: lone, b: forced/ }, 'a forced 1 is the operator\'s to settle');
});

t.test('both up: the comparison waits for a peer that does not hear this node yet (it may be starting alone)', async (t) => {
  const deaf = (own: DecisionInput['own'], peer: DecisionInput['own']): DecisionInput =>
    ({ ...withPeer(own, peer), probe: { reachable: true, state: 'X', record: peer, hearsUs: false } });
  t.match(decide(deaf(v(1, '4-2'), v(3, '3-1-1'))), { action: 'wait', forceAccepted: false, reason: /^waiting: peer b answers but does not hear this node yet/ });
  t.match(checkForcedStart(deaf(v(3, '3-1-1'), v(2, '1-2-2')), 'X'), { ok: false, reason: /does not hear this node yet/ });
  t.match(decide({ ...deaf(v(3, '3-1-1'), v(1, '4-4')), probe: { reachable: true, state: 'SM', record: v(1, '4-4'), hearsUs: false } }),
    { action: 'join-sl', basis: 'peer-processing' }, 'a processing peer is joined whether it hears us or not');
  t.match(decide(withPeer(v(1, '4-2'), v(3, '3-1-1'))), { action: 'become-sm' }, 'a report without the field (an older agent) counts as hearing');
});

t.test('both up in X, the two decisions always agree: one starts and the other joins, or both wait', async (t) => {
  const views: Array<DecisionInput['own']> = [LOST];
  for (const tr of ['init', '1-1-1', '2-1', '4-4'] as const) for (const p of [1, 2, 3] as const) views.push(v(p, tr));
  views.push(v(1, '2-2', true));
  let pairs = 0;
  for (const x of views) {
    for (const y of views) {
      const dx = decide(withPeer(x, y));
      const dy = decide({ ...withPeer(y, x), self: B_, peer: A_ });
      const agree = (dx.action === 'wait' && dy.action === 'wait') ||
        (dx.action === 'become-sm' && dy.action === 'join-sl') || (dx.action === 'join-sl' && dy.action === 'become-sm');
      if (!agree) t.fail(`${JSON.stringify(x)} / ${JSON.stringify(y)}: ${dx.action} / ${dy.action}`);
      pairs++;
    }
  }
  t.equal(pairs, views.length ** 2);
});

t.test('forced start: accepted only where the node waits, refused while the peer processes or would decide by itself (B.12 #20)', async (t) => {
  const ok = checkForcedStart(alone(v(3, '3-1-1')), 'X');
  t.match(ok, { ok: true, decision: { action: 'become-sm', basis: 'forced', reason: /^starting as single master by forced start \(was waiting: own priority 3/ } });
  t.match(checkForcedStart(withPeer(v(3, '3-1-1'), v(1, '4-4'), 'SM'), 'X'), { ok: false, reason: 'refused: b is processing (SM); this node joins it as slave' });
  t.match(checkForcedStart(alone(v(3, '3-1-1'), { probe: { reachable: false, silentForMs: 3000, signsOfLife: ['disk heartbeat on d1 0.2 s ago'] } }), 'X'),
    { ok: false, reason: /unreachable over the network but alive .* may be processing/ });
  t.match(checkForcedStart(withPeer(v(3, '1-2-1'), v(2, '1-2-2'), 'M'), 'SL'), { ok: false, reason: /slave of b, which is processing/ });
  t.match(checkForcedStart(alone(v(1, '2-2')), 'SM'), { ok: false, reason: /already processing/ });
  t.match(checkForcedStart(alone(v(1, '4-4')), 'X'), { ok: false, reason: /not needed, the node decides by itself: starting alone/ });
  t.match(checkForcedStart(withPeer(v(3, '3-1-1'), v(2, '1-2-2')), 'X'), { ok: false, reason: /not needed.*joining as slave/ });
  t.match(checkForcedStart(withPeer(v(1, '2-2'), v(1, '2-1', true)), 'X'), { ok: true }, 'a [1 1] tie is what forced starts are for (B.6)');
  t.match(decide({ ...alone(v(2, '1-2-2')), forceStart: true }), { action: 'become-sm', basis: 'forced' });
  t.match(decide({ ...withPeer(v(3, '3-1-1'), v(1, '4-4'), 'SM'), forceStart: true }),
    { action: 'join-sl', forceRefused: /b is processing/ }, 'a refused forced start leaves the automatic decision, with the refusal');
});

t.test('cross-check: a lone start is refused when the shared disk names the peer; a stranger refuses every start', async (t) => {
  const disk = (reservationHolder: Holder, recordOwner?: Holder): DiskEvidence =>
    ({ disk: 'd1', readable: true, reservationHolder, ...(recordOwner === undefined ? {} : { recordOwner }) });
  const lone = alone(v(1, '2-2'));
  t.match(decide({ ...lone, disks: [disk({ node: B_ })] }), {
    action: 'wait', forceAccepted: true,
    reason: /^not starting: shared disk d1 is reserved by b, so b may have processed after this node .* run vigil force-start on this node if b is known to be down/,
  }, 'the stale 1 is caught');
  t.match(decide({ ...lone, disks: [disk(null, { node: B_ })] }), { action: 'wait', reason: /d1 is recorded as owned by b/ });
  t.match(decide({ ...lone, disks: [disk({ node: A_ }), disk(null)] }), { action: 'become-sm', basis: 'alone', notes: [] });
  t.match(decide({ ...lone, disks: [{ disk: 'd2', readable: false, error: 'no path (link table)' }] }),
    { action: 'become-sm', notes: ['d2 not cross-checked: no path (link table)'] });
  const stranger = decide({ ...lone, disks: [disk({ unknownKey: '0xdead0001' })] });
  t.match(stranger, { action: 'wait', forceAccepted: false, reason: /reserved by key 0xdead0001, which is neither a nor b/ });
  t.match(checkForcedStart({ ...alone(v(3, '3-1-1')), disks: [disk({ unknownKey: '0xdead0001' })] }, 'X'), { ok: false, reason: /neither a nor b/ });
  t.match(decide({ ...withPeer(v(1, '4-2'), v(2, '1-2-2')), disks: [disk({ node: B_ })] }),
    { action: 'become-sm', basis: 'comparison', notes: ['shared disk d1 is reserved by b, which agreed its priority is lower'] },
    'after a comparison the peer\'s own answer outranks an older reservation');
  t.match(decide({ ...alone(v(3, '3-1-1')), disks: [disk({ node: B_ })], forceStart: true }),
    { action: 'become-sm', basis: 'forced', notes: ['shared disk d1 is reserved by b; the forced start takes it over'] });
  t.same(crossCheckDisks(decide(alone(v(3, '3-1-1'))), A_, B_, [disk({ unknownKey: '0x1' })]), { ok: true, notes: [] }, 'waiting claims nothing');
});

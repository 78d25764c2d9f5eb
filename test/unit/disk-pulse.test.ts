// The disk heartbeat's pure parts (src/daemon/disk-pulse.ts): what counts as the holder's pulse, the SCSI-2
// sampler, the toggle's timing, and whether a peer still hears us; and where a disk is mounted
// (src/daemon/mounts.ts).
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { GenerationWatch, peerHearsUs, ToggleSampler, toggleTiming, weHearPeer } from '../../src/daemon/disk-pulse.js';
import { describeMounts, diskDeviceNumbers, parseMountInfo } from '../../src/daemon/mounts.js';

t.test('PR: a moved generation under the same holder is its pulse; a new holder is news; nothing moved is nothing', async (t) => {
  const w = new GenerationWatch();
  t.equal(w.observe(5, 0xa1n), 'none', 'the first reading tells nothing about life');
  t.equal(w.observe(5, 0xa1n), 'none');
  t.equal(w.observe(6, 0xa1n), 'pulse', 'the holder re-registered');
  t.equal(w.observe(9, 0xb2n), 'holder', 'another node took it over');
  t.equal(w.holder, 0xb2n);
  t.equal(w.observe(10, null), 'holder', 'released');
  t.equal(w.observe(10, null), 'none');
  t.equal(w.generation, 10);
});

t.test('SCSI-2: a change between samples is the holder\'s toggle; a reset sampler starts afresh', async (t) => {
  const s = new ToggleSampler();
  t.equal(s.observe(true), false);
  t.equal(s.observe(true), false, 'reserved all along: no sign of life');
  t.equal(s.observe(false), true, 'released: toggled');
  t.equal(s.observe(true), true, 'and reserved again');
  s.reset();
  t.equal(s.observe(false), false);
});

t.test('the toggle\'s window holds three samples, and several toggles fit in failAfterMs', async (t) => {
  for (const [interval, failAfter] of [[200, 400], [400, 2000], [1000, 5000], [20, 50]] as const) {
    const x = toggleTiming(interval, failAfter);
    t.ok(x.releaseMs >= 3 * x.sampleMs, `${interval}/${failAfter}: window ${x.releaseMs} ms, samples every ${x.sampleMs} ms`);
    t.ok(x.periodMs <= failAfter / 2 || x.periodMs === interval, 'at least two toggles per failAfterMs where the interval allows');
    t.ok(x.sampleMs >= 10);
  }
});

t.test('a peer hears us while it acknowledged one of ours recently on some network; we hear it while one of its heartbeats came', async (t) => {
  t.equal(peerHearsUs([{ heardAgoMs: 5, ackedAgoMs: 900 }, { heardAgoMs: 5, ackedAgoMs: -1 }], 200), false, 'heard, but acknowledging nothing new');
  t.equal(peerHearsUs([{ heardAgoMs: 900, ackedAgoMs: 900 }, { heardAgoMs: 5, ackedAgoMs: 50 }], 200), true);
  t.equal(peerHearsUs([], 200), false);
  t.equal(weHearPeer([{ heardAgoMs: 150, ackedAgoMs: -1 }], 200), true);
  t.equal(weHearPeer([{ heardAgoMs: -1, ackedAgoMs: -1 }], 200), false);
});

t.test('mountinfo: device numbers, escaped mount points, the source and type after the separator', async (t) => {
  const text = [
    '21 26 0:20 / /proc rw,relatime - proc proc rw',
    '36 26 8:17 / /srv/my\\040data rw,relatime shared:1 master:2 - ext4 /dev/sdb1 rw',
    'garbage',
    '',
  ].join('\n');
  const m = parseMountInfo(text);
  t.same(m[1], { device: '8:17', mountPoint: '/srv/my data', fstype: 'ext4', source: '/dev/sdb1' });
  t.equal(m.length, 2, 'a line that does not parse is skipped');
  t.equal(describeMounts([m[1]!]), '/dev/sdb1 (ext4) at /srv/my data');
});

t.test('a disk\'s device numbers include its partitions and what is stacked on them', async (t) => {
  const sys = await mkdtemp(join(tmpdir(), 'vigil-sys-'));
  const dev = async (name: string, number: string) => { await mkdir(join(sys, name, 'holders'), { recursive: true }); await writeFile(join(sys, name, 'dev'), `${number}\n`); };
  await dev('sdb', '8:16');
  await dev('sdb/sdb1', '8:17');
  await dev('dm-0', '253:0');
  await mkdir(join(sys, 'sdb1', 'holders'), { recursive: true });
  await writeFile(join(sys, 'sdb1', 'dev'), '8:17\n');
  await mkdir(join(sys, 'sdb1', 'holders', 'dm-0'));
  t.same([...await diskDeviceNumbers('/dev/sdb', sys)].sort(), ['253:0', '8:16', '8:17']);
});

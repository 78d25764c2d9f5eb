// npm run bench (inside the lab, with --iscsi): the cost of the disk heartbeat (src/daemon/disk-pulse.ts)
// through vigil's own SG_IO path, on tcm_loop and on iSCSI: the owner's pulse (PERSISTENT RESERVE OUT
// REGISTER with its own key, which bumps the PR generation) and a watcher's read (PERSISTENT RESERVE IN
// READ RESERVATION, from a nexus that holds no registration), each against TEST UNIT READY on the same
// path; and that every pulse is seen (the generation moves by one per REGISTER, the reservation stays).
import { ScsiDevice } from '../src/scsi/device.js';

const COUNT = Number(process.env.VIGIL_BENCH_PULSES ?? 2000);
const KEY = 0xbe_0001n;

async function perCall(fn: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

async function pair(name: string, ownerPath: string, watcherPath: string): Promise<void> {
  const owner = await ScsiDevice.open(ownerPath, { defaultTimeoutMs: 10_000, unitAttentionRetries: 3 });
  const watcher = await ScsiDevice.open(watcherPath, { defaultTimeoutMs: 10_000, unitAttentionRetries: 3 });
  try {
    await owner.prRegister(KEY, { ignoreExisting: true });
    const { reservation } = await owner.prReadReservation();
    if (reservation === null) await owner.prReserve(KEY, 'wero');
    const g0 = (await watcher.prReadReservation()).generation;
    const pulse = await perCall(() => owner.prRegister(KEY, { currentKey: KEY }), COUNT);
    const g1 = await watcher.prReadReservation();
    const read = await perCall(() => watcher.prReadReservation(), COUNT);
    const tur = await perCall(() => watcher.testUnitReady(), COUNT);
    const seen = g1.generation - g0;
    console.log(`${name}: pulse (REGISTER K→K) ${pulse.toFixed(1)} µs, watcher's READ RESERVATION ${read.toFixed(1)} µs, `
      + `TEST UNIT READY ${tur.toFixed(1)} µs (per call, ${COUNT} calls each); the generation moved ${seen} for ${COUNT + 50} pulses `
      + `(${seen === COUNT + 50 ? 'every one seen' : 'NOT one per pulse'}); the reservation ${g1.reservation?.key === KEY ? 'stayed the owner\'s' : 'was lost'}`);
    await owner.prRelease(KEY, 'wero');
    await owner.prUnregister(KEY);
  } finally {
    owner.close();
    watcher.close();
  }
}

const env = process.env;
if (!env.VIGIL_LAB_A || !env.VIGIL_LAB_ISCSI_A) {
  console.error('bench: run inside the lab with iSCSI: scripts/lab --iscsi -- node dist/bench/disk-pulse.js (npm run bench does this)');
  process.exit(1);
}
await pair('tcm_loop', env.VIGIL_LAB_A, env.VIGIL_LAB_B!);
await pair('iSCSI', env.VIGIL_LAB_ISCSI_A, env.VIGIL_LAB_ISCSI_B!);

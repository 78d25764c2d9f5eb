// `vigil doctor --json` in the bundle: the same report `vigil doctor` prints (src/doctor/), judged on this
// node now. It only reads (one TEST UNIT READY and the PR state per path, the agent's status, each BMC's
// chassis status); a doctor that cannot run is a failed item, never a failed bundle.
import { runDoctor } from '../doctor/doctor.js';
import { jsonFile, message, oneItem, type CollectContext, type SectionResult } from './section.js';

export async function doctorSection(ctx: CollectContext): Promise<SectionResult> {
  try {
    const report = await runDoctor({ config: ctx.configFile, ...(ctx.node === undefined ? {} : { node: ctx.node }), agentTimeoutMs: ctx.timeoutMs, bmcTimeoutMs: ctx.timeoutMs });
    return oneItem('doctor: vigil doctor --json', 'collected', [jsonFile('doctor.json', report)], `verdict ${report.verdict}`);
  } catch (e) {
    return oneItem('doctor: vigil doctor --json', 'failed', [], message(e));
  }
}

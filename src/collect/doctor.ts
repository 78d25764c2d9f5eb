// `vigil doctor --json` in the bundle: THE ONE PLACE where the doctor's report is added. `vigil doctor` is
// built apart (src/doctor/); until it is wired here this section notes it as not available.
// To wire it: call the doctor's report function (runDoctor) with the context's configuration and return
// oneItem('doctor: vigil doctor --json', 'collected', [jsonFile('doctor.json', report)]).
import { oneItem, type CollectContext, type SectionResult } from './section.js';

export async function doctorSection(_ctx: CollectContext): Promise<SectionResult> {
  return oneItem('doctor: vigil doctor --json', 'absent', [], 'not available in this build');
}

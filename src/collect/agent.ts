// The running agent's own view: `vigil status --json` and `vigil priority show --json`, over the control
// socket (read-only methods; a reader of control.group may collect them). No agent answering is an item
// noted absent: a bundle is often wanted exactly when vigild is down.
import { controlRequest, VigildNotRunningError } from '../control/client.js';
import { jsonFile, message, type CollectContext, type CollectedFile, type SectionResult } from './section.js';

const METHODS = [
  { method: 'status', path: 'agent/status.json', what: 'vigil status --json' },
  { method: 'priority.show', path: 'agent/priority.json', what: 'vigil priority show --json' },
] as const;

export async function agentSection(ctx: CollectContext): Promise<SectionResult> {
  const result: SectionResult = { files: [], items: [] };
  for (const { method, path, what } of METHODS) {
    const item = `agent: ${what}`;
    try {
      const file: CollectedFile = jsonFile(path, await controlRequest(ctx.socket, method, {}, { timeoutMs: ctx.timeoutMs }));
      result.files.push(file);
      result.items.push({ item, state: 'collected', files: [path], note: `from ${ctx.socket}` });
    } catch (e) {
      if (e instanceof VigildNotRunningError) {
        result.items.push({ item, state: 'absent', files: [], note: `no vigild is running here: ${message(e)}` });
      } else {
        result.items.push({ item, state: 'failed', files: [], note: message(e) });
      }
    }
  }
  return result;
}

// What an agent that died without its machine (kill -9, a crash, an OOM kill) leaves behind: the apps it
// started keep running in their own process groups, and their service addresses stay on the interfaces.
// Meanwhile the backup has taken the apps over, so a restarted agent that left them would have two copies
// answering. Each app's process is recorded in a pid file (pid and the kernel's start time, so a reused
// pid is never mistaken for it); the next agent stops every recorded group before its flows start. An
// agent killed between spawning an app and recording it leaves a copy no pid file names: every app vigild
// starts carries its agent's control socket in its environment (VIGIL_SOCKET, with VIGIL_APP), and the
// next agent also stops every process that carries this node's (markedLeftovers).
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LeftoverLog {
  warn(fields: object, message: string): void;
}

/** The start time of a process in clock ticks since boot (/proc/<pid>/stat field 22); undefined: gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces; fields 3.. follow the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export class PidFiles {
  constructor(private readonly dir: string) {}

  async record(tag: string, pid: number): Promise<void> {
    const start = await processStartTime(pid);
    if (start === undefined) return; // already gone: nothing to leave behind
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    await writeFile(join(this.dir, `${tag}.pid`), `${pid} ${start}\n`, { mode: 0o640 });
  }

  async forget(tag: string): Promise<void> {
    await rm(join(this.dir, `${tag}.pid`), { force: true });
  }

  /**
   * Stops the process group of every recorded app that still runs as recorded (SIGTERM, SIGKILL after
   * `graceMs(tag)`), and forgets them all. Returns the tags whose process was found running.
   */
  async stopLeftovers(graceMs: (tag: string) => number, log: LeftoverLog): Promise<string[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.pid'));
    } catch {
      return [];
    }
    const stopped: string[] = [];
    await Promise.all(names.map(async (name) => {
      const tag = name.slice(0, -'.pid'.length);
      const [pidText, start] = (await readFile(join(this.dir, name), 'utf8').catch(() => '')).trim().split(' ');
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 1 && start !== undefined && (await processStartTime(pid)) === start) {
        log.warn({ tag, pid }, 'application left running by an earlier agent: stopping it');
        stopped.push(tag);
        await stopGroup(pid, start, graceMs(tag));
      }
      await this.forget(tag);
    }));
    return stopped;
  }
}

/**
 * Processes whose environment says an agent of this node started them (VIGIL_SOCKET is this node's control
 * socket, VIGIL_APP the app): pid, start time and tag. Read from /proc (root reads every environment); a
 * process that cannot be read is skipped. Called before this agent starts any app, so every one found is a
 * leftover; the socket tells this node's apps from other nodes' on a machine running several.
 */
export async function markedLeftovers(socket: string, proc = '/proc'): Promise<{ pid: number; start: string; tag: string }[]> {
  const mark = `VIGIL_SOCKET=${socket}`;
  const out: { pid: number; start: string; tag: string }[] = [];
  for (const entry of await readdir(proc).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const env = await readFile(join(proc, entry, 'environ'), 'latin1').catch(() => '');
    if (!env) continue;
    const vars = env.split('\0');
    const tag = vars.find((v) => v.startsWith('VIGIL_APP='))?.slice('VIGIL_APP='.length);
    if (tag === undefined || !vars.includes(mark)) continue;
    const start = await processStartTime(Number(entry));
    if (start !== undefined) out.push({ pid: Number(entry), start, tag });
  }
  return out;
}

/** Stops every process markedLeftovers finds (its group, as stopLeftovers does); the tags found. */
export async function stopMarkedLeftovers(socket: string, graceMs: (tag: string) => number, log: LeftoverLog): Promise<string[]> {
  const found = await markedLeftovers(socket);
  await Promise.all(found.map(async (p) => {
    log.warn({ tag: p.tag, pid: p.pid }, 'application left running by an earlier agent (no pid file): stopping it');
    await stopGroup(p.pid, p.start, graceMs(p.tag));
  }));
  return found.map((p) => p.tag);
}

async function stopGroup(pid: number, start: string, graceMs: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => { try { process.kill(-pid, s); } catch { /* gone */ } };
  signal('SIGTERM');
  const deadline = performance.now() + graceMs;
  // Not our child: its exit cannot be awaited, only watched for.
  while (performance.now() < deadline && (await processStartTime(pid)) === start) await sleep(20);
  signal('SIGKILL');
}

// Runs a system command (ip, arping, mount) to completion with a deadline, and reports its failure as one
// line naming the command and what it printed: resource errors reach operators as they are.
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  constructor(readonly argv: string[], readonly code: number | null, readonly stderr: string) {
    super(`${argv.join(' ')}: ${stderr.trim().split('\n').pop() || (code === null ? 'timed out' : `exit ${code}`)}`);
  }
}

export interface CommandResult { code: number; stdout: string; stderr: string }

export function runCommand(argv: string[], timeoutMs = 10_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new CommandError(argv, null, e.message)); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ code, stdout, stderr });
      else reject(new CommandError(argv, code, stderr || stdout));
    });
  });
}

// A real BMC for the IPMI tests: OpenIPMI's ipmi_sim (Debian package openipmi), serving RMCP+ on a UDP
// port of 127.0.0.1 (or of an address in a namespace, run there with `ip netns exec`), with the fixture in
// hw-fixtures/ipmi/: its chassis_control hook keeps the power state in a file and runs a test's
// on-power-off / on-power-on scripts.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { repoFile } from './paths.js';
import { freeUdpPorts } from './udp-ports.js';

export const IPMI_SIM = '/usr/bin/ipmi_sim';
export const IPMITOOL = '/usr/bin/ipmitool';
export const BMC_USER = 'admin';
export const BMC_PASSWORD = 'secret';
export const BMC_GUID = 'a123456789abcdefa123456789abcdef';

export function ipmiSimUnavailable(): string | undefined {
  for (const f of [IPMI_SIM, IPMITOOL]) if (!existsSync(f)) return `${f} is missing (scripts/setup installs openipmi and ipmitool)`;
  return undefined;
}

export interface SimOptions {
  /** Address to serve on (127.0.0.1 by default); with `netns`, an address of that namespace. */
  address?: string;
  port?: number;
  /** Run inside this network namespace. */
  netns?: string;
  /** Extra users: [name, password, privilege ('admin' | 'operator' | 'user')]. */
  users?: [string, string, string][];
  /**
   * Be a virtual machine's BMC: listen on 127.0.0.1:vmPort for QEMU's ipmi-bmc-extern (scripts/lab
   * --ipmi=extern:PORT), whose power and reset it then controls; no chassis_control hook.
   */
  vmPort?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class IpmiSim {
  readonly dir: string;
  readonly address: string;
  readonly port: number;
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(dir: string, address: string, port: number) {
    this.dir = dir;
    this.address = address;
    this.port = port;
  }

  static async start(o: SimOptions = {}): Promise<IpmiSim> {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-bmc-'));
    const address = o.address ?? '127.0.0.1';
    const port = o.port ?? (await freeUdpPorts(1))[0]!;
    const users = [[BMC_USER, BMC_PASSWORD, 'admin'], ...(o.users ?? [])];
    const conf = [
      'name "vigilbmc"',
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr ${address} ${port}`,
      '    priv_limit admin',
      '    allowed_auths_admin none md2 md5 straight',
      '    allowed_auths_operator none md2 md5 straight',
      '    allowed_auths_user none md2 md5 straight',
      `    guid ${BMC_GUID}`,
      '  endlan',
      o.vmPort ? `  serial 15 127.0.0.1 ${o.vmPort} codec VM` : `  chassis_control "${repoFile('hw-fixtures', 'ipmi', 'chassis-hook')} ${dir}"`,
      ...users.map(([name, password, priv], i) => `  user ${i + 2} true "${name}" "${password}" ${priv} 10 none md2 md5 straight`),
      '',
    ].join('\n');
    await writeFile(join(dir, 'lan.conf'), conf);
    const sim = new IpmiSim(dir, address, port);
    await sim.run(o.netns);
    return sim;
  }

  private async run(netns?: string): Promise<void> {
    const argv = [IPMI_SIM, '-c', join(this.dir, 'lan.conf'), '-f', repoFile('hw-fixtures', 'ipmi', 'bmc.emu'), '-s', this.dir, '-n'];
    const [cmd, ...args] = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (b: Buffer) => { this.output += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { this.output += b.toString(); });
    // Ready when ipmitool gets an answer (ipmi_sim prints nothing reliable when its LAN is up).
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`ipmi_sim exited ${child.exitCode}: ${this.output.trim()}`);
      const ok = await this.ipmitool(['mc', 'info'], netns).then((r) => r.code === 0, () => false);
      if (ok) return;
      await sleep(50);
    }
    throw new Error(`ipmi_sim did not answer on ${this.address}:${this.port}: ${this.output.trim()}`);
  }

  /** ipmitool -I lanplus -C 3 against this BMC (the reference client). */
  ipmitool(args: string[], netns?: string, o: { user?: string; password?: string; cipher?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const argv = [IPMITOOL, '-I', 'lanplus', '-H', this.address, '-p', String(this.port), '-U', o.user ?? BMC_USER, '-P', o.password ?? BMC_PASSWORD, '-C', String(o.cipher ?? 3), '-N', '1', '-R', '2', ...args];
    const [cmd, ...rest] = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
    return new Promise((resolve) => {
      const p = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
      p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  /** The chassis power the hook holds. */
  async power(): Promise<'on' | 'off'> {
    const s = await readFile(join(this.dir, 'power'), 'utf8').catch(() => '1');
    return s.trim() === '0' ? 'off' : 'on';
  }

  async setPower(on: boolean): Promise<void> {
    await writeFile(join(this.dir, 'power'), on ? '1\n' : '0\n');
  }

  /** The hook's log: "<epoch seconds> power 0" lines. */
  async actions(): Promise<string[]> {
    const s = await readFile(join(this.dir, 'actions'), 'utf8').catch(() => '');
    return s.split('\n').filter(Boolean).map((l) => l.split(' ').slice(1).join(' '));
  }

  /** A script the hook runs on power off / on (e.g. SIGKILL of a node's processes). */
  async onPower(which: 'off' | 'on' | 'reset', script: string): Promise<void> {
    const f = join(this.dir, which === 'reset' ? 'on-reset' : `on-power-${which}`);
    await writeFile(f, `#!/bin/sh\n${script}\n`);
    await chmod(f, 0o755);
  }

  /** SIGSTOP/SIGCONT: a BMC that hangs (no answer) without losing its state. */
  freeze(): void { this.child?.kill('SIGSTOP'); }
  thaw(): void { this.child?.kill('SIGCONT'); }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(2000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

// The /proc parsers of the aging monitor: real captured files (test/fixtures/proc, from this kind of
// host) read to the right numbers, and each kind of garbage refused with the file and field named.
import { readFileSync } from 'node:fs';

import t from 'tap';

import {
  parseCpuTicks,
  parseLoadAvg, parseMemInfo, parseOpenFilesLimit, parseProcessStatus, parseUptime, ProcParseError,
} from '../../src/aging/proc-parse.js';
import { repoFile } from '../support/paths.js';

const fixture = (name: string) => readFileSync(repoFile('test', 'fixtures', 'proc', name), 'utf8');

t.test('loadavg: the three run-queue averages of a captured file', async (t) => {
  t.strictSame(parseLoadAvg(fixture('loadavg')), { load1: 4.58, load5: 4.25, load15: 3.9 });
  t.strictSame(parseLoadAvg('0.00 0.01 0.05 1/80 1\n'), { load1: 0, load5: 0.01, load15: 0.05 });
});

t.test('loadavg: empty, short or non-numeric text is refused, naming the file', async (t) => {
  for (const bad of ['', '1.0 2.0', 'a b c 1/2 3', '-1 0 0 1/1 1']) {
    t.throws(() => parseLoadAvg(bad), { name: 'ProcParseError', message: /^\/proc\/loadavg: expected three load averages/ }, JSON.stringify(bad));
  }
});

t.test('uptime: seconds since boot, the first field', async (t) => {
  t.equal(parseUptime(fixture('uptime')), 27093.08);
  t.throws(() => parseUptime('up 3 days'), /^\/proc\/uptime: expected seconds since boot/);
  t.throws(() => parseUptime(''), ProcParseError);
});

t.test('meminfo: the fields the monitor needs, in bytes, from a captured file', async (t) => {
  t.strictSame(parseMemInfo(fixture('meminfo')), {
    total: 24683772 * 1024, available: 23464980 * 1024, buffers: 47604 * 1024, cached: 1675468 * 1024, swapTotal: 0, swapFree: 0,
  });
  // The same host with swap (this one has none): the swap lines as a swapping host writes them.
  const swapping = fixture('meminfo').replace(/^SwapTotal:.*$/m, 'SwapTotal:       2097148 kB').replace(/^SwapFree:.*$/m, 'SwapFree:        1048572 kB');
  t.match(parseMemInfo(swapping), { swapTotal: 2097148 * 1024, swapFree: 1048572 * 1024 });
});

t.test('meminfo: a file without MemAvailable (a kernel before 3.14), or garbage, is refused with the missing field named', async (t) => {
  const old = fixture('meminfo').split('\n').filter((l) => !l.startsWith('MemAvailable')).join('\n');
  t.throws(() => parseMemInfo(old), { message: '/proc/meminfo: no MemAvailable line' });
  t.throws(() => parseMemInfo('hello world\n'), { message: '/proc/meminfo: no "Key: value" lines' });
  t.throws(() => parseMemInfo('MemTotal: lots kB\n'), /no "Key: value" lines/);
});

t.test('process status: resident set in bytes and the thread count, from a node process', async (t) => {
  t.strictSame(parseProcessStatus(fixture('status-node'), 42), { rss: 40536 * 1024, threads: 7 });
});

t.test('process status: a zombie (no VmRSS) or garbage is refused, naming the pid', async (t) => {
  const zombie = fixture('status-node').split('\n').filter((l) => !l.startsWith('Vm') && !l.startsWith('Rss')).join('\n');
  t.throws(() => parseProcessStatus(zombie, 42), { message: '/proc/42/status: no VmRSS line' });
  t.throws(() => parseProcessStatus('\0\0\0', 7), { message: '/proc/7/status: no "Key: value" lines' });
});

t.test('limits: the soft limit of open files; unlimited is undefined; garbage refused', async (t) => {
  t.equal(parseOpenFilesLimit(fixture('limits-node'), 1), 20000);
  t.equal(parseOpenFilesLimit('Max open files            unlimited            unlimited            files\n'), undefined);
  t.throws(() => parseOpenFilesLimit('Max cpu time unlimited unlimited seconds\n', 9), { message: '/proc/9/limits: no "Max open files" line' });
  t.throws(() => parseOpenFilesLimit('Max open files            lots            1            files\n'), /expected a number or "unlimited"/);
});

t.test('/proc/PID/stat: utime + stime in clock ticks, counted from the last ")" (a command name may hold spaces and parentheses)', async (t) => {
  const stat = '4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 3 0 12345 1000000 500 18446744073709551615';
  t.equal(parseCpuTicks(stat, 4242), 175);
  t.throws(() => parseCpuTicks('4242 my app S 1', 4242), /\/proc\/4242\/stat: no "\)" closing the command name/);
  t.throws(() => parseCpuTicks('4242 (x) S 1 2 3', 4242), /expected utime and stime as fields 14 and 15/);
});

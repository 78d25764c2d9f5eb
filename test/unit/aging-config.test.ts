// The `aging:` section: its defaults, the values a file gives, and each bad value refused at its line with
// the field named (a band that could never clear included).
import t from 'tap';

import { ConfigError, parseConfig, type Problem } from '../../src/config/load.js';
import { DEFAULT_AGING } from '../../src/config/schema.js';
import { MINIMAL_CONFIG } from '../support/minimal-config.js';

function problems(text: string): Problem[] {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('the configuration was accepted');
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

t.test('without an aging section the monitor is on with every default', async (t) => {
  t.strictSame(parseConfig(MINIMAL_CONFIG, 'c.yaml').aging, { ...DEFAULT_AGING, threads: undefined });
});

t.test('the values a file gives; the other fields of a band keep their default', async (t) => {
  const c = parseConfig(`${MINIMAL_CONFIG}aging:\n  enabled: false\n  intervalMs: 200\n  holdMs: 2000\n  windowSamples: 20\n  horizonMs: 3600000\n  memAvailable: { enter: 0.05 }\n  threads: { enter: 500, leave: 400 }\n`, 'c.yaml');
  t.strictSame(c.aging, {
    enabled: false, intervalMs: 200, holdMs: 2000, windowSamples: 20, horizonMs: 3_600_000,
    load: DEFAULT_AGING.load, memAvailable: { enter: 0.05, leave: 0.15 }, swapFree: DEFAULT_AGING.swapFree, fds: DEFAULT_AGING.fds,
    threads: { enter: 500, leave: 400 },
  });
});

t.test('each value out of range is refused at its line, naming the field', async (t) => {
  const text = `${MINIMAL_CONFIG}aging:\n  intervalMs: 50\n  windowSamples: 200\n  horizonMs: soon\n  fds: { enter: 1.5 }\n  threads: { enter: 10 }\n  bogus: 1\n`;
  const got = problems(text).map((p) => ({ line: p.line, path: p.path, message: p.message }));
  t.strictSame(got, [
    { line: lineOf(text, 'intervalMs'), path: 'aging.intervalMs', message: 'expected a whole number of milliseconds, at least 100' },
    { line: lineOf(text, 'windowSamples'), path: 'aging.windowSamples', message: 'expected a whole number from 8 to 120' },
    { line: lineOf(text, 'horizonMs'), path: 'aging.horizonMs', message: 'expected a whole number of milliseconds, at least 1000' },
    { line: lineOf(text, 'fds'), path: 'aging.fds.enter', message: 'expected a fraction from 0 to 1' },
    { line: lineOf(text, 'threads'), path: 'aging.threads.leave', message: 'required' },
    { line: lineOf(text, 'bogus'), path: 'aging.bogus', message: 'unknown key (expected one of: enabled, intervalMs, holdMs, windowSamples, horizonMs, load, memAvailable, swapFree, fds, threads)' },
  ]);
});

t.test('a band whose leave is on the wrong side of enter is refused: it could never clear', async (t) => {
  const text = `${MINIMAL_CONFIG}aging:\n  load: { enter: 2, leave: 3 }\n  memAvailable: { enter: 0.2 }\n  threads: { enter: 100, leave: 100 }\n`;
  t.strictSame(problems(text).map((p) => ({ line: p.line, path: p.path, message: p.message })), [
    { line: lineOf(text, 'load'), path: 'aging.load.leave', message: 'leave (3) must be at or below enter (2): load is worse when higher, and clears on the other side' },
    { line: lineOf(text, 'memAvailable'), path: 'aging.memAvailable.enter', message: 'leave (0.15) must be at or above enter (0.2): memAvailable is worse when lower, and clears on the other side' },
  ]);
});

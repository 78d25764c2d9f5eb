// Cluster configuration text → Config, or every problem in it at once, each with the line, column and
// field path to fix ("cluster.yaml:14:7: nodes[1].addresses.lan2: required (…)"), as a compiler reports.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { isMap, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';

import { ConfigError, type Problem } from './errors.js';
import { configSchema, crossCheck, knownKeys, toConfig, type Config, type FieldPath } from './schema.js';

export type { Config } from './schema.js';

export { ConfigError, formatProblem, type Problem } from './errors.js';

/** ["nodes", 1, "addresses", "lan2"] → "nodes[1].addresses.lan2"; an odd key is quoted: env["A.B"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`;
    else if (typeof step === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(step)) out += out ? `.${step}` : step;
    else out += `[${JSON.stringify(String(step))}]`;
  }
  return out;
}

export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new ConfigError(path, [{ line: 0, column: 0, path: '', message: `cannot read the configuration: ${why}` }]);
  }
  return parseConfig(text, path);
}

/**
 * Parses and checks a configuration. `sourceName` names the file in messages; relative paths in the
 * configuration resolve against `baseDir`, by default the directory of `sourceName`.
 */
export function parseConfig(text: string, sourceName: string, options: { baseDir?: string } = {}): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    // The tree after a syntax error is a guess; checking its fields would only add noise.
    throw new ConfigError(sourceName, doc.errors.map((e) => ({ ...at(e.pos[0]), path: '', message: yamlMessage(e.message) })));
  }

  // A mapping or a list as a key ("{ a: 1 }: x", "[a]: x", valid YAML) would be stringified by toJS, with
  // a process warning and a key nobody wrote: refused here, at its line.
  const complexKeys: Problem[] = [];
  visit(doc, {
    Pair(_, pair) {
      const key = pair.key as Node | null;
      if (key !== null && !isScalar(key)) complexKeys.push({ ...at(key.range?.[0] ?? 0), path: '', message: 'a key must be a plain name, not a mapping or a list' });
    },
  });
  if (complexKeys.length > 0) throw new ConfigError(sourceName, complexKeys);

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ConfigError(sourceName, [{ line: 1, column: 1, path: '', message: (e as Error).message }]);
  }

  const problems: Problem[] = [];
  const add = (path: FieldPath, message: string, keyOf?: string) => {
    problems.push({ ...at(locate(doc, path, keyOf)), path: formatPath(keyOf === undefined ? path : [...path, keyOf]), message });
  };

  const parsed = configSchema.safeParse(raw, { error: describeIssue });
  if (!parsed.success) {
    const issues = flatten(parsed.error.issues);
    // A misspelt key ("adresses") also leaves the real one missing; the typo is the one problem to report.
    const misspelt = new Set<string>();
    for (const issue of issues) {
      if (issue.code !== 'unrecognized_keys') continue;
      const path = issue.path as FieldPath;
      for (const key of issue.keys) {
        const { message, meant } = unknownKey(key, knownKeys(path, raw));
        for (const m of meant) misspelt.add(formatPath([...path, m]));
        add(path, message, key);
      }
    }
    for (const issue of issues) {
      if (issue.code === 'unrecognized_keys') continue;
      if (issue.message === 'required' && misspelt.has(formatPath(issue.path))) continue;
      add(issue.path as FieldPath, issue.message);
    }
  }
  for (const issue of crossCheck(raw)) add(issue.path, issue.message);

  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(sourceName, dedupe(problems).sort((a, b) => a.line - b.line || a.column - b.column));
  }
  const baseDir = options.baseDir ?? dirname(resolve(sourceName));
  return toConfig(parsed.data, resolve(sourceName), baseDir);
}

function yamlMessage(message: string): string {
  // yaml's messages sometimes end with the position again ("… at line 3, column 1"); we print our own.
  const text = message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
  return `YAML: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
}

/**
 * The offset a problem at `path` points to: the key `keyOf` of the mapping at `path`, else the node at
 * `path`, else (a missing field) its nearest existing parent.
 */
function locate(doc: Document, path: FieldPath, keyOf?: string): number {
  const nodeAt = (p: FieldPath): Node | undefined => {
    const n = p.length === 0 ? doc.contents : doc.getIn(p, true);
    return n && typeof n === 'object' && 'range' in n && (n as Node).range ? (n as Node) : undefined;
  };
  if (keyOf !== undefined) {
    const map = nodeAt(path);
    if (isMap(map)) {
      const pair = map.items.find((it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === keyOf);
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return range[0];
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const node = nodeAt(path.slice(0, n));
    if (node?.range) return node.range[0];
  }
  return 0;
}

function unknownKey(key: string, known: string[]): { message: string; meant: string[] } {
  const meant = known.filter((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= Math.max(1, Math.floor(k.length / 4)));
  if (meant.length > 0) return { message: `unknown key (did you mean ${meant.map((k) => `"${k}"`).join(' or ')}?)`, meant };
  return { message: known.length > 0 ? `unknown key (expected one of: ${known.join(', ')})` : 'unknown key', meant };
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * A union that failed reports every option's issues. When the value had the type of one option (a list
 * given for "string or list"), that option's issues are the ones that say what is wrong, with their
 * full paths; when it matched no option, the union's own message says what was expected.
 */
function flatten(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): z.core.$ZodIssue[] {
  const out: z.core.$ZodIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const typed = issue.errors.find((branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0));
      if (typed) {
        out.push(...flatten(typed, path));
        continue;
      }
    }
    out.push({ ...issue, path } as z.core.$ZodIssue);
  }
  return out;
}

const EXPECTED: Record<string, string> = {
  string: 'a string', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list',
  object: 'a mapping', record: 'a mapping',
};

function describeValue(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** Messages for the issues the schema does not word itself. */
function describeIssue(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'invalid_union')) return 'required';
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      return `expected one of ${iss.values.map(String).join(', ')}; got ${describeValue(iss.input)}`;
    case 'invalid_key':
      return iss.issues[0]?.message;
    case 'too_small':
      return iss.origin === 'array' ? `expected at least ${iss.minimum} item${iss.minimum === 1 ? '' : 's'}` : undefined;
    default:
      return undefined;
  }
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.line}:${p.column}:${p.path}:${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

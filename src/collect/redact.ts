// What of the configuration `vigil collect` may put in a support bundle, and the last check on every file
// before it goes in. Two layers:
//   1. The configuration is redacted by structure: a value under a secret-sounding name (password, token,
//      secret, …) becomes REDACTED; every app environment value does (names stay: a DATABASE_URL can hold
//      a password whatever it is called); in a command line, a secret-sounding option's value and a URL's
//      password do. A path to a secret file (keyFile, passwordFile, kgFile) stays: support needs to know
//      which file, never what is in it.
//   2. Every collected file is scrubbed of the secrets themselves: the content of each secret file the
//      configuration names, and each value layer 1 took out under a secret name, wherever they appear (a
//      log line quoting a command line, an agent's status). Layer 1 alone would trust that nothing else
//      ever prints a secret.
import { resolve } from 'node:path';

export const REDACTED = '<redacted>';

/** Shorter secrets are not scrubbed from the other files: "1234" would be cut out of every number. */
export const MIN_SCRUBBED = 4;

const SECRET_WORDS = 'passw(?:or)?d|passphrase|secret|token|credential|private[-_]?key|api[-_]?key|auth(?!or)|cookie';
const SECRET_NAME = new RegExp(`(?:${SECRET_WORDS}|^pass$|[-_]pass$|^kg$)`, 'i');
/** A configuration key that names a file holding a secret: its value is a path, kept. */
const SECRET_FILE_KEYS = new Set(['keyFile', 'passwordFile', 'kgFile']);

export function isSecretFileKey(key: string): boolean {
  return SECRET_FILE_KEYS.has(key) || (SECRET_NAME.test(key) && /file$/i.test(key));
}

export function isSecretName(key: string): boolean {
  return SECRET_NAME.test(key) && !isSecretFileKey(key);
}

export interface Redacted {
  value: unknown;
  /** The values taken out under secret names, to scrub from every other file. */
  secrets: string[];
  /** Absolute paths of the secret files the configuration names. */
  secretFiles: string[];
}

const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)([^\s@/]+)(@)/gi;
const NAMED_VALUE = new RegExp(`([\\w.-]*(?:${SECRET_WORDS})[\\w.-]*[=:])(?!//)("[^"]*"|'[^']*'|[^\\s"']+)`, 'gi');
const OPTION_THEN_VALUE = new RegExp(`(--?[\\w.-]*(?:${SECRET_WORDS})[\\w.-]*\\s+)("[^"]*"|'[^']*'|[^\\s"'-]\\S*)`, 'gi');
const SECRET_OPTION = new RegExp(`^--?[\\w.-]*(?:${SECRET_WORDS})[\\w.-]*$`, 'i');

/** One command-line word or shell line with its secret-looking values replaced; what was taken goes to `secrets`. */
export function redactCommandText(text: string, secrets: string[]): string {
  const take = (value: string) => {
    secrets.push(value.replace(/^(["'])(.*)\1$/, '$2'));
    return REDACTED;
  };
  return text
    .replace(URL_PASSWORD, (_m, a: string, pw: string, b: string) => a + take(pw) + b)
    .replace(NAMED_VALUE, (_m, name: string, v: string) => (v === REDACTED ? name + v : name + take(v)))
    .replace(OPTION_THEN_VALUE, (_m, opt: string, v: string) => (v === REDACTED ? opt + v : opt + take(v)));
}

function redactCommand(command: unknown, secrets: string[]): unknown {
  if (typeof command === 'string') return redactCommandText(command, secrets);
  if (!Array.isArray(command)) return command;
  return command.map((word, i) => {
    if (typeof word !== 'string') return word;
    // `--password hunter2` as two words: the second is the secret.
    const previous = command[i - 1];
    if (typeof previous === 'string' && SECRET_OPTION.test(previous)) {
      secrets.push(word);
      return REDACTED;
    }
    return redactCommandText(word, secrets);
  });
}

function leaves(value: unknown, into: string[]): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'object') for (const v of Object.values(value)) leaves(v, into);
  else into.push(String(value));
}

/**
 * The configuration (the YAML document as plain data, or the loaded Config) with secrets replaced by
 * REDACTED. `baseDir` resolves relative secret file paths, as the configuration's loader does.
 */
export function redactConfig(config: unknown, baseDir: string): Redacted {
  const secrets: string[] = [];
  const secretFiles: string[] = [];
  const walk = (value: unknown, key: string | undefined): unknown => {
    if (key === 'command') return redactCommand(value, secrets);
    if (Array.isArray(value)) return value.map((v) => walk(v, undefined));
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (key === 'env') {
        if (isSecretName(k)) leaves(v, secrets);
        out[k] = REDACTED;
      } else if (isSecretFileKey(k) && typeof v === 'string') {
        secretFiles.push(resolve(baseDir, v));
        out[k] = v;
      } else if (isSecretName(k)) {
        leaves(v, secrets);
        out[k] = REDACTED;
      } else {
        out[k] = walk(v, k);
      }
    }
    return out;
  };
  const value = walk(config, undefined);
  return { value, secrets: [...new Set(secrets)], secretFiles: [...new Set(secretFiles)] };
}

function isText(b: Buffer): boolean {
  for (const c of b) if (!((c >= 0x20 && c !== 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d)) return false;
  return true;
}

/**
 * The forms in which a secret file's content could show up elsewhere: the whole text trimmed, each line,
 * hex in either case, JSON-escaped; a binary file as its bytes, hex and base64. Longest first, so the whole
 * is replaced before a part of it. `tooShort` when some form is under MIN_SCRUBBED and so not looked for.
 */
export function secretForms(content: Buffer | string): { forms: Buffer[]; tooShort: boolean } {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const candidates: string[] = [];
  if (isText(bytes)) {
    const text = bytes.toString('utf8');
    for (const s of [text.trim(), ...text.split(/\r?\n/).map((l) => l.trim())]) {
      if (s === '') continue;
      candidates.push(s, JSON.stringify(s).slice(1, -1));
      if (/^[0-9a-f]+$/i.test(s)) candidates.push(s.toLowerCase(), s.toUpperCase());
    }
  } else {
    const hex = bytes.toString('hex');
    candidates.push(hex, hex.toUpperCase(), bytes.toString('base64'));
  }
  const unique = [...new Set(candidates)];
  const forms: Buffer[] = unique.filter((s) => s.length >= MIN_SCRUBBED).map((s) => Buffer.from(s, 'utf8'));
  if (!isText(bytes) && bytes.length >= MIN_SCRUBBED) forms.push(bytes);
  forms.sort((a, b) => b.length - a.length);
  return { forms, tooShort: unique.some((s) => s.length < MIN_SCRUBBED) };
}

/** `data` with every occurrence of every secret replaced by REDACTED, and how many there were. */
export function scrub(input: Buffer, secrets: Buffer[]): { data: Buffer; count: number } {
  let data: Buffer<ArrayBufferLike> = input;
  let count = 0;
  for (const secret of secrets) {
    if (secret.length === 0 || data.indexOf(secret) === -1) continue;
    const parts: Buffer[] = [];
    let from = 0;
    for (let at = data.indexOf(secret); at !== -1; at = data.indexOf(secret, from)) {
      parts.push(data.subarray(from, at), Buffer.from(REDACTED));
      from = at + secret.length;
      count++;
    }
    parts.push(data.subarray(from));
    data = Buffer.concat(parts);
  }
  return { data, count };
}

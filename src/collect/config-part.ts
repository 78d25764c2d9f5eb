// The configuration in the bundle, redacted (redact.ts): the file as written (comments dropped: a comment
// can hold anything) and the configuration as vigild reads it, every default filled in; or, when it does
// not load, the problems `vigil config check` names. A file that is not even YAML is left out: without its
// structure there is no knowing which text is a secret.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { parseDocument, stringify } from 'yaml';

import { configJson } from '../cli/config-commands.js';
import { ConfigError } from '../config/errors.js';
import type { Config } from '../config/schema.js';
import { redactConfig } from './redact.js';
import { jsonFile, message, type CollectedFile, type ManifestItem } from './section.js';

export interface ConfigPart {
  files: CollectedFile[];
  items: ManifestItem[];
  config: Config | undefined;
  /** Values taken out, to scrub from every other file. */
  secrets: string[];
  /** The secret files the configuration names (absolute): their content is scrubbed from every file. */
  secretFiles: string[];
}

export async function configPart(file: string): Promise<ConfigPart> {
  const part: ConfigPart = { files: [], items: [], config: undefined, secrets: [], secretFiles: [] };
  const baseDir = dirname(resolve(file));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    part.items.push({ item: 'config', state: missing ? 'absent' : 'failed', files: [], note: missing ? `no configuration at ${file} (give --config FILE)` : message(e) });
    return part;
  }

  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) {
    part.items.push({ item: 'config: the file, redacted', state: 'failed', files: [], note: `${file} is not valid YAML (${doc.errors[0]!.message.split('\n')[0]}); left out, as its secrets cannot be told apart` });
  } else {
    const raw = redactConfig(doc.toJS(), baseDir);
    part.secrets.push(...raw.secrets);
    part.secretFiles.push(...raw.secretFiles);
    const path = 'config/cluster.yaml';
    part.files.push({ path, data: `# ${file}, redacted by vigil collect (secret values replaced by <redacted>; comments dropped)\n${stringify(raw.value)}` });
    part.items.push({ item: 'config: the file, redacted', state: 'collected', files: [path], note: file });
  }

  try {
    const { loadConfig } = await import('../config/load.js');
    part.config = await loadConfig(file);
    const loaded = redactConfig(configJson(part.config), baseDir);
    part.secrets.push(...loaded.secrets);
    part.secretFiles.push(...loaded.secretFiles);
    const f = jsonFile('config/effective.json', loaded.value);
    part.files.push(f);
    part.items.push({ item: 'config: as vigild reads it (defaults filled in), redacted', state: 'collected', files: [f.path] });
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      part.items.push({ item: 'config: as vigild reads it', state: 'failed', files: [], note: message(e) });
      return dedupe(part);
    }
    const f = jsonFile('config/check.json', { ok: false, file, problems: e.problems });
    part.files.push(f);
    part.items.push({ item: 'config: as vigild reads it', state: 'failed', files: [f.path], note: `the configuration does not load: ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'} (in ${f.path})` });
  }
  return dedupe(part);
}

function dedupe(part: ConfigPart): ConfigPart {
  return { ...part, secrets: [...new Set(part.secrets)], secretFiles: [...new Set(part.secretFiles)] };
}

// A remote BMC as vigil names it (the config's `bmc:` of a node, or `vigil ipmi --host …`): where it is,
// who logs in, and the files that hold the secrets. Opening one reads the secrets (with the key file's
// permission checks) and sets up an RMCP+ session.
import { readSecretFile } from '../util/secret-file.js';
import { LanSession, Privilege } from './lan-session.js';

export interface BmcTarget {
  host: string;
  port?: number;
  user: string;
  /** A file holding the password: mode 0600 (or stricter), owned by this user or root. */
  passwordFile: string;
  /** 17 (SHA-256, the default) or 3 (SHA-1). */
  cipherSuite?: number;
  /** A file holding the BMC key (two-key logins), as text; same checks as the password's. */
  kgFile?: string;
  privilege?: number;
  timeoutMs?: number;
}

export class BmcCredentialError extends Error {
  override name = 'BmcCredentialError';
}

/** The secret in a password or Kg file: the file's text without its final newline, 1 to 20 bytes. */
export async function readBmcSecret(path: string, what: 'password' | 'Kg'): Promise<Buffer> {
  const bytes = await readSecretFile(path, (detail) => new BmcCredentialError(`BMC ${what} file ${path}: ${detail}`));
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const secret = bytes.subarray(0, end);
  if (secret.length === 0) throw new BmcCredentialError(`BMC ${what} file ${path}: empty`);
  if (secret.length > 20) throw new BmcCredentialError(`BMC ${what} file ${path}: ${secret.length} bytes; IPMI allows at most 20`);
  if (secret.includes(0x0a)) throw new BmcCredentialError(`BMC ${what} file ${path}: more than one line`);
  return Buffer.from(secret);
}

export async function openBmc(target: BmcTarget): Promise<LanSession> {
  const password = await readBmcSecret(target.passwordFile, 'password');
  const kg = target.kgFile ? await readBmcSecret(target.kgFile, 'Kg') : undefined;
  return LanSession.open({
    host: target.host,
    user: target.user,
    password,
    privilege: target.privilege ?? Privilege.ADMINISTRATOR,
    ...(target.port === undefined ? {} : { port: target.port }),
    ...(target.cipherSuite === undefined ? {} : { cipherSuite: target.cipherSuite }),
    ...(kg ? { kg } : {}),
    ...(target.timeoutMs === undefined ? {} : { timeoutMs: target.timeoutMs }),
  });
}

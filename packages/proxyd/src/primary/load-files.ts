// The files an operator hands proxyd (blocklist, htpasswd, TLS certificate and key), read and checked
// on the primary so that a bad file is one clear message at start-up or on SIGHUP, never a half-started
// proxy or a worker error. `proxyd check-config` reads them through loadStartupFiles too, so it fails on
// a bad file exactly as start-up would.
import { readFile } from 'node:fs/promises';
import { nodeTls } from '../builtins/tls.ts';
import type { ProxyOptions } from '../config/options.ts';
import { parseBlocklist, type Blocklist } from '../policy/blocklist.ts';
import { parseHtpasswd, type Users } from '../policy/htpasswd.ts';

/** Which file, and what is wrong with it; the message is `blocklist /etc/…: no such file`. */
export class FileError extends Error {
  override name = 'FileError';
  readonly what: string;
  readonly file: string;
  readonly problem: string;

  constructor(p: { what: string; file: string; problem: string }) {
    super(`${p.what} ${p.file}: ${p.problem}`);
    this.what = p.what;
    this.file = p.file;
    this.problem = p.problem;
  }
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FileError({ what, file, problem: code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message });
  }
}

export async function loadBlocklist(file: string): Promise<Blocklist> {
  const text = await readText(file, 'blocklist');
  try {
    return parseBlocklist(text);
  } catch (err) {
    throw new FileError({ what: 'blocklist', file, problem: (err as Error).message });
  }
}

export async function loadUsers(file: string): Promise<Users> {
  const text = await readText(file, 'auth file');
  try {
    return parseHtpasswd(text);
  } catch (err) {
    throw new FileError({ what: 'auth file', file, problem: (err as Error).message });
  }
}

export async function loadTls(certFile: string, keyFile: string): Promise<{ cert: string; key: string }> {
  const cert = await readText(certFile, 'TLS certificate');
  const key = await readText(keyFile, 'TLS key');
  try {
    nodeTls().createSecureContext({ cert, key }); // fails here, once, on a bad pair
  } catch (err) {
    throw new FileError({ what: 'TLS certificate', file: certFile, problem: `does not load with key ${keyFile} (${(err as Error).message})` });
  }
  return { cert, key };
}

export interface StartupFiles {
  blocklist: Blocklist;
  users: Users | undefined;
  tls: { cert: string; key: string } | undefined;
}

/** Every file the options name, in start-up's order (blocklist, auth file, TLS pair): the first bad one throws. */
export async function loadStartupFiles(options: Pick<ProxyOptions, 'blocklistFile' | 'authFile' | 'tlsCert' | 'tlsKey'>): Promise<StartupFiles> {
  const blocklist = options.blocklistFile ? await loadBlocklist(options.blocklistFile) : parseBlocklist('');
  const users = options.authFile ? await loadUsers(options.authFile) : undefined;
  const tlsPair = options.tlsCert && options.tlsKey ? await loadTls(options.tlsCert, options.tlsKey) : undefined;
  return { blocklist, users, tls: tlsPair };
}

// The files an operator hands proxyd (blocklist, htpasswd, TLS certificate and key), read and checked
// on the primary so that a bad file is one clear message at start-up or on SIGHUP, never a half-started
// proxy or a worker error.
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { parseBlocklist, type Blocklist } from '../policy/blocklist.ts';
import { parseHtpasswd, type Users } from '../policy/htpasswd.ts';

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

export async function loadBlocklist(file: string): Promise<Blocklist> {
  const text = await readText(file, 'blocklist');
  try {
    return parseBlocklist(text);
  } catch (err) {
    throw new Error(`blocklist ${file}: ${(err as Error).message}`);
  }
}

export async function loadUsers(file: string): Promise<Users> {
  const text = await readText(file, 'auth file');
  try {
    return parseHtpasswd(text);
  } catch (err) {
    throw new Error(`auth file ${file}: ${(err as Error).message}`);
  }
}

export async function loadTls(certFile: string, keyFile: string): Promise<{ cert: string; key: string }> {
  const cert = await readText(certFile, 'TLS certificate');
  const key = await readText(keyFile, 'TLS key');
  try {
    tls.createSecureContext({ cert, key }); // fails here, once, on a bad pair
  } catch (err) {
    throw new Error(`TLS certificate ${certFile} / key ${keyFile}: ${(err as Error).message}`);
  }
  return { cert, key };
}

// The files an operator hands proxyd (blocklist, htpasswd, TLS certificate and key), read and checked
// on the primary so that a bad file is one clear message at start-up or on SIGHUP, never a half-started
// proxy or a worker error. `proxyd check-config` reads them through loadStartupFiles too, so it fails on
// a bad file exactly as start-up would. The files proxyd writes (the log, the access log) are checked
// too: a log the logger thread cannot open would leave a proxy logging nowhere. check-config creates
// nothing; start-up creates them (as the logger would a moment later), since for root access() says yes
// to nearly everything.
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
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

/** The errno of a failed fs call, as a few words. */
function problemOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'a read-only file system';
  return (err as Error).message;
}

/**
 * Create `file` for appending, and the folders above it (as winston does): what start-up writes to. A
 * file that is there already is left alone (opening a FIFO nobody reads would block).
 */
async function createWritable(file: string, what: string): Promise<void> {
  const existing = await checkWritable(file, what); // the clearer message where it can tell
  if (existing === undefined) return;
  try {
    // One folder at a time, not mkdir's `recursive` (which never returns under /proc on Node.js 24).
    const missing: string[] = [];
    for (let dir = dirname(resolve(file)); dir !== existing; dir = dirname(dir)) missing.unshift(dir);
    for (const dir of missing) await mkdir(dir);
    await (await open(file, 'a')).close();
  } catch (err) {
    throw new FileError({ what, file, problem: `cannot create it (${problemOf(err)})` });
  }
}

/**
 * Can proxyd write `file`? It may exist (then: not a folder, writable) or not (then the nearest folder
 * above it that exists must be a writable folder: the logger creates the missing ones, as winston does).
 * Nothing is created here, so check-config changes nothing on disk. Returns that nearest folder when
 * the file is not there.
 */
async function checkWritable(file: string, what: string): Promise<string | undefined> {
  const path = resolve(file);
  try {
    if ((await stat(path)).isDirectory()) throw new FileError({ what, file, problem: 'is a folder' });
    await access(path, constants.W_OK).catch((err: unknown) => {
      throw new FileError({ what, file, problem: `cannot write it (${problemOf(err)})` });
    });
    return undefined;
  } catch (err) {
    if (err instanceof FileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new FileError({ what, file, problem: problemOf(err) });
  }
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let isFolder: boolean;
    try {
      isFolder = (await stat(dir)).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(dir) !== dir) continue;
      throw new FileError({ what, file, problem: `cannot create it (${dir}: ${problemOf(err)})` });
    }
    if (!isFolder) throw new FileError({ what, file, problem: `cannot create it: ${dir} is not a folder` });
    await access(dir, constants.W_OK | constants.X_OK).catch((err: unknown) => {
      throw new FileError({ what, file, problem: `cannot create it in ${dir} (${problemOf(err)})` });
    });
    return dir;
  }
}

export interface StartupFiles {
  blocklist: Blocklist;
  users: Users | undefined;
  tls: { cert: string; key: string } | undefined;
}

type FileOptions = Pick<ProxyOptions, 'blocklistFile' | 'authFile' | 'tlsCert' | 'tlsKey' | 'logFile' | 'accessLog'>;

/**
 * Every file the options name, in start-up's order (log files, blocklist, auth file, TLS pair): the first
 * bad one throws. The log files are only checked here: createLogFiles makes them, once all is well.
 */
export async function loadStartupFiles(options: FileOptions): Promise<StartupFiles> {
  await checkWritable(options.logFile, 'log file');
  if (options.accessLog !== undefined) await checkWritable(options.accessLog, 'access log');
  const blocklist = options.blocklistFile ? await loadBlocklist(options.blocklistFile) : parseBlocklist('');
  const users = options.authFile ? await loadUsers(options.authFile) : undefined;
  const tlsPair = options.tlsCert && options.tlsKey ? await loadTls(options.tlsCert, options.tlsKey) : undefined;
  return { blocklist, users, tls: tlsPair };
}

/** Start-up, after loadStartupFiles: make the log files (and their folders) that are not there yet. */
export async function createLogFiles(options: Pick<ProxyOptions, 'logFile' | 'accessLog'>): Promise<void> {
  await createWritable(options.logFile, 'log file');
  if (options.accessLog !== undefined) await createWritable(options.accessLog, 'access log');
}

// Where the shared cache lives, decided once by the primary at start-up: a fresh directory on tmpfs
// (/dev/shm, memory) removed at exit, or --cache-dir, kept across restarts. A file that cannot be used
// (unreadable, corrupt, a read-only directory) is logged and the proxy runs without a cache.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ProxyOptions } from '../config/options.ts';
import { prepareStoreFile } from './shared-store.ts';
import type { UrlPresence } from './url-presence.ts';

export interface CacheLocation {
  file: string;
  mode: 'memory' | 'disk';
  /** What the file held at start (disk mode: what survived the restart). */
  entries: number;
  bytes: number;
  /** Remove a memory-mode directory (at shutdown); nothing for disk mode. */
  dispose(): void;
}

export const CACHE_FILE_NAME = 'proxyd-cache.sqlite';

/** The cache file to share, or why there is none (the caller logs it; serving goes on uncached). */
export function openCacheLocation(options: Pick<ProxyOptions, 'cache' | 'cacheDir'>, presence: UrlPresence): { location?: CacheLocation; problem?: string } {
  if (options.cache === 'off') return {};
  let dir: string;
  let dispose = (): void => {};
  try {
    if (options.cacheDir !== undefined) {
      dir = path.resolve(options.cacheDir);
      fs.mkdirSync(dir, { recursive: true });
    } else {
      const parent = memoryDir();
      removeOrphans(parent);
      dir = fs.mkdtempSync(path.join(parent, `proxyd-cache-${process.pid}-`));
      const made = dir;
      dispose = () => fs.rmSync(made, { recursive: true, force: true });
    }
  } catch (err) {
    return { problem: `cannot make the cache directory: ${(err as Error).message}` };
  }
  const file = path.join(dir, CACHE_FILE_NAME);
  try {
    const held = prepareStoreFile(file, presence);
    return { location: { file, mode: options.cacheDir === undefined ? 'memory' : 'disk', ...held, dispose } };
  } catch (err) {
    dispose();
    return { problem: `cannot use the cache file ${file}: ${(err as Error).message}` };
  }
}

/**
 * Memory-mode directories of proxyd processes that are gone (killed before they could remove theirs): on
 * tmpfs they would hold RAM until a reboot. The directory's name carries its process id.
 */
function removeOrphans(parent: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^proxyd-cache-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** tmpfs when the host has it (Linux: /dev/shm), else the temporary directory. */
function memoryDir(): string {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

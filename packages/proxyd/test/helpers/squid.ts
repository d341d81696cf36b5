// Debian's Squid as a parent proxy for the tests: its own config on a free loopback port (never
// /etc/squid/squid.conf, whose rules refuse loopback and CONNECT to other ports than 443; see
// /work/shared/PEERS.md), started in the foreground (-N) and stopped by pid. What it logged is shown
// only when the test fails.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort, listening } from './haproxy.ts';
import { tempDir } from './proxy.ts';

export const squidMissing = spawnSync('squid', ['-v'], { encoding: 'utf8' }).status === 0 ? false : 'squid is not installed (apt-get install squid)';

export interface Squid {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startSquid(t: Test, port?: number): Promise<Squid> {
  const dir = tempDir();
  chmodSync(dir, 0o777); // Squid started as root drops to the proxy user, which writes here
  const listen = port ?? (await freePort());
  const file = join(dir, 'squid.conf');
  writeFileSync(
    file,
    [
      `http_port 127.0.0.1:${listen}`,
      `pid_filename ${dir}/squid.pid`,
      `cache_log ${dir}/cache.log`,
      `access_log ${dir}/access.log squid`,
      `coredump_dir ${dir}`,
      'cache deny all',
      'cache_mem 0 MB',
      'pinger_enable off',
      'dns_nameservers 127.0.0.1',
      'digest_generation off',
      'netdb_filename none',
      'shutdown_lifetime 1 seconds',
      'http_access allow localhost',
      'http_access deny all',
      '',
    ].join('\n'),
  );
  let output = '';
  const child = spawn('squid', ['-N', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(() => {
    if (t.passing()) return;
    const log = join(dir, 'cache.log');
    t.comment(`squid (pid ${child.pid}, config ${file}) said:\n${output || '(nothing)'}\ncache.log:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '(none)'}`);
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.teardown(stop);
  await listening(listen);
  return { port: listen, pid: child.pid!, stop };
}

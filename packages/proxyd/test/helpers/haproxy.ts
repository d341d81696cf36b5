// Debian's HAProxy as a real load balancer in front of proxyd: started by the test in the foreground
// (-db) with its own config on free loopback ports, stopped by pid. What it says is shown only when the
// test fails.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { Test } from 'tap';
import { tempDir } from './proxy.ts';

export const haproxyMissing = spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).status === 0 ? false : 'haproxy is not installed (apt-get install haproxy)';

/** A free port on 127.0.0.1 (closed again at once; HAProxy binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts on 127.0.0.1:port, or rejects after `timeoutMs`. */
export async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/**
 * Run HAProxy with `config` (the part after global/defaults: frontends and backends, with `{dir}` for
 * its folder); waits until every port in `ports` accepts. Returns its folder (stats socket etc.) and what
 * it has said so far (its warnings name every state change of a server).
 */
export async function startHaproxy(t: Test, config: string, ports: number[]): Promise<{ dir: string; pid: number; output(): string }> {
  const dir = tempDir();
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(
    file,
    `global\n  stats socket ${dir}/stats.sock mode 600 level admin\n\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\n${config.replaceAll('{dir}', dir)}\n`,
  );
  let output = '';
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  t.teardown(() => {
    if (!t.passing()) t.comment(`haproxy (pid ${child.pid}, config ${file}) said:\n${output || '(nothing)'}`);
  });
  t.teardown(() => void child.kill('SIGKILL'));
  for (const port of ports) await listening(port);
  // The stats socket is made beside the listeners; under load it can come a moment after them.
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(dir, 'stats.sock')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { dir, pid: child.pid!, output: () => output };
}

/** A command on HAProxy's stats socket (a unix socket), and its answer. */
export function haproxyCommand(dir: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(join(dir, 'stats.sock'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d));
    socket.on('end', () => resolve(text.trim()));
    socket.on('error', reject);
    socket.end(`${command}\n`);
  });
}

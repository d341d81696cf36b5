// Debian's redis-server as the fleet's store: started by the test in the foreground with its own
// settings on a loopback port (no disk: --save '' --appendonly no), stopped by pid. It can be stopped and
// started again on the same port, to show the fleet losing and regaining its store. What it said is
// shown only when the test fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
import { listening } from './haproxy.ts';
import { tempDir } from './proxy.ts';

export const redisMissing = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0 ? false : 'redis-server is not installed (apt-get install redis-server)';

export interface TestRedis {
  port: number;
  url: string;
  /** The running server's pid (a new one after start()). */
  readonly pid: number;
  /** SIGTERM by pid; resolves once it has exited. */
  stop(): Promise<void>;
  /** Start it again on the same port; resolves once it accepts. */
  start(): Promise<void>;
}

export async function startRedis(t: Test, port: number): Promise<TestRedis> {
  const dir = tempDir();
  let output = '';
  let child: ChildProcess | undefined;
  const run = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d));
    child.stderr!.on('data', (d: Buffer) => (output += d));
    await listening(port);
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  t.teardown(() => {
    if (!t.passing()) t.comment(`redis-server on 127.0.0.1:${port} said:\n${output || '(nothing)'}`);
  });
  t.teardown(() => void child?.kill('SIGKILL'));
  await run();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child!.pid!;
    },
    stop,
    start: run,
  };
}

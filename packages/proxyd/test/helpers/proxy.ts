// Start proxyd in the test process (real listener, real worker threads, real logger thread), or as a
// child process through its CLI. Both are stopped by the test that started them.
import { closeSync, mkdtempSync, openSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { DEFAULTS, type ProxyOptions } from '../../src/config/options.ts';
import { startProxy, type RunningProxy } from '../../src/primary/start-proxy.ts';

export const BIN = new URL('../../bin/proxyd.js', import.meta.url).pathname;

// Every proxy a test starts dials loopback only (worker/guarded-lookup.ts: TEST_GUARD), so a hole in
// the destination policy fails a test instead of sending a packet anywhere. Also enables the
// crash-a-worker hook.
process.env.PROXYD_TEST_HOOKS = '1';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'proxyd-test-'));
}

export interface TestProxy extends RunningProxy {
  url: string;
  logFile: string;
}

export async function startTestProxy(overrides: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const logFile = join(tempDir(), 'proxy.log');
  const options: ProxyOptions = {
    ...DEFAULTS,
    host: '127.0.0.1',
    port: 0,
    workers: 2,
    logFile,
    statusIntervalMs: 0,
    logLevel: 'debug',
    connectPorts: [[1, 65535]],
    allowDest: ['127.0.0.0/8'], // the test origins live on loopback
    ...overrides,
  };
  const proxy = await startProxy(options);
  return Object.assign(proxy, { url: `http://127.0.0.1:${proxy.address.port}`, logFile });
}

/** The JSON records in a log file (empty if it does not exist yet). */
export function readLog(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Poll until `check()` is true (bounded), for state that another thread changes. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface CliProxy {
  child: ChildProcess;
  url: string;
  port: number;
  logFile: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Run the real `proxyd` command; resolves once it says where it listens — on stdout, or with
 * `stdoutToDevNull` (stdout is /dev/null, as under StandardOutput=null) in its log file.
 */
export async function startCliProxy(args: string[], env: NodeJS.ProcessEnv = {}, { allowLoopback = true, stdoutToDevNull = false } = {}): Promise<CliProxy> {
  const logFile = join(tempDir(), 'proxy.log');
  const loopback = allowLoopback ? ['--allow-dest', '127.0.0.0/8'] : [];
  // The admin server on a port of its own: the default (9090) is one port for every test file, and tap
  // runs test files side by side.
  const admin = args.includes('--admin') ? [] : ['--admin', '127.0.0.1:0'];
  const devNull = stdoutToDevNull ? openSync('/dev/null', 'w') : undefined;
  const child = spawn(process.execPath, [BIN, '--host', '127.0.0.1', '--port', '0', '--log-file', logFile, ...admin, ...loopback, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', devNull ?? 'pipe', 'pipe'],
  });
  if (devNull !== undefined) closeSync(devNull); // the child has its own copy
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 20_000;
  let port = 0;
  while (!port) {
    const said = stdoutToDevNull && existsSync(logFile) ? readFileSync(logFile, 'utf8') : out;
    const m = /listening on https?:\/\/127\.0\.0\.1:(\d+)|"listen":"127\.0\.0\.1:(\d+)"/.exec(said);
    if (m) port = Number(m[1] ?? m[2]);
    else if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`proxyd did not start: exit ${child.exitCode}\nstdout: ${out}\nstderr: ${err}`);
    } else await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    logFile,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

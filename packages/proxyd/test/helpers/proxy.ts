// Start proxyd in the test process (real listener, real worker threads, real logger thread), or as a
// child process through its CLI. Both are stopped by the test that started them.
import { closeSync, mkdtempSync, openSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
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
  /** The logger's readable lines (what a real run prints on stdout), in a file of the proxy's own. */
  stdoutFile: string;
}

/** Is this a tap test (rather than an options object)? */
function isTest(x: unknown): x is Test {
  return typeof x === 'object' && x !== null && typeof (x as Test).teardown === 'function' && typeof (x as Test).passing === 'function';
}

// startProxy reads PROXYD_TEST_STDOUT_FILE when it starts the logger thread (a worker's environment is
// a copy of ours taken when it is created), so proxies start one at a time.
let starting: Promise<unknown> = Promise.resolve();

/**
 * proxyd in this process. Its readable log lines go to `stdoutFile`, not to this process's stdout (tap
 * reads the test's results there); given the test `t`, the proxy's logs are shown when `t` fails.
 */
export async function startTestProxy(t: Test, overrides?: Partial<ProxyOptions>): Promise<TestProxy>;
/** Without a test: quiet all the same, but nothing is shown on failure. Prefer passing the test. */
export async function startTestProxy(overrides?: Partial<ProxyOptions>): Promise<TestProxy>;
export async function startTestProxy(first?: Test | Partial<ProxyOptions>, second?: Partial<ProxyOptions>): Promise<TestProxy> {
  const t = isTest(first) ? first : undefined;
  const overrides = (isTest(first) ? second : first) ?? {};
  const dir = tempDir();
  const logFile = join(dir, 'proxy.log');
  const stdoutFile = join(dir, 'stdout.txt');
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
  const started = starting.then(async () => {
    process.env.PROXYD_TEST_STDOUT_FILE = stdoutFile; // read by src/logger/stdout.ts (test hooks only)
    try {
      return await startProxy(options);
    } finally {
      delete process.env.PROXYD_TEST_STDOUT_FILE;
    }
  });
  starting = started.catch(() => {});
  const proxy = await started;
  const url = `http://127.0.0.1:${proxy.address.port}`;
  if (t) showLogsOnFailure(t, `proxyd ${url}`, [['readable log', stdoutFile]], logFile);
  return Object.assign(proxy, { url, logFile, stdoutFile });
}

const TAIL_LINES = 60;

/** The last `lines` lines of a file ('' if it does not exist). */
export function tail(file: string, lines = TAIL_LINES): string {
  if (!existsSync(file)) return '';
  const all = readFileSync(file, 'utf8').split('\n');
  if (all.at(-1) === '') all.pop();
  const shown = all.slice(-lines);
  return (all.length > shown.length ? [`… ${all.length - shown.length} earlier lines`, ...shown] : shown).join('\n');
}

/**
 * When `t` fails (checked as it ends, after its own teardowns: those are run last-registered first),
 * print the tail of each file as a comment, and where the JSON log is.
 */
export function showLogsOnFailure(t: Test, name: string, files: [label: string, file: string | (() => string)][], logFile: string): void {
  t.teardown(async () => {
    if (t.passing()) return;
    await new Promise((r) => setTimeout(r, 100)); // a still-running logger writes in 10 ms batches
    for (const [label, file] of files) {
      const text = typeof file === 'function' ? file() : tail(file);
      const where = typeof file === 'function' ? '' : ` (${file})`;
      t.comment(`${name}: ${label}${where}:\n${text === '' ? '(empty)' : text}`);
    }
    t.comment(`${name}: JSON log in ${logFile}`);
  });
}

/**
 * The JSON records in a log file (empty if it does not exist yet). A last line without its newline is
 * still being written by the logger thread (a test that polls may read in the middle of a write): it
 * is left for the next read.
 */
export function readLog(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(0, -1)
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Poll until `check()` is true (bounded), for state that another thread (or a browser) changes. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface CliProxy {
  child: ChildProcess;
  url: string;
  port: number;
  logFile: string;
  /** Where the child's stdout goes (its readable log lines): a file of its own. */
  stdoutFile: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Run the real `proxyd` command; resolves once it says where it listens — on stdout, or with
 * `stdoutToDevNull` (stdout is /dev/null, as under StandardOutput=null) in its log file. Its stdout
 * goes to a file (`stdoutFile`), not to the test's output; when `t` fails, its tail and stderr are shown.
 * `wrap`: a command that runs node (e.g. ['prlimit', '--nofile=200:200', '--']); it must exec it, so that
 * the child's pid is proxyd's.
 */
export async function startCliProxy(t: Test, args: string[], env: NodeJS.ProcessEnv = {}, { allowLoopback = true, stdoutToDevNull = false, wrap = [] as string[] } = {}): Promise<CliProxy> {
  const dir = tempDir();
  const logFile = join(dir, 'proxy.log');
  const stdoutFile = join(dir, 'stdout.txt');
  const loopback = allowLoopback ? ['--allow-dest', '127.0.0.0/8'] : [];
  // The admin server on a port of its own: the default (9090) is one port for every test file, and tap
  // runs test files side by side.
  const admin = args.includes('--admin') ? [] : ['--admin', '127.0.0.1:0'];
  const out = openSync(stdoutToDevNull ? '/dev/null' : stdoutFile, 'a');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.PROXYD_TEST_STDOUT_FILE; // an in-process proxy's, if one is starting right now
  const command = [...wrap, process.execPath];
  const child = spawn(command[0]!, [...command.slice(1), BIN, '--host', '127.0.0.1', '--port', '0', '--log-file', logFile, ...admin, ...loopback, ...args], {
    env: childEnv,
    stdio: ['ignore', out, 'pipe'],
  });
  closeSync(out); // the child has its own copy
  const stdout = (): string => (!stdoutToDevNull && existsSync(stdoutFile) ? readFileSync(stdoutFile, 'utf8') : '');
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 20_000;
  let port = 0;
  while (!port) {
    const said = stdoutToDevNull ? (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') : stdout();
    const m = /listening on https?:\/\/127\.0\.0\.1:(\d+)|"listen":"127\.0\.0\.1:(\d+)"/.exec(said);
    if (m) port = Number(m[1] ?? m[2]);
    else if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`proxyd did not start: exit ${child.exitCode}\nstdout: ${tail(stdoutFile)}\nstderr: ${err}`);
    } else await new Promise((r) => setTimeout(r, 25));
  }
  const name = `proxyd (CLI, pid ${child.pid}) on 127.0.0.1:${port}`;
  showLogsOnFailure(t, name, [...(stdoutToDevNull ? [] : [['stdout', stdoutFile] as [string, string]]), ['stderr', () => err]], logFile);
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    logFile,
    stdoutFile,
    stdout,
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

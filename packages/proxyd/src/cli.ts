/**
 * proxyd's command line. `proxyd [options]` runs the proxy; `proxyd check-config [--config FILE]`
 * checks what start-up checks and prints the effective configuration. Options come from three layers:
 * defaults < the config file (--config) < flags. A bad value anywhere, a bad file or an address that
 * cannot be had is one line on stderr and exit 2, before anything serves.
 * Signals: SIGTERM/SIGINT drain and exit 0 (a second one, a second or more later, ends the drain at
 * once); SIGHUP re-reads the config file, the blocklist and the auth file, applies what can change live
 * and says what needs a restart.
 */
import type { AdminServer } from './admin/admin-server.ts';
import type http from './builtins/http.ts';
import { buildParser, effectiveOptions, readCommandLine, unreadableCommandLine, type CommandLine } from './config/command-line.ts';
import { formatDuration } from './config/duration.ts';
import { encodeOptions } from './config/encode-options.ts';
import { OptionError } from './config/option-error.ts';
import type { ProxyOptions } from './config/options.ts';
import { FileError, loadStartupFiles, type StartupFiles } from './primary/load-files.ts';
import type { RunningProxy } from './primary/start-proxy.ts';
import { plural } from './primary/words.ts';

/** A running proxyd: what the signal handlers stop or reload. */
interface Running {
  proxy: RunningProxy;
  admin: AdminServer | undefined;
  /** Re-read on SIGHUP: the same config file, the same flags. */
  commandLine: CommandLine;
  stopping: boolean;
  /** When the first stop signal came (Date.now()). */
  stoppingSince?: number;
}

export async function main(argv: string[]): Promise<void> {
  const commandLine = await readArguments(argv);
  const options = optionsOrFail(commandLine);
  if (commandLine.command === 'check-config') return checkConfig(commandLine, options);
  const running = await startEverything(options, commandLine);
  printBanner(running);
  process.on('SIGTERM', onStopSignal.bind(undefined, running));
  process.on('SIGINT', onStopSignal.bind(undefined, running));
  process.on('SIGHUP', onReloadSignal.bind(undefined, running));
  stopWhenNpxIsGone(running);
}

/**
 * Every refusal: one line, then exit 2. One line is the promise (journald shows it whole, a script can
 * read it): a message that spans lines (a library's) is joined into one.
 */
function fail(message: string): never {
  process.stderr.write(`proxyd: ${message.trim().replace(/\s*\n\s*/g, '; ')}\n`);
  process.exit(2);
}

/** Print an OptionError or a FileError as the one line it is; anything else is not bad input: rethrow. */
function failOnBadInput(err: unknown): never {
  if (err instanceof OptionError || err instanceof FileError) fail(err.message);
  throw err;
}

/** yargs reports a failure of its own here (it checks nothing, so none is expected): one line all the same. */
function onParserFailure(message: string | undefined, err: Error | undefined): never {
  fail(err?.message ?? message ?? 'cannot read the command line');
}

/** argv → the command line; --help and --version print and exit inside yargs. */
async function readArguments(argv: string[]): Promise<CommandLine> {
  let args: Record<string, unknown>;
  try {
    args = (await buildParser(argv).fail(onParserFailure).parseAsync()) as Record<string, unknown>;
  } catch (err) {
    fail(unreadableCommandLine(argv, err as Error).message);
  }
  try {
    return readCommandLine(args);
  } catch (err) {
    failOnBadInput(err);
  }
}

function optionsOrFail(commandLine: CommandLine): ProxyOptions {
  try {
    return effectiveOptions(commandLine);
  } catch (err) {
    failOnBadInput(err);
  }
}

/**
 * check-config: everything start-up checks before it listens — each option, the rules between them and
 * every file they name (the same loaders, so the same one line on a bad file) — then the effective
 * options in the config file's own form on stdout. The verdict goes to stderr, so that
 * `proxyd check-config … > proxyd.json` saves a config file that gives the same options.
 */
async function checkConfig(commandLine: CommandLine, options: ProxyOptions): Promise<void> {
  let files: StartupFiles;
  try {
    files = await loadStartupFiles(options);
  } catch (err) {
    failOnBadInput(err);
  }
  process.stdout.write(`${JSON.stringify(encodeOptions(options), null, 2)}\n`);
  const layers = `${commandLine.configFile ?? 'defaults'} + flags`;
  const read = filesRead(options, files);
  process.stderr.write(`proxyd: configuration OK (${layers}${read ? `; read ${read}` : ''})\n`);
}

/** `blocklist /etc/proxyd/blocklist.txt (12 domains), auth file users (1 user), …`, or '' when none. */
function filesRead(options: ProxyOptions, files: StartupFiles): string {
  const read: string[] = [];
  if (options.blocklistFile) read.push(`blocklist ${options.blocklistFile} (${plural(files.blocklist.rules.length, 'domain')})`);
  if (options.authFile && files.users) read.push(`auth file ${options.authFile} (${plural(files.users.size, 'user')})`);
  if (files.tls) read.push(`TLS certificate ${options.tlsCert} and key ${options.tlsKey}`);
  return read.join(', ');
}

/**
 * The files the options name, the admin address, the proxy, then the admin server's answers; any of them
 * failing is the one line and exit 2. Files and the admin port come first, so that a bad file or a busy
 * admin port is refused before the proxy listens.
 */
async function startEverything(options: ProxyOptions, commandLine: CommandLine): Promise<Running> {
  const files = await loadStartupFiles(options).catch(failOnBadInput);
  const adminListener = await listenAdminOrFail(options);
  const proxy = await startProxyOrFail(options, files);
  const admin = await startAdminOrFail(proxy, adminListener);
  return { proxy, admin, commandLine, stopping: false };
}

/** Why a listener could not be had, by error code: with the port where the port is the trouble. */
const LISTEN_PROBLEMS: Readonly<Record<string, { withPort: boolean; problem: string }>> = {
  EADDRINUSE: { withPort: true, problem: 'the address is in use' },
  EACCES: { withPort: true, problem: 'permission denied (ports below 1024 need privileges)' },
  EADDRNOTAVAIL: { withPort: false, problem: 'no such address on this machine' },
  ENOTFOUND: { withPort: false, problem: 'no such host' },
  EAI_AGAIN: { withPort: false, problem: 'the name could not be looked up (DNS did not answer)' },
};

// The proxy and the admin server are imported when they start, not with this file: --help, --version,
// check-config and every refusal before start-up then skip loading piscina, winston and prom-client
// (about a third of the command's start-up CPU).
async function startProxyOrFail(options: ProxyOptions, files: StartupFiles): Promise<RunningProxy> {
  const { startProxy } = await import('./primary/start-proxy.ts');
  try {
    return await startProxy(options, files);
  } catch (err) {
    if (err instanceof FileError) fail(err.message);
    const e = err as NodeJS.ErrnoException;
    // Only errors of listening itself (bind, or the name lookup before it): an EACCES elsewhere is not a port's.
    const known = (e.syscall === 'listen' || e.syscall === 'bind' || e.syscall === 'getaddrinfo') && e.code ? LISTEN_PROBLEMS[e.code] : undefined;
    if (known) fail(`cannot listen on ${options.host}${known.withPort ? `:${options.port}` : ''}: ${known.problem}`);
    fail(e.message);
  }
}

/** Listen on --admin's address (not yet answering): one line and exit 2 if it cannot be had. */
async function listenAdminOrFail(options: ProxyOptions): Promise<http.Server | undefined> {
  const where = options.admin;
  if (!where) return undefined; // --admin off: not even loaded (prom-client is ~2 MiB of heap)
  const { listenAdmin } = await import('./admin/admin-server.ts');
  try {
    return await listenAdmin(where);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const known = e.code ? LISTEN_PROBLEMS[e.code] : undefined;
    fail(known ? `cannot start the admin server on ${where.host}${known.withPort ? `:${where.port}` : ''}: ${known.problem} (--admin off to run without it)` : e.message);
  }
}

async function startAdminOrFail(proxy: RunningProxy, listening: http.Server | undefined): Promise<AdminServer | undefined> {
  if (!listening) return undefined;
  const { startAdminServer } = await import('./admin/admin-server.ts');
  try {
    return await startAdminServer(proxy, listening);
  } catch (err) {
    await proxy.close(0);
    fail((err as Error).message);
  }
}

/** An address as a URL writes it: IPv6 in brackets. */
function urlHost(address: { address: string; family: string }): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

/** Where it listens, how it serves, who may use it, where the dashboard is, and a command to try. */
function printBanner({ proxy, admin }: Running): void {
  const { options, address } = proxy;
  const proxyUrl = `${options.tlsCert ? 'https' : 'http'}://${urlHost(address)}:${address.port}`;
  const serving = options.workers === 0 ? 'serving on the primary thread' : plural(options.workers, 'worker thread');
  process.stdout.write(
    `proxyd listening on ${proxyUrl} — ${serving}, ${options.maxClients} clients at once, ${options.maxWaiting} may wait; log: ${options.logFile}\n` +
      `who may use it: ${proxy.access}\n` +
      `where it may go: ${proxy.destinations}\n` +
      `open files: ${proxy.openFiles}\n` +
      (admin ? `dashboard and metrics: http://${urlHost(admin.address)}:${admin.address.port}/\n` : '') +
      `try: curl --proxy ${proxyUrl}${options.tlsCert ? ' --proxy-insecure' : ''} http://example.com/\n`,
  );
  if (proxy.accessWarning) process.stderr.write(`proxyd: warning: ${proxy.accessWarning}\n`);
  if (proxy.allowDestWarning) process.stderr.write(`proxyd: warning: ${proxy.allowDestWarning}\n`);
  if (proxy.openFilesWarning) process.stderr.write(`proxyd: warning: ${proxy.openFilesWarning}\n`);
}

/**
 * A repeat of the stop signal within this long is the same stop, not a second one: under `npm start` or
 * `npx` with bash as npm's shell, Ctrl-C reaches proxyd from the terminal and again from npm, a few
 * milliseconds apart (and KillMode=control-group signals every process of a unit).
 */
const SAME_STOP_MS = 1000;

/** SIGTERM/SIGINT: drain; a second signal during the drain (Ctrl-C again) ends the grace period at once. */
function onStopSignal(running: Running, signal: NodeJS.Signals | 'npx has exited'): void {
  if (running.stopping) {
    if (signal === 'npx has exited' || Date.now() - (running.stoppingSince ?? 0) < SAME_STOP_MS) return;
    const open = running.proxy.hurry();
    process.stdout.write(`proxyd: ${signal} again: ${open > 0 ? `closing ${plural(open, 'open connection')} now` : 'stopping now'}\n`);
    return;
  }
  running.stopping = true;
  running.stoppingSince = Date.now();
  void stopEverything(running, signal);
}

/**
 * `npx proxyd` runs the command through `sh -c`, and on SIGTERM npm signals only that shell, which dies
 * and leaves its child — proxyd — running with nobody to stop it (npm does this to every package's
 * command; Debian's sh forks rather than execs it). So when npx started proxyd (npm sets
 * npm_lifecycle_event=npx) and the parent goes away, proxyd stops as it does on SIGTERM. A parent that
 * leaves in any other case (nohup, a shell that daemonizes it) changes nothing.
 */
function stopWhenNpxIsGone(running: Running): void {
  if (process.env.npm_lifecycle_event !== 'npx') return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onStopSignal(running, 'npx has exited');
  }, 250);
  timer.unref();
}

/**
 * Drain the proxy, and only then close the admin server. Through the drain /readyz answers 503
 * (proxy.ready turns false as close() begins), so a load balancer takes this host out, while /healthz
 * still answers 200 and /metrics can still be scraped: the process is alive and finishing its work.
 * Closed first, the admin server would refuse all three, which a health check reads as a crash.
 */
async function stopEverything({ proxy, admin }: Running, signal: NodeJS.Signals | 'npx has exited'): Promise<void> {
  process.stdout.write(`proxyd: ${signal}: draining open connections (up to ${formatDuration(proxy.options.shutdownGraceMs)}; a second signal stops at once)\n`);
  const { closedAtDeadline } = await proxy.close();
  await admin?.close();
  process.stdout.write(`proxyd: stopped${closedAtDeadline ? ` (${plural(closedAtDeadline, 'connection')} closed at the deadline)` : ''}\n`);
  process.exitCode = 0;
  // Everything is closed and flushed; should a handle still hold the event loop, exit anyway, after
  // giving stdout a moment to drain. Unref'd: a process with nothing left exits without waiting.
  setTimeout(exitNow, 100).unref();
}

function exitNow(): void {
  process.exit(0);
}

/** SIGHUP: re-read the config file (the flags still win over it) and apply; a bad file is logged, nothing changes. */
function onReloadSignal(running: Running): void {
  let next: ProxyOptions;
  try {
    next = effectiveOptions(running.commandLine);
  } catch (err) {
    return void running.proxy.reloadFailed((err as Error).message);
  }
  void running.proxy.reload(next);
}

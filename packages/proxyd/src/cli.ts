/**
 * proxyd's command line: parse and validate every flag (a bad value is one line and exit 2), start the
 * proxy, print where it listens, and turn signals into actions: SIGTERM/SIGINT drain and exit 0,
 * SIGHUP reloads the blocklist.
 */
import os from 'node:os';
import net from 'node:net';
import yargs from 'yargs';
import { DEFAULTS, LOG_LEVELS, type LogLevel, type ProxyOptions } from './config/options.ts';
import { formatDuration, parseDuration } from './config/duration.ts';
import { formatPortList, parsePortList } from './config/port-list.ts';
import { startProxy } from './primary/start-proxy.ts';
import { addCidr } from './policy/address-rules.ts';

const DEFAULT_WORKERS = Math.max(1, Math.min(os.availableParallelism(), 8));

class UsageError extends Error {}

function wholeNumber(name: string, min: number, max: number) {
  return (value: unknown): number => {
    const n = Number(value);
    if (value === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${String(value)}"`);
    }
    return n;
  };
}

function duration(name: string) {
  return (value: unknown): number => {
    try {
      return parseDuration(String(value), `--${name}`);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
}

export function buildParser(argv: string[]) {
  return yargs(argv)
    .scriptName('proxyd')
    .usage('proxyd [options]\n\nA forward HTTP/HTTPS proxy: a primary thread accepts, a semaphore admits, worker threads serve.\nDurations take 500ms, 30s, 2m, 1h (a bare number is seconds).')
    .option('host', { type: 'string', default: DEFAULTS.host, describe: 'address to listen on (0.0.0.0 or :: for every interface)' })
    .option('port', { type: 'string', default: String(DEFAULTS.port), describe: 'port to listen on (0: any free port)' })
    .option('workers', { type: 'string', default: String(DEFAULT_WORKERS), describe: 'worker threads serving connections (0: serve on the primary thread)', defaultDescription: `${DEFAULT_WORKERS} (this machine's CPUs, at most 8)` })
    .option('max-clients', { type: 'string', default: String(DEFAULTS.maxClients), describe: 'connections served at once (semaphore permits); the rest wait in a FIFO queue' })
    .option('max-waiting', { type: 'string', default: String(DEFAULTS.maxWaiting), describe: 'connections that may wait for a permit; more are answered 503 at once' })
    .option('queue-timeout', { type: 'string', default: formatDuration(DEFAULTS.queueTimeoutMs), describe: 'longest wait for a permit before 503 Service Unavailable' })
    .option('idle-timeout', { type: 'string', default: formatDuration(DEFAULTS.idleTimeoutMs), describe: 'close a connection or tunnel with no bytes either way for this long, releasing its permit' })
    .option('upstream-timeout', { type: 'string', default: formatDuration(DEFAULTS.upstreamTimeoutMs), describe: 'no response (or CONNECT connection) from the destination within this: 504' })
    .option('headers-timeout', { type: 'string', default: formatDuration(DEFAULTS.headersTimeoutMs), describe: "a request's line and headers must arrive within this, or 408 (slow-header attacks)" })
    .option('connect-ports', { type: 'string', default: formatPortList(DEFAULTS.connectPorts), describe: 'ports CONNECT may reach: a list with ranges, e.g. 443,8443,9000-9099' })
    .option('blocked-http-ports', { type: 'string', default: formatPortList(DEFAULTS.blockedHttpPorts), describe: 'ports plain HTTP may not reach (mail, ssh, …); "none" allows every port' })
    .option('allow-client', { type: 'string', array: true, default: [] as string[], describe: 'also let these clients in (repeatable CIDR, e.g. 203.0.113.7/32); "any" lets everyone in. Default: loopback and private ranges only', defaultDescription: 'loopback + private ranges' })
    .option('allow-dest', { type: 'string', array: true, default: [] as string[], describe: 'let the proxy reach these loopback ranges (repeatable CIDR, e.g. 127.0.0.0/8); link-local and cloud metadata addresses stay forbidden', defaultDescription: 'none' })
    .option('auth-file', { type: 'string', describe: 'htpasswd file (bcrypt, e.g. htpasswd -B); every request then needs Proxy-Authorization, from any address; SIGHUP reloads it' })
    .option('auth-realm', { type: 'string', default: DEFAULTS.authRealm, describe: 'realm named in the 407 Proxy-Authenticate header' })
    .option('tls-cert', { type: 'string', describe: 'PEM certificate: the listener speaks TLS (clients use an https:// proxy URL); needs --tls-key' })
    .option('tls-key', { type: 'string', describe: 'PEM private key for --tls-cert' })
    .option('max-header-size', { type: 'string', default: String(DEFAULTS.maxHeaderBytes), describe: 'largest request head (request line + headers) in bytes, or 431' })
    .option('max-url-length', { type: 'string', default: String(DEFAULTS.maxUrlBytes), describe: 'longest request target in bytes, or 414' })
    .option('blocklist', { type: 'string', describe: 'file of blocked domains, one per line (# comments); each blocks its subdomains; SIGHUP reloads it' })
    .option('log-file', { type: 'string', default: DEFAULTS.logFile, describe: 'JSON-lines log file (readable lines also go to stdout)' })
    .option('log-level', { type: 'string', default: DEFAULTS.logLevel, choices: LOG_LEVELS as string[], describe: 'least severe events logged (debug adds accept/admit/close of every connection)' })
    .option('shutdown-grace', { type: 'string', default: formatDuration(DEFAULTS.shutdownGraceMs), describe: 'on SIGTERM/SIGINT, how long open connections may finish before they are closed' })
    .option('status-interval', { type: 'string', default: formatDuration(DEFAULTS.statusIntervalMs), describe: 'status line (active, waiting, totals) this often while busy; 0 turns it off' })
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110));
}

/** Turn parsed flags into validated options; throws UsageError with one line. */
export function toOptions(args: Record<string, unknown>): ProxyOptions {
  const port = wholeNumber('port', 0, 65535)(args.port);
  let connectPorts;
  try {
    connectPorts = parsePortList(String(args['connect-ports']), '--connect-ports');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let blockedHttpPorts;
  try {
    blockedHttpPorts = String(args['blocked-http-ports']) === 'none' ? [] : parsePortList(String(args['blocked-http-ports']), '--blocked-http-ports');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const cidrs = (name: string): string[] => {
    const list = (args[name] as unknown[] | undefined ?? []).flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter((v) => v !== '');
    for (const cidr of list) {
      if (name === 'allow-client' && cidr.toLowerCase() === 'any') continue;
      try {
        addCidr(new net.BlockList(), cidr, `--${name}`);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    return list;
  };
  if (Boolean(args['tls-cert']) !== Boolean(args['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const host = String(args.host);
  if (host === '') throw new UsageError('--host must not be empty');
  const statusIntervalMs = String(args['status-interval']) === '0' ? 0 : duration('status-interval')(args['status-interval']);
  return {
    host,
    port,
    workers: wholeNumber('workers', 0, 256)(args.workers),
    maxClients: wholeNumber('max-clients', 1, 100_000)(args['max-clients']),
    maxWaiting: wholeNumber('max-waiting', 0, 1_000_000)(args['max-waiting']),
    queueTimeoutMs: duration('queue-timeout')(args['queue-timeout']),
    idleTimeoutMs: duration('idle-timeout')(args['idle-timeout']),
    upstreamTimeoutMs: duration('upstream-timeout')(args['upstream-timeout']),
    headersTimeoutMs: duration('headers-timeout')(args['headers-timeout']),
    connectPorts,
    blockedHttpPorts,
    allowClient: cidrs('allow-client'),
    allowDest: cidrs('allow-dest'),
    authFile: args['auth-file'] === undefined ? undefined : String(args['auth-file']),
    authRealm: String(args['auth-realm']).replace(/["\\]/g, ''),
    tlsCert: args['tls-cert'] === undefined ? undefined : String(args['tls-cert']),
    tlsKey: args['tls-key'] === undefined ? undefined : String(args['tls-key']),
    maxHeaderBytes: wholeNumber('max-header-size', 1024, 1024 * 1024)(args['max-header-size']),
    maxUrlBytes: wholeNumber('max-url-length', 64, 1024 * 1024)(args['max-url-length']),
    blocklistFile: args.blocklist === undefined ? undefined : String(args.blocklist),
    logFile: String(args['log-file']),
    logLevel: String(args['log-level']) as LogLevel,
    shutdownGraceMs: duration('shutdown-grace')(args['shutdown-grace']),
    statusIntervalMs,
    logRingBytes: DEFAULTS.logRingBytes,
  };
}

function fail(message: string): never {
  process.stderr.write(`proxyd: ${message}\n(see proxyd --help)\n`);
  process.exit(2);
}

export async function main(argv: string[]): Promise<void> {
  const parser = buildParser(argv).fail((msg, err) => fail(err?.message ?? msg));
  const args = (await parser.parseAsync()) as Record<string, unknown>;
  let options: ProxyOptions;
  try {
    options = toOptions(args);
  } catch (err) {
    if (err instanceof UsageError) fail(err.message);
    throw err;
  }

  let proxy;
  try {
    proxy = await startProxy(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') fail(`cannot listen on ${options.host}:${options.port}: the address is in use`);
    if (e.code === 'EACCES') fail(`cannot listen on ${options.host}:${options.port}: permission denied (ports below 1024 need privileges)`);
    if (e.code === 'EADDRNOTAVAIL') fail(`cannot listen on ${options.host}: no such address on this machine`);
    fail(e.message);
  }

  const { address } = proxy;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const scheme = options.tlsCert ? 'https' : 'http';
  process.stdout.write(
    `proxyd listening on ${scheme}://${shown}:${address.port} — ${options.workers === 0 ? 'serving on the primary thread' : `${options.workers} worker threads`}, ` +
      `${options.maxClients} clients at once, ${options.maxWaiting} may wait; log: ${options.logFile}\n` +
      `who may use it: ${proxy.access}\n` +
      `try: curl --proxy ${scheme}://${shown}:${address.port}${options.tlsCert ? ' --proxy-insecure' : ''} http://example.com/\n`,
  );
  if (proxy.accessWarning) process.stderr.write(`proxyd: warning: ${proxy.accessWarning}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`proxyd: ${signal}: draining open connections (up to ${formatDuration(options.shutdownGraceMs)})\n`);
    void proxy.close().then(({ closedAtDeadline }) => {
      process.stdout.write(`proxyd: stopped${closedAtDeadline ? ` (${closedAtDeadline} connections closed at the deadline)` : ''}\n`);
      process.exitCode = 0;
      setTimeout(() => process.exit(0), 100).unref();
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void proxy.reload());
}

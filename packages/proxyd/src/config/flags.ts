/**
 * Every option proxyd has, in one table: its command-line flag, its key in the config file (the same
 * name), its default, its help text, and whether SIGHUP can change it while running. The CLI, the
 * config-file schema and the reload all read this table, so they cannot disagree.
 */
import os from 'node:os';
import { DEFAULTS, LOG_LEVELS, type ProxyOptions } from './options.ts';
import { formatDuration } from './duration.ts';
import { formatPortList } from './port-list.ts';

export type FlagKind = 'string' | 'list';

export interface Flag {
  kind: FlagKind;
  /** The default as it would be written on the command line (undefined: unset). */
  default: string | string[] | undefined;
  /** How --help shows the default, when not the raw default. */
  defaultDescription?: string;
  describe: string;
  /** True when a SIGHUP reload applies a new value to the running proxy. */
  live: boolean;
  choices?: readonly string[];
}

export const DEFAULT_WORKERS = Math.max(1, Math.min(os.availableParallelism(), 8));

export const FLAGS = {
  host: { kind: 'string', default: DEFAULTS.host, live: false, describe: 'address to listen on (0.0.0.0 or :: for every interface)' },
  port: { kind: 'string', default: String(DEFAULTS.port), live: false, describe: 'port to listen on (0: any free port)' },
  workers: { kind: 'string', default: String(DEFAULT_WORKERS), defaultDescription: `${DEFAULT_WORKERS} (this machine's CPUs, at most 8)`, live: false, describe: 'worker threads serving connections (0: serve on the primary thread)' },
  'max-clients': { kind: 'string', default: String(DEFAULTS.maxClients), live: false, describe: 'connections served at once (semaphore permits); the rest wait in a FIFO queue' },
  'max-waiting': { kind: 'string', default: String(DEFAULTS.maxWaiting), live: false, describe: 'connections that may wait for a permit; more are answered 503 at once' },
  'queue-timeout': { kind: 'string', default: formatDuration(DEFAULTS.queueTimeoutMs), live: true, describe: 'longest wait for a permit before 503 Service Unavailable' },
  'idle-timeout': { kind: 'string', default: formatDuration(DEFAULTS.idleTimeoutMs), live: true, describe: 'close a connection or tunnel with no bytes either way for this long, releasing its permit' },
  'upstream-timeout': { kind: 'string', default: formatDuration(DEFAULTS.upstreamTimeoutMs), live: true, describe: 'no response (or CONNECT connection) from the destination within this: 504' },
  'headers-timeout': { kind: 'string', default: formatDuration(DEFAULTS.headersTimeoutMs), live: true, describe: "a request's line and headers must arrive within this, or 408 (slow-header attacks)" },
  'connect-ports': { kind: 'string', default: formatPortList(DEFAULTS.connectPorts), live: true, describe: 'ports CONNECT may reach: a list with ranges, e.g. 443,8443,9000-9099' },
  'blocked-http-ports': { kind: 'string', default: formatPortList(DEFAULTS.blockedHttpPorts), live: true, describe: 'ports plain HTTP may not reach (mail, ssh, …); "none" allows every port' },
  'allow-client': { kind: 'list', default: [], defaultDescription: 'loopback + private ranges', live: true, describe: 'also let these clients in (repeatable CIDR, e.g. 203.0.113.7/32); "any" lets everyone in' },
  'allow-dest': { kind: 'list', default: [], defaultDescription: 'none', live: true, describe: 'let the proxy reach these loopback ranges (repeatable CIDR, e.g. 127.0.0.0/8); link-local and cloud metadata stay forbidden' },
  'auth-file': { kind: 'string', default: undefined, live: true, describe: 'htpasswd file (bcrypt: htpasswd -B); every request then needs Proxy-Authorization, from any address; SIGHUP reloads it' },
  'auth-realm': { kind: 'string', default: DEFAULTS.authRealm, live: true, describe: 'realm named in the 407 Proxy-Authenticate header' },
  'tls-cert': { kind: 'string', default: undefined, live: false, describe: 'PEM certificate: the listener speaks TLS (clients use an https:// proxy URL); needs --tls-key' },
  'tls-key': { kind: 'string', default: undefined, live: false, describe: 'PEM private key for --tls-cert' },
  'max-header-size': { kind: 'string', default: String(DEFAULTS.maxHeaderBytes), live: false, describe: 'largest request head (request line + headers) in bytes, or 431' },
  'max-url-length': { kind: 'string', default: String(DEFAULTS.maxUrlBytes), live: true, describe: 'longest request target in bytes, or 414' },
  blocklist: { kind: 'string', default: undefined, live: true, describe: 'file of blocked domains, one per line (# comments); each blocks its subdomains; SIGHUP reloads it' },
  admin: { kind: 'string', default: '127.0.0.1:9090', live: false, describe: 'admin server (dashboard, /metrics, /api/stats, /healthz): host:port, or "off"; a non-loopback address needs --auth-file' },
  'log-file': { kind: 'string', default: DEFAULTS.logFile, live: false, describe: 'JSON-lines log file (readable lines also go to stdout, unless it is /dev/null)' },
  'log-level': { kind: 'string', default: DEFAULTS.logLevel, choices: LOG_LEVELS, live: true, describe: 'least severe events logged (debug adds accept/admit/close of every connection)' },
  'log-max-size': { kind: 'string', default: String(DEFAULTS.logMaxBytes), live: false, describe: 'rotate the log file when it reaches this many bytes (0: never; it may pass them by one write batch, about 64 KiB)' },
  'log-max-files': { kind: 'string', default: String(DEFAULTS.logMaxFiles), live: false, describe: 'rotated log files to keep (proxy1.log … proxyN.log beside proxy.log, which is always the newest)' },
  'shutdown-grace': { kind: 'string', default: formatDuration(DEFAULTS.shutdownGraceMs), live: true, describe: 'on SIGTERM/SIGINT, how long open connections may finish before they are closed' },
  'status-interval': { kind: 'string', default: formatDuration(DEFAULTS.statusIntervalMs), live: false, describe: 'status line (active, waiting, totals) this often while busy; 0 turns it off' },
} as const satisfies Record<string, Flag>;

export type FlagName = keyof typeof FLAGS;
export const FLAG_NAMES = Object.keys(FLAGS) as FlagName[];

/** Raw option values as written on the command line or in the config file. */
export type RawOptions = Partial<Record<FlagName, string | string[]>>;

/** The defaults, as raw values. */
export function defaultRaw(): RawOptions {
  const raw: RawOptions = {};
  for (const name of FLAG_NAMES) {
    const d = FLAGS[name].default;
    if (d !== undefined) raw[name] = Array.isArray(d) ? [...d] : d;
  }
  return raw;
}

/** Which ProxyOptions field each flag sets (for reload: what changed, and can it change live?). */
export const FIELD_OF = {
  host: 'host',
  port: 'port',
  workers: 'workers',
  'max-clients': 'maxClients',
  'max-waiting': 'maxWaiting',
  'queue-timeout': 'queueTimeoutMs',
  'idle-timeout': 'idleTimeoutMs',
  'upstream-timeout': 'upstreamTimeoutMs',
  'headers-timeout': 'headersTimeoutMs',
  'connect-ports': 'connectPorts',
  'blocked-http-ports': 'blockedHttpPorts',
  'allow-client': 'allowClient',
  'allow-dest': 'allowDest',
  'auth-file': 'authFile',
  'auth-realm': 'authRealm',
  'tls-cert': 'tlsCert',
  'tls-key': 'tlsKey',
  'max-header-size': 'maxHeaderBytes',
  'max-url-length': 'maxUrlBytes',
  blocklist: 'blocklistFile',
  admin: 'admin',
  'log-file': 'logFile',
  'log-level': 'logLevel',
  'log-max-size': 'logMaxBytes',
  'log-max-files': 'logMaxFiles',
  'shutdown-grace': 'shutdownGraceMs',
  'status-interval': 'statusIntervalMs',
} as const satisfies Record<FlagName, keyof ProxyOptions>;

/**
 * Split a reload into what applies now and what waits for a restart: the result keeps every
 * restart-only field at its running value.
 */
export function splitReload(running: ProxyOptions, next: ProxyOptions): { applied: ProxyOptions; changedLive: FlagName[]; needRestart: FlagName[] } {
  const applied = { ...running } as Record<string, unknown>;
  const changedLive: FlagName[] = [];
  const needRestart: FlagName[] = [];
  for (const name of FLAG_NAMES) {
    const field = FIELD_OF[name];
    if (JSON.stringify(running[field]) === JSON.stringify(next[field])) continue;
    if (FLAGS[name].live) {
      applied[field] = next[field];
      changedLive.push(name);
    } else needRestart.push(name);
  }
  return { applied: applied as unknown as ProxyOptions, changedLive, needRestart };
}

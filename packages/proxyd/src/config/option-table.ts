/**
 * Every option proxyd has, declared once: its name (the command-line flag and the config-file key),
 * the ProxyOptions field it sets, its type (a zod codec that parses and validates what is written,
 * option-type.ts), its default, its --help text, and whether SIGHUP applies a new value live. Below the
 * options, the rules that join two of them.
 *
 * Everything else is derived from this file: the ProxyOptions type and DEFAULTS (options.ts), the yargs
 * flags and --help (flags.ts), the config-file schema (config-file.ts), the layering of defaults < file <
 * flags (resolve-options.ts), what check-config prints (encode-options.ts), and the reload diff
 * (split-reload.ts). A new option is one entry here plus the code that uses it.
 */
import os from 'node:os';
import { isLoopbackHost } from '../policy/address-rules.ts';
import { cidrListType } from './cidr-list.ts';
import { byteSizeType } from './byte-size.ts';
import { domainListType } from './domain-list.ts';
import { durationType } from './duration-type.ts';
import { hostPortOrOffType } from './host-port.ts';
import type { ProxyOptions } from './options.ts';
import { choiceType, optionalPathType, switchType, textType, type OptionType } from './option-type.ts';
import { portListType } from './port-list.ts';
import { rateType } from './rate.ts';
import { retentionType } from './retention.ts';
import { wholeNumberType } from './whole-number.ts';
import { parentListType } from './parent-list.ts';
import { domainToParentListType } from './domain-rules.ts';
import { redisUrlType } from './redis-url.ts';

export interface OptionDecl<F extends string = string, T = unknown> {
  /** The ProxyOptions field this option sets. */
  readonly field: F;
  readonly type: OptionType<T>;
  readonly default: T;
  /** How --help shows the default when its encoded value would not say it well. */
  readonly helpDefault?: string;
  readonly help: string;
  /** True when a SIGHUP reload applies a new value to the running proxy; false: restart to change. */
  readonly live: boolean;
}

/** One declaration: `default` must be a value of `type` (NoInfer: the type decides, not the literal). */
function option<const F extends string, T>(decl: { field: F; type: OptionType<T>; default: NoInfer<T>; helpDefault?: string; help: string; live: boolean }): OptionDecl<F, T> {
  return decl;
}

export const DEFAULT_WORKERS = Math.max(1, Math.min(os.availableParallelism(), 8));

export const OPTIONS = {
  host: option({ field: 'host', type: textType({ nonEmpty: true }), default: '127.0.0.1', live: false, help: 'address to listen on (0.0.0.0 or :: for every interface)' }),
  port: option({ field: 'port', type: wholeNumberType(0, 65535), default: 8080, live: false, help: 'port to listen on (0: any free port)' }),
  workers: option({
    field: 'workers',
    type: wholeNumberType(0, 256),
    default: DEFAULT_WORKERS,
    helpDefault: `${DEFAULT_WORKERS} (this machine's CPUs, at most 8)`,
    live: false,
    help: 'worker threads serving connections (0: serve on the primary thread)',
  }),
  'max-clients': option({ field: 'maxClients', type: wholeNumberType(1, 100_000), default: 512, live: false, help: 'connections served at once (semaphore permits); the rest wait in a FIFO queue' }),
  'max-waiting': option({ field: 'maxWaiting', type: wholeNumberType(0, 1_000_000), default: 1024, live: false, help: 'connections that may wait for a permit; more are answered 503 at once' }),
  'queue-timeout': option({ field: 'queueTimeoutMs', type: durationType(), default: 30_000, live: true, help: 'longest wait for a permit before 503 Service Unavailable' }),
  'idle-timeout': option({ field: 'idleTimeoutMs', type: durationType(), default: 120_000, live: true, help: 'close a connection or tunnel with no bytes either way for this long, releasing its permit' }),
  'upstream-timeout': option({ field: 'upstreamTimeoutMs', type: durationType(), default: 30_000, live: true, help: 'no response (or CONNECT connection) from the destination within this: 504' }),
  'headers-timeout': option({ field: 'headersTimeoutMs', type: durationType(), default: 30_000, live: true, help: "a request's line and headers must arrive within this, or 408 (slow-header attacks)" }),
  'connect-ports': option({ field: 'connectPorts', type: portListType(), default: [[443, 443]], live: true, help: 'ports CONNECT may reach: a list with ranges, e.g. 443,8443,9000-9099' }),
  'blocked-http-ports': option({
    field: 'blockedHttpPorts',
    type: portListType({ noneAllowed: true }),
    default: [[19, 19], [21, 23], [25, 25], [110, 110], [119, 119], [143, 143], [465, 465], [587, 587], [993, 993], [995, 995]],
    live: true,
    help: 'ports plain HTTP may not reach (mail, ssh, …); "none" allows every port',
  }),
  'allow-client': option({
    field: 'allowClient',
    type: cidrListType({ anyAllowed: true }),
    default: [],
    helpDefault: 'loopback + private ranges',
    live: true,
    help: 'also let these clients in (repeatable CIDR, e.g. 203.0.113.7/32); "any" lets everyone in',
  }),
  'allow-dest': option({
    field: 'allowDest',
    type: cidrListType(),
    default: [],
    helpDefault: 'none',
    live: true,
    help: 'let the proxy reach these loopback ranges (repeatable CIDR, e.g. 127.0.0.0/8); link-local and cloud metadata stay forbidden',
  }),
  'auth-file': option({ field: 'authFile', type: optionalPathType(), default: undefined, live: true, help: 'htpasswd file (bcrypt: htpasswd -B; also $apr1$ and {SHA}); every request then needs Proxy-Authorization, from any address; SIGHUP reloads it' }),
  // The realm goes inside a quoted header parameter: quotes and backslashes are dropped.
  'auth-realm': option({ field: 'authRealm', type: textType({ clean: (t) => t.replace(/["\\]/g, '') }), default: 'proxyd', live: true, help: 'realm named in the 407 Proxy-Authenticate header' }),
  'tls-cert': option({ field: 'tlsCert', type: optionalPathType(), default: undefined, live: false, help: 'PEM certificate: the listener speaks TLS (clients use an https:// proxy URL); needs --tls-key' }),
  'tls-key': option({ field: 'tlsKey', type: optionalPathType(), default: undefined, live: false, help: 'PEM private key for --tls-cert' }),
  'max-header-size': option({ field: 'maxHeaderBytes', type: wholeNumberType(1024, 1024 * 1024), default: 16 * 1024, live: false, help: 'largest request head (request line + headers) in bytes, or 431' }),
  'max-url-length': option({ field: 'maxUrlBytes', type: wholeNumberType(64, 1024 * 1024), default: 8 * 1024, live: true, help: 'longest request target in bytes, or 414' }),
  blocklist: option({ field: 'blocklistFile', type: optionalPathType(), default: undefined, live: true, help: 'file of blocked domains, one per line (# comments); each blocks its subdomains; SIGHUP reloads it' }),
  admin: option({
    field: 'admin',
    type: hostPortOrOffType(),
    default: { host: '127.0.0.1', port: 9090 },
    live: false,
    help: 'admin server (dashboard, /metrics, /api/stats, /healthz): host:port, or "off"; a non-loopback address needs --auth-file',
  }),
  'log-file': option({ field: 'logFile', type: textType({ nonEmpty: true }), default: 'proxy.log', live: false, help: 'JSON-lines log file (readable lines also go to stdout, unless it is /dev/null)' }),
  'log-level': option({ field: 'logLevel', type: choiceType(['error', 'warn', 'info', 'debug']), default: 'info', live: true, help: 'least severe events logged (debug adds accept/admit/close of every connection)' }),
  'log-max-size': option({
    field: 'logMaxBytes',
    type: wholeNumberType(0, 2 ** 40),
    default: 100 * 1024 * 1024,
    live: false,
    help: 'rotate the log file when it reaches this many bytes (0: never; it may pass them by one write batch, about 64 KiB)',
  }),
  'log-max-files': option({ field: 'logMaxFiles', type: wholeNumberType(1, 1000), default: 10, live: false, help: 'rotated log files to keep (proxy1.log … proxyN.log beside proxy.log, which is always the newest)' }),
  'proxy-protocol': option({
    field: 'proxyProtocol',
    type: choiceType(['off', 'on']),
    default: 'off',
    live: false,
    help: 'behind a TCP load balancer (HAProxy send-proxy/send-proxy-v2, an AWS NLB with proxy protocol v2): every connection must come from --proxy-protocol-from and start with a PROXY v1 or v2 header, whose client address the ACL, limits and logs then use',
  }),
  'proxy-protocol-from': option({
    field: 'proxyProtocolFrom',
    type: cidrListType(),
    default: [],
    helpDefault: 'none',
    live: false,
    help: 'the load balancers (repeatable CIDR): with --proxy-protocol on, only they may connect, and each connection must start with a PROXY header',
  }),
  'proxy-protocol-timeout': option({ field: 'proxyProtocolTimeoutMs', type: durationType(), default: 5_000, live: false, help: 'a connection from a balancer must send its whole PROXY header within this, or it is closed' }),
  'agent-check': option({
    field: 'agentCheck',
    type: hostPortOrOffType(),
    default: undefined,
    helpDefault: 'off',
    live: false,
    help: 'answer HAProxy\'s agent check on host:port: "up N%" with N the share of free permits, "drain" once SIGTERM starts the grace period, "down" while starting',
  }),
  redis: option({
    field: 'redis',
    type: redisUrlType(),
    default: undefined,
    helpDefault: 'off',
    live: false,
    help: 'share bans and per-client rate limits with every proxyd using this Redis or Valkey (redis:// or rediss:// URL): a ban reaches the fleet within a second; the local limits stay the fast path and, while the store is unreachable, the fallback',
  }),
  // Parent proxies (upstream/): the list sizes the shared parent table, so changing it needs a restart;
  // how they are chosen, routed and marked down changes live.
  parent: option({
    field: 'parents',
    type: parentListType(),
    default: [],
    helpDefault: 'none (go direct)',
    live: false,
    help: 'forward through this parent proxy (repeatable): URL[,weight=N][,name=NAME], http:// or https://, credentials in the URL sent as Proxy-Authorization and never logged',
  }),
  'parent-select': option({
    field: 'parentSelect',
    type: choiceType(['round-robin', 'least-conn', 'host-hash']),
    default: 'round-robin',
    live: true,
    help: 'how a parent is chosen: weighted round-robin, fewest active connections per weight (counted across all threads), or the destination host hashed (rendezvous: each host keeps its parent)',
  }),
  'parent-for': option({
    field: 'parentFor',
    type: domainToParentListType(),
    default: [],
    helpDefault: 'none',
    live: true,
    help: 'DOMAIN=NAME: this domain and its subdomains go through the parent named NAME only (repeatable)',
  }),
  'direct-for': option({ field: 'directFor', type: domainListType(), default: [], helpDefault: 'none', live: true, help: 'this domain and its subdomains never go through a parent (repeatable)' }),
  'never-direct': option({ field: 'neverDirect', type: switchType(), default: false, live: true, help: 'when every parent is down, answer 502 rather than go direct' }),
  'parent-down-after': option({ field: 'parentDownAfter', type: wholeNumberType(1, 1000), default: 3, live: true, help: 'consecutive failed connects (or timeouts) after which a parent is marked down' }),
  'parent-retry': option({ field: 'parentRetryMs', type: durationType(), default: 10_000, live: true, help: 'a parent marked down gets one trial connection after this long; failing it, it waits again' }),
  'access-log': option({
    field: 'accessLog',
    type: optionalPathType(),
    default: undefined,
    live: false,
    help: 'also write an access log, one line per request, for GoAccess, SARG, Calamaris; rotates with --log-max-size and --log-max-files',
  }),
  'access-log-format': option({ field: 'accessLogFormat', type: choiceType(['squid', 'combined']), default: 'squid', live: false, help: "the access log's format: Squid's native format, or Apache/nginx combined" }),
  analytics: option({ field: 'analytics', type: choiceType(['on', 'off']), default: 'on', live: false, help: 'count requests, bytes, decisions, top domains and clients per hour in a SQLite file (the admin page /analytics); off: none of it' }),
  'analytics-file': option({
    field: 'analyticsFile',
    type: optionalPathType(),
    default: undefined,
    helpDefault: 'analytics.sqlite beside --log-file',
    live: false,
    help: "the analytics' SQLite file (written by the logger thread only)",
  }),
  'analytics-retention': option({ field: 'analyticsRetentionHours', type: retentionType(), default: 90 * 24, live: false, help: 'hours of analytics kept: older hours are deleted (e.g. 90d, 48h)' }),
  'shutdown-grace': option({ field: 'shutdownGraceMs', type: durationType({ allowZero: true }), default: 10_000, live: true, help: 'on SIGTERM/SIGINT, how long open connections may finish before they are closed (0: close them at once)' }),
  // The cache (README "Caching"). On by default, as Squid's memory cache is: it stores only what RFC 9111
  // lets a shared cache store (never private, no-store, Set-Cookie or Authorization answers unless the
  // origin allows it), sees plain http:// only (HTTPS tunnels stay opaque), and a client can always ask
  // past it (Cache-Control: no-cache / no-store). Memory mode needs no disk and forgets on restart.
  cache: option({ field: 'cache', type: choiceType(['on', 'off']), default: 'on', live: false, help: 'shared RFC 9111 cache of plain http:// responses, one for every worker thread (HTTPS tunnels are never cached)' }),
  'cache-size': option({
    field: 'cacheMaxBytes',
    type: byteSizeType(1024 * 1024, 2 ** 42),
    default: 256 * 1024 * 1024,
    live: false,
    help: "the cache's size cap (K, M, G: powers of 1024); least recently used entries are evicted past it. In memory mode this is RAM (tmpfs)",
  }),
  'cache-max-object': option({
    field: 'cacheMaxObjectBytes',
    type: byteSizeType(1024, 2 ** 40),
    default: 64 * 1024 * 1024,
    live: false,
    help: 'largest response stored; a larger one is passed through, not cached',
  }),
  'cache-dir': option({
    field: 'cacheDir',
    type: optionalPathType(),
    default: undefined,
    helpDefault: 'none (memory)',
    live: false,
    help: 'keep the cache on disk in this directory (it survives restarts); without it the cache lives in memory',
  }),
  'cache-deny': option({
    field: 'cacheDeny',
    type: domainListType(),
    default: [],
    helpDefault: 'none',
    live: true,
    help: 'never cache responses from these domains and their subdomains (repeatable, or comma-separated)',
  }),
  'status-interval': option({ field: 'statusIntervalMs', type: durationType({ allowZero: true }), default: 5_000, live: false, help: 'status line (active, waiting, totals) this often while busy; 0 turns it off' }),
  // Defending the proxy (limits/): per-client limits, and detectors that ban. A client is its address, an
  // IPv6 client its --ipv6-prefix network; with --auth-file the user name has a rate limit of its own too.
  // Limits are off by default (a NAT'd office is one address, and no default fits every office); the
  // detectors are on, each counting something a browser does not do tens of times a minute.
  'rate-limit': option({ field: 'rateLimit', type: rateType(), default: undefined, helpDefault: 'off', live: true, help: 'requests per client (and per user with --auth-file): 50/s, 3000/m, or off; over it: 429 with Retry-After' }),
  'rate-burst': option({
    field: 'rateBurst',
    type: wholeNumberType(0, 1_000_000),
    default: 0,
    helpDefault: '0 (one second of --rate-limit, at least 1)',
    live: true,
    help: 'requests a client may make at once before --rate-limit paces it',
  }),
  'conn-rate': option({ field: 'connRate', type: wholeNumberType(0, 1_000_000), default: 0, live: true, help: 'new connections per client per second, checked at accept (before a permit or a thread); over it: 429 and close (0: no limit)' }),
  'max-conns-per-client': option({ field: 'maxConnsPerClient', type: wholeNumberType(0, 1_000_000), default: 0, live: true, help: 'open connections per client (as Squid maxconn), checked at accept; more: 429 and close (0: no limit)' }),
  'ipv6-prefix': option({ field: 'ipv6Prefix', type: wholeNumberType(1, 128), default: 64, live: true, help: 'IPv6 clients are one client per network of this prefix length (a host usually owns a whole /64)' }),
  'ban-time': option({ field: 'banTimeMs', type: durationType({ allowZero: true }), default: 600_000, live: true, help: 'how long a detector bans a client (connections closed at accept); doubles for each repeat, up to --ban-time-max (0: detect and log, never ban)' }),
  'ban-time-max': option({ field: 'banTimeMaxMs', type: durationType(), default: 86_400_000, live: true, help: 'the longest ban a repeat offender gets' }),
  'ban-exempt': option({
    field: 'banExempt',
    type: cidrListType({ noneAllowed: true }),
    default: ['127.0.0.0/8', '::1/128'],
    live: true,
    help: 'clients never banned (repeatable CIDR; "none": nobody); over a detector\'s threshold they are still refused (429) where the detector refuses',
  }),
  'ban-window': option({ field: 'banWindowMs', type: durationType(), default: 60_000, live: true, help: 'the sliding window every detector counts in' }),
  'ban-scan': option({ field: 'banScan', type: wholeNumberType(0, 100), default: 20, live: true, help: 'ban a client refused CONNECT to this many distinct destinations (host:port) in a window: a port scan (0: off)' }),
  'ban-auth-failures': option({ field: 'banAuthFailures', type: wholeNumberType(0, 1_000_000), default: 10, live: true, help: 'ban a client after this many wrong passwords in a window, counted across all threads (0: off)' }),
  'ban-bad-requests': option({ field: 'banBadRequests', type: wholeNumberType(0, 1_000_000), default: 20, live: true, help: 'ban a client after this many malformed requests in a window (0: off)' }),
  'ban-refusals': option({ field: 'banRefusals', type: wholeNumberType(0, 1_000_000), default: 30, live: true, help: 'ban a client after this many requests for forbidden destinations or blocked ports in a window (the blocklist does not count) (0: off)' }),
  'ban-errors': option({ field: 'banErrors', type: wholeNumberType(0, 1_000_000), default: 100, live: true, help: 'ban a client whose requests end in this many upstream errors (502/504) in a window (0: off)' }),
  'ban-rate-limited': option({ field: 'banRateLimited', type: wholeNumberType(0, 1_000_000), default: 1000, live: true, help: 'ban a client that keeps sending after --rate-limit refused it: this many 429s in a window (0: off)' }),
};

export type OptionName = keyof typeof OPTIONS;

/** The table as a list, for code that treats every option alike (its value typed as unknown). */
export const OPTION_LIST: readonly (OptionDecl<Exclude<keyof ProxyOptions, 'logRingBytes'>> & { name: OptionName })[] = Object.entries(OPTIONS).map(
  ([name, decl]) => ({ ...(decl as OptionDecl<Exclude<keyof ProxyOptions, 'logRingBytes'>>), name: name as OptionName }),
);

/** A rule that joins options: given the merged options, the option at fault and what is wrong, if anything. */
export interface CrossRule {
  check(options: ProxyOptions): { option: OptionName; problem: string } | undefined;
}

/** Could two listeners on these hosts clash on one port: the same host, or either on every interface? */
function sameListenHost(a: string, b: string): boolean {
  const any = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  return a === b || any(a) || any(b);
}

export const RULES: readonly CrossRule[] = [
  {
    check: (o) => (o.banTimeMaxMs < o.banTimeMs ? { option: 'ban-time-max', problem: `is shorter than --ban-time (${o.banTimeMaxMs} ms < ${o.banTimeMs} ms): the first ban could not be given` } : undefined),
  },
  {
    check: (o) =>
      o.cacheMaxObjectBytes > o.cacheMaxBytes ? { option: 'cache-max-object', problem: `is larger than --cache-size (${o.cacheMaxObjectBytes} > ${o.cacheMaxBytes} bytes): one object could never be stored` } : undefined,
  },
  {
    check: (o) =>
      o.tlsCert !== undefined && o.tlsKey === undefined ? { option: 'tls-key', problem: 'is missing: tls-cert and tls-key go together' }
      : o.tlsKey !== undefined && o.tlsCert === undefined ? { option: 'tls-cert', problem: 'is missing: tls-cert and tls-key go together' }
      : undefined,
  },
  {
    // One port for both (e.g. --port 9090 beside the admin server's default): "the address is in use"
    // would send the operator looking for another process.
    check: (o) =>
      o.admin !== undefined && o.port !== 0 && o.port === o.admin.port && sameListenHost(o.host, o.admin.host)
        ? { option: 'port', problem: `${o.port} is also the admin server's port (--admin ${o.admin.host}:${o.admin.port}): give one of them another port, or --admin off` }
        : undefined,
  },
  {
    // The admin server shows who uses the proxy and where they go: off the loopback it needs logins.
    check: (o) =>
      o.admin !== undefined && !isLoopbackHost(o.admin.host) && o.authFile === undefined
        ? { option: 'admin', problem: `${o.admin.host}:${o.admin.port} is not a loopback address: that needs --auth-file (or reach the admin port through an SSH tunnel)` }
        : undefined,
  },
  {
    check: (o) =>
      o.proxyProtocol === 'on' && o.proxyProtocolFrom.length === 0
        ? { option: 'proxy-protocol-from', problem: 'is needed with --proxy-protocol on: the addresses of the load balancers that send the PROXY header' }
        : o.proxyProtocol === 'on' && o.tlsCert !== undefined
          ? { option: 'proxy-protocol', problem: 'cannot be on with --tls-cert yet: behind a balancer, let it or the clients speak TLS through CONNECT' }
          : undefined,
  },
  {
    // Routing rules name parents: a name that is not one would silently route nothing.
    check: (o) => {
      const names = new Set(o.parents.map((p) => p.name));
      const bad = o.parentFor.find((r) => !names.has(r.split('=')[1]!));
      if (bad !== undefined) return { option: 'parent-for', problem: `${bad} names no --parent (names: ${[...names].join(', ') || 'none'})` };
      return o.neverDirect && o.parents.length === 0 ? { option: 'never-direct', problem: 'needs at least one --parent' } : undefined;
    },
  },
];

// The effective configuration every thread runs with: plain data, cloned into each thread.
import type { PortList } from './port-list.ts';

export interface ProxyOptions {
  /** Address the proxy listens on. */
  host: string;
  /** Port the proxy listens on (0: any free port). */
  port: number;
  /** Worker threads serving connections; 0 serves on the primary thread. */
  workers: number;
  /** Connections served at once: the semaphore's permits. */
  maxClients: number;
  /** Connections that may wait for a permit; more are answered 503 at once. */
  maxWaiting: number;
  /** Longest wait for a permit before 503. */
  queueTimeoutMs: number;
  /** No bytes either way for this long: the connection is closed and its permit released. */
  idleTimeoutMs: number;
  /** No response (or no CONNECT connection) from upstream within this: 504. */
  upstreamTimeoutMs: number;
  /** A request's head (request line and headers) must arrive within this, or 408. */
  headersTimeoutMs: number;
  /** Ports CONNECT may reach. */
  connectPorts: PortList;
  /** Ports plain HTTP may not reach (mail, ssh, …). */
  blockedHttpPorts: PortList;
  /** Client ranges allowed beyond loopback and private ranges; "any" for everyone. */
  allowClient: string[];
  /** Destination ranges allowed despite the default policy (only loopback can be opened this way). */
  allowDest: string[];
  /** htpasswd file: when set, every request needs Proxy-Authorization. */
  authFile: string | undefined;
  /** Realm named in Proxy-Authenticate. */
  authRealm: string;
  /** PEM certificate and key: the listener speaks TLS (https:// proxy URL). */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** Largest request head (request line + headers) in bytes, or 431. */
  maxHeaderBytes: number;
  /** Longest request target in bytes, or 414. */
  maxUrlBytes: number;
  /** Blocklist file (one domain per line), if any. */
  blocklistFile: string | undefined;
  /** Admin server address, or undefined when off. */
  admin: { host: string; port: number } | undefined;
  /** JSON-lines log file. */
  logFile: string;
  /** Least severe level written: error, warn, info, debug. */
  logLevel: LogLevel;
  /** Rotate the log file at this size (0: never). */
  logMaxBytes: number;
  /** Rotated files kept. */
  logMaxFiles: number;
  /** How long SIGTERM waits for open connections before closing them. */
  shutdownGraceMs: number;
  /** Interval of the status line while busy (0: never). */
  statusIntervalMs: number;
  /** Bytes of the shared log ring. */
  logRingBytes: number;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export const DEFAULTS: ProxyOptions = {
  host: '127.0.0.1',
  port: 8080,
  workers: 2,
  maxClients: 512,
  maxWaiting: 1024,
  queueTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  upstreamTimeoutMs: 30_000,
  headersTimeoutMs: 30_000,
  connectPorts: [[443, 443]],
  blockedHttpPorts: [[19, 19], [21, 23], [25, 25], [110, 110], [119, 119], [143, 143], [465, 465], [587, 587], [993, 993], [995, 995]],
  allowClient: [],
  allowDest: [],
  authFile: undefined,
  authRealm: 'proxyd',
  tlsCert: undefined,
  tlsKey: undefined,
  maxHeaderBytes: 16 * 1024,
  maxUrlBytes: 8 * 1024,
  blocklistFile: undefined,
  admin: { host: '127.0.0.1', port: 9090 },
  logFile: 'proxy.log',
  logLevel: 'info',
  logMaxBytes: 100 * 1024 * 1024,
  logMaxFiles: 10,
  shutdownGraceMs: 10_000,
  statusIntervalMs: 5_000,
  logRingBytes: 4 * 1024 * 1024,
};

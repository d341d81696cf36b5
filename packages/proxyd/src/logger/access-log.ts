/**
 * The access log: one line per request in a format the usual tools read (GoAccess, SARG, Calamaris,
 * awstats), written by the logger thread beside the JSON log, never instead of it.
 *
 *   squid     Squid's native format: time elapsed client code/status bytes method URL user hierarchy/peer type
 *             1796130284.123    180 127.0.0.2 TCP_MISS/200 411 GET http://a.localhost:8000/ - HIER_DIRECT/a.localhost -
 *   combined  the Apache/nginx combined format (referer and user agent are not logged: "-")
 *             127.0.0.2 - - [01/Dec/2026:13:04:44 +0000] "GET http://a.localhost:8000/ HTTP/1.1" 200 411 "-" "-"
 *
 * Bytes are those the client received from the destination (the body; a tunnel's bytes down).
 * Connections refused before a request was read (client-denied, a full or timed-out queue) have no
 * request line and so no access-log line; the analytics count them. It rotates as the JSON log does
 * (--log-max-size, --log-max-files: access.log is the newest, access1.log … accessN.log before it),
 * through winston's File transport, which loses no line at a rotation.
 */
import winston from 'winston';
import type { AccessLogFormat } from '../messages/logger-messages.ts';
import type { RequestFacts } from './request-facts.ts';
import { filesOpen } from './files-open.ts';
import { passThrough } from './pass-through.ts';

/** Squid's result code for the request: what the cache did, or that it was a tunnel or denied. */
function squidCode(f: RequestFacts): string {
  if (f.decision === 'blocked' || f.decision === 'refused' || f.decision === 'limited') return 'TCP_DENIED';
  if (f.method === 'CONNECT') return 'TCP_TUNNEL';
  return (f.cache !== undefined && SQUID_CACHE_CODES[f.cache]) || 'TCP_MISS';
}

/**
 * The cache's tag (cache/cache-status.ts) as Squid writes it: a coalesced answer is Squid's collapsed
 * forwarding hit, a stale one served because the origin failed or while it is refreshed its
 * REFRESH_FAIL_OLD, and what the cache did not handle (BYPASS) a plain MISS, as Squid logs it.
 */
const SQUID_CACHE_CODES: Record<string, string | undefined> = {
  HIT: 'TCP_HIT',
  MISS: 'TCP_MISS',
  REVALIDATED: 'TCP_REFRESH_UNMODIFIED',
  STALE: 'TCP_REFRESH_FAIL_OLD',
  COALESCED: 'TCP_CF_HIT',
  BYPASS: 'TCP_MISS',
};

const pad3 = (n: number) => String(n).padStart(3, '0');
/** No spaces inside a field: the formats split on them. */
const field = (s: string | undefined) => (s === undefined || s === '' ? '-' : s.replace(/\s/g, '%20'));

export function squidLine(f: RequestFacts): string {
  const time = (f.time / 1000).toFixed(3);
  const elapsed = String(Math.round(f.elapsedMs)).padStart(6);
  const hierarchy = f.decision === 'allowed' || f.decision === 'failed' ? `HIER_DIRECT/${field(f.host)}` : 'HIER_NONE/-';
  return `${time} ${elapsed} ${f.client} ${squidCode(f)}/${pad3(f.status)} ${f.bytesDown} ${field(f.method)} ${field(f.target)} ${field(f.user)} ${hierarchy} -`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** [10/Oct/2000:13:55:36 +0000], in UTC. */
function clfTime(ms: number): string {
  const d = new Date(ms);
  return `[${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000]`;
}

/** Inside a quoted field, as Apache writes it: " and \ and control characters as \xHH. */
const quoted = (s: string) => s.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function combinedLine(f: RequestFacts): string {
  const request = `${field(f.method)} ${field(f.target)} HTTP/1.1`;
  const bytes = f.bytesDown > 0 ? String(f.bytesDown) : '-';
  return `${f.client} - ${field(f.user)} ${clfTime(f.time)} "${quoted(request)}" ${pad3(f.status)} ${bytes} "-" "-"`;
}

const LINES = Symbol.for('proxyd.accessLines');

export class AccessLog {
  readonly #logger: winston.Logger;
  readonly #line: (f: RequestFacts) => string;
  #batch = '';
  /** Resolves once the file is open (or failed to open): logger-thread.ts says 'ready' after it. */
  readonly opened: Promise<void>;

  constructor(options: { file: string; format: AccessLogFormat; maxBytes: number; maxFiles: number }) {
    this.#line = options.format === 'squid' ? squidLine : combinedLine;
    this.#logger = winston.createLogger({
      format: passThrough(),
      transports: [
        new winston.transports.File({
          filename: options.file,
          format: winston.format.printf((info) => info[LINES] as string),
          ...(options.maxBytes > 0 ? { maxsize: options.maxBytes, maxFiles: options.maxFiles, tailable: true } : {}),
        }),
      ],
    });
    this.#logger.on('error', (err: Error) => process.stderr.write(`proxyd: the access log ${options.file}: ${err.message}\n`));
    this.opened = filesOpen(this.#logger);
  }

  /** Add a request's line to the batch (nothing for a connection refused before its request). */
  add(f: RequestFacts): void {
    if (f.method === undefined) return;
    this.#batch += this.#batch === '' ? this.#line(f) : `\n${this.#line(f)}`;
  }

  /** Hand the batch to winston: one call per logger wake-up, as for the JSON log. */
  writeBatch(): void {
    if (this.#batch === '') return;
    this.#logger.log({ level: 'error', message: '', [LINES]: this.#batch });
    this.#batch = '';
  }

  end(): Promise<void> {
    this.writeBatch();
    const finished = new Promise<void>((resolve) => this.#logger.on('finish', () => resolve()));
    this.#logger.end();
    return finished;
  }
}

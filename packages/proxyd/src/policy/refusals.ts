// Every answer proxyd gives instead of forwarding: one table, one place to read what the proxy can
// answer and why (status, a stable code, a short explanation for the body and the log).
import { STATUS_CODES } from '../builtins/http.ts';

export const REFUSALS = {
  QUEUE_FULL: { status: 503, reason: 'the proxy is at capacity and its waiting queue is full; retry shortly' },
  QUEUE_TIMEOUT: { status: 503, reason: 'the proxy is at capacity and no slot freed up in time; retry shortly' },
  OPEN_FILES: { status: 503, reason: 'the proxy is at its open-file limit and cannot take another connection; retry shortly' },
  BLOCKED_DOMAIN: { status: 403, reason: 'this destination is on the proxy blocklist' },
  BLOCKED_PORT: { status: 403, reason: 'the proxy does not connect to this port' },
  FORBIDDEN_DESTINATION: { status: 403, reason: 'the proxy does not connect to this address' },
  LOOP_DETECTED: { status: 403, reason: 'this request has already passed through this proxy (a loop)' },
  PROXY_AUTH_REQUIRED: { status: 407, reason: 'the proxy needs a user name and password (Proxy-Authorization: Basic)' },
  AUTH_THROTTLED: { status: 429, reason: 'too many failed logins from this address; wait a minute' },
  RATE_LIMITED: { status: 429, reason: 'too many requests from this client; slow down (see Retry-After)' },
  CONN_RATE_LIMITED: { status: 429, reason: 'too many new connections from this client; reuse connections or slow down' },
  TOO_MANY_CONNECTIONS: { status: 429, reason: 'this client has as many connections open as the proxy allows one client' },
  URI_TOO_LONG: { status: 414, reason: 'the request target is longer than the proxy accepts' },
  NOT_A_PROXY_REQUEST: { status: 400, reason: 'this is a forward proxy: send absolute-form requests' },
  BAD_TARGET: { status: 400, reason: 'the request target is not a valid http:// URL or host:port' },
  UPSTREAM_UNREACHABLE: { status: 502, reason: 'the proxy could not reach the destination' },
  UPSTREAM_TIMEOUT: { status: 504, reason: 'the destination did not answer in time' },
  PURGE_DENIED: { status: 403, reason: 'PURGE is accepted from the proxy host itself (loopback) or from an authenticated user only' },
  CACHE_OFF: { status: 501, reason: 'the proxy runs without a cache (--cache off, or its file could not be used): nothing to purge' },
  PARENT_REFUSED: { status: 502, reason: 'the parent proxy refused the request' },
  UPGRADE_NOT_VIA_PARENT: { status: 502, reason: 'WebSocket and other upgrades through a parent proxy are not supported yet; list the host in --direct-for to reach it directly' },
  PARENT_DOWN: { status: 502, reason: 'every parent proxy is down, and this proxy may not go direct (--never-direct)' },
} as const;

export type RefusalCode = keyof typeof REFUSALS;

/** A complete HTTP/1.1 response for a refusal, for sockets that no http.ServerResponse owns. */
export function rawRefusal(code: RefusalCode, detail = '', extraHeaders: Record<string, string> = {}): string {
  const { status } = REFUSALS[code];
  const body = refusalBody(code, detail);
  const headers = Object.entries({
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    'X-Proxyd-Refusal': code,
    ...extraHeaders,
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers}\r\n${body}`;
}

export function refusalBody(code: RefusalCode, detail = ''): string {
  const { status, reason } = REFUSALS[code];
  return `${status} ${STATUS_CODES[status]}: ${reason}${detail ? ` (${detail})` : ''}\n`;
}


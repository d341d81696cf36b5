// The readable one-line form of a log record, for stdout / journald.
const FIRST = ['client', 'method', 'url', 'target', 'status'];
const SKIP = new Set(['time', 'level', 'event', 'thread', ...FIRST]);

const WHITESPACE = /\s/;

// One string built by appending (no parts array, no Object.entries): this runs for every record.
export function readableLine(r: Record<string, unknown>): string {
  let line = `${typeof r.time === 'string' ? r.time.slice(11, 23) : ''} ${String(r.level ?? 'info').padEnd(5)} ${String(r.event ?? '')}`;
  for (const k of FIRST) {
    const v = r[k];
    if (v !== undefined) line += ` ${String(v)}`;
  }
  for (const k in r) {
    if (SKIP.has(k)) continue;
    const v = r[k];
    if (v === undefined || v === null) continue;
    line += ` ${k}=${typeof v === 'string' && WHITESPACE.test(v) ? JSON.stringify(v) : String(v)}`;
  }
  return line;
}

/**
 * A record's time (ms since the epoch) as an ISO string, as Date#toISOString writes it. Records come in
 * bursts from the same millisecond, so the last answer is kept: most calls are one comparison; and a
 * new millisecond in the same second only swaps the milliseconds of the last second's text.
 */
let lastMs = NaN;
let lastIso = '';
let lastSecond = NaN;
let secondPrefix = ''; // "2026-12-01T18:50:57."
export function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    const second = Math.floor(ms / 1000);
    // Years 1970 … 9999 only: before and after them toISOString writes other forms.
    if (second === lastSecond && Number.isInteger(ms)) lastIso = `${secondPrefix}${MILLIS[ms - second * 1000]}Z`;
    else {
      lastIso = new Date(ms).toISOString();
      if (Number.isInteger(ms) && ms >= 0 && ms < 253402300800000) {
        lastSecond = second;
        secondPrefix = lastIso.slice(0, 20);
      }
    }
  }
  return lastIso;
}
const MILLIS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * The host a request went to: from "http://host:port/path" or a CONNECT "host:port" (no URL parse: hot
 * path). The aggregates and the analytics both ask for every record, and a busy proxy's records come in
 * runs to the same place: the last answer is kept, so most calls are one string comparison.
 */
let lastWhere: string | undefined;
let lastHost: string | undefined;
export function hostOf(record: Record<string, unknown>): string | undefined {
  const where = typeof record.url === 'string' ? record.url : typeof record.target === 'string' ? record.target : undefined;
  if (where === undefined) return undefined;
  if (where !== lastWhere) {
    lastHost = parseHost(where);
    lastWhere = where;
  }
  return lastHost;
}

function parseHost(where: string): string | undefined {
  // Origin-form ("/favicon.ico", a browser pointed at the proxy itself) and "*" name no destination.
  if (where.startsWith('/') || where === '*') return undefined;
  const scheme = where.indexOf('://');
  let authority = where;
  if (scheme >= 0) {
    const rest = where.slice(scheme + 3);
    const end = rest.search(/[/?#]/);
    authority = end < 0 ? rest : rest.slice(0, end);
  }
  const host = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.replace(/:\d*$/, '');
  return host === '' ? undefined : host.toLowerCase();
}

/**
 * A client's address without its port: "127.0.0.2:40312" → "127.0.0.2", "[::1]:5000" → "[::1]" (what
 * `replace(/:\d+$/, '')` gives, without a regular expression: once or twice per record). The last
 * answer is kept, as for hostOf.
 */
let lastClient = '';
let lastAddress = '';
export function addressOf(client: string): string {
  if (client !== lastClient) {
    lastAddress = withoutPort(client);
    lastClient = client;
  }
  return lastAddress;
}

function withoutPort(client: string): string {
  const colon = client.lastIndexOf(':');
  if (colon < 0 || colon === client.length - 1) return client;
  for (let i = colon + 1; i < client.length; i++) {
    const c = client.charCodeAt(i);
    if (c < 48 || c > 57) return client; // not all digits after the last colon: no port to take off
  }
  return client.slice(0, colon);
}

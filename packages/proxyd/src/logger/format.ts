// The readable one-line form of a log record, for stdout / journald.
const FIRST = ['client', 'method', 'url', 'target', 'status'];
const SKIP = new Set(['time', 'level', 'event', 'thread', ...FIRST]);

export function readableLine(r: Record<string, unknown>): string {
  const time = typeof r.time === 'string' ? r.time.slice(11, 23) : '';
  const parts = [time, String(r.level ?? 'info').padEnd(5), String(r.event ?? '')];
  for (const k of FIRST) if (r[k] !== undefined) parts.push(String(r[k]));
  for (const [k, v] of Object.entries(r)) {
    if (SKIP.has(k) || v === undefined || v === null) continue;
    parts.push(`${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`);
  }
  return parts.join(' ');
}

/** The host a request went to: from "http://host:port/path" or a CONNECT "host:port" (no URL parse: hot path). */
export function hostOf(record: Record<string, unknown>): string | undefined {
  const where = typeof record.url === 'string' ? record.url : typeof record.target === 'string' ? record.target : undefined;
  if (where === undefined) return undefined;
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

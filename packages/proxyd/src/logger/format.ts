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

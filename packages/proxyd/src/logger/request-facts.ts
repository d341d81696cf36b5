/**
 * What the analytics and the access log need of one log record: is it a request (or a refused
 * connection), what was decided, the status the client got, where it went and who asked. One table,
 * EVENTS, says which events count and how; every other event (accepted, closed, status, reload, …) is
 * not traffic and returns undefined. The logger thread calls this once per record it drains.
 *
 * Decisions:
 *   allowed — forwarded: a request, a CONNECT tunnel, an upgrade;
 *   blocked — refused by a blocklist rule (the refusal BLOCKED_DOMAIN);
 *   refused — refused by the rest of the policy: ports, forbidden addresses, loops, logins, clients
 *             outside --allow-client, malformed requests;
 *   limited — refused by a limit: the admission queue (full, timed out), and the rate limits and bans
 *             (events of issue 16, listed here so that they count once they are logged);
 *   failed  — allowed, but the destination did not answer (502/504).
 */
import { addressOf, hostOf } from './format.ts';

export type Decision = 'allowed' | 'blocked' | 'refused' | 'limited' | 'failed';
export const DECISIONS: readonly Decision[] = ['allowed', 'blocked', 'refused', 'limited', 'failed'];

export interface RequestFacts {
  /** ms since the epoch: when the record was written (the request's end). */
  time: number;
  decision: Decision;
  /** The address without its port. */
  client: string;
  /** Destination host, lowercased; undefined for a connection refused before its request was read. */
  host: string | undefined;
  /** The request method; undefined before a request was read (then there is no access-log line). */
  method: string | undefined;
  /** The URL (plain HTTP) or host:port (CONNECT), as logged. */
  target: string | undefined;
  /** The status the client got; 0 when the connection was closed without an answer. */
  status: number;
  bytesUp: number;
  bytesDown: number;
  elapsedMs: number;
  user: string | undefined;
  /** The rule that blocked or refused it. */
  rule: string | undefined;
  /** The cache's tag for the answer (HIT, MISS, …), once a cache tags request records. */
  cache: string | undefined;
}

interface EventRule {
  decision: (record: Record<string, unknown>) => Decision;
  /** The status when the record does not carry one. */
  status: (record: Record<string, unknown>) => number;
}

const fixed = <T>(value: T) => () => value;

const EVENTS: Record<string, EventRule> = {
  request: { decision: fixed('allowed'), status: fixed(0) },
  tunnel: { decision: fixed('allowed'), status: fixed(200) },
  upgrade: { decision: fixed('allowed'), status: fixed(101) },
  // The refusal code (policy/refusals.ts) says which rule: only the blocklist's is "blocked".
  blocked: { decision: (r) => (r.refusal === 'BLOCKED_DOMAIN' ? 'blocked' : 'refused'), status: fixed(403) },
  'auth-failed': { decision: fixed('refused'), status: (r) => (r.why === 'throttled' ? 429 : 407) },
  'bad-request': { decision: fixed('refused'), status: fixed(400) },
  'client-denied': { decision: fixed('refused'), status: fixed(0) },
  'queue-full': { decision: fixed('limited'), status: fixed(503) },
  'queue-timeout': { decision: fixed('limited'), status: fixed(503) },
  'rate-limited': { decision: fixed('limited'), status: fixed(429) },
  'conn-rate-limited': { decision: fixed('limited'), status: fixed(0) },
  'conn-cap-refused': { decision: fixed('limited'), status: fixed(0) },
  'upstream-error': { decision: fixed('failed'), status: (r) => (r.kind === 'timeout' ? 504 : 502) },
};

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The facts of a traffic record written at `time` (ms); undefined for any other record. */
export function requestFacts(record: Record<string, unknown>, time: number): RequestFacts | undefined {
  const rule = typeof record.event === 'string' ? EVENTS[record.event] : undefined;
  if (rule === undefined) return undefined;
  const status = typeof record.status === 'number' && record.status > 0 ? record.status : rule.status(record);
  return {
    time,
    decision: rule.decision(record),
    client: typeof record.client === 'string' ? addressOf(record.client) : '-',
    host: hostOf(record),
    method: str(record.method),
    target: str(record.url) ?? str(record.target),
    status,
    bytesUp: num(record.up),
    bytesDown: num(record.down),
    elapsedMs: num(record.ms),
    user: str(record.user),
    rule: str(record.rule),
    cache: str(record.cache),
  };
}

/** "2xx" … "5xx"; "none" for a connection closed without an answer. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100)]! : 'none';
}
const STATUS_CLASSES = ['', '1xx', '2xx', '3xx', '4xx', '5xx']; // made once, not once per record

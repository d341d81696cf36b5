/**
 * Every request passes this gate before the proxy opens any connection or looks up any name, in this
 * order: the client's rate limit (--rate-limit; 429 before any other work, even a password check); a loop
 * through this proxy; proxy authentication (then the user's own rate limit); the port; the blocklist; an
 * IP-literal destination. (Names are checked again, on the addresses they resolve to, by
 * guarded-lookup.ts.) Authentication comes before policy so that strangers learn nothing about what is
 * blocked. Wrong passwords, forbidden destinations and blocked ports are reported to the detectors
 * (abuse.ts), which ban a client that keeps at it.
 */
import type http from 'node:http';
import { portAllowed } from '../policy/ports.ts';
import type { RefusalCode } from '../policy/refusals.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { checkLiteral, ForbiddenDestinationError, testGuard } from './guarded-lookup.ts';
import { classifyUpstreamError } from './upstream-errors.ts';
import { upstreamErrorStat } from '../memory/stats-names.ts';
import { rawHeaderValue } from './headers.ts';
import { reportRateLimited, reportRefusal, reportUpstreamError } from './abuse.ts';

export type RequestKind = 'http' | 'connect' | 'upgrade';

export type GateDecision =
  | { allow: true; user: string }
  | { allow: false; code: RefusalCode; detail: string; headers: Record<string, string> };

function refuse(code: RefusalCode, detail = '', headers: Record<string, string> = {}): GateDecision {
  return { allow: false, code, detail, headers };
}

const ALLOWED_ANONYMOUS: GateDecision = { allow: true, user: '' };

/**
 * Decide, then call `onDecision` with it: at once when no step has to wait (no proxy auth), after the
 * password check otherwise. That check is asynchronous but not free: bcryptjs runs on this thread, in
 * slices between which the event loop serves other connections, so a verified credential is cached
 * (policy/credential-cache.ts) and only a new one pays the hash. Not an async function on purpose: a
 * promise and its reactions per request were the largest allocation of the gate (issue 7's profile).
 */
export function passGate(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, kind: RequestKind, host: string, port: number, onDecision: (decision: GateDecision) => void): void {
  const { stats, log } = ctx.shared;
  const waitMs = ctx.limits.takeRequest(conn);
  if (waitMs > 0) return onDecision(rateLimited(ctx, conn, req, waitMs, conn.key));
  const via = rawHeaderValue(req.rawHeaders, 'via');
  if (via !== undefined && via.includes(ctx.viaToken)) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, method: req.method, target: req.url ?? '', rule: 'loop (our own Via token)', refusal: 'LOOP_DETECTED' });
    return onDecision(refuse('LOOP_DETECTED', '', reportRefusal(ctx, conn, undefined)));
  }
  if (!ctx.auth.enabled) return onDecision(checkPolicy(ctx, conn, req, kind, host, port, ''));
  // Too many wrong passwords from this client, counted across every thread: refused without a hash.
  if (ctx.limits.isOver(conn, 'auth-failures')) return onDecision(authFailed(ctx, conn, req, 'throttled'));
  void ctx.auth.check(req.headers['proxy-authorization'], conn.address).then((result) => {
    if (!result.ok) return onDecision(authFailed(ctx, conn, req, result.why));
    const userWaitMs = ctx.limits.takeUser(result.user);
    if (userWaitMs > 0) return onDecision(rateLimited(ctx, conn, req, userWaitMs, `user:${result.user}`));
    onDecision(checkPolicy(ctx, conn, req, kind, host, port, result.user));
  });
}

/**
 * 429 for a client (or user) over --rate-limit. Logged at info, like every answered request (Squid and
 * nginx log their refusals too): the analytics count it as "limited" and the access log shows the 429. A
 * flood writes one record per refused request, as it would per served one; a full log ring drops and
 * counts records, it never holds a request back. A client that keeps sending regardless is banned by the
 * rate-limited detector (--ban-rate-limited): each of its connections is then closed after its answer.
 */
function rateLimited(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, waitMs: number, key: string): GateDecision {
  ctx.shared.log.write({ event: 'rate-limited', level: 'info', conn: conn.id, client: conn.client, method: req.method, target: req.url ?? '', key, waitMs });
  return refuse('RATE_LIMITED', '', { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))), ...reportRateLimited(ctx, conn) });
}

/** A request without valid credentials: 407, or 429 once the client is over --ban-auth-failures. */
function authFailed(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, why: 'missing' | 'invalid' | 'throttled'): GateDecision {
  ctx.shared.stats.add('authFailures');
  // Never the credentials: only that they were missing, wrong, or throttled.
  ctx.shared.log.write({ event: 'auth-failed', level: why === 'missing' ? 'info' : 'warn', conn: conn.id, client: conn.client, method: req.method, target: req.url ?? '', why });
  // A missing header is how every browser starts (it sends credentials after the 407): not a failure.
  const noted = why === 'invalid' ? ctx.limits.note(conn, 'auth-failures') : 'counted';
  if (why === 'throttled' || noted === 'over' || noted === 'banned') {
    return refuse('AUTH_THROTTLED', '', { 'Retry-After': String(Math.ceil(ctx.options.banWindowMs / 1000)), ...(noted === 'banned' ? { Connection: 'close' } : {}) });
  }
  return refuse('PROXY_AUTH_REQUIRED', '', { 'Proxy-Authenticate': `Basic realm="${ctx.options.authRealm}", charset="UTF-8"` });
}

/** The policy steps after authentication: port, blocklist, IP-literal destination. */
function checkPolicy(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, kind: RequestKind, host: string, port: number, user: string): GateDecision {
  const { stats, log } = ctx.shared;
  const target = req.url ?? '';
  const portOk = kind === 'connect' ? portAllowed(ctx.options.connectPorts, port) : !portAllowed(ctx.options.blockedHttpPorts, port);
  if (!portOk) {
    const rule = kind === 'connect' ? `connect-ports (port ${port})` : `blocked-http-ports (port ${port})`;
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, user: user || undefined, method: req.method, target, rule, refusal: 'BLOCKED_PORT' });
    return refuse('BLOCKED_PORT', `port ${port}; see ${kind === 'connect' ? '--connect-ports' : '--blocked-http-ports'}`, reportRefusal(ctx, conn, kind === 'connect' ? `${host}:${port}` : undefined));
  }

  const domainRule = ctx.blocklist.match(host);
  if (domainRule !== undefined) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, user: user || undefined, method: req.method, target, rule: domainRule, refusal: 'BLOCKED_DOMAIN' });
    return refuse('BLOCKED_DOMAIN', `rule "${domainRule}"`);
  }

  const addressRule = checkLiteral(ctx.destinations, host, port) ?? testGuard(ctx.testHooks, host);
  if (addressRule !== undefined) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, user: user || undefined, method: req.method, target, rule: addressRule, refusal: 'FORBIDDEN_DESTINATION' });
    return refuse('FORBIDDEN_DESTINATION', addressRule, reportRefusal(ctx, conn, kind === 'connect' ? `${host}:${port}` : undefined));
  }
  return user === '' ? ALLOWED_ANONYMOUS : { allow: true, user };
}

/**
 * An upstream connection failed: count it, log it, and say what to answer. The destination policy
 * speaking through the resolver (guarded-lookup.ts, EDESTFORBIDDEN) is a refusal, logged as "blocked";
 * anything else is an upstream error (502/504, by kind). The answer names `host` (and `label`, as the
 * client wrote the destination, for upstream errors); `logged` is how the log record names the target.
 */
export function answerUpstreamFailure(
  ctx: ServeContext,
  conn: ConnectionInfo,
  method: string | undefined,
  err: NodeJS.ErrnoException,
  host: string,
  label: string,
  logged: ({ url: string } | { target: string }) & { parent?: string },
): { code: RefusalCode; detail: string; headers: Record<string, string> } {
  const { stats, log } = ctx.shared;
  const connectTarget = method === 'CONNECT' && 'target' in logged ? logged.target : undefined;
  if (err instanceof ForbiddenDestinationError) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, method, target: 'url' in logged ? logged.url : logged.target, rule: err.rule, address: err.address, refusal: 'FORBIDDEN_DESTINATION' });
    return { code: 'FORBIDDEN_DESTINATION', detail: `${host} resolves to ${err.address}: ${err.rule}`, headers: reportRefusal(ctx, conn, connectTarget) };
  }
  const { refusal, kind, what } = classifyUpstreamError(err);
  stats.add('upstreamErrors');
  stats.add(upstreamErrorStat(kind));
  log.write({ event: 'upstream-error', level: 'warn', conn: conn.id, client: conn.client, method, ...logged, kind, error: what });
  return { code: refusal, detail: `${label}: ${what}`, headers: reportUpstreamError(ctx, conn, connectTarget) };
}

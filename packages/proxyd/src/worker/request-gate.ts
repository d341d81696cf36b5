/**
 * Every request passes this gate before the proxy opens any connection or looks up any name, in this
 * order: a loop through this proxy; proxy authentication; the port; the blocklist; an IP-literal
 * destination. (Names are checked again, on the addresses they resolve to, by guarded-lookup.ts.)
 * Authentication comes before policy so that strangers learn nothing about what is blocked.
 */
import type http from 'node:http';
import { portAllowed } from '../policy/ports.ts';
import type { RefusalCode } from '../policy/refusals.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { checkLiteral, ForbiddenDestinationError, testGuard } from './guarded-lookup.ts';
import { classifyUpstreamError } from './upstream-errors.ts';
import { upstreamErrorStat } from '../memory/stats-names.ts';
import { rawHeaderValue } from './headers.ts';

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
  const via = rawHeaderValue(req.rawHeaders, 'via');
  if (via !== undefined && via.includes(ctx.viaToken)) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, method: req.method, target: req.url ?? '', rule: 'loop (our own Via token)' });
    return onDecision(refuse('LOOP_DETECTED'));
  }
  if (!ctx.auth.enabled) return onDecision(checkPolicy(ctx, conn, req, kind, host, port, ''));
  void ctx.auth.check(req.headers['proxy-authorization'], conn.address).then((result) => {
    if (result.ok) return onDecision(checkPolicy(ctx, conn, req, kind, host, port, result.user));
    stats.add('authFailures');
    // Never the credentials: only that they were missing, wrong, or throttled.
    log.write({ event: 'auth-failed', level: result.why === 'missing' ? 'info' : 'warn', conn: conn.id, client: conn.client, method: req.method, target: req.url ?? '', why: result.why });
    if (result.why === 'throttled') return onDecision(refuse('AUTH_THROTTLED', '', { 'Retry-After': '60' }));
    onDecision(refuse('PROXY_AUTH_REQUIRED', '', { 'Proxy-Authenticate': `Basic realm="${ctx.options.authRealm}", charset="UTF-8"` }));
  });
}

/** The policy steps after authentication: port, blocklist, IP-literal destination. */
function checkPolicy(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, kind: RequestKind, host: string, port: number, user: string): GateDecision {
  const { stats, log } = ctx.shared;
  const target = req.url ?? '';
  const portOk = kind === 'connect' ? portAllowed(ctx.options.connectPorts, port) : !portAllowed(ctx.options.blockedHttpPorts, port);
  if (!portOk) {
    const rule = kind === 'connect' ? `connect-ports (port ${port})` : `blocked-http-ports (port ${port})`;
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, user: user || undefined, method: req.method, target, rule });
    return refuse('BLOCKED_PORT', `port ${port}; see ${kind === 'connect' ? '--connect-ports' : '--blocked-http-ports'}`);
  }

  const domainRule = ctx.blocklist.match(host);
  if (domainRule !== undefined) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, user: user || undefined, method: req.method, target, rule: domainRule });
    return refuse('BLOCKED_DOMAIN', `rule "${domainRule}"`);
  }

  const addressRule = checkLiteral(ctx.destinations, host, port) ?? testGuard(ctx.testHooks, host);
  if (addressRule !== undefined) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, user: user || undefined, method: req.method, target, rule: addressRule });
    return refuse('FORBIDDEN_DESTINATION', addressRule);
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
): { code: RefusalCode; detail: string } {
  const { stats, log } = ctx.shared;
  if (err instanceof ForbiddenDestinationError) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, method, target: 'url' in logged ? logged.url : logged.target, rule: err.rule, address: err.address });
    return { code: 'FORBIDDEN_DESTINATION', detail: `${host} resolves to ${err.address}: ${err.rule}` };
  }
  const { refusal, kind, what } = classifyUpstreamError(err);
  stats.add('upstreamErrors');
  stats.add(upstreamErrorStat(kind));
  log.write({ event: 'upstream-error', level: 'warn', conn: conn.id, client: conn.client, method, ...logged, kind, error: what });
  return { code: refusal, detail: `${label}: ${what}` };
}

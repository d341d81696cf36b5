// What a serving thread reports to the detectors (limits/client-limits.ts), in one place: each report
// counts the event in the shared Stats, logs it, and adds it to the client's sliding window. When that
// makes (or finds) the client banned, the answer closes the connection: the ban itself is enforced by the
// primary on the client's next connection.
import type { LogEvent } from '../memory/event-log.ts';
import type { Detector } from '../limits/client-limits.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';

/** Headers for an answer after a report: `Connection: close` once the client is banned. */
export type AfterReport = Record<string, string>;

const KEEP: AfterReport = {};
const CLOSE: AfterReport = { Connection: 'close' };

/** A malformed request: counted as badRequests, logged as 'bad-request', noted by the bad-requests detector. */
export function reportBadRequest(ctx: ServeContext, conn: ConnectionInfo, fields: Omit<LogEvent, 'event'>): AfterReport {
  ctx.shared.stats.add('badRequests');
  ctx.shared.log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, ...fields });
  return report(ctx, conn, 'bad-requests');
}

/**
 * A request refused by policy (a forbidden address, a blocked port, a loop): noted by the refusals
 * detector, and for CONNECT by the scan detector too (distinct host:port). The caller counts and logs it.
 */
export function reportRefusal(ctx: ServeContext, conn: ConnectionInfo, connectTarget: string | undefined): AfterReport {
  const scan = connectTarget === undefined ? 'off' : ctx.limits.note(conn, 'scan', connectTarget);
  const refusals = ctx.limits.note(conn, 'refusals');
  return scan === 'banned' || refusals === 'banned' ? CLOSE : KEEP;
}

/** An upstream error (502/504): the errors detector, and for CONNECT the scan detector (a refused port is a scan's answer). */
export function reportUpstreamError(ctx: ServeContext, conn: ConnectionInfo, connectTarget: string | undefined): AfterReport {
  const scan = connectTarget === undefined ? 'off' : ctx.limits.note(conn, 'scan', connectTarget);
  const errors = ctx.limits.note(conn, 'errors');
  return scan === 'banned' || errors === 'banned' ? CLOSE : KEEP;
}

/** A request refused 429 by --rate-limit: noted by the rate-limited detector (a client deaf to Retry-After). */
export function reportRateLimited(ctx: ServeContext, conn: ConnectionInfo): AfterReport {
  return report(ctx, conn, 'rate-limited');
}

function report(ctx: ServeContext, conn: ConnectionInfo, detector: Detector): AfterReport {
  return ctx.limits.note(conn, detector) === 'banned' ? CLOSE : KEEP;
}

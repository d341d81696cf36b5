// Every parent being down with --never-direct: logged here, answered by the caller (502 PARENT_DOWN).
import type { ConnectionInfo, ServeContext } from '../worker/context.ts';

export function refuseForRoute(ctx: ServeContext, conn: ConnectionInfo, method: string | undefined, target: string): void {
  ctx.shared.stats.add('upstreamErrors');
  ctx.shared.log.write({ event: 'parent-none', level: 'warn', conn: conn.id, client: conn.client, method, target, why: 'every parent is down and --never-direct is on' });
}

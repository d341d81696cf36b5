// PURGE http://host/path: remove a URL from the shared cache (every method and Vary variant of it), as
// Squid's PURGE does. Only from the proxy host itself (a loopback client) or from a user who passed
// --auth-file's check at the gate (with --auth-file every request is authenticated there, PURGE too).
import type http from 'node:http';
import { isLoopbackHost } from '../policy/address-rules.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { refuseResponse } from './refuse.ts';

export function answerPurge(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
  const { log, stats } = ctx.shared;
  const allowed = isLoopbackHost(conn.address) || ctx.options.authFile !== undefined;
  if (!allowed) {
    log.write({ event: 'purge-denied', level: 'warn', conn: conn.id, client: conn.client, url: req.url });
    return refuseResponse(res, 'PURGE_DENIED');
  }
  if (!ctx.cache) return refuseResponse(res, 'CACHE_OFF');
  const removed = ctx.cache.store.purge(`${url.origin}${url.pathname}${url.search}`);
  stats.add('cachePurges', removed);
  log.write({ event: 'purge', conn: conn.id, client: conn.client, url: req.url, removed });
  const body = removed > 0 ? `purged ${removed} cached ${removed === 1 ? 'entry' : 'entries'}\n` : 'not in the cache\n';
  res.writeHead(removed > 0 ? 200 : 404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

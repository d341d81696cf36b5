// An absolute-form request with "Upgrade" (WebSocket and others): ask the origin to upgrade, pass its
// 101 back, then relay raw bytes both ways. If the origin declines, its answer is passed on instead.
import { reportBadRequest } from './abuse.ts';
import http from '../builtins/http.ts';
import type net from 'node:net';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { methodStat } from '../memory/stats-names.ts';
import { forwardedHeaders } from './headers.ts';
import { refuseSocket } from './refuse.ts';
import { relay } from './relay.ts';
import { guardedLookup } from './guarded-lookup.ts';
import { answerUpstreamFailure, passGate } from './request-gate.ts';
import { upstreamTimeoutError } from './upstream-errors.ts';

const KEEP_FOR_UPGRADE = new Set(['upgrade', 'connection']);

function head(statusCode: number, statusMessage: string, raw: readonly string[]): string {
  let out = `HTTP/1.1 ${statusCode} ${statusMessage}\r\n`;
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${out}\r\n`;
}

export function relayUpgrade(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, client: net.Socket, clientHead: Buffer): void {
  const { stats, log } = ctx.shared;
  const target = req.url ?? '';
  stats.add('requests');
  stats.add(methodStat(req.method));
  client.on('error', () => {});
  let url: URL;
  try {
    if (!/^http:\/\//i.test(target)) throw new Error('not absolute');
    url = new URL(target);
  } catch {
    reportBadRequest(ctx, conn, { method: req.method, target: target.slice(0, 200), why: 'upgrade needs an absolute http:// URL' });
    return refuseSocket(client, 'BAD_TARGET');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 80);
  passGate(ctx, conn, req, 'upgrade', host, port, (decision) => {
    if (!decision.allow) return refuseSocket(client, decision.code, decision.detail, decision.headers);
    // Not through parents yet: rather than go direct where the operator routed traffic through them, say so.
    if (ctx.parents.usesParents(host)) {
      ctx.shared.log.write({ event: 'upgrade-not-via-parent', level: 'warn', conn: conn.id, client: conn.client, target: req.url ?? '' });
      return refuseSocket(client, 'UPGRADE_NOT_VIA_PARENT');
    }
    upgrade(ctx, conn, req, client, clientHead, url, host, port);
  });
}

function upgrade(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, client: net.Socket, clientHead: Buffer, url: URL, host: string, port: number): void {
  const { stats, log } = ctx.shared;
  const target = req.url ?? '';
  const upstream = http.request({
    host,
    port,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers: forwardedHeaders(req.rawHeaders, { viaToken: ctx.viaToken, host: url.host, keep: KEEP_FOR_UPGRADE }),
    setHost: false,
    agent: false,
    lookup: guardedLookup(ctx.destinations, port, ctx.testHooks),
  });
  const timer = setTimeout(() => upstream.destroy(upstreamTimeoutError()), ctx.options.upstreamTimeoutMs);
  upstream.on('upgrade', (upRes, upSocket, upHead) => {
    clearTimeout(timer);
    stats.add('allowed');
    client.write(head(upRes.statusCode ?? 101, upRes.statusMessage ?? 'Switching Protocols', forwardedHeaders(upRes.rawHeaders, { viaToken: ctx.viaToken, keep: KEEP_FOR_UPGRADE })));
    if (upHead.length > 0) client.write(upHead);
    if (clientHead.length > 0) upSocket.write(clientHead);
    client.setTimeout(ctx.options.idleTimeoutMs, () => {
      stats.add('idleReleases');
      log.write({ event: 'idle-release', conn: conn.id, client: conn.client, url: target });
      client.destroy();
      upSocket.destroy();
    });
    relay(client, upSocket, () => log.write({ event: 'upgrade', conn: conn.id, client: conn.client, method: req.method, url: target, status: upRes.statusCode, up: upSocket.bytesWritten, down: upSocket.bytesRead }));
  });
  upstream.on('response', (upRes) => {
    // The origin declined to upgrade: pass its answer on and close.
    clearTimeout(timer);
    stats.add('allowed');
    client.write(head(upRes.statusCode ?? 502, upRes.statusMessage ?? '', forwardedHeaders(upRes.rawHeaders, { viaToken: ctx.viaToken })));
    upRes.pipe(client);
    log.write({ event: 'request', conn: conn.id, client: conn.client, method: req.method, url: target, status: upRes.statusCode, why: 'upgrade declined' });
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    const { code, detail, headers } = answerUpstreamFailure(ctx, conn, req.method, err, url.host, url.host, { url: target });
    refuseSocket(client, code, detail, headers);
  });
  upstream.end();
}

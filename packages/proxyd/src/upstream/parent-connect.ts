/**
 * CONNECT through a parent proxy: dial the parent, send it `CONNECT host:port` (with its
 * Proxy-Authorization), and once it answers 2xx, answer our client 200 and relay the two sockets
 * (worker/connect-tunnel.ts: relayTunnel). The parent's answer is read by Node's own HTTP client (llhttp)
 * — http.request({ method: 'CONNECT', createConnection }) emits 'connect' with the parent's status, the
 * socket and any bytes past the answer — so no HTTP is parsed by hand here.
 *
 * Before the tunnel starts nothing of the client's has been sent anywhere, so a parent that cannot be
 * reached is always followed by the next one in the route's order. A parent that answers but refuses
 * (403, 407, 502 …) is alive and has decided: its refusal goes to the client as 502 PARENT_REFUSED,
 * naming the parent and its status (never its credentials), and no other parent is asked. When every
 * parent of the route cannot be reached, the tunnel goes direct, unless --never-direct.
 */
import http from '../builtins/http.ts';
import type net from 'node:net';
import type { ConnectionInfo, ServeContext } from '../worker/context.ts';
import { refuseSocket } from '../worker/refuse.ts';
import { answerUpstreamFailure } from '../worker/request-gate.ts';
import { relayTunnel } from '../worker/connect-tunnel.ts';
import { dialParent, isConnectFailure } from './parent-dial.ts';
import { ForbiddenDestinationError } from '../worker/guarded-lookup.ts';
import { noteParentAnswer, noteParentFailure } from './parent-health-log.ts';
import { refuseForRoute } from './parent-refusals.ts';

interface TunnelRequest {
  target: string;
  host: string;
  client: net.Socket;
  head: Buffer;
  started: number;
  /** Dial the destination itself: when every parent failed and --never-direct is off. */
  direct: () => void;
}

/** Route the tunnel; false when it goes direct (the caller dials the destination itself). */
export function tunnelViaParents(ctx: ServeContext, conn: ConnectionInfo, t: TunnelRequest): boolean {
  const route = ctx.parents.route(t.host, true);
  if (route.kind === 'direct') return false;
  if (route.kind === 'none') {
    refuseForRoute(ctx, conn, 'CONNECT', t.target);
    refuseSocket(t.client, 'PARENT_DOWN');
    return true;
  }
  tryParent(ctx, conn, t, route.order, 0);
  return true;
}

function tryParent(ctx: ServeContext, conn: ConnectionInfo, t: TunnelRequest, order: number[], step: number): void {
  const index = order[step]!;
  const parent = ctx.options.parents[index]!;
  const table = ctx.shared.parents;
  table.begin(index);
  let ended = false;
  const end = (): void => {
    if (!ended) table.end(index);
    ended = true;
  };
  const socket = dialParent(parent, { timeoutMs: ctx.options.upstreamTimeoutMs, loopbackOnly: ctx.testHooks });
  const headers: Record<string, string> = { host: t.target };
  if (parent.authorization) headers['proxy-authorization'] = parent.authorization;
  const req = http.request({ method: 'CONNECT', path: t.target, headers, createConnection: () => socket, timeout: ctx.options.upstreamTimeoutMs });
  const onClientClose = (): void => void socket.destroy(); // the client gave up while we were asking
  t.client.once('close', onClientClose);
  let answered = false;
  req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within the upstream timeout'), { code: 'UPSTREAM_TIMEOUT' })));
  req.on('error', (err: NodeJS.ErrnoException) => {
    end();
    t.client.off('close', onClientClose);
    if (answered || t.client.destroyed) return;
    if (isConnectFailure(err)) noteParentFailure(ctx, conn, index, err);
    if (step + 1 < order.length) return tryParent(ctx, conn, t, order, step + 1);
    if (!ctx.options.neverDirect && !(err instanceof ForbiddenDestinationError)) return t.direct();
    const { code, detail } = answerUpstreamFailure(ctx, conn, 'CONNECT', err, t.host, `parent ${parent.name} (for ${t.target})`, { target: t.target, parent: parent.name });
    refuseSocket(t.client, code, detail);
  });
  req.on('connect', (res: http.IncomingMessage, upstream: net.Socket, parentHead: Buffer) => {
    answered = true;
    req.setTimeout(0);
    t.client.off('close', onClientClose);
    noteParentAnswer(ctx, index);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299 || t.client.destroyed) {
      end();
      upstream.destroy();
      if (t.client.destroyed) return;
      ctx.shared.stats.add('upstreamErrors');
      ctx.shared.log.write({ event: 'parent-refused', level: 'warn', conn: conn.id, client: conn.client, method: 'CONNECT', target: t.target, parent: parent.name, status });
      return refuseSocket(t.client, 'PARENT_REFUSED', `parent ${parent.name} answered ${status} ${res.statusMessage ?? ''}`.trim());
    }
    relayTunnel(ctx, conn, { target: t.target, client: t.client, upstream, head: t.head, started: t.started, parent: parent.name, onClosed: end });
    if (parentHead.length > 0) t.client.write(parentHead); // the destination's first bytes, read with the answer
  });
  req.end();
}

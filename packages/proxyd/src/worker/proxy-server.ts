// The HTTP side of a serving thread: Node's own http.Server (llhttp, hardened against request
// smuggling) parses every connection handed to this thread; the handlers route each request by kind.
import { reportBadRequest } from './abuse.ts';
import http from '../builtins/http.ts';
import type net from 'node:net';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { forwardHttp } from './forward-http.ts';
import { openTunnel } from './connect-tunnel.ts';
import { relayUpgrade } from './relay-upgrade.ts';
import { IdleConnections } from './idle-connections.ts';

/** Which client connection a socket is, for the log (set when the connection arrives). */
export const connections = new WeakMap<net.Socket, ConnectionInfo>();

const UNKNOWN: ConnectionInfo = { id: 0, client: 'unknown', address: '', key: '', limitSlot: -1, limitHash: 0n };
function infoOf(socket: net.Socket): ConnectionInfo {
  return connections.get(socket) ?? UNKNOWN;
}

export function createProxyServer(ctx: ServeContext): http.Server {
  const idle = new IdleConnections(ctx);
  const server = http.createServer(
    {
      noDelay: true,
      // A request's head must arrive within this (slowloris); its body may take as long as it keeps
      // moving (the idle timeout), so uploads of any size are not cut off.
      headersTimeout: ctx.options.headersTimeoutMs,
      maxHeaderSize: ctx.options.maxHeaderBytes,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, ctx.options.headersTimeoutMs),
    },
    (req, res) => {
      const socket = req.socket; // captured: by 'finish' the response may have let go of it
      idle.busy(socket);
      res.once('finish', () => idle.idle(socket));
      forwardHttp(ctx, infoOf(req.socket), req, res);
    },
  );
  server.on('connection', (socket: net.Socket) => idle.idle(socket));
  // A client may half-close after its request (FIN) and still read the whole response. Node's http
  // server keeps this switch as an instance property (not in @types/node); hostile.test.ts guards it.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // This server never listens: sockets arrive through emit('connection'). Node starts its connection
  // tracking (the headers timeout checks) on 'listening', so say it has.
  server.emit('listening');
  // Idle HTTP connections (between requests too) are closed after --idle-timeout, and counted.
  server.timeout = ctx.options.idleTimeoutMs;
  server.keepAliveTimeout = ctx.options.idleTimeoutMs;
  server.on('timeout', (socket: net.Socket) => onIdle(ctx, socket));
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    idle.forget(socket);
    openTunnel(ctx, infoOf(socket), req, socket, head);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    idle.forget(socket);
    relayUpgrade(ctx, infoOf(socket), req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => onClientError(ctx, err, socket));
  return server;
}


function onIdle(ctx: ServeContext, socket: net.Socket): void {
  const conn = infoOf(socket);
  ctx.shared.stats.add('idleReleases');
  ctx.shared.log.write({ event: 'idle-release', conn: conn.id, client: conn.client, idleMs: ctx.options.idleTimeoutMs });
  socket.destroy();
}

/** Unparsable input: answer 400 (or 431/414 for oversized heads) and close; other clients never notice. */
function onClientError(ctx: ServeContext, err: NodeJS.ErrnoException, socket: net.Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  answerUnparsable(ctx, socket, status, err.code ?? err.message);
}

/** Answer a request the proxy cannot parse with `status`, log it, and close. */
export function answerUnparsable(ctx: ServeContext, socket: net.Socket, status: number, why: string): void {
  const conn = infoOf(socket);
  reportBadRequest(ctx, conn, { status, error: why });
  const text = http.STATUS_CODES[status];
  const body = `${status} ${text}: the proxy could not parse this request (${why})\n`;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}

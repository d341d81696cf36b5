// CONNECT host:port → a TCP tunnel: check policy before any lookup, dial, answer
// "200 Connection Established", then relay bytes both ways until either side is done.
import type http from 'node:http';
import net from 'node:net';
import { portAllowed } from '../config/port-list.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { parseAuthority } from './authority.ts';
import { refuseSocket } from './refuse.ts';
import { relay } from './relay.ts';
import { classifyUpstreamError, upstreamTimeoutError } from './upstream-errors.ts';

export function openTunnel(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
  const { stats, log } = ctx.shared;
  const started = performance.now();
  const target = req.url ?? '';
  stats.add('requests');
  client.on('error', () => {}); // reported through the relay or the close below

  const authority = parseAuthority(target);
  if (!authority) {
    stats.add('badRequests');
    log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, method: 'CONNECT', target: target.slice(0, 200), why: 'CONNECT needs host:port' });
    return refuseSocket(client, 'BAD_TARGET', 'CONNECT needs host:port');
  }
  if (ctx.testHooks && authority.host === 'crash-worker.proxyd.test') process.exit(70); // test: worker dies
  if (!portAllowed(ctx.options.connectPorts, authority.port)) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, method: 'CONNECT', target, rule: `connect-ports (port ${authority.port})` });
    return refuseSocket(client, 'BLOCKED_PORT', `port ${authority.port}; allowed: --connect-ports`);
  }
  const rule = ctx.blocklist.match(authority.host);
  if (rule !== undefined) {
    stats.add('blocked');
    log.write({ event: 'blocked', level: 'warn', conn: conn.id, client: conn.client, method: 'CONNECT', target, rule });
    return refuseSocket(client, 'BLOCKED_DOMAIN', `rule "${rule}"`);
  }

  const upstream = net.connect({ host: authority.host, port: authority.port, noDelay: true, allowHalfOpen: true });
  const timer = setTimeout(() => upstream.destroy(upstreamTimeoutError()), ctx.options.upstreamTimeoutMs);
  const onConnectError = (err: NodeJS.ErrnoException): void => {
    clearTimeout(timer);
    const { refusal, kind, what } = classifyUpstreamError(err);
    stats.add('upstreamErrors');
    log.write({ event: 'upstream-error', level: 'warn', conn: conn.id, client: conn.client, method: 'CONNECT', target, kind, error: what });
    refuseSocket(client, refusal, `${target}: ${what}`);
  };
  upstream.once('error', onConnectError);
  client.once('close', () => {
    if (upstream.connecting) upstream.destroy(); // the client gave up while we were dialling
  });

  upstream.once('connect', () => {
    clearTimeout(timer);
    upstream.off('error', onConnectError);
    if (client.destroyed) return void upstream.destroy();
    stats.add('allowed');
    stats.add('tunnels', 1);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    client.setTimeout(ctx.options.idleTimeoutMs); // no bytes either way on the client socket for that long
    client.on('timeout', () => {
      stats.add('idleReleases');
      log.write({ event: 'idle-release', conn: conn.id, client: conn.client, target, idleMs: ctx.options.idleTimeoutMs });
      client.destroy();
      upstream.destroy();
    });
    relay(client, upstream, () => {
      stats.add('tunnels', -1);
      log.write({
        event: 'tunnel',
        conn: conn.id,
        client: conn.client,
        method: 'CONNECT',
        target,
        status: 200,
        up: upstream.bytesWritten,
        down: upstream.bytesRead,
        ms: Math.round(performance.now() - started),
      });
    });
  });
}

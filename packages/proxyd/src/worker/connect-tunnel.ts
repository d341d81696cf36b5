// CONNECT host:port → a TCP tunnel: pass the gate before any lookup, dial, answer
// "200 Connection Established", then relay bytes both ways until either side is done.
import { reportBadRequest } from './abuse.ts';
import type http from 'node:http';
import type net from 'node:net';
import { tunnelViaParents } from '../upstream/parent-connect.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { methodStat } from '../memory/stats-names.ts';
import { parseAuthority } from './authority.ts';
import { refuseSocket } from './refuse.ts';
import { relay } from './relay.ts';
import { connectForwardingTo } from './pooled-reads.ts';
import { guardedLookup } from './guarded-lookup.ts';
import { answerUpstreamFailure, passGate } from './request-gate.ts';
import { failUnlessConnectedWithin } from './upstream-errors.ts';

/** The tunnel's answer, encoded once: a string would be UTF-8-encoded again for every tunnel. */
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');

export function openTunnel(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
  const { stats, log } = ctx.shared;
  const started = performance.now();
  const target = req.url ?? '';
  stats.add('requests');
  stats.add(methodStat(req.method));
  client.on('error', ignore); // reported through the relay or the close below

  const authority = parseAuthority(target);
  if (!authority) {
    reportBadRequest(ctx, conn, { method: 'CONNECT', target: target.slice(0, 200), why: 'CONNECT needs host:port' });
    return refuseSocket(client, 'BAD_TARGET', 'CONNECT needs host:port');
  }
  if (ctx.testHooks && authority.host === 'crash-worker.proxyd.test') process.exit(70); // test: worker dies
  passGate(ctx, conn, req, 'connect', authority.host, authority.port, (decision) => {
    if (!decision.allow) return refuseSocket(client, decision.code, decision.detail, decision.headers);
    if (ctx.parents.enabled && tunnelViaParents(ctx, conn, { target, client, head, started, host: authority.host, direct: () => dial(ctx, conn, target, authority, client, head, started) })) return; // through a parent
    dial(ctx, conn, target, authority, client, head, started);
  });
}

function dial(ctx: ServeContext, conn: ConnectionInfo, target: string, authority: { host: string; port: number }, client: net.Socket, head: Buffer, started: number): void {
  const { stats, log } = ctx.shared;
  // What the origin sends goes to the client from recycled buffers (pooled-reads.ts), once the relay runs.
  const upstream = connectForwardingTo(client, {
    host: authority.host,
    port: authority.port,
    noDelay: true,
    allowHalfOpen: true,
    lookup: guardedLookup(ctx.destinations, authority.port, ctx.testHooks),
  });
  failUnlessConnectedWithin(upstream, ctx.options.upstreamTimeoutMs);
  const onConnectError = (err: NodeJS.ErrnoException): void => {
    const { code, detail, headers } = answerUpstreamFailure(ctx, conn, 'CONNECT', err, authority.host, target, { target });
    refuseSocket(client, code, detail, headers);
  };
  upstream.once('error', onConnectError);
  const onClientGone = (): void => {
    if (upstream.connecting) upstream.destroy(); // the client gave up while we were dialling
  };
  client.once('close', onClientGone);

  upstream.once('connect', () => {
    upstream.off('error', onConnectError);
    client.off('close', onClientGone); // else it would hold this dial's closures for the tunnel's life
    if (client.destroyed) return void upstream.destroy();
    relayTunnel(ctx, conn, { target, client, upstream, head, started });
  });
}

/**
 * The destination (or a parent proxy, upstream/parent-connect.ts) is connected: answer 200 and relay
 * until both sides close, then log the tunnel. `parent` names the parent it went through, if any;
 * `onClosed` runs after the record is written.
 */
export function relayTunnel(ctx: ServeContext, conn: ConnectionInfo, t: { target: string; client: net.Socket; upstream: net.Socket; head: Buffer; started: number; parent?: string; onClosed?: () => void }): void {
  const { stats, log } = ctx.shared;
  const { target, client, upstream, head, started } = t;
  stats.add('allowed');
  stats.add('tunnels', 1);
  ctx.shared.workers.addTunnels(1); // this thread's share, which the primary subtracts should it die
  stats.add('status2xx');
  client.write(ESTABLISHED);
  if (head.length > 0) upstream.write(head);
  client.setTimeout(ctx.options.idleTimeoutMs); // no bytes either way on the client socket for that long
  client.on('timeout', () => {
    stats.add('idleReleases');
    log.write({ event: 'idle-release', conn: conn.id, client: conn.client, target, idleMs: ctx.options.idleTimeoutMs });
    client.destroy();
    upstream.destroy();
  });
  relay(client, upstream, () => {
    // Logged before the gauge drops: at shutdown the primary waits for "tunnels" to reach 0 before it
    // ends the threads, so a tunnel that is no longer counted has its record in the ring.
    log.write({
      event: 'tunnel',
      conn: conn.id,
      client: conn.client,
      method: 'CONNECT',
      target,
      parent: t.parent,
      status: 200,
      up: upstream.bytesWritten,
      down: upstream.bytesRead,
      ms: Math.round(performance.now() - started),
    });
    stats.add('tunnels', -1);
    ctx.shared.workers.addTunnels(-1);
    t.onClosed?.();
  });
}

function ignore(): void {}

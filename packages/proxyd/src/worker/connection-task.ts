/**
 * The serving side of proxyd, loaded by file name: as a Piscina task module in each worker thread, or
 * by the primary itself with --workers 0. One task = one client connection: the primary transfers the
 * accepted socket here (pool.run(task, { transferList: [socket] })), the task hands it to this thread's
 * http.Server, and resolves when the socket closes — after giving the connection's permit back.
 */
import http from '../builtins/http.ts';
import type net from 'node:net';
import { nodeTls } from '../builtins/tls.ts';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ProxyOptions } from '../config/options.ts';
import { blocklistOf } from '../policy/blocklist.ts';
import { createClientAcl } from '../policy/client-acl.ts';
import { CredentialCache } from '../policy/credential-cache.ts';
import { createDestinationPolicy } from '../policy/destination-policy.ts';
import { attachSharedState } from '../memory/shared-state.ts';
import { debugLogged } from '../memory/debug-logged.ts';
import type { ConnectionTask, ServeInit } from '../messages/serve-init.ts';
import { POLICY_CHANNEL, type ChannelMessage } from '../messages/policy-channel.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { ClientLimits } from '../limits/client-limits.ts';
import { clientKey } from '../limits/client-key.ts';
import { answerUnparsable, connections, createProxyServer } from './proxy-server.ts';
import { handToParser } from './first-bytes.ts';
import { parseConnectHead } from './connect-head.ts';
import { openTunnel } from './connect-tunnel.ts';
import { readProxyHeader } from './read-proxy-header.ts';
import { countRefusalsIn } from './refuse.ts';
import { createUpstreamPool } from './upstream-pool.ts';
import { reportGiveBacksTo } from './idle-upstreams.ts';
import { settleHeapSoon } from '../memory/settle-heap.ts';
import { openCache } from './open-cache.ts';
import { ParentRouter } from '../upstream/parent-route.ts';
import { createParentPool } from '../upstream/parent-http.ts';

export type { ConnectionTask, ServeInit } from '../messages/serve-init.ts';

let ctx: ServeContext | undefined;
let server: http.Server | undefined;
/** Client sockets this thread serves now. */
const openSockets = new Set<net.Socket>();
/** This thread's row in the shared worker table (connections, event-loop delay). */
let workerSlot = -1;
/** The shared buffers init() was called with: a proxy started later in this process has others. */
let initBuffers: ServeInit['buffers'] | undefined;
let channel: BroadcastChannel | undefined;

/**
 * Set this thread up to serve. Runs once per thread (Piscina workers call it at load); on the primary
 * with --workers 0, once per proxy started in this process (tests start several, one after another):
 * a new proxy brings new shared buffers, and serving on with the last one's would count, log and
 * decide (its 'draining' gauge included) in a proxy that has stopped.
 */
export function init(data: ServeInit): void {
  if (initBuffers === data.buffers) return;
  const first = initBuffers === undefined;
  initBuffers = data.buffers;
  const shared = attachSharedState(data.buffers);
  const context: ServeContext = {
    shared,
    options: data.options,
    blocklist: blocklistOf(data.blocklist),
    destinations: createDestinationPolicy({ allowDest: data.options.allowDest, ownPorts: data.ownPorts, localAddresses: data.localAddresses }),
    clientAcl: createClientAcl(data.options.allowClient, data.users !== undefined),
    // No per-thread login throttle here: wrong passwords are counted across every thread (limits/).
    auth: new CredentialCache(data.users ? new Map(data.users) : undefined, { throttle: false }),
    viaToken: data.viaToken,
    tls: data.tls ? nodeTls().createSecureContext({ cert: data.tls.cert, key: data.tls.key }) : undefined,
    upstream: createUpstreamPool({ destinations: () => context.destinations, connectTimeoutMs: () => context.options.upstreamTimeoutMs, loopbackOnly: data.testHooks }),
    parents: new ParentRouter(data.options, shared.parents),
    parentPool: createParentPool({ connectTimeoutMs: () => context.options.upstreamTimeoutMs, loopbackOnly: data.testHooks }),
    limits: undefined as unknown as ClientLimits, // set just below: it reads context.options
    testHooks: data.testHooks,
    cache: undefined,
  };
  context.limits = new ClientLimits(context.shared, () => context.options);
  context.cache = openCache(context, data.cacheFile);
  ctx = context;
  server = createProxyServer(ctx);
  countRefusalsIn(ctx.shared.stats);
  reportGiveBacksTo(ctx.shared);
  settleHeapSoon(); // once this thread has loaded what it serves with (memory/settle-heap.ts)
  workerSlot = ctx.shared.workers.claim();
  ctx.shared.stats.add('workersStarted', 1);
  // A bug that escapes every handler ends this thread (its state can no longer be trusted); the pool
  // starts a new one and the primary gives back the permits of the connections it held. Say why first.
  if (first) {
    process.on('uncaughtException', (err) => {
      ctx?.shared.log.write({ event: 'worker-crash', level: 'error', error: err.stack ?? String(err) });
      process.exit(1);
    });
  }
  // SIGHUP in the primary re-reads the blocklist and broadcasts it to every serving thread.
  channel?.close();
  channel = new BroadcastChannel(POLICY_CHANNEL);
  channel.unref();
  channel.onmessage = (message) => {
    const update = (message as { data: ChannelMessage }).data;
    if (update.type === 'close-all') {
      for (const socket of openSockets) socket.destroy(); // their close handlers log and release
      return;
    }
    context.blocklist = blocklistOf(update.blocklist);
    context.auth.setUsers(update.users ? new Map(update.users) : undefined);
    if (update.options) applyOptions(context, server!, update.options, data);
    context.clientAcl = createClientAcl(context.options.allowClient, update.users !== undefined);
    context.shared.log.write({ event: 'policy-applied', level: 'debug', domains: update.blocklist.length, users: update.users?.length });
  };
}

if (!isMainThread && Piscina.isWorkerThread) init(Piscina.workerData as ServeInit);

/**
 * Serve one client connection until it closes. Resolves with nothing: Piscina clones a task's result back
 * to the primary, which has no use for it (the permit, the counters and the log are all settled here).
 */
export default function serveConnection(task: ConnectionTask): Promise<void> {
  if (!ctx || !server) throw new Error('connection-task: init() was not called in this thread');
  const { shared } = ctx;
  const { socket, lease, id, client, address, key } = task;
  const started = performance.now();
  const info: ConnectionInfo = { id, client, address, key, limitSlot: -1, limitHash: 0n };
  connections.set(socket, info);
  socket.setNoDelay(true);
  socket.allowHalfOpen = true; // a client's FIN ends its requests, not our answer (see proxy-server.ts)
  openSockets.add(socket);
  shared.workers.addConnections(workerSlot, 1);
  return new Promise((resolve) => {
    socket.once('close', () => {
      openSockets.delete(socket);
      shared.workers.addConnections(workerSlot, -1);
      const up = socket.bytesRead;
      const down = socket.bytesWritten;
      shared.stats.add('bytesUp', up);
      shared.stats.add('bytesDown', down);
      // Give the permit back: Atomics.notify inside release() wakes the primary's next waiter.
      if (shared.leases.release(lease, shared.semaphore)) shared.stats.add('active', -1);
      if (debugLogged(shared)) shared.log.write({ event: 'closed', level: 'debug', conn: id, client: info.client, up, down, ms: Math.round(performance.now() - started) });
      resolve();
    });
    if (ctx!.options.proxyProtocol === 'on') void serveBehindBalancer(ctx!, socket, info);
    else serveSocket(ctx!, socket, info);
  });
}

/**
 * --proxy-protocol on: the peer is a load balancer. Read its PROXY header first; from then on the
 * connection is the real client's (logs, limits, detectors, bans), and the client ACL applies to it.
 */
async function serveBehindBalancer(context: ServeContext, socket: net.Socket, info: ConnectionInfo): Promise<void> {
  const { stats, log } = context.shared;
  const read = await readProxyHeader(socket, context.options.proxyProtocolTimeoutMs);
  if (!read.ok) {
    stats.add('proxyProtocolRefused');
    log.write({ event: 'proxy-header-refused', level: 'warn', conn: info.id, client: info.client, why: read.why });
    return void socket.destroy();
  }
  const balancer = info.client;
  if (read.source) {
    info.address = read.source.address;
    info.client = `${read.source.address}:${read.source.port}`;
    info.key = clientKey(info.address, context.options.ipv6Prefix); // limits and bans: the real client
  }
  if (!context.clientAcl.allows(info.address)) {
    stats.add('clientsDenied');
    log.write({ event: 'client-denied', level: 'warn', conn: info.id, client: info.client, via: balancer, why: 'address outside --allow-client' });
    return void socket.destroy();
  }
  if (context.limits.bannedFor(info.key) > 0) {
    // Behind a balancer a ban is enforced here, once the header has said who the client is: closed,
    // counted, not logged (as at accept without a balancer). The permit goes back as the socket closes.
    stats.add('bannedRefused');
    return void socket.destroy();
  }
  log.write({ event: 'proxy-header', level: 'debug', conn: info.id, client: info.client, via: balancer, version: read.version, local: read.source === undefined });
  serveSocket(context, socket, info);
}

/** Hand the client's bytes to this thread's HTTP server: through TLS when the listener speaks it. */
function serveSocket(context: ServeContext, socket: net.Socket, info: ConnectionInfo): void {
  const { shared } = context;
  // A socket accepted with pauseOnConnect has not started reading. A transferred one starts afresh in
  // this thread; on the primary (--workers 0) it is the same paused socket and must be resumed.
  if (context.tls) {
    // HTTPS to the proxy: TLS ends here, in the worker; the HTTP server reads the decrypted stream.
    const secure = new (nodeTls().TLSSocket)(socket, { isServer: true, secureContext: context.tls, ALPNProtocols: ['http/1.1'] });
    connections.set(secure, info);
    secure.on('error', (err: NodeJS.ErrnoException) => {
      shared.log.write({ event: 'tls-error', level: 'warn', conn: info.id, client: info.client, error: err.code ?? err.message });
      socket.destroy();
    });
    server!.emit('connection', secure);
    socket.resume();
  } else {
    handToParser(
      server!,
      socket,
      (s) => answerUnparsable(context, s, 400, 'request line without an HTTP version'),
      (s, first) => tunnelAtOnce(context, s, info, first),
    );
  }
}

/** A first chunk that is a whole CONNECT head: straight to the tunnel, past the HTTP server (connect-head.ts). */
function tunnelAtOnce(context: ServeContext, socket: net.Socket, info: ConnectionInfo, first: Buffer): boolean {
  const connect = parseConnectHead(socket, first, context.options.maxHeaderBytes);
  if (!connect) return false;
  openTunnel(context, info, connect.req, socket, connect.head);
  return true;
}

/** New live options (SIGHUP): new requests see them; open connections keep going. */
function applyOptions(context: ServeContext, httpServer: http.Server, options: ProxyOptions, data: ServeInit): void {
  context.options = options;
  context.parents = new ParentRouter(options, context.shared.parents);
  context.destinations = createDestinationPolicy({ allowDest: options.allowDest, ownPorts: data.ownPorts, localAddresses: data.localAddresses });
  httpServer.headersTimeout = options.headersTimeoutMs;
  httpServer.timeout = options.idleTimeoutMs;
  httpServer.keepAliveTimeout = options.idleTimeoutMs;
}

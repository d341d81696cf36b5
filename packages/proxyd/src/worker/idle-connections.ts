/**
 * Idle keep-alive connections give their permits up while clients wait.
 *
 * A keep-alive connection between requests still holds its permit. While nobody waits, that is what
 * keep-alive is for. Once clients queue at the semaphore, this thread closes those of its HTTP
 * connections that have been idle for at least MIN_IDLE_MS (checked every CHECK_MS with one
 * Atomics.load of the shared waiting count). The minimum idle time keeps clear of the race every server
 * has with keep-alive: a client that is reusing its connection sends the next request within
 * milliseconds, and must not find it closed under it. forward-http.ts also answers
 * "Connection: close" while the queue is not empty, which has no race at all. Tunnels are never here.
 *
 * The same holds while the proxy is stopping (the shared gauge "draining", set by primary/shutdown.ts):
 * idle connections are closed and each response ends its connection, so that a browser's idle pool does
 * not keep the process waiting for the whole --shutdown-grace.
 */
import type net from 'node:net';
import type { ServeContext } from './context.ts';

const CHECK_MS = 100;
const MIN_IDLE_MS = 1000;
/** In the map while a request is in progress: known (its 'close' listener is set), not idle. */
const BUSY = -1;

/** End a keep-alive connection after its response: clients wait for a permit, or the proxy is stopping. */
export function endAfterResponse(ctx: ServeContext): boolean {
  return ctx.shared.semaphore.waiting > 0 || ctx.shared.stats.get('draining') === 1;
}

export class IdleConnections {
  /** This thread's HTTP connections: since when each is idle (performance.now()), or BUSY. A socket
   * stays in the map until it closes, so that its one 'close' listener is added once, not per request. */
  readonly #idleSince = new Map<net.Socket, number>();

  constructor(ctx: ServeContext) {
    const timer = setInterval(() => {
      if (endAfterResponse(ctx)) this.#yield(ctx);
    }, CHECK_MS);
    timer.unref();
  }

  /** A connection arrived or finished a response: idle from now. */
  idle(socket: net.Socket | null): void {
    if (!socket || socket.destroyed) return;
    if (!this.#idleSince.has(socket)) socket.once('close', () => this.#idleSince.delete(socket));
    this.#idleSince.set(socket, performance.now());
  }

  /** A request arrived: not idle. */
  busy(socket: net.Socket): void {
    if (this.#idleSince.has(socket)) this.#idleSince.set(socket, BUSY);
  }

  /** The connection became a tunnel (or an upgraded stream): never an idle HTTP connection again. */
  forget(socket: net.Socket): void {
    this.#idleSince.delete(socket);
  }

  #yield(ctx: ServeContext): void {
    const now = performance.now();
    const draining = ctx.shared.stats.get('draining') === 1;
    for (const [socket, since] of this.#idleSince) {
      if (since === BUSY || now - since < MIN_IDLE_MS) continue;
      this.#idleSince.delete(socket);
      if (!draining) ctx.shared.stats.add('idleYields'); // the counter is for waiting clients let in
      ctx.shared.log.write({ event: 'idle-yield', level: 'debug', idleMs: Math.round(now - since), waiting: ctx.shared.semaphore.waiting, draining });
      socket.destroy();
    }
  }
}

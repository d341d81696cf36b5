/**
 * Plain HTTP through a parent proxy: the request goes to the parent in absolute form ("GET
 * http://host/path HTTP/1.1", as the client sent it to us), with the parent's Proxy-Authorization, over
 * keep-alive connections to that parent.
 *
 * The pool: one undici Agent per serving thread for every parent. An Agent keeps one Pool per origin,
 * and here the origin of each dispatch is the parent's (http://10.0.0.5:3128), so each parent gets its
 * own keep-alive pool, and undici sends `path` — the absolute URL — as the request target (its request
 * validation accepts http:// paths for exactly this). undici 7.30.2's ProxyAgent does the same for one
 * proxy (with `proxyTunnel: false`; by default it tunnels even http:// through CONNECT), but one
 * ProxyAgent per parent would hide the connect step that health needs to observe and the loopback guard
 * of the tests; the Agent's `connect` hook gives both (parent-dial.ts).
 *
 * Failover: ViaParents wraps the request's handler (forward-http.ts's ForwardExchange) and watches the
 * exchange. A connect that fails (refused, timed out, TLS) counts against that parent's health; before
 * the parent has answered, a request that may be sent again — an idempotent method without a body, so
 * nothing of it has been consumed — moves to the next parent in the route's order. Anything else goes
 * to the inner handler, which answers 502/504 naming the parent. When every parent of the route has
 * failed such a request, it goes direct, unless --never-direct.
 */
import type { Agent, Dispatcher } from 'undici';
import { LazyDispatcher, loadUndici } from '../worker/lazy-dispatcher.ts';
import type { ConnectionInfo, ServeContext } from '../worker/context.ts';
import { dialParent, isConnectFailure, readyEvent } from './parent-dial.ts';
import type { ParentSpec } from './parent-spec.ts';
import { noteParentFailure, noteParentAnswer } from './parent-health-log.ts';

/** This thread's pool of parent connections, made with the first request through a parent (undici: lazy-dispatcher.ts). */
export function createParentPool(o: { connectTimeoutMs(): number; loopbackOnly: boolean }): LazyDispatcher<Agent> {
  return new LazyDispatcher(() => makeParentAgent(o));
}

function makeParentAgent(o: { connectTimeoutMs(): number; loopbackOnly: boolean }): Agent {
  const { Agent } = loadUndici();
  return new Agent({
    pipelining: 1,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connect(options, callback) {
      const parent: ParentSpec = { name: '', protocol: options.protocol === 'https:' ? 'https:' : 'http:', host: options.hostname, port: Number(options.port), weight: 1, authorization: undefined };
      const socket = dialParent(parent, { timeoutMs: o.connectTimeoutMs(), loopbackOnly: o.loopbackOnly });
      let pending: typeof callback | undefined = callback;
      socket.once(readyEvent(parent), () => {
        pending?.(null, socket);
        pending = undefined;
      });
      socket.on('error', (err) => {
        pending?.(err, null);
        pending = undefined;
      });
    },
  });
}

export function parentOrigin(p: ParentSpec): string {
  return `${p.protocol}//${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}`;
}

/** What the inner handler (ForwardExchange) lets the failover see and set. */
export interface ForwardHandler extends Dispatcher.DispatchHandler {
  /** The parent's name, for the log record and the answer's detail. */
  parent: string | undefined;
  readonly clientGone: boolean;
  /** Answer the client with a refusal instead of the exchange's response (and log nothing more). */
  refuse(code: 'PARENT_REFUSED', detail: string): void;
}

/** Methods that may be sent twice (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function mayRetry(method: string | undefined, hasBody: boolean): boolean {
  return !hasBody && IDEMPOTENT.has(method ?? '');
}

/**
 * Send the request through the parents of its route, in order: the first, and the next ones only while
 * a retry is safe (see the top of the file).
 */
export class ViaParents implements Dispatcher.DispatchHandler {
  private readonly ctx: ServeContext;
  private readonly conn: ConnectionInfo;
  private readonly inner: ForwardHandler;
  private readonly options: Dispatcher.DispatchOptions;
  /** The same request for the origin itself (origin-form), should every parent fail. */
  private readonly direct: Dispatcher.DispatchOptions;
  private readonly order: number[];
  private readonly retry: boolean;
  private step = 0;
  private requestStarted = false;
  private answered = false;
  private ended = true;
  private refused = 0;

  constructor(o: { ctx: ServeContext; conn: ConnectionInfo; inner: ForwardHandler; direct: Dispatcher.DispatchOptions; target: string; order: number[]; retry: boolean }) {
    this.ctx = o.ctx;
    this.conn = o.conn;
    this.inner = o.inner;
    this.direct = o.direct;
    this.options = { ...o.direct, path: o.target };
    this.order = o.order;
    this.retry = o.retry;
  }

  private get index(): number {
    return this.order[this.step]!;
  }

  /** Dispatch to the current parent. */
  start(): void {
    const parent = this.ctx.options.parents[this.index]!;
    this.inner.parent = parent.name;
    this.requestStarted = false;
    this.ended = false;
    this.ctx.shared.parents.begin(this.index);
    const headers = parent.authorization ? [...(this.options.headers as string[]), 'proxy-authorization', parent.authorization] : this.options.headers;
    try {
      this.ctx.parentPool.dispatch({ ...this.options, origin: parentOrigin(parent), headers }, this);
    } catch (err) {
      this.finish();
      this.inner.onResponseError?.(undefined as unknown as Dispatcher.DispatchController, err as Error);
    }
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.shared.parents.end(this.index);
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.requestStarted = true;
    this.inner.onRequestStart?.(controller, context);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void {
    if (!this.answered) {
      this.answered = true;
      noteParentAnswer(this.ctx, this.index);
    }
    if (statusCode === 407) {
      // The parent wants credentials we do not have (or it refused ours): that is no answer for our
      // client, whose own proxy-authentication is with us. A clear 502 naming the parent instead.
      this.refused = statusCode;
      return void controller.abort(new Error(`parent ${this.inner.parent} answered 407`));
    }
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[]>): void {
    this.finish();
    this.inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.finish();
    if (this.refused !== 0) {
      const parent = this.inner.parent ?? '';
      this.ctx.shared.stats.add('upstreamErrors');
      this.ctx.shared.log.write({ event: 'parent-refused', level: 'warn', conn: this.conn.id, client: this.conn.client, method: this.options.method, url: String(this.options.path), parent, status: this.refused });
      return this.inner.refuse('PARENT_REFUSED', `parent ${parent} answered ${this.refused} Proxy Authentication Required`);
    }
    if (!this.answered && !this.inner.clientGone) {
      const failedConnect = !this.requestStarted && isConnectFailure(err as NodeJS.ErrnoException);
      if (failedConnect) noteParentFailure(this.ctx, this.conn, this.index, err as NodeJS.ErrnoException);
      // Not yet answered and nothing consumed: the next parent may have it.
      if (this.retry && this.step + 1 < this.order.length) {
        this.step++;
        return this.start();
      }
      // Every parent of the route failed: go direct, unless --never-direct.
      if (this.retry && !this.ctx.options.neverDirect) {
        this.inner.parent = undefined;
        this.ctx.upstream.dispatch(this.direct, this.inner);
        return;
      }
    }
    this.inner.onResponseError?.(controller, err);
  }
}

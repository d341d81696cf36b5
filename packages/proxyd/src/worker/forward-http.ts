// Plain HTTP through the proxy: an absolute-form request ("GET http://host/path HTTP/1.1") passes the
// gate, then goes on to its origin over a pooled keep-alive connection, bodies streamed both ways and
// never buffered whole.
import http from '../builtins/http.ts';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { methodStat } from '../memory/stats-names.ts';
import type { Dispatcher } from 'undici';
import type { TracedOptions } from '../cache/cache-layer.ts';
import { splitAbsoluteTarget } from './authority.ts';
import { forwardedHeaders, rawHeaderValue } from './headers.ts';
import { countStatus, notAProxyRequestPage, refuseResponse } from './refuse.ts';
import type { RefusalCode } from '../policy/refusals.ts';
import { answerUpstreamFailure, passGate } from './request-gate.ts';
import { forwardViaParents } from '../upstream/parent-forward.ts';
import { reportBadRequest } from './abuse.ts';
import { cacheStatusHeader, cacheTag, countCacheTag, newTrace, type CacheTag, type CacheTrace } from '../cache/cache-status.ts';
import { answerPlainHit } from './answer-hit.ts';
import { answerPurge } from './purge.ts';
import { endAfterResponse } from './idle-connections.ts';

export function forwardHttp(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse): void {
  const { stats, log } = ctx.shared;
  stats.add('requests');
  stats.add(methodStat(req.method));
  const target = req.url ?? '';

  if (req.httpVersionMajor !== 1) {
    const after = reportBadRequest(ctx, conn, { method: req.method, target: target.slice(0, 200), why: `HTTP/${req.httpVersion}` });
    res.shouldKeepAlive = false;
    return refuseResponse(res, 'BAD_TARGET', 'only HTTP/1.0 and HTTP/1.1 are served', after);
  }
  if (target.length > ctx.options.maxUrlBytes) {
    const after = reportBadRequest(ctx, conn, { method: req.method, target: target.slice(0, 200), why: `target longer than ${ctx.options.maxUrlBytes} bytes` });
    return refuseResponse(res, 'URI_TOO_LONG', `limit ${ctx.options.maxUrlBytes} bytes`, after);
  }
  if (!/^http:\/\//i.test(target)) {
    const after = reportBadRequest(ctx, conn, { method: req.method, target: target.slice(0, 200), why: 'not an absolute http:// URL' });
    if (target.startsWith('/')) {
      const page = notAProxyRequestPage(req.headers.host);
      res.writeHead(400, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(page), 'X-Proxyd-Refusal': 'NOT_A_PROXY_REQUEST', ...after });
      return void res.end(page);
    }
    return refuseResponse(res, 'BAD_TARGET', target.startsWith('https:') ? 'use CONNECT for https:// URLs' : '', after);
  }
  // The URL parser decides the destination; the path goes on as the client wrote it (originForm). They
  // cannot disagree on where the authority ends: the one character WHATWG reads as "/" there, a
  // backslash, never gets this far (llhttp refuses it in a target; wire.test.ts checks).
  const { originForm } = splitAbsoluteTarget(target);
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    const after = reportBadRequest(ctx, conn, { target: target.slice(0, 200), why: 'unparsable URL' });
    return refuseResponse(res, 'BAD_TARGET', '', after);
  }
  if (url.username || url.password) {
    // Credentials in the URL would be sent on by some clients; a proxy has no business forwarding them.
    const after = reportBadRequest(ctx, conn, { method: req.method, target: `${url.protocol}//${url.host}${url.pathname}`, why: 'user-info in the URL' });
    return refuseResponse(res, 'BAD_TARGET', 'the URL carries a user name or password', after);
  }

  if (ctx.testHooks && req.headers['x-proxyd-test'] === 'crash-worker') process.exit(70); // test: worker dies

  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 80);
  passGate(ctx, conn, req, 'http', host, port, (decision) => {
    if (!decision.allow) return refuseResponse(res, decision.code, decision.detail, decision.headers);
    send(ctx, conn, req, res, url, originForm);
  });
}

/**
 * One request on its way to the origin and its answer on the way back, as an undici dispatch handler:
 * undici calls these methods as the exchange goes (no stream objects in between), and the response is
 * written straight to the client's ServerResponse, with back-pressure: when the client reads slower
 * than the origin sends, the upstream connection is paused until the client has drained.
 */
class ForwardExchange implements Dispatcher.DispatchHandler {
  status = 0;
  bytesDown = 0;
  bytesUp = 0;
  failed = false;
  clientGone = false;
  /** The parent proxy it went through, if any (upstream/parent-http.ts sets it). */
  parent: string | undefined;
  controller: Dispatcher.DispatchController | undefined;
  readonly started = performance.now();
  readonly ctx: ServeContext;
  readonly conn: ConnectionInfo;
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
  readonly hasBody: boolean;
  /** What the cache did (when it is on), filled in by its layers; the tag once the head is known. */
  readonly trace: CacheTrace | undefined;
  tag: CacheTag | undefined;

  constructor(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse, url: URL, hasBody: boolean) {
    this.hasBody = hasBody;
    this.trace = ctx.cache ? newTrace(req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined) : undefined;
    this.ctx = ctx;
    this.conn = conn;
    this.req = req;
    this.res = res;
    this.url = url;
    res.once('close', () => this.onClientClose());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone) return void controller.abort(CLIENT_GONE);
    // Count the body's bytes for the log. Not before: a 'data' listener starts the body flowing, and
    // until now undici had not attached its own (it does so right after this call, in the same tick).
    if (this.hasBody && this.req.listenerCount('data') === 0) this.req.on('data', (chunk: Buffer) => (this.bytesUp += chunk.length));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headerObject: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode < 200) return; // 103 Early Hints and the like: the final answer follows
    const { ctx, res } = this;
    this.status = statusCode;
    countStatus(ctx.shared.stats, statusCode);
    if (res.destroyed) return void controller.abort(CLIENT_GONE);
    // Clients are queued for a permit (end this connection after the response and let one in), or stopping.
    if (endAfterResponse(ctx)) res.shouldKeepAlive = false;
    const headers = this.trace ? this.cachedHead(controller, headerObject) : rawHead(controller);
    res.writeHead(statusCode, statusMessage, forwardedHeaders(headers, { viaToken: ctx.viaToken }));
    res.on('drain', () => controller.resume());
  }

  /**
   * The head of an answer that passed the cache: tagged, with Cache-Status (RFC 9211). undici's stale
   * marker (Warning: 110, a header RFC 9111 made obsolete) tells the tag and is not passed on.
   */
  cachedHead(controller: Dispatcher.DispatchController, headerObject: Record<string, string | string[] | undefined>): string[] {
    const trace = this.trace!;
    const headers = controller.rawHeaders ? rawHead(controller) : objectHead(headerObject);
    let servedStale = false;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.length !== 7 || headers[i]!.toLowerCase() !== 'warning' || !headers[i + 1]!.startsWith('110')) continue;
      servedStale = true;
      headers.splice(i, 2);
      i -= 2;
    }
    this.tag = cacheTag(trace, servedStale);
    headers.push('Cache-Status', cacheStatusHeader(this.tag, trace));
    return headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesDown += chunk.length;
    if (!this.res.write(chunk)) controller.pause(); // resumed on 'drain'
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  /** The exchange failed before or during the answer: answer 502/504 (or cut a started response), log. */
  fail(err: Error): void {
    const { ctx, conn, req, res, url } = this;
    if (this.clientGone || this.failed) return; // we aborted it: the client left
    this.failed = true;
    const label = this.parent === undefined ? url.host : `parent ${this.parent} (for ${url.host})`;
    const { code, detail, headers } = answerUpstreamFailure(ctx, conn, req.method, err as NodeJS.ErrnoException, url.host, label, { url: req.url ?? '', parent: this.parent });
    if (!res.headersSent) refuseResponse(res, code, detail, headers);
    else res.destroy(); // mid-response: all we can do is cut the connection
  }

  /** Answer with a refusal instead of a response (a parent's 407: upstream/parent-http.ts). */
  refuse(code: RefusalCode, detail: string): void {
    if (this.clientGone || this.failed) return;
    this.failed = true;
    refuseResponse(this.res, code, detail);
  }

  onClientClose(): void {
    const { ctx, conn, req, res } = this;
    if (!res.writableFinished) {
      this.clientGone = true; // the client went away early: stop the upstream side too
      this.controller?.abort(CLIENT_GONE);
      this.trace?.abort?.abort(); // or stop waiting for another request's fetch
    }
    if (this.failed) return;
    if (this.tag) countCacheTag(ctx.shared.stats, this.tag, this.bytesDown);
    ctx.shared.stats.add('allowed');
    ctx.shared.log.write({
      event: 'request',
      conn: conn.id,
      client: conn.client,
      method: req.method,
      url: req.url,
      parent: this.parent,
      status: this.status,
      cut: res.writableFinished ? undefined : true, // the response was cut short (one type per field: status stays a number)
      up: this.bytesUp,
      down: this.bytesDown,
      ms: Math.round((performance.now() - this.started) * 10) / 10,
      cache: this.tag ?? (this.trace ? 'BYPASS' : undefined), // no tag: the answer never began (cut, or refused)
    });
  }
}

const CLIENT_GONE = new Error('the client closed its connection');

/** A response head as the origin sent it: [name, value, …] from undici's raw buffers. */
function rawHead(controller: Dispatcher.DispatchController): string[] {
  const raw = (controller.rawHeaders ?? []) as Buffer[]; // [name, value, …] as the origin sent them
  const headers: string[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) headers[i] = raw[i]!.toString('latin1');
  return headers;
}

/** A response head given as an object (a cache layer rewrote it: 206, 504). */
function objectHead(object: Record<string, string | string[] | undefined>): string[] {
  const headers: string[] = [];
  for (const [name, value] of Object.entries(object)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.push(name, v);
  }
  return headers;
}

function send(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse, url: URL, originForm: string): void {
  if (res.destroyed) return; // the client left while the gate was checking (e.g. a password)
  if (req.method === 'PURGE') return answerPurge(ctx, conn, req, res, url);
  // A plainly fresh hit is answered at once, without undici's interceptor (answer-hit.ts).
  if (ctx.cache && (req.method === 'GET' || req.method === 'HEAD') && answerPlainHit(ctx, conn, req, res, url, originForm)) return;
  // A body only when the request framed one: a GET without one must not become a chunked upload.
  const hasBody = rawHeaderValue(req.rawHeaders, 'content-length') !== undefined || rawHeaderValue(req.rawHeaders, 'transfer-encoding') !== undefined;
  const exchange = new ForwardExchange(ctx, conn, req, res, url, hasBody);
  const options: Dispatcher.DispatchOptions = {
    origin: url.origin,
    path: originForm,
    method: req.method ?? 'GET',
    headers: forwardedHeaders(req.rawHeaders, { viaToken: ctx.viaToken, host: url.host }),
    body: hasBody ? req : null,
    headersTimeout: ctx.options.upstreamTimeoutMs,
    // Between body chunks the client side's idle timeout governs (proxy-server.ts).
    bodyTimeout: 0,
  };
  // Through a parent proxy when the route says so (in absolute form: the target as the client sent it).
  if (ctx.parents.enabled && forwardViaParents(ctx, conn, { exchange, options, target: req.url ?? '', host: url.hostname, hasBody })) return;
  try {
    // Direct: through the shared cache when it is on. (Through a parent, above, the cache is not used yet.)
    (ctx.cache?.dispatcher ?? ctx.upstream).dispatch({ ...options, proxydTrace: exchange.trace } as TracedOptions, exchange);
  } catch (err) {
    exchange.fail(err as Error); // undici refused the request outright (e.g. a header value it will not send)
  }
}


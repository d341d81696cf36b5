// Plain HTTP through the proxy: an absolute-form request ("GET http://host/path HTTP/1.1") passes the
// gate, then goes on to its origin over a pooled keep-alive connection, bodies streamed both ways and
// never buffered whole.
import http from 'node:http';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { methodStat } from '../shared/stats-names.ts';
import { countStatus } from './refuse.ts';
import { guardedLookup } from './guarded-lookup.ts';
import { endToEndHeaders, withHost, withVia } from './headers.ts';
import { notAProxyRequestPage, refuseResponse } from './refuse.ts';
import { answerUpstreamFailure, passGate } from './request-gate.ts';
import { upstreamTimeoutError } from './upstream-errors.ts';

export function forwardHttp(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse): void {
  const { stats, log } = ctx.shared;
  stats.add('requests');
  stats.add(methodStat(req.method));
  const target = req.url ?? '';

  if (req.httpVersionMajor !== 1) {
    stats.add('badRequests');
    log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, method: req.method, target: target.slice(0, 200), why: `HTTP/${req.httpVersion}` });
    res.shouldKeepAlive = false;
    return refuseResponse(res, 'BAD_TARGET', 'only HTTP/1.0 and HTTP/1.1 are served');
  }
  if (target.length > ctx.options.maxUrlBytes) {
    stats.add('badRequests');
    log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, method: req.method, target: target.slice(0, 200), why: `target longer than ${ctx.options.maxUrlBytes} bytes` });
    return refuseResponse(res, 'URI_TOO_LONG', `limit ${ctx.options.maxUrlBytes} bytes`);
  }
  if (!/^http:\/\//i.test(target)) {
    stats.add('badRequests');
    log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, method: req.method, target: target.slice(0, 200), why: 'not an absolute http:// URL' });
    if (target.startsWith('/')) {
      const page = notAProxyRequestPage(req.headers.host);
      res.writeHead(400, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(page), 'X-Proxyd-Refusal': 'NOT_A_PROXY_REQUEST' });
      return void res.end(page);
    }
    return refuseResponse(res, 'BAD_TARGET', target.startsWith('https:') ? 'use CONNECT for https:// URLs' : '');
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    stats.add('badRequests');
    log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, target: target.slice(0, 200), why: 'unparsable URL' });
    return refuseResponse(res, 'BAD_TARGET');
  }
  if (url.username || url.password) {
    // Credentials in the URL would be sent on by some clients; a proxy has no business forwarding them.
    stats.add('badRequests');
    log.write({ event: 'bad-request', level: 'warn', conn: conn.id, client: conn.client, method: req.method, target: `${url.protocol}//${url.host}${url.pathname}`, why: 'user-info in the URL' });
    return refuseResponse(res, 'BAD_TARGET', 'the URL carries a user name or password');
  }

  if (ctx.testHooks && req.headers['x-proxyd-test'] === 'crash-worker') process.exit(70); // test: worker dies

  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 80);
  void passGate(ctx, conn, req, 'http', host, port).then((decision) => {
    if (!decision.allow) return refuseResponse(res, decision.code, decision.detail, decision.headers);
    send(ctx, conn, req, res, url, host, port);
  });
}

function send(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse, url: URL, host: string, port: number): void {
  const { stats, log } = ctx.shared;
  if (res.destroyed) return; // the client left while the gate was checking (e.g. a password)
  const target = req.url ?? '';
  const started = performance.now();
  const headers = withVia(withHost(endToEndHeaders(req.rawHeaders), url.host), ctx.viaToken);
  const upstream = http.request({
    host,
    port,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers,
    setHost: false,
    agent: ctx.agent,
    lookup: guardedLookup(ctx.destinations, port, ctx.testHooks),
  });
  let status = 0;
  let bytesDown = 0;
  let bytesUp = 0;
  let failed = false;
  const timer = setTimeout(() => upstream.destroy(upstreamTimeoutError()), ctx.options.upstreamTimeoutMs);

  upstream.on('response', (upRes) => {
    clearTimeout(timer);
    status = upRes.statusCode ?? 502;
    countStatus(ctx.shared.stats, status);
    if (res.destroyed) return void upRes.destroy(); // the client left before the answer came
    // Clients are queued for a permit: end this connection after the response and let one in.
    if (ctx.shared.semaphore.waiting > 0) res.shouldKeepAlive = false;
    res.writeHead(status, upRes.statusMessage, withVia(endToEndHeaders(upRes.rawHeaders), ctx.viaToken));
    upRes.on('data', (chunk: Buffer) => (bytesDown += chunk.length));
    // .pipe(), not stream.pipeline(): pipeline makes an AbortController per call and an AbortError (a
    // DOMException with a stack) when it finishes — 6% of a worker's time in the profile. Errors on
    // either side are handled here and by the 'close' handlers below.
    upRes.pipe(res);
    upRes.once('error', () => res.destroy());
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (failed) return;
    failed = true;
    const { code, detail } = answerUpstreamFailure(ctx, conn, req.method, err, url.host, url.host, { url: target });
    if (!res.headersSent) refuseResponse(res, code, detail);
    else res.destroy(); // mid-response: all we can do is cut the connection
  });
  req.on('data', (chunk: Buffer) => (bytesUp += chunk.length));
  req.pipe(upstream);
  req.once('error', () => upstream.destroy());
  res.once('close', () => {
    if (!res.writableFinished && !upstream.destroyed) upstream.destroy(); // the client went away early
  });

  res.once('close', () => {
    clearTimeout(timer);
    if (failed) return;
    stats.add('allowed');
    log.write({
      event: 'request',
      conn: conn.id,
      client: conn.client,
      method: req.method,
      url: target,
      status: res.writableFinished ? status : `${status} (cut)`,
      up: bytesUp,
      down: bytesDown,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });
}

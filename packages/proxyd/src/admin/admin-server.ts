/**
 * The admin server, on the primary thread, beside the proxy (never in its path): the dashboard at /,
 * /metrics for Prometheus, /api/stats (JSON) and /api/events (Server-Sent Events, once a second; the
 * first message also carries the last minute of chart points, kept here one a second), /api/bans (GET:
 * the bans in force; POST /api/bans/lift {"key": …}: end one), /healthz and /readyz; the analytics over
 * days at /analytics, /api/analytics (JSON) and /api/analytics.csv, answered by the logger thread that
 * counts them. Loopback by default; a non-loopback address is refused unless proxy
 * authentication is on, and then every request must log in with the same users (Basic). It sees the
 * proxy only through a read-only view (proxy-view.ts). Logins are checked through a cache of verified
 * credentials with a failure throttle, as the serving threads do: this is the thread that accepts
 * everyone's connections, and a bcrypt check is tens of milliseconds of its CPU.
 */
import http from '../builtins/http.ts';
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isLoopbackHost } from '../policy/address-rules.ts';
import { CredentialCache } from '../policy/credential-cache.ts';
import type { ProxyView } from './proxy-view.ts';
import type { Registry } from 'prom-client';
import { chartPoint, snapshot, type ChartPoint } from './snapshot.ts';
import { History } from './history.ts';
import { ANALYTICS_RANGES, type AnalyticsRange } from '../messages/logger-messages.ts';
import { analyticsCsv, CSV_TABLES, type CsvTable } from './analytics-csv.ts';

const DASHBOARD_DIR = new URL('./dashboard/', import.meta.url);
const UPLOT_DIR = new URL('./', import.meta.resolve('uplot'));
/** Chart points kept, one a second: what a dashboard opened now draws first. */
const HISTORY_SECONDS = 60;

const ASSETS: Record<string, { file: URL; type: string }> = {
  '/': { file: new URL('index.html', DASHBOARD_DIR), type: 'text/html; charset=utf-8' },
  '/app.js': { file: new URL('app.js', DASHBOARD_DIR), type: 'text/javascript; charset=utf-8' },
  '/analytics': { file: new URL('analytics.html', DASHBOARD_DIR), type: 'text/html; charset=utf-8' },
  '/analytics.js': { file: new URL('analytics.js', DASHBOARD_DIR), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: new URL('style.css', DASHBOARD_DIR), type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: new URL('favicon.svg', DASHBOARD_DIR), type: 'image/svg+xml' },
  // Asked for by browsers on any page (/metrics too) whatever the page declares.
  '/favicon.ico': { file: new URL('favicon.svg', DASHBOARD_DIR), type: 'image/svg+xml' },
  '/assets/uPlot.iife.min.js': { file: new URL('uPlot.iife.min.js', UPLOT_DIR), type: 'text/javascript; charset=utf-8' },
  '/assets/uPlot.min.css': { file: new URL('uPlot.min.css', UPLOT_DIR), type: 'text/css; charset=utf-8' },
};

/** /api/analytics?range=7d (JSON) and /api/analytics.csv?range=7d&table=series|domains|clients|blocked. */
async function answerAnalytics(proxy: ProxyView, url: URL, res: http.ServerResponse): Promise<void> {
  const range = url.searchParams.get('range') ?? '24h';
  const table = url.searchParams.get('table') ?? 'series';
  if (!(range in ANALYTICS_RANGES) || !(CSV_TABLES as readonly string[]).includes(table)) {
    const problem = `range must be one of ${Object.keys(ANALYTICS_RANGES).join(', ')}; table one of ${CSV_TABLES.join(', ')}`;
    return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: problem }));
  }
  let report;
  try {
    report = await proxy.analytics(range as AnalyticsRange);
  } catch (err) {
    return void res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ error: (err as Error).message }));
  }
  if (url.pathname === '/api/analytics') {
    return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(report));
  }
  res.writeHead(200, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': `attachment; filename="proxyd-${table}-${range}.csv"`,
    'cache-control': 'no-store',
  });
  res.end(analyticsCsv(report, table as CsvTable));
}

export interface AdminServer {
  address: net.AddressInfo;
  close(): Promise<void>;
}

/** Until startAdminServer takes over: every request is told the proxy is starting (a health check retries). */
function answerStarting(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1', 'cache-control': 'no-store' }).end('starting\n');
}

/**
 * Listen on the admin address before the proxy starts (cli.ts), so that a busy admin port is refused
 * before the proxy listens; until startAdminServer answers on it, every request gets 503 "starting".
 */
export async function listenAdmin(where: { host: string; port: number }): Promise<http.Server> {
  const server = http.createServer(answerStarting);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A listening server's errors are rare (libuv handles EMFILE at accept); said, never thrown.
  server.on('error', (err) => process.stderr.write(`proxyd: the admin server: ${err.message}\n`));
  return server;
}

export async function startAdminServer(proxy: ProxyView, listening?: http.Server): Promise<AdminServer | undefined> {
  const where = proxy.options.admin;
  if (!where) return undefined;
  const loopback = isLoopbackHost(where.host);
  if (!loopback && !proxy.options.authFile) {
    // Also a rule of the options (config/option-table.ts): here for callers that start it directly.
    throw new Error(`--admin ${where.host}:${where.port} is not a loopback address: that needs --auth-file (or reach the admin port through an SSH tunnel)`);
  }
  // Off the loopback, every request logs in with the proxy's users (re-read on SIGHUP by the primary).
  const logins = loopback ? undefined : new CredentialCache(proxy.users());
  const server = listening ?? (await listenAdmin(where)); // first: a failed listen leaves no timer behind
  // prom-client (~1.5 MiB of heap with its dependencies) is loaded at the first scrape, not at start:
  // every metric is read from shared memory when scraped (metrics.ts), so nothing is missed before it.
  let registry: Promise<Registry> | undefined;
  const streams = new Set<http.ServerResponse>();
  const history = new History<ChartPoint>(HISTORY_SECONDS);
  // Once a second: a chart point for the history (kept whether or not a page is open, so that the first
  // screen has one), and a snapshot to each open page.
  const tick = setInterval(() => {
    history.push(chartPoint(proxy));
    if (streams.size === 0) return;
    const data = `data: ${JSON.stringify(snapshot(proxy))}\n\n`;
    for (const res of streams) res.write(data);
  }, 1000);
  tick.unref();

  server.off('request', answerStarting);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`admin error: ${err.message}\n`);
    });
  });

  let current = logins ? proxy.users() : undefined;
  async function authorized(req: http.IncomingMessage): Promise<boolean> {
    if (!logins) return true;
    const users = proxy.users();
    if (users === undefined) return false; // authentication was turned off by a reload: nobody logs in remotely
    if (users !== current) {
      logins.setUsers(users);
      current = users;
    }
    return (await logins.check(req.headers.authorization, req.socket.remoteAddress ?? '')).ok;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!(await authorized(req))) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="proxyd admin"', 'content-type': 'text/plain' });
      return void res.end('401: log in with a user of --auth-file\n');
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const ready = proxy.ready;
      return void res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'stopping\n');
    }
    if (path === '/metrics') {
      const metrics = await (registry ??= import('./metrics.ts').then((m) => m.createMetrics(proxy)));
      const text = await metrics.metrics();
      return void res.writeHead(200, { 'content-type': metrics.contentType }).end(text);
    }
    if (path === '/api/stats') {
      return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(snapshot(proxy)));
    }
    if (path === '/api/analytics' || path === '/api/analytics.csv') return answerAnalytics(proxy, url, res);
    if (path === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`retry: 2000\ndata: ${JSON.stringify({ ...snapshot(proxy), history: history.toArray() })}\n\n`);
      streams.add(res);
      res.once('close', () => streams.delete(res));
      return;
    }
    if (path === '/api/bans' && req.method === 'GET') {
      return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ bans: proxy.limits.bans() }));
    }
    if (path === '/api/bans/lift') return liftBan(proxy, req, res);
    const asset = ASSETS[path];
    if (asset && req.method === 'GET') {
      const body = await readFile(fileURLToPath(asset.file));
      return void res.writeHead(200, { 'content-type': asset.type, 'content-length': body.length }).end(body);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  return {
    address: server.address() as net.AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(tick);
        for (const res of streams) res.end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * POST /api/bans/lift with {"key": "<client key>"}: end that ban now (logged as 'unban'). JSON only: a
 * cross-site form cannot send application/json without the browser asking first, so another page open
 * in the operator's browser cannot lift a ban through a loopback admin server.
 */
async function liftBan(proxy: ProxyView, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const json = (status: number, body: unknown) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.method !== 'POST') return json(405, { error: 'POST {"key": "<client key>"}' });
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return json(415, { error: 'send Content-Type: application/json' });
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 4096) return json(413, { error: 'body too large' });
  }
  let key: unknown;
  try {
    key = (JSON.parse(body) as { key?: unknown }).key;
  } catch {
    return json(400, { error: 'the body is not JSON' });
  }
  if (typeof key !== 'string' || key === '') return json(400, { error: 'give the ban\'s "key" (as /api/bans lists it)' });
  const lifted = proxy.limits.lift(key, `admin ${req.socket.remoteAddress ?? ''}`.trim());
  return json(lifted ? 200 : 404, { key, lifted });
}

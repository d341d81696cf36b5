// An origin for the cache tests, on 127.0.0.1 and a free port: it counts the requests for every URL and
// answers with the headers the URL's query asks for, so that a test names its case in the URL:
//   cc=…       Cache-Control            etag=…   ETag (and 304 when If-None-Match matches)
//   vary=…     Vary                     lm=N     Last-Modified N seconds before the origin started (304 on If-Modified-Since)
//   cookie=1   Set-Cookie               status=N that status (e.g. 500 for stale-if-error)
//   size=N     N bytes of pattern body  delay=N  wait N ms before answering
//   reset1=1   the first request of the URL is cut off (its socket destroyed) instead of answered
//   drip=N     send the head and half the body, then the rest N ms later
//   v=…        anything, to make a URL unique
// The body says which request this was ("body 3 of /x?…"), unless size is given.
import http from 'node:http';
import { patternChunk } from './origin.ts';

export interface CacheOrigin {
  port: number;
  url(pathAndQuery: string): string;
  /** Requests received for this path and query (any method). */
  count(pathAndQuery: string): number;
  /** Every request, in order. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; at: number }[];
  /** Answer every request with `status` from now on (an origin in trouble); undefined: as the URL says. */
  failWith: number | undefined;
  close(): Promise<void>;
}

const STARTED = Math.floor(Date.now() / 1000) * 1000;

export async function startCacheOrigin(): Promise<CacheOrigin> {
  const counts = new Map<string, number>();
  const origin: CacheOrigin = {
    port: 0,
    url: (p) => `http://127.0.0.1:${origin.port}${p}`,
    count: (p) => counts.get(p) ?? 0,
    seen: [],
    failWith: undefined,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    const target = req.url ?? '/';
    const n = (counts.get(target) ?? 0) + 1;
    counts.set(target, n);
    origin.seen.push({ method: req.method ?? '', url: target, headers: req.headers, at: performance.now() });
    req.resume();
    req.on('end', () => answer(origin, req, res, target, n));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin.port = (server.address() as { port: number }).port;
  return origin;
}

function answer(origin: CacheOrigin, req: http.IncomingMessage, res: http.ServerResponse, target: string, n: number): void {
  const q = new URL(target, 'http://x').searchParams;
  const send = (): void => {
    if (q.has('reset1') && n === 1) return void req.socket.destroy();
    if (origin.failWith !== undefined) return void res.writeHead(origin.failWith, { 'content-type': 'text/plain' }).end(`origin failing (${origin.failWith})\n`);
    const headers: Record<string, string> = { 'content-type': 'text/plain', date: new Date().toUTCString() };
    if (q.has('cc')) headers['cache-control'] = q.get('cc')!;
    if (q.has('vary')) headers.vary = q.get('vary')!;
    if (q.has('cookie')) headers['set-cookie'] = `session=${n}; Path=/`;
    const etag = q.get('etag');
    if (etag) headers.etag = `"${etag}"`;
    const lm = q.get('lm');
    const lastModified = lm ? new Date(STARTED - Number(lm) * 1000) : undefined;
    if (lastModified) headers['last-modified'] = lastModified.toUTCString();
    const notModified = (etag && req.headers['if-none-match'] === `"${etag}"`) || (lastModified && !etag && req.headers['if-modified-since'] !== undefined && Date.parse(req.headers['if-modified-since']) >= lastModified.getTime());
    if (notModified) return void res.writeHead(304, headers).end();
    const status = Number(q.get('status') ?? 200);
    const size = q.get('size');
    if (size === null) {
      const vary = q.get('vary');
      const body = `body ${n} of ${target}${vary ? ` for ${vary}=${String(req.headers[vary.toLowerCase()])}` : ''}\n`;
      headers['content-length'] = String(Buffer.byteLength(body));
      res.writeHead(status, headers);
      if (req.method === 'HEAD') return void res.end();
      const drip = Number(q.get('drip') ?? 0);
      if (drip === 0) return void res.end(body);
      const half = Math.floor(body.length / 2);
      res.write(body.slice(0, half));
      return void setTimeout(() => res.end(body.slice(half)), drip);
    }
    streamPattern(res, status, headers, Number(size), req.method === 'HEAD');
  };
  const delay = Number(q.get('delay') ?? 0);
  if (delay > 0) setTimeout(send, delay);
  else send();
}

/** `total` pattern bytes (origin.ts's patternSha256 checks them), with back-pressure. */
function streamPattern(res: http.ServerResponse, status: number, headers: Record<string, string>, total: number, head: boolean): void {
  res.writeHead(status, { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(total) });
  if (head) return void res.end();
  const chunk = patternChunk(64 * 1024);
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

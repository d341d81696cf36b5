// A real HTTP origin for the tests, on 127.0.0.1 and a free port. It records every request it receives
// (method, url, headers, body hash) and how many TCP connections it accepted.
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  bodySha256: string;
}

export interface Origin {
  port: number;
  url(path: string): string;
  seen: SeenRequest[];
  connections: number;
  /** Body bytes /bytes/N has handed to its sockets so far (what back-pressure must hold back). */
  bytesServed: number;
  close(): Promise<void>;
}

/** Deterministic bytes for /bytes/N, so a download can be checked without holding it. */
export function patternChunk(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of what /bytes/N serves. */
export function patternSha256(total: number): string {
  const hash = createHash('sha256');
  const chunk = patternChunk(64 * 1024);
  for (let left = total; left > 0; left -= chunk.length) hash.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  return hash.digest('hex');
}

function route(origin: Origin, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const url = new URL(req.url ?? '/', 'http://origin');
  const [, first, arg] = url.pathname.split('/');
  switch (first) {
    case 'hello':
      return void res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'yes' }).end('hello from origin\n');
    case 'echo': // body back, with its hash
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-body-sha256': sha256(body), 'x-body-bytes': String(body.length) });
      return void res.end(body);
    case 'headers': // the request headers as the origin saw them
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.rawHeaders));
    case 'bytes': {
      // N bytes streamed with back-pressure, Content-Length set
      const total = Number(arg);
      const chunk = patternChunk(64 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      let left = total;
      const pump = (): void => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          origin.bytesServed += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    case 'chunked': // Transfer-Encoding: chunked, several chunks
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 5; i++) res.write(`chunk ${i}\n`);
      return void res.end();
    case 'nolength': {
      // HTTP/1.0-style body delimited by closing the connection
      const socket = res.socket!;
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nbody until close\n');
      return void socket.end();
    }
    case 'status':
      return void res.writeHead(Number(arg), { etag: '"v1"' }).end();
    case 'delay': // answers after N ms
      return void setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('late\n'), Number(arg));
    case 'slow': // never answers
      return;
    case 'reset': // headers and part of the body, then a reset
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
      res.write('x'.repeat(1000));
      return void setTimeout(() => res.socket?.resetAndDestroy(), 50);
    case 'hop': // answers with hop-by-hop headers that must not reach the client
      res.writeHead(200, { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': 'must not pass', 'keep-alive': 'timeout=5', 'x-end-to-end': 'passes' });
      return void res.end('ok');
    default:
      res.writeHead(404).end('not found\n');
  }
}

export async function startOrigin(): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const origin = { seen, connections: 0, bytesServed: 0 } as Origin;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: body.length, bodySha256: sha256(body) });
      route(origin, req, res, body);
    });
  });
  // WebSocket-like upgrade: answer 101 and echo every byte back in upper case.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0, bodySha256: '' });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n');
    if (head.length) socket.write(head.toString().toUpperCase());
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
    socket.on('end', () => socket.end());
  });
  server.on('connection', (s: net.Socket) => {
    origin.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin.port = (server.address() as net.AddressInfo).port;
  origin.url = (path: string) => `http://127.0.0.1:${origin.port}${path}`;
  origin.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return origin;
}

/** A TCP echo server: echoes bytes, and answers "bye" after the client half-closes. */
export async function startEchoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end('bye after your FIN\n'));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

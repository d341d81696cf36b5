// Answering with a refusal from the worker, on an http.ServerResponse or on a raw socket (CONNECT).
import type http from 'node:http';
import type net from 'node:net';
import { REFUSALS, rawRefusal, refusalBody, type RefusalCode } from '../shared/refusals.ts';

export function refuseResponse(res: http.ServerResponse, code: RefusalCode, detail = '', headers: Record<string, string> = {}): void {
  const body = refusalBody(code, detail);
  if (res.headersSent) return void res.destroy();
  res.writeHead(REFUSALS[code].status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Proxyd-Refusal': code,
    ...headers,
  });
  res.end(body);
}

export function refuseSocket(socket: net.Socket, code: RefusalCode, detail = '', headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  socket.end(rawRefusal(code, detail, headers));
}

/** The page someone gets who browses to the proxy itself. */
export function notAProxyRequestPage(host: string | undefined): string {
  const where = host ?? 'this-host:port';
  return `<!doctype html><meta charset="utf-8"><title>proxyd</title>
<h1>This is proxyd, a forward proxy</h1>
<p>It forwards requests for other sites; it has no pages of its own. Point your browser's or tool's
proxy setting at <code>http://${escapeHtml(where)}</code>, for example:</p>
<pre>curl --proxy http://${escapeHtml(where)} http://example.com/</pre>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

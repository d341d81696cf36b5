// Answering with a refusal from the worker, on an http.ServerResponse or on a raw socket (CONNECT).
import type http from 'node:http';
import type net from 'node:net';
import type { Stats } from '@proxyd/sync/stats';
import { REFUSALS, rawRefusal, refusalBody, type RefusalCode } from '../policy/refusals.ts';
import { statusStat, type StatName } from '../memory/stats-names.ts';

/** Count an answer by its status class in the shared Stats. */
export function countStatus(stats: Stats<StatName>, status: number): void {
  const name = statusStat(status);
  if (name) stats.add(name);
}

// Refusals are counted where they are sent: a module-level hook set by the serving thread.
let refusalStats: Stats<StatName> | undefined;
export function countRefusalsIn(stats: Stats<StatName>): void {
  refusalStats = stats;
}

export function refuseResponse(res: http.ServerResponse, code: RefusalCode, detail = '', headers: Record<string, string> = {}): void {
  const body = refusalBody(code, detail);
  if (refusalStats) countStatus(refusalStats, REFUSALS[code].status);
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
  if (refusalStats) countStatus(refusalStats, REFUSALS[code].status);
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

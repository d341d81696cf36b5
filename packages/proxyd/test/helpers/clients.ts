// Clients of their own: each binds to its own loopback address (127.0.0.2, 127.0.0.3, …), so the proxy
// sees distinct clients, as it would see distinct hosts.
import http from 'node:http';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

/** One GET through the proxy at `proxyPort` from `localAddress`, on `agent`'s keep-alive connections. */
export function getVia(proxyPort: number, url: string, agent: http.Agent, extraHeaders: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, agent, headers: extraHeaders }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, ms: performance.now() - started }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

export function agentFrom(localAddress: string, maxSockets = 8): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, localAddress });
}

export interface Flood {
  ok: number;
  limited: number;
  other: number;
  retryAfter: Set<string>;
  ms: number;
}

/** `requests` GETs from `localAddress`, `parallel` at a time on keep-alive connections, as fast as they go. */
export async function flood(proxyPort: number, url: string, { localAddress, requests, parallel = 8 }: { localAddress: string; requests: number; parallel?: number }): Promise<Flood> {
  const agent = agentFrom(localAddress, parallel);
  const out: Flood = { ok: 0, limited: 0, other: 0, retryAfter: new Set(), ms: 0 };
  const started = performance.now();
  let next = 0;
  async function lane(): Promise<void> {
    while (next < requests) {
      next++;
      const a = await getVia(proxyPort, url, agent);
      if (a.status === 200) out.ok++;
      else if (a.status === 429) {
        out.limited++;
        out.retryAfter.add(String(a.headers['retry-after']));
      } else out.other++;
    }
  }
  try {
    await Promise.all(Array.from({ length: parallel }, lane));
  } finally {
    agent.destroy();
  }
  out.ms = performance.now() - started;
  return out;
}

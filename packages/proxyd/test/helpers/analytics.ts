// Traffic with known counts for the analytics and access-log tests: a plan of requests, each from a
// client address of its own (127.0.0.2-4: all of 127/8 is loopback, curl --interface binds it) to a
// destination by name (*.localhost: loopback under test hooks, worker/guarded-lookup.ts), sent with
// curl through the proxy, and what the analytics must then say, computed from the plan alone.
import http from 'node:http';
import { curl } from './curl.ts';
import type { AnalyticsReport } from '../../src/messages/logger-messages.ts';

export interface Planned {
  client: string;
  host: string;
  port: number;
  method: 'GET' | 'POST';
  /** Body bytes the origin answers with (GET /bytes/N) or echoes (POST /echo). */
  bytes: number;
  /** The blocklist rule that blocks it, if one does. */
  blockedBy?: string;
}

export async function sendPlan(proxyUrl: string, plan: readonly Planned[]): Promise<number[]> {
  const statuses: number[] = [];
  for (const p of plan) {
    const url = p.method === 'GET' ? `http://${p.host}:${p.port}/bytes/${p.bytes}` : `http://${p.host}:${p.port}/echo`;
    const body = p.method === 'POST' ? ['--data-binary', 'x'.repeat(p.bytes)] : [];
    const r = await curl(['--proxy', proxyUrl, '--interface', p.client, '--output', '/dev/null', ...body, url]);
    statuses.push(r.status);
  }
  return statuses;
}

export interface Expected {
  requests: number;
  bytesUp: number;
  bytesDown: number;
  decisions: Record<string, number>;
  clients: Map<string, { requests: number; bytesUp: number; bytesDown: number }>;
  domains: Map<string, { requests: number; bytesUp: number; bytesDown: number }>;
  blocked: Map<string, number>;
}

/** What the plan must add up to: blocked requests move no body bytes. */
export function expectedOf(plan: readonly Planned[]): Expected {
  const e: Expected = { requests: 0, bytesUp: 0, bytesDown: 0, decisions: {}, clients: new Map(), domains: new Map(), blocked: new Map() };
  const bump = (map: Expected['clients'], key: string, up: number, down: number) => {
    const t = map.get(key) ?? { requests: 0, bytesUp: 0, bytesDown: 0 };
    map.set(key, { requests: t.requests + 1, bytesUp: t.bytesUp + up, bytesDown: t.bytesDown + down });
  };
  for (const p of plan) {
    const up = p.blockedBy ? 0 : p.method === 'POST' ? p.bytes : 0;
    const down = p.blockedBy ? 0 : p.bytes;
    e.requests++;
    e.bytesUp += up;
    e.bytesDown += down;
    const decision = p.blockedBy ? 'blocked' : 'allowed';
    e.decisions[decision] = (e.decisions[decision] ?? 0) + 1;
    bump(e.clients, p.client, up, down);
    bump(e.domains, p.host, up, down);
    if (p.blockedBy) e.blocked.set(`${p.host} ${p.blockedBy}`, (e.blocked.get(`${p.host} ${p.blockedBy}`) ?? 0) + 1);
  }
  return e;
}

/** GET on the admin server, on a connection of its own. */
export function adminGet(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('admin request timed out')));
    req.on('error', reject);
  });
}

/**
 * /api/analytics for a range. With `requests`, asked again (bounded) until it counts that many: a
 * request's record is written when the worker sees its response close, which can be just after the
 * client has read the response; the caller then checks the counts for exact equality.
 */
export async function analyticsOf(adminPort: number, range = '24h', requests = 0): Promise<AnalyticsReport> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await adminGet(adminPort, `/api/analytics?range=${range}`);
    if (r.status !== 200) throw new Error(`/api/analytics: ${r.status} ${r.body}`);
    const report = JSON.parse(r.body) as AnalyticsReport;
    if (report.totals.requests >= requests || Date.now() > deadline) return report;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The report's tables as the plan's maps, to compare with t.same. */
export function reportTables(report: AnalyticsReport) {
  const byName = (rows: AnalyticsReport['topDomains']) => new Map(rows.map((r) => [r.name, { requests: r.requests, bytesUp: r.bytesUp, bytesDown: r.bytesDown }]));
  return {
    clients: byName(report.topClients),
    domains: byName(report.topDomains),
    blocked: new Map(report.blocked.map((b) => [`${b.domain} ${b.rule}`, b.requests])),
  };
}

// Parent proxies (issue 19): proxyd forwarding through real proxies on loopback — other proxyd
// instances and Debian's Squid — balanced by weight, by load and by host, failing over by health.
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { eventually, readLog, startTestProxy, tempDir, type TestProxy } from './helpers/proxy.ts';
import { sha256, startOrigin, type Origin } from './helpers/origin.ts';
import { startTlsOrigin } from './helpers/tls-origin.ts';
import { startSquid, squidMissing } from './helpers/squid.ts';
import { freePort } from './helpers/haproxy.ts';
import { parseParent, type ParentSpec } from '../src/upstream/parent-spec.ts';
import type { ProxyOptions } from '../src/config/options.ts';
import { createMetrics } from '../src/admin/metrics.ts';

const metricsOf = (p: TestProxy): Promise<string> => createMetrics(p).metrics();

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
t.teardown(() => keepAlive.destroy());

function parent(text: string): ParentSpec {
  const p = parseParent(text);
  if (!p.ok) throw new Error(p.problem);
  return p.value;
}

/** GET `url` through the proxy on `port` (absolute form, keep-alive): status and body. */
function get(port: number, url: string, agent: http.Agent | false = keepAlive): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: url, agent, headers: { host: new URL(url).host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
  });
}

/** Run `count` requests, `parallel` at a time. */
async function many(count: number, parallel: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) await one(next++);
  }));
}

/** Requests a proxyd parent has forwarded (its shared counters). */
function served(p: TestProxy): number {
  return p.shared.stats.get('allowed');
}

async function child(t: Test, parents: ParentSpec[], extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const proxy = await startTestProxy(t, { parents, ...extra });
  t.teardown(() => proxy.close(0));
  return proxy;
}

async function proxydParent(t: Test, extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const p = await startTestProxy(t, { workers: 1, admin: undefined, ...extra });
  t.teardown(() => p.close(0));
  return p;
}


let origin: Origin;
t.before(async () => {
  origin = await startOrigin();
});
t.teardown(() => origin.close());

t.test('weighted round-robin: weights 3:1 split 1,000 requests 3:1 (±10%)', async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},weight=3,name=a`), parent(`http://127.0.0.1:${b.address.port},weight=1,name=b`)]);
  let ok = 0;
  await many(1000, 8, async (i) => {
    const r = await get(proxy.address.port, origin.url(`/hello?${i}`));
    if (r.status === 200) ok++;
  });
  t.equal(ok, 1000, 'every request answered 200');
  const [na, nb] = [served(a), served(b)];
  t.equal(na + nb, 1000, 'every request went through a parent');
  t.ok(Math.abs(na / nb - 3) <= 0.3, `split ${na}:${nb} is 3:1 within ±10%`);
  const metrics = await metricsOf(proxy);
  t.match(metrics, /proxyd_parent_requests_total\{parent="a"\} 7\d\d/, 'per-parent requests in /metrics');
  t.match(metrics, /proxyd_parent_up\{parent="b"\} 1/, 'state in /metrics');
  const records = readLog(proxy.logFile).filter((r) => r.event === 'request');
  t.ok(records.length > 0 && records.every((r) => r.parent === 'a' || r.parent === 'b'), 'each request record names its parent');
});

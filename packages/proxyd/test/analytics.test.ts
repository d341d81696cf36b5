// The analytics over days (issue 21) with real parts: clients on 127.0.0.2-4 fetch through the proxy
// from origins reached by name, a blocklist covers some names, and /api/analytics must say exactly what
// was sent — per client, per domain, bytes each way, decisions. Then: the counts survive SIGTERM and a
// new start; a retention shorter than the data's age deletes it; a sweep of 50,000 random names keeps
// memory and the store bounded while the heavy hitters stay on top with exact counts.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startOrigin } from './helpers/origin.ts';
import { BIN, startCliProxy, startTestProxy, tempDir } from './helpers/proxy.ts';
import { adminGet, analyticsOf, expectedOf, reportTables, sendPlan, type Planned } from './helpers/analytics.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';
import { Analytics, STORED_KEYS } from '../src/logger/analytics.ts';
import { HOUR_MS } from '../src/logger/analytics-store.ts';
import { requestFacts } from '../src/logger/request-facts.ts';
import { formatRetention, parseRetention } from '../src/config/retention.ts';

/** Three clients, three names on two origins, two blocked names. */
function planFor(portA: number, portB: number): Planned[] {
  const plan: Planned[] = [];
  const add = (n: number, p: Planned) => {
    for (let i = 0; i < n; i++) plan.push(p);
  };
  add(3, { client: '127.0.0.2', host: 'shop.localhost', port: portA, method: 'GET', bytes: 1000 });
  add(1, { client: '127.0.0.2', host: 'ads.localhost', port: portA, method: 'GET', bytes: 10, blockedBy: 'ads.localhost' });
  add(2, { client: '127.0.0.3', host: 'news.localhost', port: portA, method: 'GET', bytes: 2500 });
  add(1, { client: '127.0.0.3', host: 'video.localhost', port: portB, method: 'POST', bytes: 700 });
  add(2, { client: '127.0.0.3', host: 'ads.localhost', port: portA, method: 'GET', bytes: 10, blockedBy: 'ads.localhost' });
  add(4, { client: '127.0.0.4', host: 'video.localhost', port: portB, method: 'GET', bytes: 10_000 });
  add(1, { client: '127.0.0.4', host: 'pixel.tracker.localhost', port: portB, method: 'GET', bytes: 10, blockedBy: 'tracker.localhost' });
  return plan;
}

t.test('/api/analytics counts exactly what three clients sent: per client, per domain, bytes, decisions', async (t) => {
  const [a, b] = [await startOrigin(), await startOrigin()];
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const dir = tempDir();
  const blocklist = join(dir, 'blocklist.txt');
  writeFileSync(blocklist, 'ads.localhost\ntracker.localhost\n');
  const proxy = await startTestProxy(t, { blocklistFile: blocklist, admin: { host: '127.0.0.1', port: 0 }, analyticsFile: join(dir, 'a.sqlite') });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(0);
  });

  const plan = planFor(a.port, b.port);
  const statuses = await sendPlan(proxy.url, plan);
  t.same(statuses, plan.map((p) => (p.blockedBy ? 403 : 200)), 'allowed requests answered 200, blocked ones 403');
  const expected = expectedOf(plan);

  const report = await analyticsOf(admin.address.port, '24h', expected.requests);
  t.same(report.totals, { name: 'total', requests: expected.requests, bytesUp: expected.bytesUp, bytesDown: expected.bytesDown }, `totals: ${expected.requests} requests, ${expected.bytesUp} B up, ${expected.bytesDown} B down`);
  t.same(report.decisions, expected.decisions, 'decisions: allowed and blocked');
  t.same(report.status, { '2xx': expected.decisions.allowed, '4xx': expected.decisions.blocked }, 'status classes');
  t.same(report.methods, { GET: plan.filter((p) => p.method === 'GET').length, POST: plan.filter((p) => p.method === 'POST').length }, 'methods');
  const tables = reportTables(report);
  t.same(tables.clients, expected.clients, 'per client: requests and bytes');
  t.same(tables.domains, expected.domains, 'per domain: requests and bytes');
  t.same(tables.blocked, expected.blocked, 'blocked domains with the rule that blocked them');
  t.equal(report.topClients[0]?.name, '127.0.0.3', 'the busiest client first');
  const hourIndex = report.series.time.findLastIndex((time) => time <= Date.now());
  t.equal(report.series.requests[hourIndex], expected.requests, 'the current hour of the series holds them all');
  t.equal(report.series.blocked[hourIndex], expected.decisions.blocked, 'and the blocked ones');
  t.equal(report.series.requests.reduce((x, y) => x + y, 0), expected.requests, 'no other hour has any');

  const week = await analyticsOf(admin.address.port, '7d');
  t.equal(week.series.time.length, 7 * 24, '7d: one point an hour');
  t.equal(week.totals.requests, expected.requests, '7d: the same totals');
  const month = await analyticsOf(admin.address.port, '30d');
  t.equal(month.step, 'day', '30d: one point a day');
  t.equal(month.series.requests.reduce((x, y) => x + y, 0), expected.requests, '30d: the same requests');

  const csv = await adminGet(admin.address.port, '/api/analytics.csv?range=24h&table=clients');
  t.equal(csv.status, 200);
  t.match(csv.headers['content-type'], /^text\/csv/);
  const rows = csv.body.trim().split('\r\n');
  t.equal(rows[0], 'client,requests,bytes_up,bytes_down', 'CSV header');
  t.same(
    new Set(rows.slice(1)),
    new Set([...expected.clients].map(([c, v]) => `${c},${v.requests},${v.bytesUp},${v.bytesDown}`)),
    'CSV rows: one per client, the same numbers',
  );
  t.equal((await adminGet(admin.address.port, '/api/analytics?range=1y')).status, 400, 'an unknown range: 400');
});

t.test('the counts survive SIGTERM and a new start, and counting goes on from them', async (t) => {
  const a = await startOrigin();
  t.teardown(() => a.close());
  const dir = tempDir();
  const file = join(dir, 'persist.sqlite');
  const args = ['--workers', '1', '--analytics-file', file, '--analytics-retention', '7d'];
  const adminPortOf = (stdout: string) => Number(/dashboard and metrics: http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)?.[1]);
  const first: Planned[] = [
    { client: '127.0.0.2', host: 'one.localhost', port: a.port, method: 'GET', bytes: 300 },
    { client: '127.0.0.2', host: 'one.localhost', port: a.port, method: 'GET', bytes: 300 },
    { client: '127.0.0.3', host: 'two.localhost', port: a.port, method: 'GET', bytes: 5000 },
  ];
  const proxy = await startCliProxy(t, args);
  await sendPlan(proxy.url, first);
  t.equal(await proxy.stop('SIGTERM'), 0, 'exit 0 on SIGTERM');

  const again = await startCliProxy(t, args);
  t.teardown(() => again.stop('SIGKILL'));
  const adminPort = adminPortOf(again.stdout());
  const after = await analyticsOf(adminPort, '24h', first.length);
  const expected = expectedOf(first);
  t.same(after.totals, { name: 'total', requests: 3, bytesUp: 0, bytesDown: 5600 }, 'after the restart: the totals of the first run');
  t.same(reportTables(after).clients, expected.clients, 'per client');
  t.same(reportTables(after).domains, expected.domains, 'per domain');

  const second: Planned[] = [{ client: '127.0.0.4', host: 'one.localhost', port: a.port, method: 'GET', bytes: 100 }];
  await sendPlan(again.url, second);
  const both = await analyticsOf(adminPort, '24h', first.length + second.length);
  t.same(reportTables(both).domains, expectedOf([...first, ...second]).domains, 'the second run adds to the first (the hour is read back, not restarted)');
  t.equal(both.totals.requests, 4);
});

t.test('--analytics-retention deletes hours older than the retention, at start', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'old.sqlite');
  const now = Date.now();
  // Hours a past run counted: recorded through the logger's own aggregation into the same file.
  const past = new Analytics(file, 24 * 365, now);
  const record = (hoursAgo: number, host: string) =>
    past.add(requestFacts({ event: 'request', client: '127.0.0.2:5000', method: 'GET', url: `http://${host}/`, status: 200, up: 0, down: 10 }, now - hoursAgo * HOUR_MS)!);
  for (let i = 0; i < 5; i++) record(5, 'five-hours-ago.localhost');
  for (let i = 0; i < 3; i++) record(30, 'yesterday.localhost');
  record(0, 'this-hour.localhost');
  past.close();

  const proxy = await startTestProxy(t, { admin: { host: '127.0.0.1', port: 0 }, analyticsFile: file, analyticsRetentionHours: 2 });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(0);
  });
  const report = await analyticsOf(admin.address.port, '7d');
  t.same(report.topDomains.map((d) => [d.name, d.requests]), [['this-hour.localhost', 1]], 'only the current hour is left');
  t.equal(report.store.hours, 1, 'the store holds one hour');
});

t.test('50,000 random destination names: memory and the store stay bounded, the heavy hitters stay exact on top', async (t) => {
  const file = join(tempDir(), 'sweep.sqlite');
  const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const analytics = new Analytics(file, 24, hour);
  const heavy = { 'heavy-1.localhost': 400, 'heavy-2.localhost': 300, 'heavy-3.localhost': 200 };
  const NAMES = 50_000;
  const sequence: string[] = [];
  for (let i = 0; i < NAMES; i++) sequence.push(`${randomBytes(6).toString('hex')}.scan.localhost`);
  // The heavy hitters spread through the sweep, each at its own rate.
  for (const [name, n] of Object.entries(heavy)) for (let i = 0; i < n; i++) sequence.splice(Math.floor(((i + 0.5) * sequence.length) / n), 0, name);
  let maxKeys = 0;
  const heapBefore = process.memoryUsage().heapUsed;
  for (const [i, host] of sequence.entries()) {
    analytics.add(requestFacts({ event: 'request', client: `10.0.${(i >> 8) & 255}.${i & 255}:1`, method: 'GET', url: `http://${host}/`, status: 200, up: 0, down: 100 }, hour + 1000)!);
    if (i % 5000 === 0) {
      maxKeys = Math.max(maxKeys, analytics.keysInMemory());
      analytics.flush(hour + 2000);
    }
  }
  analytics.flush(hour + 2000);
  const bound = Object.values(STORED_KEYS).reduce((x, y) => x + y, 0) * 20;
  t.ok(maxKeys <= bound, `keys in memory stayed at most ${bound} (max seen ${maxKeys}) for ${sequence.length} requests`);
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  t.ok(heapGrowth < 64 * 1024 * 1024, `heap grew ${(heapGrowth / 1e6).toFixed(1)} MB (the sweep's own names included)`);
  const size = analytics.store.size();
  t.ok(size.rows <= STORED_KEYS.host + STORED_KEYS.client + 64, `the store holds ${size.rows} rows for the hour (top ${STORED_KEYS.host} hosts + other, top ${STORED_KEYS.client} clients + other, …)`);
  const bytes = statSync(file).size + statSync(`${file}-wal`).size;
  t.ok(bytes < 2 * 1024 * 1024, `the file and its WAL are ${bytes} bytes`);

  const report = analytics.report('24h', hour + 3000);
  t.same(report.topDomains.slice(0, 3).map((d) => [d.name, d.requests]), Object.entries(heavy), 'the heavy hitters on top, with exact counts');
  t.equal(report.topDomains.reduce((x, d) => x + d.requests, 0), sequence.length, 'top + "(other)" = every request');
  t.equal(report.topDomains.at(-1)?.name, '(other)');
  t.equal(report.totals.requests, sequence.length, 'the total is exact');
  analytics.close();
});

t.test('through the proxy: 50,000 random blocked names and three heavy hitters; the logger thread stays bounded', async (t) => {
  const origin = await startOrigin();
  const dir = tempDir();
  const blocklist = join(dir, 'blocklist.txt');
  writeFileSync(blocklist, 'scan.localhost\n');
  // info: the per-connection debug records would only add to what the ring carries
  const proxy = await startTestProxy(t, { workers: 2, logLevel: 'info', blocklistFile: blocklist, admin: { host: '127.0.0.1', port: 0 }, analyticsFile: join(dir, 'sweep.sqlite') });
  const admin = (await startAdminServer(proxy))!;
  const pool = new Pool(proxy.url, { connections: 4, pipelining: 4, connect: { localAddress: '127.0.0.2' } });
  t.teardown(async () => {
    await pool.close();
    await admin.close();
    await proxy.close(0);
    await origin.close();
  });
  const heavy = { 'heavy-1.localhost': 120, 'heavy-2.localhost': 80, 'heavy-3.localhost': 40 };
  const NAMES = 50_000;
  const targets: string[] = Array.from({ length: NAMES }, () => `http://${randomBytes(6).toString('hex')}.scan.localhost/`);
  for (const [name, n] of Object.entries(heavy)) for (let i = 0; i < n; i++) targets.splice(Math.floor(((i + 0.5) * targets.length) / n), 0, `http://${name}:${origin.port}/hello`);
  const started = performance.now();
  const statuses = new Map<number, number>();
  let next = 0;
  async function sender(): Promise<void> {
    while (next < targets.length) {
      const path = targets[next++]!;
      const res = await pool.request({ method: 'GET', path, headers: { host: new URL(path).host } });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: 16 }, sender));
  t.same(Object.fromEntries(statuses), { 200: 240, 403: NAMES }, `${targets.length} requests in ${((performance.now() - started) / 1000).toFixed(1)} s: the heavy hitters served, the sweep blocked`);
  t.equal(proxy.shared.ring.dropped, 0, 'no log record dropped (the counts below are exact)');

  const report = await analyticsOf(admin.address.port, '24h', targets.length);
  t.equal(report.totals.requests, targets.length, 'every request counted');
  t.same(report.decisions, { allowed: 240, blocked: NAMES }, 'decisions');
  t.same(report.topDomains.slice(0, 3).map((d) => [d.name, d.requests]), Object.entries(heavy), 'the heavy hitters on top with exact counts');
  t.equal(report.topDomains.at(-1)?.name, '(other)', 'the rest of the sweep in "(other)"');
  t.equal(report.topDomains.reduce((n, d) => n + d.requests, 0), targets.length, 'top + other = every request');
  const bound = Object.values(STORED_KEYS).reduce((x, y) => x + y, 0) * 20;
  t.ok(report.store.keysInMemory <= bound, `the logger thread holds ${report.store.keysInMemory} keys (at most ${bound})`);
  t.ok(report.store.rows <= 2 * (STORED_KEYS.host + STORED_KEYS.blocked + 20), `the store holds ${report.store.rows} rows`);
});

t.test('--analytics off: no file, and /api/analytics says why', async (t) => {
  const proxy = await startTestProxy(t, { analytics: 'off', admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(0);
  });
  const r = await adminGet(admin.address.port, '/api/analytics?range=24h');
  t.equal(r.status, 503);
  t.match(JSON.parse(r.body), { error: /--analytics off/ });
  t.notOk(existsSync(join(dirname(proxy.logFile), 'analytics.sqlite')), 'no analytics.sqlite beside the log file');
});

t.test('--analytics-retention takes whole days or hours, with the unit', async (t) => {
  t.same(parseRetention('90d'), { ok: true, value: 2160 });
  t.same(parseRetention('36h'), { ok: true, value: 36 });
  t.equal(formatRetention(2160), '90d');
  t.equal(formatRetention(36), '36h');
  for (const bad of ['90', '1.5d', '0h', 'soon', '9999d']) t.equal(parseRetention(bad).ok, false, `"${bad}" refused`);
  const r = spawnSync(process.execPath, [BIN, 'check-config', '--analytics-retention', '90'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 2, 'check-config: exit 2');
  t.equal(r.stderr, 'proxyd: --analytics-retention: "90" is not a retention (use whole days or hours, e.g. 90d, 48h)\n', 'one line naming the option');
});

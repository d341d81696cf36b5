/// <reference lib="dom" />
// The dashboard in a real browser (Debian's Chromium, driven by playwright-core): what the page shows
// must be what went through the proxy — requests counted, the destinations and clients in the top
// tables, the threads with their connections, the blocked count, waiting clients in the FIFO picture.
// On failure a screenshot is saved to test-artifacts/dashboard.png.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { startEchoServer, startOrigin } from './helpers/origin.ts';
import { startTestProxy, tempDir, eventually } from './helpers/proxy.ts';
import { openTunnelClient, type TunnelClient } from './helpers/tunnel-client.ts';
import { curl } from './helpers/curl.ts';
import { exchange } from './helpers/raw.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../../test-artifacts/', import.meta.url).pathname;

/** The text of an element, or of each row of a table (its cells joined by " | "), as the page shows it. */
function shown(page: Page, selector: string): Promise<string | string[]> {
  return page.evaluate((sel) => {
    const el = document.querySelector(sel);
    if (!el) return `(no ${sel})`;
    if (el instanceof HTMLTableElement) return Array.from(el.rows, (row) => Array.from(row.cells, (c) => c.textContent ?? '').join(' | '));
    return el.textContent ?? '';
  }, selector);
}

/**
 * Wait (bounded) until the page shows `expected` at `selector` — it renders a snapshot a second — then
 * assert it, so that a failure says what the page showed instead.
 */
async function pageShows(t: Test, page: Page, selector: string, expected: string | string[], message: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let got = await shown(page, selector);
  while (JSON.stringify(got) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    got = await shown(page, selector);
  }
  t.same(got, expected, message);
}

t.test('the live dashboard shows the traffic that went through the proxy', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, async (t) => {
  const origin = await startOrigin();
  const echo = await startEchoServer();
  const blocklist = join(tempDir(), 'blocklist.txt');
  writeFileSync(blocklist, 'blocked.example\n');
  const K = 2;
  const proxy = await startTestProxy(t, { workers: 2, maxClients: K, maxWaiting: 10, queueTimeoutMs: 60_000, blocklistFile: blocklist, admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const clients: TunnelClient[] = [];
  let page: Page | undefined;
  t.teardown(async () => {
    if (!t.passing() && page) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true }).catch(() => {});
      t.comment(`the page as it was: ${join(ARTIFACTS, 'dashboard.png')}`);
    }
    for (const c of clients) c.socket.destroy();
    await browser.close();
    await admin.close();
    await proxy.close(500);
    await echo.close();
    await origin.close();
  });

  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(`http://127.0.0.1:${admin.address.port}/`);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, { timeout: 10_000 });
  await pageShows(t, page, '#permits', String(K), 'the permit count is --max-clients');
  await pageShows(t, page, '#max-waiting', '10', 'the queue bound is --max-waiting');
  await pageShows(t, page, '#requests-total', '0', 'no requests yet');
  await pageShows(t, page, '#top-hosts', ['no traffic yet | '], 'no destinations yet');

  // Three requests to the origin and one to a blocked host, sent first (below, the proxy will be full).
  for (let i = 0; i < 3; i++) t.equal((await curl(['--proxy', proxy.url, origin.url(`/hello?n=${i}`)])).status, 200, `request ${i} served`);
  t.equal((await curl(['--proxy', proxy.url, 'http://www.blocked.example/'])).status, 403, 'the blocked host refused');
  await pageShows(t, page, '#requests-total', '4', 'four requests counted');
  await pageShows(t, page, '#blocked-total', '1', 'one of them blocked');
  await pageShows(t, page, '#top-hosts', ['127.0.0.1 | 3', 'www.blocked.example | 1'], 'top destinations: the origin 3 times, the blocked host once');
  await pageShows(t, page, '#top-clients', ['127.0.0.1 | 4'], 'top clients: this machine, 4 requests');
  const recent = String(await shown(page, '#recent'));
  t.match(recent, /warn\s+blocked \S+ GET http:\/\/www\.blocked\.example\/ .*rule=blocked\.example/, 'the last log lines show the blocked request and its rule');
  t.match(recent, new RegExp(`info\\s+request \\S+ GET ${origin.url('/hello?n=2').replace(/[.?/]/g, '\\$&')} 200`), 'and the last request to the origin');

  // K tunnels take every permit; three more clients wait at the semaphore.
  for (let i = 0; i < K + 3; i++) {
    clients.push(openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, `c${i}`));
    await eventually(() => proxy.shared.stats.get('accepted') > 4 + i, `client ${i} accepted`);
  }
  await eventually(() => clients.slice(0, K).every((c) => c.head !== undefined), 'the first K tunnels open');
  await pageShows(t, page, '#waiting', '3', 'three clients waiting');
  await pageShows(t, page, '#active', String(K), 'K active');
  await pageShows(t, page, '#tunnels', String(K), 'K open tunnels');
  t.equal(await page.locator('#permit-boxes .box.held').count(), K, 'K permit boxes drawn as held');
  t.equal(await page.locator('#permit-boxes .box:not(.held)').count(), 0, 'and none free');
  // The FIFO picture: the tickets the semaphore has in line, oldest first.
  const { nowServing } = proxy.shared.semaphore.tickets;
  await pageShows(t, page, '#queue', `#${nowServing}#${nowServing + 1}#${nowServing + 2}`, 'three tickets in line, from the one served next');
  const waitingSeries = await page.evaluate(() => (window as unknown as { proxydDashboard: { series: { waiting: number[] } } }).proxydDashboard.series.waiting);
  t.equal(Math.max(...waitingSeries), 3, 'the clients chart plotted the waiting clients');
  // The threads table: the primary and each worker, with the connections it serves now.
  const rows = proxy.shared.workers.rows();
  t.same(rows.map((r) => r.threadId === 0), [true, false, false], 'the thread table has the primary and two workers');
  t.equal(rows.reduce((n, r) => n + r.connections, 0), K, 'the workers serve the K tunnels between them');
  const expectedThreads = rows.map((r) => `${r.threadId === 0 ? 'primary thread' : `worker thread ${r.threadId}`} | ${r.connections} conn`);
  const threadsShown = async () => ((await shown(page!, '#workers')) as string[]).map((row) => row.replace(/ · .*$/, ''));
  await eventually(async () => JSON.stringify(await threadsShown()) === JSON.stringify(expectedThreads), 'the threads table updated');
  t.same(await threadsShown(), expectedThreads, 'the threads table: each thread with the connections it serves');
  t.match(await shown(page, '#workers'), Array(3).fill(/ conn · \d+\.\d ms p99 loop delay$/), 'and its event-loop delay');

  // Two holders leave: the two oldest waiters get their permits, one still waits.
  clients[0]!.socket.destroy();
  clients[1]!.socket.destroy();
  await eventually(() => clients[2]!.head !== undefined && clients[3]!.head !== undefined, 'the two oldest waiters admitted');
  await pageShows(t, page, '#waiting', '1', 'one client still waits');
  await pageShows(t, page, '#active', String(K), 'still K active');
  await pageShows(t, page, '#admitted', String(K + 4 + 2), 'admitted: the four requests, the first K tunnels and the two waiters let in');
});

t.test('the dashboard shows the hottest clients with what is left of their burst, and the bans', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, async (t) => {
  const origin = await startOrigin();
  const proxy = await startTestProxy(t, { workers: 1, rateLimit: 1 / 60, rateBurst: 10, banExempt: ['127.0.0.1/32'], banBadRequests: 2, admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
  let page: Page | undefined;
  t.teardown(async () => {
    if (!t.passing() && page) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-defence.png'), fullPage: true }).catch(() => {});
    }
    await browser.close();
    await admin.close();
    await proxy.close(500);
    await origin.close();
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 1400 } });
  await page.goto(`http://127.0.0.1:${admin.address.port}/`);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, { timeout: 10_000 });
  await pageShows(t, page, '#bans', ['no bans in force | '], 'no bans yet');
  // 127.0.0.42 spends 4 of its 10; 127.0.0.43 sends two malformed requests and is banned.
  for (let i = 0; i < 4; i++) t.equal((await curl(['--interface', '127.0.0.42', '--proxy', proxy.url, origin.url('/hello')])).status, 200);
  for (let i = 0; i < 2; i++) await exchange(proxy.address.port, 'NONSENSE\r\n\r\n', 3000, '127.0.0.43');
  await eventually(() => proxy.limits.bans().length === 1, 'the ban begins');
  await pageShows(t, page, '#bans', ['127.0.0.43 | bad-requests · 10 min left'], 'the ban, its reason and the time left');
  await pageShows(t, page, '#bans-total', '1', 'one ban in all');
  const hot = (await shown(page, '#hot-keys')) as string[];
  t.ok(hot.includes('127.0.0.42 | 6 of 10 left'), `the client that used 4 of its burst: ${JSON.stringify(hot)}`);
});

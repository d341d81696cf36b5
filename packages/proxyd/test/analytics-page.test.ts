/// <reference lib="dom" />
// The analytics page in a real browser (Debian's Chromium, driven by playwright-core): after traffic
// (and hours a past run counted), the page at /analytics shows what /api/analytics gives — the totals,
// the top domains and clients with their bytes, the blocked domains and their rules, and the three
// charts plotting the API's series. The live dashboard links to it. A screenshot of the page is saved
// to test-artifacts/analytics.png every run (issue 21 asks for one).
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, tempDir } from './helpers/proxy.ts';
import { analyticsOf, sendPlan, type Planned } from './helpers/analytics.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';
import { Analytics } from '../src/logger/analytics.ts';
import { HOUR_MS } from '../src/logger/analytics-store.ts';
import { requestFacts } from '../src/logger/request-facts.ts';
import type { AnalyticsReport } from '../src/messages/logger-messages.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../../test-artifacts/', import.meta.url).pathname;
const whole = (n: number) => n.toLocaleString('en-US');

/** Each row of a table, its cells joined by " | ". */
function tableRows(page: Page, selector: string): Promise<string[]> {
  return page.evaluate((sel) => {
    const table = document.querySelector(sel) as HTMLTableElement | null;
    return table ? Array.from(table.rows, (row) => Array.from(row.cells, (c) => c.textContent ?? '').join(' | ')) : [`(no ${sel})`];
  }, selector);
}

async function checkPage(t: Test, page: Page, report: AnalyticsReport): Promise<void> {
  const text = (id: string) => page.locator(`#${id}`).textContent();
  t.equal(await text('total-requests'), whole(report.totals.requests), 'the requests chip');
  t.equal(await text('total-down'), whole(report.totals.bytesDown), 'bytes down');
  t.equal(await text('total-up'), whole(report.totals.bytesUp), 'bytes up');
  t.equal(await text('total-blocked'), whole(report.decisions.blocked ?? 0), 'blocked');
  const tally = (k: AnalyticsReport['topDomains'][number]) => `${k.name} | ${whole(k.requests)} | ${whole(k.bytesDown)} | ${whole(k.bytesUp)}`;
  t.same(await tableRows(page, '#top-domains'), ['domain | requests | bytes down | bytes up', ...report.topDomains.map(tally)], 'top domains: the API rows');
  t.same(await tableRows(page, '#top-clients'), ['client | requests | bytes down | bytes up', ...report.topClients.map(tally)], 'top clients: the API rows');
  t.same(await tableRows(page, '#blocked'), ['domain | rule | requests', ...report.blocked.map((b) => `${b.domain} | ${b.rule} | ${whole(b.requests)}`)], 'blocked domains and their rules');
  const plotted = await page.evaluate(() => {
    const { charts } = (window as unknown as { proxydAnalytics: { charts: Record<string, { data: number[][] }> } }).proxydAnalytics;
    return Object.fromEntries(Object.entries(charts).map(([name, u]) => [name, u.data]));
  });
  const s = report.series;
  const seconds = s.time.map((ms) => ms / 1000);
  t.same(plotted.requests, [seconds, s.requests], 'the requests chart plots the series');
  t.same(plotted.bytes, [seconds, s.bytesDown, s.bytesUp], 'the bytes chart plots down and up');
  t.same(plotted.blocked, [seconds, s.blocked, s.refused, s.limited], 'the blocked chart plots blocked, refused, limited');
}

t.test('the analytics page shows the numbers /api/analytics gives, in charts and tables', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, async (t) => {
  const origin = await startOrigin();
  const dir = tempDir();
  const file = join(dir, 'analytics.sqlite');
  // Hours a past run counted, so the charts have a shape: a few requests in each of the last 30 hours.
  const now = Date.now();
  const past = new Analytics(file, 24 * 90, now);
  for (let h = 1; h <= 30; h++) {
    for (let i = 0; i < (h % 7) + 1; i++) {
      past.add(requestFacts({ event: 'request', client: '127.0.0.5:4000', method: 'GET', url: 'http://earlier.localhost/', status: 200, up: 10, down: 1000 * h }, now - h * HOUR_MS)!);
    }
    if (h % 5 === 0) past.add(requestFacts({ event: 'blocked', client: '127.0.0.5:4000', method: 'GET', target: 'http://ads.localhost/', rule: 'ads.localhost', refusal: 'BLOCKED_DOMAIN' }, now - h * HOUR_MS)!);
  }
  past.close();

  const blocklist = join(dir, 'blocklist.txt');
  writeFileSync(blocklist, 'ads.localhost\n');
  const proxy = await startTestProxy(t, { blocklistFile: blocklist, admin: { host: '127.0.0.1', port: 0 }, analyticsFile: file });
  const admin = (await startAdminServer(proxy))!;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let page: Page | undefined;
  t.teardown(async () => {
    if (page) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'analytics.png'), fullPage: true }).catch(() => {});
      if (!t.passing()) t.comment(`the page as it was: ${join(ARTIFACTS, 'analytics.png')}`);
    }
    await browser.close();
    await admin.close();
    await proxy.close(0);
    await origin.close();
  });

  const plan: Planned[] = [];
  for (let i = 0; i < 4; i++) plan.push({ client: '127.0.0.2', host: 'shop.localhost', port: origin.port, method: 'GET', bytes: 4000 });
  for (let i = 0; i < 2; i++) plan.push({ client: '127.0.0.3', host: 'news.localhost', port: origin.port, method: 'POST', bytes: 1500 });
  for (let i = 0; i < 3; i++) plan.push({ client: '127.0.0.4', host: 'ads.localhost', port: origin.port, method: 'GET', bytes: 1, blockedBy: 'ads.localhost' });
  await sendPlan(proxy.url, plan);
  const pastRequests = [...Array(30).keys()].reduce((n, i) => n + ((i + 1) % 7) + 1 + ((i + 1) % 5 === 0 ? 1 : 0), 0);
  await analyticsOf(admin.address.port, '7d', plan.length + pastRequests); // this run's records are in

  const live = await browser.newPage();
  await live.goto(`http://127.0.0.1:${admin.address.port}/`);
  t.equal(await live.locator('a[href="/analytics"]').count(), 1, 'the live dashboard links to the analytics page');
  await live.close();

  page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  const problems: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('requestfailed', (r) => void problems.push(`${r.url()}: ${r.failure()?.errorText}`));

  for (const range of ['7d', '24h', '30d'] as const) {
    const report = await analyticsOf(admin.address.port, range);
    await page.goto(`http://127.0.0.1:${admin.address.port}/analytics?range=${range}`);
    await page.waitForFunction(() => (window as unknown as { proxydAnalytics?: unknown }).proxydAnalytics !== undefined, undefined, { timeout: 10_000 });
    t.equal(await page.locator('#ranges a.current').getAttribute('data-range'), range, `${range}: the range is marked`);
    await t.test(`range ${range}`, (t) => checkPage(t, page!, report));
  }
  const week = await analyticsOf(admin.address.port, '7d');
  t.equal(week.totals.requests, plan.length + pastRequests, '7d: this run and the past hours');
  t.ok(week.series.requests.filter((n) => n > 0).length >= 25, 'the week has many hours with traffic to plot');
  // Back to 7 days for the screenshot: the busiest view.
  await page.goto(`http://127.0.0.1:${admin.address.port}/analytics?range=7d`);
  await page.waitForFunction(() => (window as unknown as { proxydAnalytics?: unknown }).proxydAnalytics !== undefined, undefined, { timeout: 10_000 });
  t.same(problems, [], 'no console error and no failed request');
});

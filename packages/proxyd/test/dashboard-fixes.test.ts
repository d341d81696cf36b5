/// <reference lib="dom" />
// The dashboard's fixes of issue 14, each in headless Chromium against a real proxy with real traffic:
// a page load without a console error or a failed request (the favicon); the bytes/s axis in units,
// every label whole; queue timeouts and queue-full refusals counted apart, in the semaphore's card; and
// a first screen that already has a history (the admin server keeps the last minute) with the rates of
// the traffic flowing, on a time axis that reads times.
// uPlot draws on canvas: an init script records each chart's last frame of fillText calls (text,
// position, width), so the test reads the labels the page drew.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startEchoServer, startOrigin } from './helpers/origin.ts';
import { startTestProxy, eventually, type TestProxy } from './helpers/proxy.ts';
import { openTunnelClient, type TunnelClient } from './helpers/tunnel-client.ts';
import { curl } from './helpers/curl.ts';
import { startAdminServer, type AdminServer } from '../src/admin/admin-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;

let browser: Browser | undefined;
async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}
t.teardown(() => browser?.close());

/** uPlot's labels on a time axis of seconds and minutes: ":20", "11:12am", "12/1/26 11:11am" (not "2027", "Jun"). */
const TIME_OF_DAY = /^(\d{1,2}\/\d{1,2}\/\d{2} )?(\d{1,2})?:\d\d(am|pm)?$/;

interface Label {
  text: string;
  x: number;
  align: string;
  width: number;
}

interface Dashboard {
  series: Record<string, (number | null)[]>;
  formatRate(bytesPerSecond: number): string;
  renders?: number;
}

/** Runs in the page before its scripts: each chart's last frame of text (a frame starts at clearRect). */
function recordCanvasText(): void {
  const frames: Record<string, Label[]> = {};
  (window as unknown as { chartText: typeof frames }).chartText = frames;
  const proto = CanvasRenderingContext2D.prototype;
  const chartOf = (ctx: CanvasRenderingContext2D) => ctx.canvas.closest('[id^="chart-"]')?.id ?? '';
  const clearRect = proto.clearRect;
  proto.clearRect = function (x: number, y: number, w: number, h: number) {
    if (x === 0 && y === 0 && w === this.canvas.width && h === this.canvas.height) frames[chartOf(this)] = [];
    return clearRect.call(this, x, y, w, h);
  };
  const fillText = proto.fillText;
  proto.fillText = function (text: string, x: number, y: number, maxWidth?: number) {
    (frames[chartOf(this)] ??= []).push({ text: String(text), x, align: this.textAlign, width: this.measureText(String(text)).width });
    return maxWidth === undefined ? fillText.call(this, text, x, y) : fillText.call(this, text, x, y, maxWidth);
  };
}

/** What went wrong while the page was open: console errors, page errors, failed requests, 4xx/5xx. */
interface Problems {
  list: string[];
}

async function openDashboard(t: Test, admin: AdminServer, path = '/'): Promise<{ page: Page; problems: Problems }> {
  const page = await (await launch()).newPage({ viewport: { width: 1440, height: 1000 } });
  t.teardown(() => page.close());
  const problems: Problems = { list: [] };
  page.on('console', (m) => void (m.type() === 'error' && problems.list.push(`console error: ${m.text()} (${m.location().url})`)));
  page.on('pageerror', (e) => void problems.list.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => void problems.list.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => void (r.status() >= 400 && problems.list.push(`${r.status()} for ${r.url()}`)));
  await page.addInitScript(recordCanvasText);
  await page.addInitScript(recordFirstRender);
  await page.goto(`http://127.0.0.1:${admin.address.port}${path}`);
  return { page, problems };
}

async function startProxyAndAdmin(t: Test, options: Parameters<typeof startTestProxy>[0] = {}): Promise<{ proxy: TestProxy; admin: AdminServer }> {
  const proxy = await startTestProxy(t, { workers: 1, admin: { host: '127.0.0.1', port: 0 }, ...options });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
  });
  return { proxy, admin };
}

/** The labels of a chart's left (y) axis and bottom (x) axis in its last frame. */
async function axisLabels(page: Page, chart: string): Promise<{ y: Label[]; x: Label[] }> {
  const frame = await page.evaluate((id) => (window as unknown as { chartText: Record<string, Label[]> }).chartText[id] ?? [], chart);
  return { y: frame.filter((l) => l.align === 'right'), x: frame.filter((l) => l.align === 'center') };
}

t.test('a page load has no console error and no failed request (no /favicon.ico 404)', { skip }, async (t) => {
  const { admin } = await startProxyAndAdmin(t);
  const { page, problems } = await openDashboard(t, admin);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, { timeout: 10_000 });
  // Two snapshots rendered: everything the page loads has been asked for by then.
  await page.waitForFunction(() => (window as unknown as { proxydDashboard: Dashboard }).proxydDashboard.series.t!.length >= 2, undefined, { timeout: 10_000 });
  t.same(problems.list, [], 'no console errors, no failed requests, no 4xx/5xx');
  // A browser asks for /favicon.ico on any page, whatever the dashboard declares: /metrics too.
  const metrics = await openDashboard(t, admin, '/metrics');
  await metrics.page.waitForTimeout(500); // the icon is asked for after the load
  t.match(await metrics.page.textContent('body'), /proxyd_clients_active/, '/metrics shown');
  t.same(metrics.problems.list, [], 'none on /metrics either');
});

t.test('the bytes/s axis reads B/s … GB/s, and every label fits', { skip }, async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const { proxy, admin } = await startProxyAndAdmin(t);
  const { page } = await openDashboard(t, admin);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, { timeout: 10_000 });

  const values = [0, 0.5, 999, 1000, 1234, 999_999, 1.2e6, 12.5e6, 345e6, 3.4e9, 2.5e12];
  t.same(
    await page.evaluate((vs) => vs.map((v) => (window as unknown as { proxydDashboard: Dashboard }).proxydDashboard.formatRate(v)), values),
    ['0 B/s', '0.5 B/s', '999 B/s', '1 KB/s', '1.23 KB/s', '1 MB/s', '1.2 MB/s', '12.5 MB/s', '345 MB/s', '3.4 GB/s', '2500 GB/s'],
    'the page formats rates in units, up to three significant digits',
  );

  // ~3 MB/s for ~3 s, downloaded through the proxy.
  const download = curl(['--proxy', proxy.url, '--limit-rate', '3M', '--output', '/dev/null', origin.url('/bytes/9000000')]);
  t.teardown(() => download);
  await page.waitForFunction(() => Math.max(...(window as unknown as { proxydDashboard: Dashboard }).proxydDashboard.series.down!.map((v) => v ?? 0)) > 1e6, undefined, { timeout: 15_000 });
  const renders = await page.evaluate(() => (window as unknown as { proxydDashboard: Dashboard }).proxydDashboard.series.t!.length);
  await page.waitForFunction((n) => (window as unknown as { proxydDashboard: Dashboard }).proxydDashboard.series.t!.length > n, renders, { timeout: 10_000 });
  const { y } = await axisLabels(page, 'chart-bytes');
  t.ok(y.length >= 2, `the bytes/s axis drew labels: ${y.map((l) => l.text).join(', ')}`);
  t.ok(
    y.some((l) => /^\d+(\.\d+)? MB\/s$/.test(l.text)),
    'a label in MB/s under 3 MB/s of traffic',
  );
  for (const l of y) {
    t.match(l.text, /^\d+(\.\d+)? (B|KB|MB|GB)\/s$/, `"${l.text}" has a unit`);
    t.ok(l.x - l.width >= 0, `"${l.text}" is drawn whole (left edge at ${(l.x - l.width).toFixed(1)} px)`);
  }
  t.equal((await download).status, 200, 'the download went through');
});

t.test('queue timeouts and queue-full refusals are counted apart, with the semaphore', { skip }, async (t) => {
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const { proxy, admin } = await startProxyAndAdmin(t, { maxClients: 1, maxWaiting: 1, queueTimeoutMs: 1000 });
  const clients: TunnelClient[] = [];
  t.teardown(() => clients.forEach((c) => c.socket.destroy()));
  const { page } = await openDashboard(t, admin);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, { timeout: 10_000 });

  // One tunnel holds the only permit, one client waits (and times out after 1 s), two find the queue full.
  const tunnel = (name: string) => clients[clients.push(openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, name)) - 1]!;
  const holder = tunnel('holder');
  await eventually(() => holder.head !== undefined, 'the holder’s tunnel opens');
  const waiter = tunnel('waiter');
  await eventually(() => proxy.shared.semaphore.waiting === 1, 'one client waits');
  const full = [tunnel('full-1'), tunnel('full-2')];
  await eventually(() => full.every((c) => c.head !== undefined) && waiter.head !== undefined, 'the two refused at once and the waiter timed out');
  t.match(holder.head, /^HTTP\/1\.1 200 /);
  for (const c of [...full, waiter]) t.match(c.head, /^HTTP\/1\.1 503 /, `${c.name}: 503`);
  t.equal(proxy.shared.stats.get('queueFull'), 2, 'the proxy counted two queue-full refusals');
  t.equal(proxy.shared.stats.get('queueTimeouts'), 1, 'and one queue timeout');

  const shows = async (id: string, expected: string) => {
    await page.waitForFunction(([i, e]) => document.getElementById(i!)?.textContent === e, [id, expected], { timeout: 10_000 }).catch(() => undefined);
    t.equal(await page.evaluate((i) => document.getElementById(i)?.textContent ?? `(no #${i})`, id), expected, `#${id} shows ${expected}`);
  };
  await shows('queue-timeouts', '1');
  await shows('queue-full', '2');
  const card = (id: string) => page.evaluate((i) => document.getElementById(i)?.closest('.sync-grid > div')?.querySelector('h3')?.textContent ?? '(not in a card of the synchronization section)', id);
  t.match(await card('queue-timeouts'), /FIFO of waiters/, 'queue timeouts sit in the card of the semaphore’s queue');
  t.match(await card('queue-full'), /FIFO of waiters/, 'queue full too');
  t.match(await page.evaluate(() => document.getElementById('queue-timeouts')?.closest('tr')?.textContent ?? ''), /queue timeouts/, 'named for what it counts');
  t.match(await page.evaluate(() => document.getElementById('queue-full')?.closest('tr')?.textContent ?? ''), /queue full/, 'named for what it counts');
  t.notMatch(await page.evaluate(() => document.getElementById('tunnels')?.closest('.chip')?.textContent ?? ''), /queue/, 'the tunnels card says nothing of the queue');
});

interface FirstRender {
  renders: number;
  points: number;
  rps: string;
  allowed: number | null;
  timeLabels: string[];
}

/**
 * Runs in the page before its scripts: what the page showed after its first render. A render writes
 * #rps; the observer's callback runs as a microtask of that same task, before the next message can be
 * rendered — so it sees exactly the first render, however slow the test is.
 */
function recordFirstRender(): void {
  const w = window as unknown as { proxydDashboard?: Dashboard; firstRender?: FirstRender; chartText: Record<string, Label[]> };
  const observer = new MutationObserver((mutations) => {
    const d = w.proxydDashboard;
    if (!d || !mutations.some((m) => (m.target as Element).id === 'rps' || m.target.parentElement?.id === 'rps')) return;
    const renders = d.renders ?? d.series.t!.length; // (a page without the counter drew one point a render)
    if (renders < 1) return;
    observer.disconnect();
    // One microtask later: after uPlot's drawing even if the page wrote #rps before calling setData.
    queueMicrotask(() => {
      w.firstRender = {
        renders,
        points: d.series.t!.length,
        rps: document.getElementById('rps')?.textContent ?? '',
        allowed: d.series.allowed!.at(-1) ?? null,
        timeLabels: (w.chartText['chart-requests'] ?? []).filter((l) => l.align === 'center').map((l) => l.text),
      };
    });
  });
  observer.observe(document, { childList: true, characterData: true, subtree: true });
}

async function firstRender(page: Page): Promise<FirstRender> {
  const handle = await page.waitForFunction(() => (window as unknown as { firstRender?: FirstRender }).firstRender, undefined, { timeout: 10_000 });
  return (await handle.jsonValue()) as FirstRender;
}

t.test('the first screen shows the last seconds: several points, the request rate, a time axis', { skip }, async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const { proxy, admin } = await startProxyAndAdmin(t);
  // Traffic: 20 requests a second through the proxy (bounded: 300 requests, 15 s at most).
  const traffic = spawn('curl', ['--silent', '--output', '/dev/null', '--max-time', '15', '--rate', '20/s', '--proxy', proxy.url, origin.url('/hello?[1-300]')], { stdio: 'ignore' });
  t.teardown(() => void traffic.kill());
  await eventually(() => proxy.shared.stats.get('requests') >= 20, 'traffic flows');
  await new Promise((r) => setTimeout(r, 4000));

  const { page } = await openDashboard(t, admin);
  const first = await firstRender(page);
  t.equal(first.renders, 1, 'read at the first render');
  t.ok(first.points >= 3, `the first render already has ${first.points} points`);
  t.ok(Number(first.rps) > 0, `requests/s reads ${first.rps} while traffic flows`);
  t.ok((first.allowed ?? 0) > 0, `the requests chart's last point: ${first.allowed} allowed/s`);
  t.ok(first.timeLabels.length >= 2, `the time axis drew labels: ${first.timeLabels.join(', ')}`);
  for (const l of first.timeLabels) t.match(l, TIME_OF_DAY, `"${l}" is a time of day`);
});

t.test('a proxy just started: one point on a time axis that reads times, not years', { skip }, async (t) => {
  await launch(); // the browser first: the page must open before the admin server's second tick
  const { admin } = await startProxyAndAdmin(t);
  const { page } = await openDashboard(t, admin);
  const first = await firstRender(page);
  t.equal(first.points, 1, 'the first render has one point (the admin server had no history yet)');
  t.equal(first.rps, '–', 'and no rate yet: one point has none');
  t.ok(first.timeLabels.length >= 2, `the time axis drew labels: ${first.timeLabels.join(', ')}`);
  for (const l of first.timeLabels) t.match(l, TIME_OF_DAY, `"${l}" is a time of day`);
});

/// <reference lib="dom" />
// The dashboard in a real browser (Debian's Chromium, driven by playwright-core): while traffic goes
// through the proxy, the page's numbers and graphs must follow — waiting rises while clients are held
// at the semaphore, the blocked count rises after a blocked request. A screenshot is saved.
import t from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startEchoServer } from './helpers/origin.ts';
import { startTestProxy, tempDir, eventually } from './helpers/proxy.ts';
import { openTunnelClient } from './helpers/tunnel-client.ts';
import { curl } from './helpers/curl.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../../test-artifacts/', import.meta.url).pathname;

t.test('the live dashboard follows the traffic', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, async (t) => {
  const echo = await startEchoServer();
  const blocklist = join(tempDir(), 'blocklist.txt');
  writeFileSync(blocklist, 'blocked.example\n');
  const proxy = await startTestProxy(t, { workers: 2, maxClients: 2, maxWaiting: 10, queueTimeoutMs: 60_000, blocklistFile: blocklist, admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const clients: ReturnType<typeof openTunnelClient>[] = [];
  t.teardown(async () => {
    for (const c of clients) c.socket.destroy();
    await browser.close();
    await admin.close();
    await proxy.close(500);
    await echo.close();
  });

  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(`http://127.0.0.1:${admin.address.port}/`);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', undefined, { timeout: 10_000 });
  t.equal(await page.textContent('#permits'), '2', 'the page shows the permit count');
  t.equal(await page.textContent('#waiting'), '0');

  // A blocked request raises the blocked count (sent first: below, the proxy will be full).
  const blocked = await curl(['--proxy', proxy.url, 'http://www.blocked.example/']);
  t.equal(blocked.status, 403);
  await page.waitForFunction(() => document.getElementById('blocked-total')?.textContent === '1', undefined, { timeout: 10_000 });
  t.pass('the blocked count rose to 1');
  await page.waitForFunction(() => (document.getElementById('top-hosts')?.textContent ?? '').includes('www.blocked.example'), undefined, { timeout: 10_000 });
  t.pass('the blocked host appears among the top destinations');

  // Two tunnels take both permits; three more clients wait at the semaphore.
  for (let i = 0; i < 5; i++) {
    clients.push(openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, `c${i}`));
    await eventually(() => proxy.shared.stats.get('accepted') > i, `client ${i} accepted`);
  }
  await page.waitForFunction(() => document.getElementById('waiting')?.textContent === '3', undefined, { timeout: 10_000 });
  t.equal(await page.textContent('#active'), '2', 'active: 2');
  t.equal(await page.locator('#permit-boxes .box.held').count(), 2, 'two permit boxes drawn as held');
  t.equal(await page.locator('#queue .ticket').count(), 3, 'three tickets in the FIFO picture');
  const waitingSeries = await page.evaluate(() => (window as unknown as { proxydDashboard: { series: { waiting: number[] } } }).proxydDashboard.series.waiting);
  t.equal(Math.max(...waitingSeries), 3, 'the clients chart plotted the waiting clients');

  // Releasing the holders lets the waiters in: the page follows.
  clients[0]!.socket.destroy();
  clients[1]!.socket.destroy();
  await page.waitForFunction(() => document.getElementById('waiting')?.textContent === '1', undefined, { timeout: 10_000 });
  t.pass('waiting fell to 1 after two holders left');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  t.ok(existsSync(join(ARTIFACTS, 'dashboard.png')), 'screenshot saved to test-artifacts/dashboard.png');
});

/**
 * Soak: one proxyd under mixed traffic for --minutes N (default 10), sampling its RSS every 10 s
 * (issue 20, "Scale and endurance"). A benchmark, not a test: it reports, it asserts nothing.
 *
 *   node scripts/bench/soak.ts [--minutes 10] [--workers 2] [--rate 300]
 *
 * Traffic, each kind on a timetable of its own, for the whole run:
 *   - HTTP keep-alive: --rate requests a second (1 KiB) over 20 keep-alive connections;
 *   - a new connection per request: --rate / 10 a second (Connection: close);
 *   - CONNECT tunnels opening and closing: --rate / 30 a second, each one GET through it, held 0–3 s;
 *   - refusals: --rate / 60 a second for a blocklisted host (403, logged as "blocked").
 * Reports: RSS first, last, and its slope over the last 8 minutes (least squares over the samples; over
 * the last 80% of a shorter run); the log's records against the requests answered, per kind
 * ("request", "tunnel", "blocked"); worker restarts (Stats workersStarted from /api/stats, minus the
 * workers it started with) and connections lost to a dying worker; log-ring drops.
 *
 * Needs nginx (scripts/bench/install.sh). Loopback only; every process stopped by pid.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { freePort, startNginx, startProxyd, treeRssKiB } from './candidates.ts';
import { tunnel } from './load.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, workers: { type: 'string', default: '2' }, rate: { type: 'string', default: '300' } } });
const minutes = Number(values.minutes);
const workers = Number(values.workers);
const rate = Number(values.rate);
if (!(minutes > 0 && Number.isInteger(workers) && workers >= 0 && rate >= 60)) {
  console.error('soak: --minutes > 0, --workers a whole number, --rate ≥ 60 (requests a second on keep-alive)');
  process.exit(2);
}

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-soak-'));
const blocklist = join(dir, 'blocklist.txt');
writeFileSync(blocklist, 'blocked.example\n');
const adminPort = await freePort();
const nginx = await startNginx(dir);
const proxy = await startProxyd(dir, workers, { logLevel: 'info', extraArgs: ['--admin', `127.0.0.1:${adminPort}`, '--blocklist', blocklist], label: 'soak' });
const origin = `http://127.0.0.1:${nginx.port}`;

/** /api/stats (the admin server may come up a moment after the proxy's port: a few tries). */
async function stats(): Promise<{ stats: Record<string, number>; ring: { written: number; dropped: number } }> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/api/stats`);
      return (await res.json()) as { stats: Record<string, number>; ring: { written: number; dropped: number } };
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const count = { keepAlive: 0, fresh: 0, tunnels: 0, blocked: 0, failed: 0 };
const failures = new Map<string, number>();
function failed(kind: string, err: unknown): void {
  count.failed++;
  const key = `${kind}: ${err instanceof Error ? err.message : String(err)}`;
  failures.set(key, (failures.get(key) ?? 0) + 1);
}

const pool = new Pool(`http://127.0.0.1:${proxy.port}`, { connections: 20, pipelining: 1 });
async function keepAlive(): Promise<void> {
  const res = await pool.request({ method: 'GET', path: `${origin}/1k`, headers: { host: `127.0.0.1:${nginx.port}` } });
  await res.body.dump({ limit: Infinity });
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  count.keepAlive++;
}

/** One request on a connection of its own (Connection: close); resolves with the status. */
function oneShot(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: url, headers: { host: new URL(url).host, connection: 'close' }, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

async function fresh(): Promise<void> {
  const status = await oneShot(`${origin}/1k`);
  if (status !== 200) throw new Error(`status ${status}`);
  count.fresh++;
}

async function refused(): Promise<void> {
  const status = await oneShot('http://blocked.example/');
  if (status !== 403) throw new Error(`status ${status}`);
  count.blocked++;
}

async function tunnelOnce(): Promise<void> {
  const socket = await tunnel(proxy.port, '127.0.0.1', nginx.port);
  count.tunnels++;
  socket.on('data', () => {});
  socket.write(`GET /1k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await new Promise((r) => setTimeout(r, Math.random() * 3000));
  socket.destroy();
}

/** Run `job` `perSecond` times a second on a 100 ms timetable until `until`; resolves when all settled. */
async function timetable(perSecond: number, until: number, kind: string, job: () => Promise<void>): Promise<void> {
  const pending = new Set<Promise<void>>();
  let due = 0;
  const started = Date.now();
  while (Date.now() < until) {
    const shouldHave = Math.floor(((Date.now() - started) / 1000) * perSecond);
    for (; due < shouldHave; due++) {
      const p: Promise<void> = job()
        .catch((err: unknown) => failed(kind, err))
        .finally(() => pending.delete(p));
      pending.add(p);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all(pending);
}

const samples: { t: number; rssMiB: number }[] = [];
const t0 = Date.now();
const sample = () => samples.push({ t: (Date.now() - t0) / 60_000, rssMiB: treeRssKiB(proxy.pid!) / 1024 });
sample();
const sampler = setInterval(() => {
  sample();
  const last = samples.at(-1)!;
  process.stderr.write(`${last.t.toFixed(1)} min: RSS ${last.rssMiB.toFixed(0)} MiB, answered ${count.keepAlive + count.fresh + count.tunnels + count.blocked}, failed ${count.failed}\n`);
}, 10_000);
const until = t0 + minutes * 60_000;
try {
  const before = await stats(); // inside try: a proxy whose admin server never answers is still stopped
  await Promise.all([
    timetable(rate, until, 'keep-alive', keepAlive),
    timetable(rate / 10, until, 'new connection', fresh),
    timetable(rate / 30, until, 'tunnel', tunnelOnce),
    timetable(rate / 60, until, 'refusal', refused),
  ]);
  clearInterval(sampler);
  sample();
  await pool.close();
  await new Promise((r) => setTimeout(r, 2000)); // the logger thread writes in batches
  const after = await stats();
  const log = readFileSync(proxy.logFile!, 'utf8');
  const records = (event: string) => log.split(`"event":"${event}"`).length - 1;

  // RSS slope over the last 8 minutes (or the last 80% of a shorter run), least squares, MiB per minute.
  const from = minutes >= 10 ? minutes - 8 : minutes * 0.2;
  const window = samples.filter((s) => s.t >= from);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mt = mean(window.map((s) => s.t));
  const mr = mean(window.map((s) => s.rssMiB));
  const slope = window.reduce((a, s) => a + (s.t - mt) * (s.rssMiB - mr), 0) / window.reduce((a, s) => a + (s.t - mt) ** 2, 0);

  const restarts = after.stats.workersStarted! - before.stats.workersStarted!;
  const lines = [
    `soak: ${minutes} min, proxyd --workers ${workers}, ${new Date().toISOString().slice(0, 16)}Z, load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (shared machine)`,
    `answered: ${count.keepAlive} keep-alive, ${count.fresh} new-connection, ${count.tunnels} tunnels, ${count.blocked} refusals (403); failed: ${count.failed}`,
    ...[...failures].map(([what, n]) => `  failed ${n}× ${what}`),
    `log records: "request" ${records('request')} (expected ${count.keepAlive + count.fresh}), "tunnel" ${records('tunnel')} (expected ${count.tunnels}), "blocked" ${records('blocked')} (expected ${count.blocked}); log ring dropped ${after.ring.dropped}`,
    `worker restarts: ${restarts}; connections lost to a dying worker: ${after.stats.workerErrors! - before.stats.workerErrors!}`,
    `RSS: ${samples[0]!.rssMiB.toFixed(0)} MiB at start, ${window[0]!.rssMiB.toFixed(0)} MiB at ${from.toFixed(1)} min, ${samples.at(-1)!.rssMiB.toFixed(0)} MiB at the end, max ${Math.max(...samples.map((s) => s.rssMiB)).toFixed(0)}; slope over the last ${(minutes - from).toFixed(1)} min: ${slope.toFixed(2)} MiB/min (${window.length} samples)`,
    `RSS samples (MiB, every 10 s): ${samples.map((s) => s.rssMiB.toFixed(0)).join(' ')}`,
  ];
  console.log(lines.join('\n'));
} finally {
  clearInterval(sampler);
  await proxy.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

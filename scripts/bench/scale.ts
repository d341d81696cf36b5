/**
 * Scale: one proxyd holding --tunnels idle CONNECT tunnels (4,000) and --clients keep-alive clients
 * (4,000) that each make a request every second, with --max-clients 20000 (issue 20, "Scale and
 * endurance"). A benchmark, not a test: it reports, it asserts nothing.
 *
 *   ulimit -n 20000   # or more: proxyd needs 2 descriptors per client, and this script 1 (+1 per tunnel's far end)
 *   node scripts/bench/scale.ts [--tunnels 4000] [--clients 4000] [--seconds 60] [--workers 2]
 *
 * Steps: start nginx (the keep-alive clients' origin), an echo server in this process (the tunnels' far
 * end: nginx would close a connection that sends no request within a minute) and proxyd; open the
 * tunnels (100 at a time), then start the clients over 10 s (each a raw keep-alive connection, one
 * request due every second from its start, open loop); measure for --seconds; then check that every
 * tunnel still relays (a byte echoed through each), stop the clients, close the tunnels, and count the
 * log's "request" and "tunnel" records against what was answered.
 * Reports: requests due and answered (200), failed, unanswered; p50/p99/max latency of the measured
 * window (from each request's due time); RSS of proxyd (all threads) fresh and with every connection
 * open, per connection; log records against requests; tunnels that no longer relayed.
 * Needs nginx (scripts/bench/install.sh) and an open-file limit high enough: it checks and says so.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startNginx, startProxyd, treeRssKiB } from './candidates.ts';
import { tunnel } from './load.ts';

const { values } = parseArgs({ options: { tunnels: { type: 'string', default: '4000' }, clients: { type: 'string', default: '4000' }, seconds: { type: 'string', default: '60' }, workers: { type: 'string', default: '2' } } });
const tunnels = Number(values.tunnels);
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const workers = Number(values.workers);
if (!(Number.isInteger(tunnels) && tunnels >= 0 && Number.isInteger(clients) && clients >= 1 && seconds >= 5 && Number.isInteger(workers) && workers >= 0)) {
  console.error('scale: --tunnels ≥ 0, --clients ≥ 1, --seconds ≥ 5, --workers a whole number');
  process.exit(2);
}

// Descriptors: proxyd (which inherits this limit) needs 2 per connection plus its own few hundred; this
// process one per connection plus one per tunnel's far end (the echo server lives here).
const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
const needed = Math.max(2 * (tunnels + clients), 2 * tunnels + clients) + 1000;
if (limit < needed) {
  console.error(`scale: the open-file limit is ${limit}; ${tunnels} tunnels and ${clients} clients need about ${needed} (proxyd: 2 per connection). Raise it first: ulimit -n ${needed} (as root, or within the hard limit)`);
  process.exit(2);
}

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-scale-'));
const nginx = await startNginx(dir);
const echoSockets = new Set<net.Socket>();
const echo = net.createServer((s) => {
  echoSockets.add(s);
  s.on('error', () => {});
  s.once('close', () => echoSockets.delete(s));
  s.pipe(s);
});
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', 8192, () => r()));
const echoPort = (echo.address() as net.AddressInfo).port;
const proxy = await startProxyd(dir, workers, { logLevel: 'info', extraArgs: ['--idle-timeout', '30m'], label: 'scale' });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
await wait(2000);
const rssFresh = treeRssKiB(proxy.pid!);

const origin = `http://127.0.0.1:${nginx.port}`;
const open: net.Socket[] = [];
const pool: net.Socket[] = [];
try {
  // 1. Idle tunnels.
  for (let i = 0; i < tunnels; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, tunnels - i) }, () => tunnel(proxy.port, '127.0.0.1', echoPort)));
    for (const s of batch) s.on('error', () => {});
    open.push(...batch);
  }
  process.stderr.write(`${open.length} tunnels open; RSS ${(treeRssKiB(proxy.pid!) / 1024).toFixed(0)} MiB\n`);

  // 2. Keep-alive clients, one connection each, one request due every second (open loop: a request due
  // while the previous one is unanswered waits for it, and its latency counts the wait). Raw sockets and a
  // minimal response reader, not an HTTP client library: 4,000 clients at one request a second must cost
  // this process as little as possible, since it shares the cores with proxyd.
  let measuring = false;
  let stopping = false;
  const latencies: number[] = [];
  const count = { due: 0, ok: 0, failed: 0, answered: 0, closed: 0, lateAnswers: 0, abandoned: 0 };
  const failures = new Map<string, number>();
  const request = Buffer.from(`GET ${origin}/1k HTTP/1.1\r\nHost: 127.0.0.1:${nginx.port}\r\n\r\n`);
  const timers: NodeJS.Timeout[] = [];
  const queues: { due: number; counted: boolean }[][] = []; // each client's requests not yet answered
  const rampMs = 10_000;
  for (let i = 0; i < clients; i++) {
    const socket = net.connect(proxy.port!, '127.0.0.1');
    socket.setNoDelay(true);
    pool.push(socket);
    const waiting: { due: number; counted: boolean }[] = []; // the first is on the wire
    queues.push(waiting);
    let buf: Buffer = Buffer.alloc(0);
    const fail = (why: string): void => {
      for (const _ of waiting.splice(0)) {
        if (stopping) {
          count.abandoned++; // still unanswered when this script closed the connection at the end
          continue;
        }
        count.failed++;
        failures.set(why, (failures.get(why) ?? 0) + 1);
      }
    };
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => {
      if (!stopping) count.closed++;
      fail('connection closed by the proxy');
    });
    socket.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = buf.subarray(0, headEnd).toString('latin1');
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        let end: number;
        if (length) end = headEnd + 4 + Number(length[1]);
        else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', headEnd);
          end = last < 0 ? Infinity : last + 7;
        } else end = headEnd + 4;
        if (buf.length < end) return;
        buf = buf.subarray(end);
        const answered = waiting.shift();
        if (!answered) return;
        count.answered++;
        if (!head.startsWith('HTTP/1.1 200')) {
          count.failed++;
          const why = head.slice(0, head.indexOf('\r\n'));
          failures.set(why, (failures.get(why) ?? 0) + 1);
        } else if (answered.counted) {
          count.ok++;
          latencies.push(performance.now() - answered.due);
          if (!measuring) count.lateAnswers++; // due in the window, answered after it
        }
        if (waiting.length) socket.write(request);
      }
    });
    const startAt = performance.now() + (i * rampMs) / clients;
    let k = 0;
    const fire = (): void => {
      if (stopping) return;
      if (measuring) count.due++;
      waiting.push({ due: startAt + k * 1000, counted: measuring });
      if (waiting.length === 1) socket.write(request);
      k++;
      timers[i] = setTimeout(fire, Math.max(0, startAt + k * 1000 - performance.now()));
    };
    timers[i] = setTimeout(fire, Math.max(0, startAt - performance.now()));
    if (i % 100 === 99) await wait(0); // let connects go out in batches
  }
  const fds = (): number => readdirSync(`/proc/${proxy.pid}/fd`).length;
  let maxFds = 0;
  await wait(rampMs + 5000);
  const rssLoaded = treeRssKiB(proxy.pid!);
  maxFds = Math.max(maxFds, fds());
  process.stderr.write(`${clients} clients running; RSS ${(rssLoaded / 1024).toFixed(0)} MiB; proxyd holds ${fds()} descriptors; measuring ${seconds} s\n`);
  measuring = true;
  const rssSamples: number[] = [];
  for (let s = 0; s < seconds; s += 5) {
    await wait(5000);
    rssSamples.push(treeRssKiB(proxy.pid!));
    const open = fds();
    maxFds = Math.max(maxFds, open);
    process.stderr.write(`  ${s + 5} s: ${count.ok} answered in the window, ${count.failed} failed, RSS ${(rssSamples.at(-1)! / 1024).toFixed(0)} MiB, ${open} descriptors\n`);
  }
  measuring = false;
  stopping = true;
  for (const t of timers) clearTimeout(t);
  const settleBy = Date.now() + 60_000;
  const outstanding = () => pool.reduce((n, _, i) => n + (queues[i]?.length ?? 0), 0);
  while (outstanding() > 0 && Date.now() < settleBy) await wait(200);
  const unanswered = Math.max(0, outstanding());

  // 3. Every tunnel still relays: one byte through each, echoed.
  let relayed = 0;
  await Promise.all(
    open.map(
      (s) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          s.once('data', () => {
            relayed++;
            clearTimeout(timer);
            resolve();
          });
          s.write('x');
        }),
    ),
  );

  // 4. Close everything; the log gets a "tunnel" record per tunnel as it closes.
  for (const c of pool) c.destroy();
  for (const s of open) s.destroy();
  // The logger thread writes a "tunnel" record as each tunnel closes; a busy proxy takes a while.
  let log = '';
  for (let i = 0; i < 60; i++) {
    await wait(1000);
    log = readFileSync(proxy.logFile!, 'utf8');
    if (log.split('"event":"tunnel"').length - 1 >= tunnels) break;
  }
  const records = (event: string) => log.split(`"event":"${event}"`).length - 1;
  const emfile = log.split('EMFILE').length - 1;

  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const connections = tunnels + clients;
  const peak = Math.max(rssLoaded, ...rssSamples);
  console.log(
    [
      `scale: ${tunnels} idle tunnels + ${clients} keep-alive clients (1 request/s each), proxyd --workers ${workers} --max-clients 20000, ${new Date().toISOString().slice(0, 16)}Z, load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (shared machine), open-file limit ${limit}`,
      `requests due in the ${seconds} s window: ${count.due}; answered 200: ${count.ok} (${count.lateAnswers} of them after the window ended); failed in the whole run: ${count.failed}${[...failures].map(([m, n]) => ` (${n}× ${m})`).join('')}; unanswered 60 s after the window (closed by this script): ${unanswered}; client connections closed by the proxy: ${count.closed}`,
      `proxyd's descriptors (ls /proc/PID/fd, sampled every 5 s): at most ${maxFds}`,
      `latency from the due time (window): p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(1)} ms`,
      `responses over the whole run (ramp-up and window): ${count.answered}; log "request" records: ${records('request')}; "tunnel" records: ${records('tunnel')} of ${tunnels} tunnels; EMFILE in the log: ${emfile}`,
      `tunnels still relaying at the end: ${relayed} of ${open.length}`,
      `RSS of proxyd (all threads): fresh ${(rssFresh / 1024).toFixed(0)} MiB, with ${connections} connections ${(rssLoaded / 1024).toFixed(0)} MiB (peak ${(peak / 1024).toFixed(0)}): ${((rssLoaded - rssFresh) / connections).toFixed(1)} KiB per connection`,
    ].join('\n'),
  );
} finally {
  for (const s of open) s.destroy();
  for (const c of pool) c.destroy();
  for (const s of echoSockets) s.destroy();
  echo.close();
  await proxy.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

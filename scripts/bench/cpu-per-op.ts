/**
 * CPU per operation: how much processor time each proxy's processes (all threads, all children) spend
 * per keep-alive request and per CONNECT setup, measured side by side in one run. Throughput on a
 * shared 2-core machine mixes this with how many cores a proxy can use; this number does not.
 *
 *   node scripts/bench/cpu-per-op.ts [--seconds 4] [--rounds 2] [--workers 0,1] [--measures ka,setups]
 *                                    [--peers squid,tinyproxy,proxy,floor] [--logs on|off]
 *
 * After an unmeasured warm-up of each candidate, reads utime+stime from /proc/<pid>/stat (clock ticks)
 * for each candidate's process tree before and after a wrk run (keep-alive, 1 KiB, 50 connections) and
 * a CONNECT-setups run (32 parallel). `--measures setups` runs the CONNECT-setup row alone (the one to
 * watch while working on per-connection cost). `--logs on` (the default, issue 20): proxyd logs every
 * request, Squid writes its access.log, tinyproxy logs at its default level Info; `--logs off`: proxyd
 * --log-level error, Squid access_log none, tinyproxy LogLevel Error. `proxy` (npm) logs nothing either
 * way. `floor` (in the default peers) is the Node floor (node-floor.ts): http.Server + undici, one
 * thread, no log, no policy: what Node's own HTTP server and client cost per request here (plain HTTP
 * only: its CONNECT cell stays empty). Needs the same Debian packages as run.ts
 * (scripts/bench/install.sh). Loopback only; every
 * process stopped by pid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectSetups, wrk } from './load.ts';
import { cpuTicks } from './proc-stat.ts';
import { startNodeFloor } from './node-floor.ts';
import { processTree, startNginx, startProxyNpm, startProxyd, startSquid, startTinyproxy, type Candidate } from './candidates.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '2' }, workers: { type: 'string', default: '0,1' }, measures: { type: 'string', default: 'ka,setups' }, peers: { type: 'string', default: 'squid,tinyproxy,proxy,floor' }, logs: { type: 'string', default: 'on' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workerCounts = String(values.workers).split(',').filter(Boolean).map(Number);
const measures = new Set(String(values.measures).split(','));
const peers = new Set(String(values.peers).split(',').filter(Boolean));
const logsOn = values.logs === 'on';
if (
  !(seconds >= 1 && rounds >= 1 && workerCounts.every((w) => Number.isInteger(w) && w >= 0)) ||
  measures.size === 0 || ![...measures].every((m) => m === 'ka' || m === 'setups') ||
  ![...peers].every((p) => ['squid', 'tinyproxy', 'proxy', 'floor'].includes(p)) ||
  !(values.logs === 'on' || values.logs === 'off')
) {
  console.error('cpu-per-op: --seconds ≥ 1, --rounds ≥ 1, --workers a list of whole numbers, --measures ka,setups (either or both), --peers from squid,tinyproxy,proxy,floor, --logs on|off');
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
  for (const w of workerCounts) candidates.push(await startProxyd(dir, w, { logLevel: logsOn ? 'info' : 'error' }));
  if (peers.has('squid')) candidates.push(await startSquid(dir, 0, { accessLog: logsOn }));
  if (peers.has('tinyproxy')) candidates.push(await startTinyproxy(dir, { logLevel: logsOn ? 'Info' : 'Error' }));
  if (peers.has('proxy')) candidates.push(await startProxyNpm(dir));
  const floor = peers.has('floor') ? await startNodeFloor() : undefined; // plain HTTP only: no CONNECT row
  if (floor) candidates.push(floor);
  const results = new Map<string, { ka: number[]; setups: number[] }>(candidates.map((c) => [c.name, { ka: [], setups: [] }]));
  for (const c of candidates) {
    // Not measured: the first seconds of a Node.js process are its JIT's warm-up.
    console.error(`warm-up: ${c.name}`);
    if (measures.has('ka')) await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: c.port, connections: 50, seconds: 2, dir });
    if (c !== floor) await connectSetups(c.port, nginx.port, 32, 2);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const c of candidates) {
      console.error(`round ${round}/${rounds}: ${c.name}`);
      if (measures.has('ka')) {
        const before = treeTicks(c.pid!);
        const ka = await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: c.port, connections: 50, seconds, dir });
        const ticks = treeTicks(c.pid!) - before;
        results.get(c.name)!.ka.push((ticks / TICKS_PER_SECOND / (ka.requestsPerSec * seconds)) * 1e6);
      }
      if (measures.has('setups') && c !== floor) {
        const before = treeTicks(c.pid!);
        const setupsPerSecond = await connectSetups(c.port, nginx.port, 32, seconds);
        const ticks = treeTicks(c.pid!) - before;
        results.get(c.name)!.setups.push((ticks / TICKS_PER_SECOND / (setupsPerSecond * seconds)) * 1e6);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const range = (xs: number[]): string => (xs.length ? `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))} (median ${Math.round(median(xs))}; ${xs.map(Math.round).join(', ')})` : '–');
  console.log(`\n${new Date().toISOString().slice(0, 16)}Z · ${os.cpus().length} cores · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (shared machine) · logs ${logsOn ? 'on' : 'off'} · ${seconds}s × ${rounds} rounds · CPU µs per operation: min–max of the rounds (median; every round in order)\n`);
  console.log('| candidate | keep-alive 1 KiB request | CONNECT setup |');
  console.log('|---|---|---|');
  for (const [name, r] of results) console.log(`| ${name} | ${range(r.ka)} | ${range(r.setups)} |`);
} finally {
  for (const c of candidates) await c.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Does one client's flood move another client's latency? (issue 16). A benchmark, not a test.
 *
 *   node_modules/.bin/node scripts/bench/flood.ts [--seconds 3] [--rounds 4] [--workers 2]
 *
 * The victim (127.0.0.3) asks for 1 KiB through proxyd 20 times a second on one keep-alive connection,
 * each request sent on a fixed timetable and timed from the moment it was due (so a stall counts even when
 * it delays the next send). In alternate windows a flooder (127.0.0.2, a process of its own, 16 keep-alive
 * connections, as fast as it can) runs beside it. Two proxies, side by side in one run:
 *   - limits on: --rate-limit 50/s --rate-burst 50 — the flood gets 429s, the victim is within its limit;
 *   - limits off: the same flood is forwarded — what the flood's load alone does to the victim.
 * The windows are interleaved (quiet, flood, quiet, flood, … for each proxy in turn), so the machine's
 * other work falls on both. Reported: the victim's p50/p99 in quiet and flood windows, their ratio, and
 * what the flooder got. nginx is the origin (scripts/bench/install.sh).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startNginx, startProxyd, type Candidate } from './candidates.ts';

const VICTIM_RATE = 20; // requests per second, well inside the limit of 50/s
const FLOOD_CONNECTIONS = 16;

/** The flooder: its own process, so that its event loop does not delay the victim's timetable. */
const FLOODER = `
const http = require('node:http');
const [port, url] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: ${FLOOD_CONNECTIONS}, localAddress: '127.0.0.2' });
const counts = {};
let stopping = false;
function lane() {
  if (stopping) return;
  const req = http.request({ host: '127.0.0.1', port: Number(port), path: url, agent }, (res) => {
    res.resume();
    res.on('end', () => { counts[res.statusCode] = (counts[res.statusCode] || 0) + 1; lane(); });
  });
  req.on('error', () => { counts.error = (counts.error || 0) + 1; setTimeout(lane, 10); });
  req.end();
}
for (let i = 0; i < ${FLOOD_CONNECTIONS}; i++) lane();
process.on('SIGTERM', () => { stopping = true; process.stdout.write(JSON.stringify(counts)); agent.destroy(); process.exit(0); });
`;

interface Window {
  latencies: number[];
  flooder?: Record<string, number>;
}

async function victimWindow(proxyPort: number, url: string, agent: http.Agent, seconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const start = performance.now();
  const count = seconds * VICTIM_RATE;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / VICTIM_RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`the victim got ${res.statusCode}: not a valid measurement`));
            latencies.push(performance.now() - due);
            resolve();
          });
        });
        req.setTimeout(10_000, () => req.destroy(new Error('the victim got no answer within 10 s')));
        req.on('error', reject);
        req.end();
      }),
    );
  }
  await Promise.all(pending);
  return latencies;
}

function startFlooder(proxyPort: number, url: string): ChildProcess {
  return spawn(process.execPath, ['-e', FLOODER, String(proxyPort), url], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function stopFlooder(child: ChildProcess): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.once('exit', () => resolve(out ? (JSON.parse(out) as Record<string, number>) : {}));
    child.kill('SIGTERM');
  });
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '4' }, workers: { type: 'string', default: '2' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const workers = Number(values.workers);
  console.log(`# flood isolation benchmark, ${new Date().toISOString().slice(0, 10)}, Node.js ${process.versions.node}, ${os.availableParallelism()} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-flood-bench-'));
  const nginx = await startNginx(dir);
  const url = `http://127.0.0.1:${nginx.port}/1k`;
  const candidates: Candidate[] = [];
  try {
    candidates.push(await startProxyd(dir, workers, { label: 'limits on, deaf flooder banned', extraArgs: ['--rate-limit', '50/s', '--rate-burst', '50', '--ban-exempt', 'none'] }));
    candidates.push(await startProxyd(dir, workers, { label: 'limits on, never banned', extraArgs: ['--rate-limit', '50/s', '--rate-burst', '50', '--ban-exempt', 'none', '--ban-rate-limited', '0'] }));
    candidates.push(await startProxyd(dir, workers, { label: 'limits off' }));
    const results = new Map<string, { quiet: number[]; flood: number[]; flooder: Record<string, number> }>(candidates.map((c) => [c.name, { quiet: [], flood: [], flooder: {} }]));
    for (const c of candidates) {
      // Warm-up, not measured: both paths (served and refused) compiled, connections made.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: '127.0.0.3' });
      const flooder = startFlooder(c.port!, url);
      await victimWindow(c.port!, url, agent, 1);
      await stopFlooder(flooder);
      await victimWindow(c.port!, url, agent, 1);
      agent.destroy();
      await new Promise((res) => setTimeout(res, 1100)); // the victim's and flooder's limits refill
    }
    for (let round = 0; round < rounds; round++) {
      for (const c of round % 2 === 0 ? candidates : [...candidates].reverse()) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: '127.0.0.3' });
        const r = results.get(c.name)!;
        r.quiet.push(...(await victimWindow(c.port!, url, agent, seconds)));
        const flooder = startFlooder(c.port!, url);
        await new Promise((res) => setTimeout(res, 300)); // let the flood reach full speed
        const during: Window = { latencies: await victimWindow(c.port!, url, agent, seconds) };
        during.flooder = await stopFlooder(flooder);
        r.flood.push(...during.latencies);
        for (const [status, n] of Object.entries(during.flooder)) r.flooder[status] = (r.flooder[status] ?? 0) + n;
        agent.destroy();
      }
    }
    console.log(`\n## The victim's latency, ms (${VICTIM_RATE} req/s on one keep-alive connection, timed from when each request was due; ${rounds} rounds of ${seconds} s quiet + ${seconds} s flood, interleaved)\n`);
    console.log('| proxyd (workers ' + workers + ') | quiet p50 / p99 | flood p50 / p99 | flood ÷ quiet p50 / p99 | the flooder got (16 connections; error: closed at accept) |');
    console.log('|---|---|---|---|---|');
    for (const [name, r] of results) {
      const [q50, q99, f50, f99] = [percentile(r.quiet, 50), percentile(r.quiet, 99), percentile(r.flood, 50), percentile(r.flood, 99)];
      const got = Object.entries(r.flooder).map(([s, n]) => `${n} × ${s}`).join(', ');
      console.log(`| ${name} | ${q50.toFixed(2)} / ${q99.toFixed(2)} | ${f50.toFixed(2)} / ${f99.toFixed(2)} | ${(f50 / q50).toFixed(2)}× / ${(f99 / q99).toFixed(2)}× | ${got} |`);
    }
  } finally {
    for (const c of candidates) await c.stop();
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

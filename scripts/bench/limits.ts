/**
 * What the per-client limits cost (issue 16). A benchmark, not a test: numbers move from run to run.
 *
 *   node_modules/.bin/node scripts/bench/limits.ts [--seconds 4] [--rounds 3] [--workers 2]
 *
 * 1. One limiter check, in this thread (no proxy): ClientLimits.takeRequest() on a connection whose slot
 *    is cached (the keep-alive path), takeConnection() (a key lookup each time: the accept path), a bare
 *    Gcra.take(), and bannedFor() (the ban lookup at accept) — ns per call, best of 5 runs of 1,000,000.
 * 2. CAS retries at full load: 1, 2 and 4 worker threads hammer ONE key with Gcra.take() for a second
 *    (real clock, a rate they can never reach: every attempt is a read-modify-write), retries per attempt.
 * 3. Keep-alive 1 KiB through proxyd (wrk, 50 connections, nginx origin — scripts/bench/install.sh):
 *    limits off vs on (--rate-limit, --conn-rate and --max-conns-per-client set high enough that nothing
 *    is refused, so every request pays the check), interleaved rounds after a warm-up, medians; the
 *    proxy's own CAS retry count over the measured rounds, from /metrics. Each limit on its own as well,
 *    and every candidate runs the admin server, so that only the limits differ.
 * 4. The limiter's share of each serving thread's busy CPU, from --cpu-prof: a ratio a busy machine
 *    moves far less than it moves req/s.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Gcra, gcraRate } from '@proxyd/sync/gcra';
import { KeyTable } from '@proxyd/sync/key-table';
import { LogRing } from '@proxyd/sync/log-ring';
import { Stats } from '@proxyd/sync/stats';
import { DEFAULTS, type ProxyOptions } from '../../packages/proxyd/src/config/options.ts';
import { ClientLimits, nowNs, type LimitedClient } from '../../packages/proxyd/src/limits/client-limits.ts';
import { EventLog } from '../../packages/proxyd/src/memory/event-log.ts';
import { createLimitTables } from '../../packages/proxyd/src/memory/limit-tables.ts';
import { STAT_NAMES } from '../../packages/proxyd/src/memory/stats-names.ts';
import { freePort, processTree, startNginx, startProxyd, type Candidate } from './candidates.ts';
import { cpuTicks } from './proc-stat.ts';
import { wrk } from './load.ts';

if (!isMainThread) {
  // Part 2's hammer: one key, real clock, until the deadline.
  const { tableBuffer, gateBuffer } = workerData as { tableBuffer: SharedArrayBuffer; gateBuffer: SharedArrayBuffer };
  const table = new KeyTable(tableBuffer);
  const gcra = new Gcra(table.big);
  const rate = gcraRate(1e9, 1_000_000); // never refuses: every attempt writes
  const gate = new Int32Array(gateBuffer);
  Atomics.add(gate, 1, 1); // ready
  Atomics.wait(gate, 0, 0, 30_000); // until every thread is ready: they start together
  const deadline = Date.now() + 1000;
  let attempts = 0;
  while (Date.now() < deadline) {
    for (let i = 0; i < 1000; i++) gcra.take(0, nowNs(), rate);
    attempts += 1000;
  }
  parentPort!.postMessage({ attempts, retries: gcra.retries });
} else {
  await main();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' }, workers: { type: 'string', default: '2' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const workers = Number(values.workers);
  console.log(`# proxyd limits benchmark, ${new Date().toISOString().slice(0, 10)}, Node.js ${process.versions.node}, ${os.availableParallelism()} CPUs`);
  checkCost();
  await casRetries();
  await keepAlive({ seconds, rounds, workers });
  await limiterShare({ seconds, workers });
}

/**
 * Part 4: the limiter's share of the serving threads' CPU, from V8's sampling profiler — a measure that a
 * busy machine does not move the way it moves req/s (it counts where the proxy's own time went, not how
 * much of it there was). proxyd with every limit on, under the same wrk load, with --cpu-prof on every
 * thread; the time inside the limiter's entry points (their callees included) over each worker's busy time.
 */
async function limiterShare({ seconds, workers }: { seconds: number; workers: number }): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-limits-prof-'));
  const profiles = join(dir, 'profiles');
  const nginx = await startNginx(dir);
  try {
    const proxy = await startProxyd(dir, workers, {
      label: 'limits on, profiled',
      logLevel: 'error',
      extraArgs: ['--rate-limit', '1000000/s', '--rate-burst', '1000000', '--conn-rate', '100000', '--max-conns-per-client', '100000'],
      env: { ...process.env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profiles}` },
    });
    const url = `http://127.0.0.1:${nginx.port}/1k`;
    await wrk({ url, proxyPort: proxy.port, connections: 50, seconds: 2, dir });
    const result = await wrk({ url, proxyPort: proxy.port, connections: 50, seconds, dir });
    await proxy.stop(); // the profiles are written as each thread exits
    console.log(`\n## The limiter's share of each thread's busy CPU (limits on, --cpu-prof, ${Math.round(result.requestsPerSec)} req/s over ${seconds} s after a warm-up)\n`);
    console.log('| thread (the logger is one of them, with no limiter calls) | busy ms | in the limiter, ms | share |');
    console.log('|---|---|---|---|');
    for (const file of readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile')).sort()) {
      const { busyUs, insideUs } = inclusiveTime(JSON.parse(readFileSync(join(profiles, file), 'utf8')) as CpuProfile, limiterEntryPoints());
      const threadId = Number(file.split('.')[4]); // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile
      console.log(`| ${threadId === 0 ? 'primary (accept, admission)' : `thread ${threadId}`} | ${(busyUs / 1e3).toFixed(0)} | ${(insideUs / 1e3).toFixed(1)} | ${((100 * insideUs) / busyUs).toFixed(2)}% |`);
    }
  } finally {
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every per-request or per-connection call into the limiter that the serving threads make. */
function limiterEntryPoints(): Set<string> {
  return new Set(['takeRequest', 'takeUser', 'takeConnection', 'bannedFor', 'isOver', 'note']);
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** Busy time (all samples but idle) and the time of samples with an entry point on their stack, in µs. */
function inclusiveTime(profile: CpuProfile, entryPoints: Set<string>): { busyUs: number; insideUs: number } {
  const parent = new Map<number, number>();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inside = new Map<number, boolean>();
  const isInside = (id: number): boolean => {
    const known = inside.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id)!;
    const up = parent.get(id);
    const answer = (entryPoints.has(n.callFrame.functionName) && n.callFrame.url.includes('client-limits')) || (up !== undefined && isInside(up));
    inside.set(id, answer);
    return answer;
  };
  let busyUs = 0;
  let insideUs = 0;
  profile.samples.forEach((id, i) => {
    const fn = byId.get(id)!.callFrame.functionName;
    if (fn === '(idle)' || fn === '(program)') return;
    const dt = profile.timeDeltas[i] ?? 0;
    busyUs += dt;
    if (isInside(id)) insideUs += dt;
  });
  return { busyUs, insideUs };
}

function checkCost(): void {
  const tables = createLimitTables();
  const stats = Stats.create(STAT_NAMES);
  const log = new EventLog(LogRing.create(1 << 16), () => 0);
  const options: ProxyOptions = { ...DEFAULTS, rateLimit: 1e9, rateBurst: 1_000_000, connRate: 1_000_000 };
  const limits = new ClientLimits({ limits: tables, stats, log }, () => options);
  const client: LimitedClient = { key: '203.0.113.7', address: '203.0.113.7', limitSlot: -1, limitHash: 0n };
  const gcra = new Gcra(tables.clients.big);
  const rate = gcraRate(1e9, 1_000_000);
  const N = 1_000_000;
  const time = (fn: () => unknown): number => {
    let best = Infinity;
    for (let run = 0; run < 5; run++) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < N; i++) fn();
      best = Math.min(best, Number(process.hrtime.bigint() - started) / N);
    }
    return best;
  };
  console.log('\n## One check (ns per call, best of 5 × 1,000,000, this thread alone)\n');
  console.log('| call | ns |');
  console.log('|---|---|');
  console.log(`| takeRequest() — keep-alive path, slot cached on the connection | ${time(() => limits.takeRequest(client)).toFixed(0)} |`);
  console.log(`| takeConnection() — accept path, key hashed and looked up | ${time(() => limits.takeConnection('198.51.100.23')).toFixed(0)} |`);
  console.log(`| bannedFor() — accept path, ban table lookup (no ban) | ${time(() => limits.bannedFor('198.51.100.23')).toFixed(0)} |`);
  console.log(`| Gcra.take() with a clock read (nowNs()) | ${time(() => gcra.take(0, nowNs(), rate)).toFixed(0)} |`);
  console.log(`| nowNs() alone | ${time(() => nowNs()).toFixed(0)} |`);
}

async function casRetries(): Promise<void> {
  console.log('\n## CAS retries, threads hammering one key for 1 s (every attempt admitted, so every attempt writes)\n');
  console.log('| threads | attempts/s | retries | retries per attempt |');
  console.log('|---|---|---|---|');
  for (const threads of [1, 2, 4]) {
    const table = KeyTable.create({ slots: 2, bigWords: 1, intWords: 0 });
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const done = Promise.all(
      Array.from({ length: threads }, () => new Promise<{ attempts: number; retries: number }>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: { tableBuffer: table.buffer, gateBuffer: gate.buffer } });
        w.once('message', resolve);
        w.once('error', reject);
      })),
    );
    while (Atomics.load(gate, 1) < threads) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const results = await done;
    const attempts = results.reduce((n, r) => n + r.attempts, 0);
    const retries = results.reduce((n, r) => n + r.retries, 0);
    console.log(`| ${threads} | ${(attempts / 1e6).toFixed(1)} M | ${retries} | ${(retries / attempts).toFixed(4)} |`);
  }
}

async function keepAlive({ seconds, rounds, workers }: { seconds: number; rounds: number; workers: number }): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-limits-bench-'));
  const nginx = await startNginx(dir);
  const candidates: Candidate[] = [];
  const adminPorts: number[] = [];
  // Every candidate runs the admin server (the metrics are read from it), so that only the limits differ.
  const variants: { label: string; args: string[] }[] = [
    { label: 'limits off', args: [] },
    { label: 'rate limit only', args: ['--rate-limit', '1000000/s', '--rate-burst', '1000000'] },
    { label: 'connection caps only', args: ['--conn-rate', '100000', '--max-conns-per-client', '100000'] },
    { label: 'limits on', args: ['--rate-limit', '1000000/s', '--rate-burst', '1000000', '--conn-rate', '100000', '--max-conns-per-client', '100000'] },
  ];
  try {
    for (const v of variants) {
      const adminPort = await freePort();
      adminPorts.push(adminPort);
      candidates.push(await startProxyd(dir, workers, { label: v.label, logLevel: 'error', extraArgs: [...v.args, '--admin', `127.0.0.1:${adminPort}`] }));
    }
    const url = `http://127.0.0.1:${nginx.port}/1k`;
    for (const c of candidates) await wrk({ url, proxyPort: c.port, connections: 50, seconds: 2, dir }); // warm-up, not measured
    const adminPort = adminPorts[adminPorts.length - 1]!; // the all-on candidate's
    const metric = async (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text())?.[1] ?? NaN);
    const retriesBefore = await metric('proxyd_limiter_cas_retries_total');
    const rpsBefore = await metric('proxyd_request_decisions_total');
    const rps = new Map<string, number[]>(candidates.map((c) => [c.name, []]));
    const cpu = new Map<string, number[]>(candidates.map((c) => [c.name, []]));
    // CPU per request (all of a proxy's threads, from /proc): steadier than req/s on a machine shared with other work.
    const ticks = (pid: number) => processTree(pid).reduce((n, p) => n + cpuTicks(`/proc/${p}/stat`), 0);
    for (let round = 0; round < rounds; round++) {
      const shift = round % candidates.length; // rotate the order each round
      const order = [...candidates.slice(shift), ...candidates.slice(0, shift)];
      for (const c of order) {
        const before = ticks(c.pid!);
        const result = await wrk({ url, proxyPort: c.port, connections: 50, seconds, dir });
        rps.get(c.name)!.push(result.requestsPerSec);
        cpu.get(c.name)!.push(((ticks(c.pid!) - before) / 100 / (result.requestsPerSec * seconds)) * 1e6);
      }
    }
    const retries = (await metric('proxyd_limiter_cas_retries_total')) - retriesBefore;
    const allowed = (await metric('proxyd_request_decisions_total')) - rpsBefore;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`\n## Keep-alive 1 KiB through proxyd (--workers ${workers}, wrk -c50, ${rounds} interleaved rounds of ${seconds} s, medians)\n`);
    console.log('| proxyd | req/s (rounds) | median | µs CPU per request (rounds) | median |');
    console.log('|---|---|---|---|---|');
    for (const [name, xs] of rps) {
      const us = cpu.get(name)!;
      console.log(`| ${name} | ${xs.map((x) => Math.round(x)).join(', ')} | ${Math.round(median(xs))} | ${us.map((x) => x.toFixed(1)).join(', ')} | ${median(us).toFixed(1)} |`);
    }
    const medians = [...rps.values()].map(median);
    const cpuMedians = [...cpu.values()].map(median);
    const [off, on] = [medians[0], medians[medians.length - 1]];
    const [cpuOff, cpuOn] = [cpuMedians[0], cpuMedians[cpuMedians.length - 1]];
    console.log(`\nlimits on ÷ off: ${(on! / off!).toFixed(3)}× req/s, ${(cpuOn! / cpuOff!).toFixed(3)}× CPU per request; CAS retries while measured: ${retries} over ${allowed} allowed requests (${((retries / allowed) * 1e6).toFixed(1)} per million)`);
  } finally {
    for (const c of candidates) await c.stop();
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

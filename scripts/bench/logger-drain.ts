/**
 * The logger thread alone, on a fixed stream of request records: CPU per record of the real logger
 * thread (logger/logger-thread.ts, started as the primary starts it) and of the producer's
 * EventLog.write, for one or more checkouts side by side in one process, in interleaved rounds.
 * No sockets and no load generator: the number depends on the logging code only, so it is far steadier
 * than a whole-proxy run on a shared machine (logger-cpu.ts is that whole-proxy run).
 *
 *   node scripts/bench/logger-drain.ts --variant main:/tmp/proxyd-main --variant branch:. \
 *     [--records 20000] [--rate 4000] [--rounds 5] [--stdout null|file] [--access-log off|squid] [--analytics on|off]
 *
 * Records are those of a keep-alive 1 KiB run (forward-http.ts's request record: a client address and
 * port, GET, a URL, status 200, bytes, ms), written at `--rate` records a second (a few every
 * millisecond, as a busy proxy writes them; the logger's cost per wake-up counts as it does in the
 * proxy), or with --rate 0 in chunks of 500 as fast as the logger drains them (its cost per record
 * alone). The logger's CPU is its thread's time on the CPU (/proc/self/task/<tid>/schedstat); the
 * producer's is this thread's (process.threadCpuUsage) over the writes alone, shown with --rate 0. `--stdout file` gives the
 * logger a stdout (a file, as journald would be), so it also makes readable lines; with `null` (the
 * default) this script runs itself again with stdout on /dev/null, as a service or a benchmark has it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const { values } = parseArgs({ options: { records: { type: 'string', default: '20000' }, rate: { type: 'string', default: '4000' }, rounds: { type: 'string', default: '5' }, variant: { type: 'string', multiple: true, default: [] }, stdout: { type: 'string', default: 'null' }, 'access-log': { type: 'string', default: 'off' }, analytics: { type: 'string', default: 'on' }, child: { type: 'boolean', default: false } } });
const records = Number(values.records);
const rate = Number(values.rate);
const rounds = Number(values.rounds);
const variants = values.variant.map((v) => ({ name: v.slice(0, v.indexOf(':')), repo: resolve(v.slice(v.indexOf(':') + 1)) }));
if (!(records >= 1000 && rate >= 0 && rounds >= 1 && variants.length >= 1 && ['null', 'file'].includes(values.stdout) && ['off', 'squid', 'combined'].includes(values['access-log']) && ['on', 'off'].includes(values.analytics))) {
  console.error('logger-drain: --variant name:CHECKOUT at least once, --records ≥ 1000, --rate ≥ 0 (records a second; 0: as fast as drained), --rounds ≥ 1, --stdout null|file, --access-log off|squid|combined, --analytics on|off');
  process.exit(2);
}

if (values.stdout === 'null' && !values.child) {
  // Again, with fd 1 on /dev/null (the logger then makes no readable lines); the table comes back on fd 2.
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1), '--child'], { stdio: ['ignore', 'ignore', 'inherit'] });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await measure();
}

interface Variant {
  name: string;
  ring: { writeString(s: string): boolean; usedBytes: number; dropped: number };
  log: { write(e: Record<string, unknown>): boolean };
  worker: Worker;
  comm: string;
  logger: number[];
  producer: number[];
}

async function measure(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-logger-drain-'));
  if (values.stdout === 'file') Object.assign(process.env, { PROXYD_TEST_HOOKS: '1', PROXYD_TEST_STDOUT_FILE: join(dir, 'stdout') });
  const started: Variant[] = [];
  try {
    for (const [i, v] of variants.entries()) {
      const { LogRing } = (await import(join(v.repo, 'packages/sync/src/log-ring.ts'))) as typeof import('../../packages/sync/src/log-ring.ts');
      const { Stats } = (await import(join(v.repo, 'packages/sync/src/stats.ts'))) as typeof import('../../packages/sync/src/stats.ts');
      const { STAT_NAMES } = (await import(join(v.repo, 'packages/proxyd/src/memory/stats-names.ts'))) as typeof import('../../packages/proxyd/src/memory/stats-names.ts');
      const { EventLog } = (await import(join(v.repo, 'packages/proxyd/src/memory/event-log.ts'))) as typeof import('../../packages/proxyd/src/memory/event-log.ts');
      const ring = LogRing.create(4 * 1024 * 1024); // the proxy's ring (config/options.ts)
      const stats = Stats.create(STAT_NAMES);
      stats.set('logLevel', 2); // info: every request is logged
      const comm = `drain-${i}`;
      const worker = new Worker(join(v.repo, 'packages/proxyd/src/logger/logger-thread.ts'), {
        name: comm,
        resourceLimits: { maxYoungGenerationSizeMb: 3 }, // as primary/start-logger.ts
        workerData: {
          ring: ring.buffer, stats: stats.buffer, logFile: join(dir, `${v.name}.log`), logMaxBytes: 0, logMaxFiles: 0, statusIntervalMs: 0,
          analyticsFile: values.analytics === 'on' ? join(dir, `${v.name}.sqlite`) : undefined, analyticsRetentionHours: 24,
          accessLog: values['access-log'] === 'off' ? undefined : { file: join(dir, `${v.name}-access.log`), format: values['access-log'] },
        },
      });
      worker.on('message', () => {}); // summaries
      started.push({ name: v.name, ring, log: new EventLog(ring, () => stats.get('logLevel')), worker, comm, logger: [], producer: [] });
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const v of started) await run(v, records / 4); // warm-up: the JIT
    for (let round = 1; round <= rounds; round++) {
      for (const v of round % 2 ? started : [...started].reverse()) {
        const loggerBefore = threadNs(v.comm);
        const producerUs = await run(v, records);
        await new Promise((r) => setTimeout(r, 50)); // the logger writes its last batch
        v.logger.push((threadNs(v.comm) - loggerBefore) / records);
        v.producer.push((producerUs * 1000) / records);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const fmt = (xs: number[]) => `**${(median(xs) / 1000).toFixed(2)}** (${xs.map((x) => (x / 1000).toFixed(2)).join(', ')})`;
    const out: string[] = [];
    out.push(`\n${new Date().toISOString().slice(0, 16)}Z · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (shared machine) · ${records} request records${rate > 0 ? ` at ${rate}/s` : ', as fast as drained'} × ${rounds} rounds, interleaved · stdout ${values.stdout} · analytics ${values.analytics} · access log ${values['access-log']} · µs of CPU per record, median (all rounds)\n`);
    out.push('| variant | logger thread | producer (EventLog.write) | sum |');
    out.push('|---|---|---|---|');
    // The producer's CPU comes from getrusage, which the kernel counts in ticks: over a few records at a
    // time (paced) it says little, so it is shown for --rate 0 only.
    for (const v of started) out.push(`| ${v.name} | ${fmt(v.logger)} | ${rate > 0 ? '–' : fmt(v.producer)} | ${rate > 0 ? '–' : (median(v.logger.map((l, i) => l + v.producer[i]!)) / 1000).toFixed(2)} |`);
    for (const v of started) await stop(v);
    for (const v of started) {
      const lines = readFileSync(join(dir, `${v.name}.log`), 'utf8').split('\n').filter((l) => l.includes('"event":"request"')).length;
      out.push(`${v.name}: ${lines} request lines in the log file of ${Math.round(records / 4 + records * rounds)} written; ${v.ring.dropped} dropped by the ring`);
    }
    process.stderr.write(out.join('\n') + '\n');
  } finally {
    for (const v of started) await v.worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Write `n` request records (paced, or in chunks waiting for the logger to drain); the producer's CPU µs. */
async function run(v: Variant, n: number): Promise<number> {
  let cpu = 0;
  const started = performance.now();
  for (let written = 0; written < n; ) {
    const before = process.threadCpuUsage();
    const due = rate > 0 ? Math.min(n, Math.floor(((performance.now() - started) / 1000) * rate)) : Math.min(n, written + 500);
    for (; written < due; written++) {
      v.log.write({ event: 'request', conn: 1000 + (written >> 6), client: `127.0.0.${2 + (written & 3)}:${40000 + (written >> 6)}`, method: 'GET', url: 'http://127.0.0.1:38211/1k', parent: undefined, status: 200, cut: undefined, up: 0, down: 1024, ms: (written % 37) / 10, cache: undefined });
    }
    const spent = process.threadCpuUsage(before);
    cpu += spent.user + spent.system;
    if (rate > 0) await new Promise((r) => setTimeout(r, 1));
    else for (let waits = 0; v.ring.usedBytes > 256 * 1024 && waits < 1000; waits++) await new Promise((r) => setTimeout(r, 2));
  }
  for (let waits = 0; v.ring.usedBytes > 0 && waits < 1000; waits++) await new Promise((r) => setTimeout(r, 2));
  return cpu;
}

function threadNs(comm: string): number {
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === comm) return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {}
  }
  throw new Error(`no thread named ${comm}`);
}

async function stop(v: Variant): Promise<void> {
  const flushed = new Promise((r) => v.worker.on('message', (m: { type: string }) => m.type === 'flushed' && r(undefined)));
  v.worker.postMessage({ type: 'flush' });
  await Promise.race([flushed, new Promise((r) => setTimeout(r, 5000))]);
}

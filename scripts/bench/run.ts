/**
 * proxyd beside direct, Squid, tinyproxy and proxy-chain, in one run with interleaved rounds (the order
 * rotates every round, so noise lands on all alike). Loopback only; every process stopped by pid.
 *
 *   node scripts/bench/run.ts [--seconds 5] [--rounds 2] [--workers 0,1,2] [--idle-tunnels 2000]
 *                             [--measures ka1k,setups,…] [--peers squid,tinyproxy,proxy-chain] [--log-level info]
 *                             [--quiet-workers 2]
 *
 * --measures and --peers narrow a run while working on one number (the published table uses all);
 * --log-level sets proxyd's (info logs every request); --quiet-workers W adds proxyd with W workers and
 * --log-level error to the same run, to show what logging costs (it does not count as "best proxyd").
 *
 * Needs Debian's wrk, nginx-light, squid and tinyproxy (scripts/bench/install.sh installs them) and
 * fetches proxy-chain from npm into a temp folder. Prints a Markdown table: the median of the rounds,
 * each proxy's ratio to direct, and proxyd's best ratio to the best peer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectBulk, connectSetups, idleTunnels, startBlaster, wrk } from './load.ts';
import { direct, startNginx, startProxyChain, startProxyd, startSquid, startTinyproxy, treeRssKiB, type Candidate } from './candidates.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' }, workers: { type: 'string', default: '0,1,2' }, 'idle-tunnels': { type: 'string', default: '2000' }, measures: { type: 'string', default: 'ka1k,ka100k,new1k,bulk,setups,idle,p99' }, peers: { type: 'string', default: 'squid,tinyproxy,proxy-chain' }, 'log-level': { type: 'string', default: 'info' }, 'quiet-workers': { type: 'string', default: '' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workerCounts = String(values.workers).split(',').map(Number);
const idleCount = Number(values['idle-tunnels']);
const measures = new Set(String(values.measures).split(','));
const peerNames = new Set(String(values.peers).split(',').filter(Boolean));
const logLevel = String(values['log-level']);
const quietWorkers = values['quiet-workers'] === '' ? undefined : Number(values['quiet-workers']);
const KNOWN_MEASURES = ['ka1k', 'ka100k', 'new1k', 'bulk', 'setups', 'idle', 'p99'];
const KNOWN_PEERS = ['squid', 'tinyproxy', 'proxy-chain'];
if (
  !(seconds >= 1 && rounds >= 1 && idleCount >= 10 && workerCounts.every((w) => Number.isInteger(w) && w >= 0)) ||
  ![...measures].every((m) => KNOWN_MEASURES.includes(m)) ||
  ![...peerNames].every((p) => KNOWN_PEERS.includes(p)) ||
  !['error', 'warn', 'info', 'debug'].includes(logLevel) ||
  (quietWorkers !== undefined && !(Number.isInteger(quietWorkers) && quietWorkers >= 0))
) {
  console.error(`bench: --seconds ≥ 1, --rounds ≥ 1, --idle-tunnels ≥ 10, --workers a list of whole numbers, --measures from ${KNOWN_MEASURES.join(',')}, --peers from ${KNOWN_PEERS.join(',')}, --log-level error|warn|info|debug, --quiet-workers a whole number`);
  process.exit(2);
}

type Measure = { key: string; label: string; unit: string; higherBetter: boolean; proxiesOnly?: boolean };
const MEASURES: Measure[] = [
  { key: 'ka1k', label: 'HTTP keep-alive, 1 KiB, req/s', unit: 'req/s', higherBetter: true },
  { key: 'ka100k', label: 'HTTP keep-alive, 100 KiB, MB/s', unit: 'MB/s', higherBetter: true },
  { key: 'new1k', label: 'HTTP new connection per request, 1 KiB, req/s', unit: 'req/s', higherBetter: true },
  { key: 'bulk', label: 'CONNECT tunnel bulk, MB/s', unit: 'MB/s', higherBetter: true },
  { key: 'setups', label: 'CONNECT setups/s (connect, CONNECT, GET, close; 32 parallel)', unit: '/s', higherBetter: true },
  { key: 'idle', label: `RSS per idle CONNECT tunnel (${idleCount} open), KiB`, unit: 'KiB', higherBetter: false, proxiesOnly: true },
  { key: 'p99', label: 'p99 latency, 1 KiB keep-alive, ms', unit: 'ms', higherBetter: false },
];

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-bench-'));
const nginx = await startNginx(dir);
const blaster = await startBlaster();
const origin = `http://127.0.0.1:${nginx.port}`;
const candidates: Candidate[] = [direct()];
const stopAll = async () => {
  for (const c of candidates) await c.stop();
  await nginx.stop();
  blaster.close();
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
try {
  // One at a time, so that a failure still stops every process already started.
  for (const w of workerCounts) candidates.push(await startProxyd(dir, w, { logLevel }));
  if (quietWorkers !== undefined) candidates.push(await startProxyd(dir, quietWorkers, { logLevel: 'error' }));
  if (peerNames.has('squid')) candidates.push(await startSquid(dir));
  if (peerNames.has('tinyproxy')) candidates.push(await startTinyproxy(dir));
  if (peerNames.has('proxy-chain')) candidates.push(await startProxyChain(dir));
} catch (err) {
  await stopAll();
  throw err;
}

const results = new Map<string, Map<string, number[]>>(); // measure → candidate → values
const record = (measure: string, candidate: string, value: number) => {
  if (!results.has(measure)) results.set(measure, new Map());
  const m = results.get(measure)!;
  m.set(candidate, [...(m.get(candidate) ?? []), value]);
};

try {
if (measures.has('idle')) {
    // Memory per idle tunnel first, while every proxy is fresh (a heap grown by earlier load would
    // absorb the new tunnels and hide their cost).
    for (const c of candidates) {
      if (c.port === undefined || c.pid === undefined) continue;
      process.stderr.write(`idle tunnels: ${c.name}\n`);
      await new Promise((r) => setTimeout(r, 500));
      const before = treeRssKiB(c.pid);
      const sockets = await idleTunnels(c.port, nginx.port, idleCount);
      await new Promise((r) => setTimeout(r, 2000));
      const after = treeRssKiB(c.pid);
      for (const s of sockets) s.destroy();
      record('idle', c.name, (after - before) / idleCount);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  // Warm-up, not measured: every candidate serves each kind of load for a moment first (a JIT compiles
  // its hot paths, pools fill, caches settle), so that round 1 measures the same steady state as round 2.
  for (const c of candidates) {
    process.stderr.write(`warm-up: ${c.name}\n`);
    await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds: 2, dir });
    await wrk({ url: `${origin}/100k`, proxyPort: c.port, connections: 50, seconds: 1, dir });
    await connectSetups(c.port, nginx.port, 32, 1);
  }
  for (let round = 0; round < rounds; round++) {
    const order = candidates.map((_, i) => candidates[(i + round) % candidates.length]!);
    for (const c of order) {
      process.stderr.write(`round ${round + 1}/${rounds}: ${c.name}\n`);
      if (measures.has('ka1k') || measures.has('p99')) {
        const ka = await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds, dir });
        record('ka1k', c.name, ka.requestsPerSec);
        record('p99', c.name, ka.p99Ms);
      }
      if (measures.has('ka100k')) {
        const big = await wrk({ url: `${origin}/100k`, proxyPort: c.port, connections: 50, seconds, dir });
        record('ka100k', c.name, big.bytesPerSec / 1e6);
      }
      if (measures.has('new1k')) {
        const fresh = await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds, close: true, dir });
        record('new1k', c.name, fresh.requestsPerSec);
      }
      if (measures.has('bulk')) record('bulk', c.name, (await connectBulk(c.port, blaster.port, seconds)) / 1e6);
      if (measures.has('setups')) record('setups', c.name, await connectSetups(c.port, nginx.port, 32, seconds));
    }
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const names = candidates.map((c) => c.name);
const peers = names.filter((n) => !n.startsWith('proxyd') && !n.startsWith('direct'));
const proxyds = names.filter((n) => n.startsWith('proxyd') && !n.includes('log error'));
const lines: string[] = [];
lines.push(`| measure | ${names.join(' | ')} | best proxyd ÷ best peer |`);
lines.push(`|---|${names.map(() => '---').join('|')}|---|`);
for (const m of MEASURES) {
  const row = results.get(m.key);
  if (!row) continue;
  const value = (n: string) => (row.has(n) ? median(row.get(n)!) : undefined);
  const directValue = value('direct (no proxy)');
  const cells = names.map((n) => {
    const v = value(n);
    if (v === undefined) return '–';
    const ratio = directValue && n !== 'direct (no proxy)' && !m.proxiesOnly ? ` (${(v / directValue).toFixed(2)}×)` : '';
    return `${fmt(v)}${ratio}`;
  });
  const better = (a: number, b: number) => (m.higherBetter ? a > b : a < b);
  const pick = (list: string[]) => list.map((n) => value(n)).filter((v): v is number => v !== undefined).reduce((a, b) => (better(a, b) ? a : b));
  if (proxyds.length === 0 || peers.length === 0) {
    lines.push(`| ${m.label} | ${cells.join(' | ')} | – |`);
    continue;
  }
  const bestProxyd = pick(proxyds);
  const bestPeer = pick(peers);
  const ratio = m.higherBetter ? bestProxyd / bestPeer : bestPeer / bestProxyd;
  lines.push(`| ${m.label} | ${cells.join(' | ')} | ${ratio.toFixed(2)}× ${ratio >= 1 ? '(ahead)' : '(behind)'} |`);
}
console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} cores · Node.js ${process.versions.node} · warm-up, then ${seconds}s × ${rounds} rounds, median · wrk -t1 -c50 · nginx origin · loopback`);
console.log(`(tinyproxy closes the client connection after each response: its keep-alive rows really measure a new connection per request; proxyd logs every request through its ring here, the peers log nothing)\n`);
console.log(lines.join('\n'));
if (quietWorkers !== undefined) {
  // What logging costs: the same proxyd with every request logged (info) and with only errors logged.
  const logged = `proxyd (workers ${quietWorkers})`;
  const quiet = `proxyd (workers ${quietWorkers}, log error)`;
  const parts: string[] = [];
  for (const m of MEASURES) {
    const row = results.get(m.key);
    if (!row?.has(logged) || !row.has(quiet) || m.proxiesOnly) continue;
    const ratio = median(row.get(logged)!) / median(row.get(quiet)!);
    parts.push(`${m.key} ${ratio.toFixed(2)}×`);
  }
  console.log(`\nlogging every request (workers ${quietWorkers}), as a ratio to logging errors only: ${parts.join(', ')}`);
}

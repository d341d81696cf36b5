/**
 * proxyd beside direct, Squid, tinyproxy, proxy-chain and `proxy` (npm), in one run with interleaved
 * rounds (the order rotates every round, so noise lands on all alike). Loopback only; every process
 * stopped by pid.
 *
 *   node scripts/bench/run.ts [--seconds 4] [--rounds 2] [--workers 1,2] [--idle-tunnels 2000]
 *                             [--measures ka1k,fixed,setups,…] [--peers squid,tinyproxy,proxy-chain,proxy,floor]
 *                             [--logs on,off] [--quiet-workers 2] [--rate 2000] [--rate-connections 20]
 *
 * Two tables (issue 20, decision 2). "Logs on", the headline: every server as its users run it —
 * proxyd with its default logging (every request through the ring into its JSON log), Squid with its
 * default access.log, tinyproxy with its default LogLevel Info into a file, proxy-chain and `proxy` as
 * they are (they log nothing). "Logs off": proxyd --log-level error (--quiet-workers W workers), Squid
 * `access_log none`, tinyproxy `LogLevel Error`, beside the same proxy-chain and `proxy`.
 *
 * Latency (decision 1) is measured at a fixed rate below every candidate's saturation: --rate requests a
 * second (2,000) over --rate-connections keep-alive connections (20), 1 KiB, open loop, from the time
 * each request was due (load.ts fixedRate). The p99 of the saturated wrk run stays as information.
 *
 * `--peers …,floor` adds the Node floor (node-floor.ts: http.Server + undici, one thread, no log, no
 * policy), in both tables, as a reference for what Node's HTTP server and client cost: plain-HTTP rows
 * only, and never the "best peer".
 *
 * --measures, --peers and --logs narrow a run while working on one number (the published table uses
 * all). A measure that fails for one candidate (e.g. too many errors) is shown as ✗ and the run goes on.
 *
 * Needs Debian's wrk, nginx-light, squid and tinyproxy (scripts/bench/install.sh installs them), `proxy`
 * from the workspace's devDependencies, and fetches proxy-chain from npm into a temp folder. Prints
 * Markdown tables: the median of the rounds, each proxy's ratio to direct, proxyd's best ratio to the
 * best peer, and issue 20's target for the row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectBulk, connectSetups, fixedRate, idleTunnels, startBlaster, wrk } from './load.ts';
import { startNodeFloor } from './node-floor.ts';
import { direct, startNginx, startProxyChain, startProxyd, startProxyNpm, startSquid, startTinyproxy, treeRssKiB, type Candidate } from './candidates.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    workers: { type: 'string', default: '1,2' },
    'idle-tunnels': { type: 'string', default: '2000' },
    measures: { type: 'string', default: 'ka1k,ka100k,new1k,bulk,setups,idle,fixed,p99' },
    peers: { type: 'string', default: 'squid,tinyproxy,proxy-chain,proxy' },
    logs: { type: 'string', default: 'on,off' },
    'quiet-workers': { type: 'string', default: '2' },
    rate: { type: 'string', default: '2000' },
    'rate-connections': { type: 'string', default: '20' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workerCounts = String(values.workers).split(',').map(Number);
const idleCount = Number(values['idle-tunnels']);
const measures = new Set(String(values.measures).split(','));
const peerNames = new Set(String(values.peers).split(',').filter(Boolean));
const logTables = new Set(String(values.logs).split(',').filter(Boolean));
const quietWorkers = Number(values['quiet-workers']);
const rate = Number(values.rate);
const rateConnections = Number(values['rate-connections']);
const KNOWN_MEASURES = ['ka1k', 'ka100k', 'new1k', 'bulk', 'setups', 'idle', 'fixed', 'p99'];
const KNOWN_PEERS = ['squid', 'tinyproxy', 'proxy-chain', 'proxy', 'floor'];
/** The Node floor: plain HTTP only, a reference beside the peers, not one of them. */
const isFloor = (n: string) => n.startsWith('Node floor');
const FLOOR_SKIPS = new Set(['bulk', 'setups', 'idle']);
if (
  !(seconds >= 1 && rounds >= 1 && idleCount >= 10 && workerCounts.every((w) => Number.isInteger(w) && w >= 0)) ||
  ![...measures].every((m) => KNOWN_MEASURES.includes(m)) ||
  ![...peerNames].every((p) => KNOWN_PEERS.includes(p)) ||
  logTables.size === 0 || ![...logTables].every((l) => l === 'on' || l === 'off') ||
  !(Number.isInteger(quietWorkers) && quietWorkers >= 0) ||
  !(rate >= 1 && Number.isInteger(rateConnections) && rateConnections >= 1)
) {
  console.error(`bench: --seconds ≥ 1, --rounds ≥ 1, --idle-tunnels ≥ 10, --workers a list of whole numbers, --measures from ${KNOWN_MEASURES.join(',')}, --peers from ${KNOWN_PEERS.join(',')}, --logs on,off (either or both), --quiet-workers a whole number, --rate ≥ 1, --rate-connections ≥ 1`);
  process.exit(2);
}

/** Issue 20's target for a row: best proxyd against Squid or against the best peer, as a ratio (≥ factor is met). */
type Target = { against: 'Squid' | 'best peer'; factor: number } | undefined;
type Measure = { key: string; label: string; higherBetter: boolean; proxiesOnly?: boolean; target: Target; note?: string };
const MEASURES: Measure[] = [
  { key: 'ka1k', label: 'HTTP keep-alive, 1 KiB, req/s', higherBetter: true, target: { against: 'Squid', factor: 1.5 } },
  { key: 'ka100k', label: 'HTTP keep-alive, 100 KiB, MB/s', higherBetter: true, target: { against: 'best peer', factor: 1.5 } },
  { key: 'new1k', label: 'HTTP new connection per request, 1 KiB, req/s', higherBetter: true, target: { against: 'best peer', factor: 1.3 } },
  { key: 'bulk', label: 'CONNECT tunnel bulk, MB/s', higherBetter: true, target: { against: 'Squid', factor: 1.2 } },
  { key: 'setups', label: 'CONNECT setups/s (connect, CONNECT, GET, close; 32 parallel)', higherBetter: true, target: { against: 'best peer', factor: 1 } },
  { key: 'fixed50', label: `p50 latency at a fixed ${rate.toLocaleString('en-US')} req/s (${rateConnections} keep-alive conns, 1 KiB), ms`, higherBetter: false, target: { against: 'Squid', factor: 1 } },
  { key: 'fixed99', label: `p99 latency at a fixed ${rate.toLocaleString('en-US')} req/s (${rateConnections} keep-alive conns, 1 KiB), ms`, higherBetter: false, target: { against: 'Squid', factor: 1 } },
  { key: 'idle', label: `RSS per idle CONNECT tunnel (${idleCount.toLocaleString('en-US')} open), KiB`, higherBetter: false, proxiesOnly: true, target: { against: 'best peer', factor: 1 } },
  { key: 'p99', label: 'p99 latency at saturation (wrk keep-alive 1 KiB, 50 conns), ms — information only', higherBetter: false, target: undefined },
  { key: 'rssFresh', label: 'process RSS fresh (all threads and children), MiB', higherBetter: false, proxiesOnly: true, target: undefined, note: 'fresh ≤ 128 MiB (proxyd)' },
  { key: 'rssAfter', label: 'process RSS after the run, MiB', higherBetter: false, proxiesOnly: true, target: undefined, note: '≤ 2× fresh (proxyd)' },
];

const dir = mkdtempSync(join(os.tmpdir(), 'proxyd-bench-'));
const nginx = await startNginx(dir);
const blaster = await startBlaster();
const origin = `http://127.0.0.1:${nginx.port}`;
const DIRECT = 'direct (no proxy)';
const candidates: Candidate[] = [direct()];
/** Which candidates each table shows (direct and the peers without logs of their own are in both). */
const tables = { on: new Set<string>([DIRECT]), off: new Set<string>([DIRECT]) };
const stopAll = async () => {
  for (const c of candidates) await c.stop();
  await nginx.stop();
  blaster.close();
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
const add = (c: Candidate, ...inTables: ('on' | 'off')[]) => {
  candidates.push(c);
  for (const t of inTables) tables[t].add(c.name);
};
try {
  // One at a time, so that a failure still stops every process already started.
  if (logTables.has('on')) {
    for (const w of workerCounts) add(await startProxyd(dir, w, { logLevel: 'info' }), 'on');
    if (peerNames.has('squid')) add(await startSquid(dir, 0, { accessLog: true }), 'on');
    if (peerNames.has('tinyproxy')) add(await startTinyproxy(dir, { logLevel: 'Info' }), 'on');
  }
  if (logTables.has('off')) {
    add(await startProxyd(dir, quietWorkers, { logLevel: 'error' }), 'off');
    if (peerNames.has('squid')) add(await startSquid(dir, 0, { accessLog: false }), 'off');
    if (peerNames.has('tinyproxy')) add(await startTinyproxy(dir, { logLevel: 'Error' }), 'off');
  }
  if (peerNames.has('proxy-chain')) add(await startProxyChain(dir), 'on', 'off');
  if (peerNames.has('proxy')) add(await startProxyNpm(dir), 'on', 'off');
  if (peerNames.has('floor')) add(await startNodeFloor(), 'on', 'off');
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
/** One measurement; a failure is reported and leaves the cell empty instead of ending the run. */
async function measure(what: string, c: Candidate, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    process.stderr.write(`  ✗ ${what} through ${c.name}: ${(err as Error).message}\n`);
  }
}

const startedAt = Date.now();
await new Promise((r) => setTimeout(r, 1000));
for (const c of candidates) if (c.pid !== undefined) record('rssFresh', c.name, treeRssKiB(c.pid) / 1024);
try {
  if (measures.has('idle')) {
    // Memory per idle tunnel first, while every proxy is fresh (a heap grown by earlier load would
    // absorb the new tunnels and hide their cost).
    for (const c of candidates) {
      if (c.port === undefined || c.pid === undefined || isFloor(c.name)) continue;
      process.stderr.write(`idle tunnels: ${c.name}\n`);
      await measure('idle tunnels', c, async () => {
        await new Promise((r) => setTimeout(r, 500));
        const before = treeRssKiB(c.pid!);
        const sockets = await idleTunnels(c.port!, nginx.port, idleCount);
        await new Promise((r) => setTimeout(r, 2000));
        const after = treeRssKiB(c.pid!);
        for (const s of sockets) s.destroy();
        record('idle', c.name, (after - before) / idleCount);
      });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  // Warm-up, not measured: every candidate serves each kind of load for a moment first (a JIT compiles
  // its hot paths, pools fill, caches settle), so that round 1 measures the same steady state as round 2.
  for (const c of candidates) {
    process.stderr.write(`warm-up: ${c.name}\n`);
    await measure('warm-up', c, async () => {
      await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds: 2, dir });
      await wrk({ url: `${origin}/100k`, proxyPort: c.port, connections: 50, seconds: 1, dir });
      if (!isFloor(c.name)) await connectSetups(c.port, nginx.port, 32, 1);
    });
  }
  for (let round = 0; round < rounds; round++) {
    const order = candidates.map((_, i) => candidates[(i + round) % candidates.length]!);
    for (const c of order) {
      process.stderr.write(`round ${round + 1}/${rounds}: ${c.name}\n`);
      if (measures.has('fixed')) {
        // First, on a candidate that has not just been saturated by another measure.
        await measure('fixed rate', c, async () => {
          const fixed = await fixedRate({ url: `${origin}/1k`, proxyPort: c.port, rate, connections: rateConnections, seconds });
          record('fixed50', c.name, fixed.p50Ms);
          record('fixed99', c.name, fixed.p99Ms);
        });
      }
      if (measures.has('ka1k') || measures.has('p99')) {
        await measure('keep-alive 1 KiB', c, async () => {
          const ka = await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds, dir });
          if (measures.has('ka1k')) record('ka1k', c.name, ka.requestsPerSec);
          if (measures.has('p99')) record('p99', c.name, ka.p99Ms);
        });
      }
      if (measures.has('ka100k')) {
        await measure('keep-alive 100 KiB', c, async () => {
          const big = await wrk({ url: `${origin}/100k`, proxyPort: c.port, connections: 50, seconds, dir });
          record('ka100k', c.name, big.bytesPerSec / 1e6);
        });
      }
      if (measures.has('new1k')) {
        await measure('new connection per request', c, async () => {
          const fresh = await wrk({ url: `${origin}/1k`, proxyPort: c.port, connections: 50, seconds, close: true, dir });
          record('new1k', c.name, fresh.requestsPerSec);
        });
      }
      if (isFloor(c.name)) continue; // no CONNECT
      if (measures.has('bulk')) await measure('CONNECT bulk', c, async () => record('bulk', c.name, (await connectBulk(c.port, blaster.port, seconds)) / 1e6));
      if (measures.has('setups')) await measure('CONNECT setups', c, async () => record('setups', c.name, await connectSetups(c.port, nginx.port, 32, seconds)));
    }
  }
  for (const c of candidates) if (c.pid !== undefined) record('rssAfter', c.name, treeRssKiB(c.pid) / 1024);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
const minutes = (Date.now() - startedAt) / 60_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const isProxyd = (n: string) => n.startsWith('proxyd');

function table(shown: Set<string>): string {
  const names = candidates.map((c) => c.name).filter((n) => shown.has(n));
  const peers = names.filter((n) => !isProxyd(n) && n !== DIRECT && !isFloor(n));
  const proxyds = names.filter(isProxyd);
  const lines: string[] = [];
  lines.push(`| measure | ${names.join(' | ')} | best proxyd ÷ best peer | target (issue 20) |`);
  lines.push(`|---|${names.map(() => '---').join('|')}|---|---|`);
  for (const m of MEASURES) {
    const row = results.get(m.key);
    if (!row) continue;
    const value = (n: string) => (row.has(n) ? median(row.get(n)!) : undefined);
    const directValue = value(DIRECT);
    const cells = names.map((n) => {
      const v = value(n);
      if (v === undefined) return (n === DIRECT && m.proxiesOnly) || (isFloor(n) && FLOOR_SKIPS.has(m.key)) ? '–' : '✗'; // failed: the reason is on stderr
      const ratio = directValue && n !== DIRECT && !m.proxiesOnly ? ` (${(v / directValue).toFixed(2)}×)` : '';
      return `${fmt(v)}${ratio}`;
    });
    const better = (a: number, b: number) => (m.higherBetter ? a > b : a < b);
    const pick = (list: string[]) => {
      const vs = list.map((n) => value(n)).filter((v): v is number => v !== undefined);
      return vs.length ? vs.reduce((a, b) => (better(a, b) ? a : b)) : undefined;
    };
    const ratioOf = (proxyd: number | undefined, peer: number | undefined) =>
      proxyd === undefined || peer === undefined ? undefined : m.higherBetter ? proxyd / peer : peer / proxyd;
    const bestProxyd = pick(proxyds);
    const ratio = ratioOf(bestProxyd, pick(peers));
    const ratioCell = ratio === undefined ? '–' : `${ratio.toFixed(2)}× ${ratio >= 1 ? '(ahead)' : '(behind)'}`;
    let targetCell = m.note ?? '';
    if (m.target) {
      const against = m.target.against === 'Squid' ? pick(peers.filter((n) => n.startsWith('Squid'))) : pick(peers);
      const r = ratioOf(bestProxyd, against);
      const want = m.higherBetter ? `≥ ${m.target.factor}×` : m.target.factor === 1 ? '≤' : `≤ 1/${m.target.factor}×`;
      targetCell = `${want} ${m.target.against}: ${r === undefined ? '–' : `${r.toFixed(2)}× ${r >= m.target.factor ? 'met' : 'not met'}`}`;
    }
    lines.push(`| ${m.label} | ${cells.join(' | ')} | ${ratioCell} | ${targetCell} |`);
  }
  return lines.join('\n');
}

const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
console.log(`\n${new Date().toISOString().slice(0, 16)}Z · ${os.cpus().length} cores · load average at the end ${load} (shared machine) · Node.js ${process.versions.node} · ${minutes.toFixed(1)} min`);
console.log(`warm-up, then ${seconds}s × ${rounds} rounds interleaved, median · wrk -t1 -c50 · fixed rate: ${rate}/s open loop over ${rateConnections} keep-alive connections · nginx origin · loopback`);
console.log('(tinyproxy closes the client connection after each response: its keep-alive rows really measure a new connection per request)');
if (logTables.has('on')) console.log(`\nLogs on — every server as its users run it (proxyd logs every request; Squid access.log; tinyproxy LogLevel Info; proxy-chain and proxy log nothing):\n\n${table(tables.on)}`);
if (logTables.has('off')) console.log(`\nPeers with logs off (proxyd --log-level error; Squid access_log none; tinyproxy LogLevel Error):\n\n${table(tables.off)}`);

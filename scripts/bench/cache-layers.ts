/**
 * What the cache's layers (cache/cache-layer.ts: the front, undici's interceptor, the origin trace) cost
 * one request that misses, measured in this process alone, without sockets: the same dispatches go
 * (a) straight to an origin stand-in that answers at once, and (b) through cachingDispatcher() over that
 * stand-in, with a real shared store (SQLite on tmpfs) and in-flight table. The difference is the
 * layers' own CPU per miss, free of the network and of what other jobs on the host do to wall-clock
 * rates — the part of "the miss path against --cache off" that this code decides. Rounds alternate a and b.
 *
 *   node scripts/bench/cache-layers.ts [--ms 1000] [--rounds 5]
 *
 * Cases: a no-store answer (every request is a miss, nothing is ever stored), and a POST (not cached:
 * undici's interceptor still watches it to invalidate the URL).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Dispatcher, type Agent } from 'undici';
import { InFlightTable } from '@proxyd/sync/in-flight';
import { SharedStore, prepareStoreFile } from '../../packages/proxyd/src/cache/shared-store.ts';
import { UrlPresence } from '../../packages/proxyd/src/cache/url-presence.ts';
import { cachingDispatcher, type TracedOptions } from '../../packages/proxyd/src/cache/cache-layer.ts';
import { newTrace } from '../../packages/proxyd/src/cache/cache-status.ts';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' } } });
const ms = Number(values.ms);
const rounds = Number(values.rounds);

const BODY = Buffer.alloc(1024, 'z');
const CONTROLLER = { aborted: false, paused: false, reason: null, rawHeaders: [] as Buffer[], abort() {}, pause() {}, resume() {} };
const NO_STORE_HEAD = { server: 'nginx/1.22.1', date: new Date().toUTCString(), 'content-type': 'application/octet-stream', 'content-length': '1024', 'cache-control': 'no-store', 'accept-ranges': 'bytes' };
CONTROLLER.rawHeaders = Object.entries(NO_STORE_HEAD).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)]);

/** An origin that answers every request at once, synchronously: no socket, no parsing. */
class InstantOrigin extends Dispatcher {
  override dispatch(_opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    handler.onRequestStart?.(CONTROLLER, {});
    handler.onResponseStart?.(CONTROLLER, 200, NO_STORE_HEAD, 'OK');
    handler.onResponseData?.(CONTROLLER, BODY);
    handler.onResponseEnd?.(CONTROLLER, {});
    return true;
  }
  override async close(): Promise<void> {}
  override async destroy(): Promise<void> {}
}

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'proxyd-layers-bench-'));
const presence = UrlPresence.create();
prepareStoreFile(join(dir, 'c.sqlite'), presence);
const counters = new Map<string, number>();
const store = new SharedStore({
  file: join(dir, 'c.sqlite'),
  maxBytes: 1 << 30,
  maxObjectBytes: 1 << 26,
  presence,
  counters: { add: (n, d = 1) => void counters.set(n, (counters.get(n) ?? 0) + d), get: (n) => counters.get(n) ?? 0 },
  onError: (err) => console.error('store error:', err.message),
});
const origin = new InstantOrigin();
const cached = cachingDispatcher(origin as unknown as Agent, { store, inFlight: InFlightTable.create(64), deny: () => [], patienceMs: () => 10_000 });

// The request as forward-http.ts builds it (a curl-like head, our Via), and a handler that only counts.
const headers = ['Host', '127.0.0.1:8081', 'User-Agent', 'curl/7.88.1', 'Accept', '*/*', 'Via', '1.1 proxyd-0000'];
let bytes = 0;
const handler: Dispatcher.DispatchHandler = { onRequestStart() {}, onResponseStart() {}, onResponseData: (_c, chunk) => void (bytes += chunk.length), onResponseEnd() {}, onResponseError: (_c, err) => { throw err; } };

function cpuPerOp(d: Dispatcher, method: string, traced: boolean): number {
  const opts: Dispatcher.DispatchOptions = { origin: 'http://127.0.0.1:8081', path: '/nostore/1k', method, headers, body: null };
  const before = process.cpuUsage();
  const end = performance.now() + ms;
  let ops = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 200; i++) d.dispatch(traced ? ({ ...opts, proxydTrace: newTrace(false) } as TracedOptions) : { ...opts }, handler);
    ops += 200;
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / ops;
}

const results: Record<string, number[]> = {};
for (const method of ['GET', 'POST']) {
  for (let i = 0; i < 2; i++) (cpuPerOp(origin, method, false), cpuPerOp(cached, method, true)); // warm-up: JIT
  for (let round = 0; round < rounds; round++) {
    const pair = round % 2 === 0 ? [false, true] : [true, false];
    for (const layered of pair) (results[`${method}|${layered}`] ??= []).push(layered ? cpuPerOp(cached, method, true) : cpuPerOp(origin, method, false));
  }
}
store.failed; // keep the store open until here
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`\n${new Date().toISOString().slice(0, 16)}Z · Node.js ${process.versions.node} · ${rounds} rounds × ${ms} ms each way, alternating · CPU µs per dispatch (process.cpuUsage), median [every round]\n`);
console.log('| request | straight to the origin stand-in | through the cache layers | the layers\' own cost per request |');
console.log('|---|---|---|---|');
for (const [method, label] of [['GET', 'GET, answered no-store (a miss every time)'], ['POST', 'POST (watched for invalidation)']] as const) {
  const a = results[`${method}|false`]!;
  const b = results[`${method}|true`]!;
  const f = (xs: number[]) => `${median(xs).toFixed(2)} µs [${xs.map((x) => x.toFixed(2)).join(', ')}]`;
  console.log(`| ${label} | ${f(a)} | ${f(b)} | ${(median(b) - median(a)).toFixed(2)} µs |`);
}
if (bytes === 0) throw new Error('no body reached the handler');

// The shared cache, rule by rule: a real origin on loopback that counts its requests and answers with
// the headers each URL asks for (helpers/cache-origin.ts), real proxy threads, a real HTTP client. Each
// rule is checked by the origin's count and by the SHA-256 of the bytes the client got.
import t from 'tap';
import http from 'node:http';
import { startCacheOrigin } from './helpers/cache-origin.ts';
import { patternChunk, patternSha256, sha256 } from './helpers/origin.ts';
import { eventually, readLog, startTestProxy } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';

const origin = await startCacheOrigin();
const proxy = await startTestProxy(t, { workers: 4, upstreamTimeoutMs: 5_000 });
t.teardown(async () => {
  await proxy.close(1000);
  await origin.close();
});

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  sha: string;
}

/** One request through the proxy on a connection of its own (so requests spread over the workers). */
function get(url: string, { method = 'GET', headers = {} as Record<string, string>, via = proxy.url } = {}): Promise<Got> {
  const proxyUrl = new URL(via);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxyUrl.hostname, port: proxyUrl.port, method, path: url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, sha: sha256(body) });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer for ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

let unique = 0;
/** A path and query of its own for each case: `/c/N?query`. */
function path(query: string): string {
  return `/c/${++unique}?${query}`;
}

/** The cache tags the proxy logged for `url`, in order (records are written when a response ends). */
async function tags(url: string, count: number): Promise<string[]> {
  const read = (): string[] => readLog(proxy.logFile).filter((r) => r.event === 'request' && r.url === url).map((r) => String(r.cache));
  await eventually(() => read().length >= count, `${count} request records for ${url}`);
  return read();
}

t.test('max-age: the second request is a HIT, with Age and Cache-Status; the origin saw one', async (t) => {
  const p = path('cc=max-age%3D60');
  const a = await get(origin.url(p));
  const b = await get(origin.url(p));
  t.equal(origin.count(p), 1, 'one origin request');
  t.equal(a.status, 200);
  t.equal(b.sha, a.sha, 'the same bytes');
  t.match(a.headers['cache-status'], /^proxyd; fwd=uri-miss/);
  t.equal(b.headers['cache-status'], 'proxyd; hit');
  t.match(b.headers.age, /^\d+$/, 'Age on the hit');
  t.same(await tags(origin.url(p), 2), ['MISS', 'HIT']);
});

t.test('never stored: no-store, private, Set-Cookie; a response to Authorization unless it says public', async (t) => {
  for (const [query, headers, why] of [
    ['cc=no-store%2C%20max-age%3D60', {}, 'no-store'],
    ['cc=private%2C%20max-age%3D60', {}, 'private'],
    ['cc=max-age%3D60&cookie=1', {}, 'Set-Cookie'],
    ['cc=max-age%3D60', { authorization: 'Basic dTpw' }, 'Authorization, max-age only'],
  ] as const) {
    const p = path(query);
    const a = await get(origin.url(p), { headers });
    const b = await get(origin.url(p), { headers });
    t.equal(origin.count(p), 2, `${why}: both requests reached the origin`);
    t.not(b.sha, a.sha, `${why}: the second answer is the origin's second body`);
  }
  const p = path('cc=public%2C%20max-age%3D60');
  await get(origin.url(p), { headers: { authorization: 'Basic dTpw' } });
  const again = await get(origin.url(p), { headers: { authorization: 'Basic dTpw' } });
  t.equal(origin.count(p), 1, 'Authorization with public: stored and shared');
  t.equal(again.headers['cache-status'], 'proxyd; hit');
  const cookie = path('cc=max-age%3D60&cookie=1');
  const first = await get(origin.url(cookie));
  t.ok(first.headers['set-cookie'], 'the client that asked gets its cookie');
});

t.test('Vary: one stored answer per Accept-Language', async (t) => {
  const p = path('cc=max-age%3D60&vary=Accept-Language');
  const en = await get(origin.url(p), { headers: { 'accept-language': 'en' } });
  const fr = await get(origin.url(p), { headers: { 'accept-language': 'fr' } });
  const en2 = await get(origin.url(p), { headers: { 'accept-language': 'en' } });
  const fr2 = await get(origin.url(p), { headers: { 'accept-language': 'fr' } });
  t.equal(origin.count(p), 2, 'one origin request per language');
  t.match(en.body.toString(), /for Accept-Language=en/);
  t.match(fr.body.toString(), /for Accept-Language=fr/);
  t.equal(en2.sha, en.sha, 'en again: the en answer');
  t.equal(fr2.sha, fr.sha, 'fr again: the fr answer');
});

t.test('revalidation: If-None-Match → 304 → REVALIDATED, and If-Modified-Since after max-age', async (t) => {
  const p = path('cc=no-cache&etag=v1');
  const a = await get(origin.url(p));
  const b = await get(origin.url(p));
  t.equal(origin.count(p), 2, 'no-cache: the origin is asked every time');
  t.equal(origin.seen.at(-1)!.headers['if-none-match'], '"v1"', 'with the stored ETag');
  t.equal(b.status, 200);
  t.equal(b.sha, a.sha, 'the stored body, after the 304');
  t.equal(b.headers['cache-status'], 'proxyd; fwd=stale; fwd-status=304');
  t.equal(b.headers.warning, undefined, 'no obsolete Warning header');
  t.same(await tags(origin.url(p), 2), ['MISS', 'REVALIDATED']);

  // Stale after 2 s (the Date header's whole seconds make it 1–2 s), and kept until at least 3 s.
  const q = path('cc=max-age%3D2&lm=3600');
  const c = await get(origin.url(q));
  await new Promise((r) => setTimeout(r, 2500));
  const d = await get(origin.url(q));
  t.equal(origin.count(q), 2, 'stale after max-age: asked again');
  t.ok(origin.seen.at(-1)!.headers['if-modified-since'], 'with If-Modified-Since');
  t.equal(d.sha, c.sha, 'the stored body');
  t.same(await tags(origin.url(q), 2), ['MISS', 'REVALIDATED']);
});

t.test('heuristic freshness: Last-Modified an hour ago and nothing else is fresh for a while', async (t) => {
  const p = path('lm=3600');
  const a = await get(origin.url(p));
  const b = await get(origin.url(p));
  t.equal(origin.count(p), 1);
  t.equal(b.sha, a.sha);
  t.equal(b.headers['cache-status'], 'proxyd; hit');
});

t.test('stale-while-revalidate: the stale answer at once, the origin asked behind it', async (t) => {
  const p = path('cc=max-age%3D1%2C%20stale-while-revalidate%3D60');
  const a = await get(origin.url(p));
  await new Promise((r) => setTimeout(r, 2100));
  const b = await get(origin.url(p));
  t.equal(b.sha, a.sha, 'the stale body');
  t.equal(b.headers['cache-status'], 'proxyd; hit; detail=stale-while-revalidate');
  await eventually(() => origin.count(p) === 2, 'the background revalidation');
  await eventually(async () => (await get(origin.url(p))).body.toString().startsWith('body 2'), 'the refreshed body is served');
  t.equal(origin.count(p), 2, 'one background fetch');
});

t.test('stale-if-error: the origin fails, the stale answer is served', async (t) => {
  const p = path('cc=max-age%3D1%2C%20stale-if-error%3D60');
  const a = await get(origin.url(p));
  await new Promise((r) => setTimeout(r, 2100));
  origin.failWith = 500;
  try {
    const b = await get(origin.url(p));
    t.equal(b.status, 200, 'not the 500');
    t.equal(b.sha, a.sha, 'the stale body');
    t.match(b.headers['cache-status'], /fwd-status=500; detail=stale-if-error/);
    t.equal(origin.count(p), 2, 'the origin was asked');
  } finally {
    origin.failWith = undefined;
  }
});

t.test('only-if-cached: 504 on a miss, without asking the origin; 200 once stored', async (t) => {
  const p = path('cc=max-age%3D60');
  const miss = await get(origin.url(p), { headers: { 'cache-control': 'only-if-cached' } });
  t.equal(miss.status, 504);
  t.equal(origin.count(p), 0, 'the origin was not asked');
  await get(origin.url(p));
  const hit = await get(origin.url(p), { headers: { 'cache-control': 'only-if-cached' } });
  t.equal(hit.status, 200);
  t.equal(origin.count(p), 1);
});

t.test('an unsafe method invalidates the stored answer', async (t) => {
  const p = path('cc=max-age%3D60');
  await get(origin.url(p));
  await get(origin.url(p));
  t.equal(origin.count(p), 1);
  const post = await get(origin.url(p), { method: 'POST' });
  t.equal(post.status, 200);
  const after = await get(origin.url(p));
  t.equal(origin.count(p), 3, 'GET after POST went to the origin');
  t.match(after.body.toString(), /^body 3/);
});

t.test('HEAD is answered from a stored GET', async (t) => {
  const p = path('cc=max-age%3D60');
  const a = await get(origin.url(p));
  const head = await get(origin.url(p), { method: 'HEAD' });
  t.equal(origin.count(p), 1, 'the HEAD did not reach the origin');
  t.equal(head.status, 200);
  t.equal(head.body.length, 0);
  t.equal(head.headers['content-length'], String(a.body.length));
});

t.test('Range on a stored object: a correct 206 from the cache (and 416 past the end)', async (t) => {
  const size = 300_000; // more than one 256 KiB chunk in the store
  const p = path(`cc=max-age%3D60&size=${size}`);
  const whole = await get(origin.url(p));
  t.equal(whole.sha, patternSha256(size));
  const all = Buffer.concat([patternChunk(64 * 1024), patternChunk(64 * 1024), patternChunk(64 * 1024), patternChunk(64 * 1024), patternChunk(64 * 1024)]).subarray(0, size);
  const cases: [string, number, number][] = [
    ['bytes=100-199', 100, 199],
    ['bytes=262000-263000', 262000, 263000], // across the chunk boundary
    ['bytes=299990-', 299990, size - 1],
    ['bytes=-10', size - 10, size - 1],
  ];
  for (const [range, from, to] of cases) {
    const r = await get(origin.url(p), { headers: { range } });
    t.equal(r.status, 206, range);
    t.equal(r.headers['content-range'], `bytes ${from}-${to}/${size}`, `${range}: Content-Range`);
    t.equal(r.sha, sha256(all.subarray(from, to + 1)), `${range}: the right bytes`);
  }
  const past = await get(origin.url(p), { headers: { range: `bytes=${size}-` } });
  t.equal(past.status, 416);
  t.equal(past.headers['content-range'], `bytes */${size}`);
  t.equal(origin.count(p), 1, 'every range came from the cache');
});

t.test('a large object streams to the client while it is stored, and is then a hit', async (t) => {
  const size = 24 * 1024 * 1024;
  const p = path(`cc=max-age%3D60&size=${size}`);
  const a = await get(origin.url(p));
  t.equal(a.sha, patternSha256(size), 'the miss: every byte');
  const b = await get(origin.url(p));
  t.equal(b.sha, patternSha256(size), 'the hit: every byte');
  t.equal(origin.count(p), 1);
  t.equal(b.headers['cache-status'], 'proxyd; hit');
});

t.test('PURGE from loopback removes a URL', async (t) => {
  const p = path('cc=max-age%3D60');
  await get(origin.url(p));
  const purge = await get(origin.url(p), { method: 'PURGE' });
  t.equal(purge.status, 200);
  const again = await get(origin.url(p), { method: 'PURGE' });
  t.equal(again.status, 404, 'nothing left to purge');
  await get(origin.url(p));
  t.equal(origin.count(p), 2, 'the GET after PURGE went to the origin');
});

t.test('coalescing: 50 concurrent clients of one cold URL over 4 workers make exactly 1 origin request (10 rounds)', async (t) => {
  for (let round = 0; round < 10; round++) {
    const p = path('cc=max-age%3D60&delay=300');
    const answers = await Promise.all(Array.from({ length: 50 }, () => get(origin.url(p))));
    t.equal(origin.count(p), 1, `round ${round}: one origin request`);
    t.equal(new Set(answers.map((a) => a.sha)).size, 1, `round ${round}: every client got the same bytes`);
    t.ok(answers.every((a) => a.status === 200 && a.body.toString().startsWith('body 1')), `round ${round}: the first fetch's body`);
  }
  const p = path('cc=max-age%3D60&delay=300');
  await Promise.all(Array.from({ length: 20 }, () => get(origin.url(p))));
  const seen = await tags(origin.url(p), 20);
  t.equal(seen.filter((x) => x === 'MISS').length, 1, 'one MISS');
  t.ok(seen.filter((x) => x === 'COALESCED').length >= 1, `the rest COALESCED or HIT: ${seen.join(' ')}`);
  const threads = new Set(readLog(proxy.logFile).filter((r) => r.event === 'request' && r.url === origin.url(p)).map((r) => r.thread));
  t.ok(threads.size > 1, `served by ${threads.size} threads`);
  t.equal(proxy.shared.inFlight.snapshot().inFlight, 0, 'nothing left in flight');
});

t.test('coalescing: when the leader fails, one follower takes over and the rest are answered from its fetch', async (t) => {
  const p = path('cc=max-age%3D60&delay=300&reset1=1');
  const answers = await Promise.all(Array.from({ length: 12 }, () => get(origin.url(p)).catch(() => undefined)));
  const ok = answers.filter((a) => a?.status === 200);
  t.equal(origin.count(p), 2, 'two origin requests: the failed leader and one taker');
  t.equal(answers.filter((a) => a === undefined || a.status === 502).length, 1, 'only the leader’s client sees the failure');
  t.equal(ok.length, 11);
  t.ok(ok.every((a) => a!.body.toString().startsWith('body 2')), 'everyone else got the taker’s body');
  t.ok(proxy.shared.inFlight.snapshot().takeovers >= 1, 'counted as a takeover');
});

t.test('coalescing: an answer that will not be stored wakes the followers when its head arrives, not after its body', async (t) => {
  const p = path('cc=no-store&delay=200&drip=1500');
  const answers = await Promise.all(Array.from({ length: 6 }, () => get(origin.url(p))));
  t.ok(answers.every((a) => a.status === 200), 'all answered');
  t.equal(origin.count(p), 6, 'not stored: each fetched for itself');
  const arrivals = origin.seen.filter((s) => s.url === p).map((s) => s.at);
  const spread = Math.max(...arrivals) - Math.min(...arrivals);
  t.ok(spread < 1000, `the followers reached the origin ${Math.round(spread)} ms after the leader — before its body ended (1.5 s)`);
});

t.test('an answer that says no-store: its URL\'s next misses in the thread skip the interceptor, still MISS, still fetched, never stored', async (t) => {
  const p = path('cc=no-store');
  const url = origin.url(p);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }); // one connection: one serving thread
  t.teardown(() => agent.destroy());
  const proxyUrl = new URL(proxy.url);
  const shas: string[] = [];
  for (let i = 0; i < 5; i++) {
    const got = await new Promise<Got>((resolve, reject) => {
      const req = http.request({ host: proxyUrl.hostname, port: proxyUrl.port, path: url, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), sha: sha256(Buffer.concat(chunks)) }));
      });
      req.on('error', reject);
      req.end();
    });
    t.equal(got.status, 200);
    t.equal(got.headers['cache-status'], 'proxyd; fwd=uri-miss; fwd-status=200', `request ${i + 1}: Cache-Status says a miss`);
    shas.push(got.sha);
  }
  t.equal(origin.count(p), 5, 'every request reached the origin');
  t.equal(new Set(shas).size, 5, 'each got the origin\'s own answer');
  t.same(await tags(url, 5), ['MISS', 'MISS', 'MISS', 'MISS', 'MISS'], 'each is logged a MISS');
});

t.test('a cross-worker hit: stored through one thread, a hit in another', async (t) => {
  const p = path('cc=max-age%3D60');
  await get(origin.url(p));
  const url = origin.url(p);
  const records = (): Record<string, unknown>[] => readLog(proxy.logFile).filter((r) => r.event === 'request' && r.url === url);
  await eventually(() => records().length === 1, 'the miss record');
  const missThread = records()[0]!.thread;
  // Connections at once spread over the workers (one at a time, the pool hands each to the same idle one).
  for (let i = 0; i < 10 && !records().some((r) => r.cache === 'HIT' && r.thread !== missThread); i++) {
    await Promise.all(Array.from({ length: 8 }, () => get(url)));
    await eventually(() => records().length === 1 + 8 * (i + 1), 'the hits\' records');
  }
  const other = records().find((r) => r.cache === 'HIT' && r.thread !== missThread);
  t.ok(other, `a HIT in thread ${String(other?.thread)}, the MISS in thread ${String(missThread)}`);
  t.equal(origin.count(p), 1);
});

t.test('--cache-deny: a denied domain is never cached (BYPASS)', async (t) => {
  const denying = await startTestProxy(t, { workers: 1, cacheDeny: ['127.0.0.1'] });
  t.teardown(() => denying.close(500));
  const p = path('cc=max-age%3D60');
  await get(origin.url(p), { via: denying.url });
  const b = await get(origin.url(p), { via: denying.url });
  t.equal(origin.count(p), 2);
  t.equal(b.headers['cache-status'], 'proxyd; fwd=bypass');
});

t.test('/metrics and /api/stats: hit ratios, entries, bytes stored, coalesced followers', async (t) => {
  const own = await startTestProxy(t, { workers: 2, admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(own))!;
  t.teardown(async () => {
    await admin.close();
    await own.close(500);
  });
  const p = path('cc=max-age%3D60&size=1000&delay=200');
  await Promise.all(Array.from({ length: 4 }, () => get(origin.url(p), { via: own.url }))); // 1 MISS, 3 COALESCED (or HIT)
  await get(origin.url(p), { via: own.url }); // HIT
  await get(origin.url(p), { via: own.url, method: 'POST' }); // BYPASS (and invalidates)
  await eventually(() => own.shared.stats.get('active') === 0, 'every connection closed');
  const text = (await curl([`http://127.0.0.1:${admin.address.port}/metrics`])).body.toString();
  const metric = (name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
  t.equal(origin.count(p), 2, 'the GETs made one origin request (and the POST one)');
  t.equal(metric('proxyd_cache_requests_total{result="miss"}'), 1);
  t.equal(metric('proxyd_cache_requests_total{result="hit"}') + metric('proxyd_cache_requests_total{result="coalesced"}'), 4);
  t.equal(metric('proxyd_cache_requests_total{result="bypass"}'), 1);
  t.equal(metric('proxyd_cache_request_hit_ratio'), 0.8, '4 of 5 from the cache');
  t.equal(metric('proxyd_cache_byte_hit_ratio'), 0.8, '4000 of 5000 bytes from the cache');
  t.equal(metric('proxyd_cache_entries'), 0, 'the POST invalidated the one entry');
  t.equal(metric('proxyd_cache_stored_bytes'), 0);
  t.ok(metric('proxyd_cache_coalesced_followers_total') >= 1, `followers: ${metric('proxyd_cache_coalesced_followers_total')}`);
  t.equal(metric('proxyd_cache_in_flight'), 0);
  t.equal(metric('proxyd_cache_followers_waiting'), 0);
  const stats = JSON.parse((await curl([`http://127.0.0.1:${admin.address.port}/api/stats`])).body.toString());
  t.equal(stats.cache.requestHitRatio, 0.8);
  t.equal(stats.cache.on, true);
});

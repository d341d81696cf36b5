// Plainly fresh hits answered by the serving thread itself (worker/answer-hit.ts), without undici's
// interceptor, and what must never be answered that way: a real origin on loopback that counts its
// requests (helpers/cache-origin.ts), a proxy with 4 worker threads, real HTTP clients. Which way a hit
// went is read from the shared counter cacheHitsDirect; what the client got, by its bytes (SHA-256) and
// its head; what the proxy logged, by its records.
import t, { type Test } from 'tap';
import http from 'node:http';
import { startCacheOrigin } from './helpers/cache-origin.ts';
import { sha256 } from './helpers/origin.ts';
import { eventually, readLog, startTestProxy } from './helpers/proxy.ts';

const origin = await startCacheOrigin();
const proxy = await startTestProxy(t, { workers: 4, upstreamTimeoutMs: 5_000 });
t.teardown(async () => {
  await proxy.close(1000);
  await origin.close();
});

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  sha: string;
}

/** One request through the proxy on a connection of its own (so that requests at once spread over the workers). */
function get(url: string, { method = 'GET', headers = {} as Record<string, string> } = {}): Promise<Got> {
  const proxyUrl = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxyUrl.hostname, port: proxyUrl.port, method, path: url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, sha: sha256(body) });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer for ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

const direct = (): number => proxy.shared.stats.get('cacheHitsDirect');

let unique = 0;
function path(query: string): string {
  return `/d/${++unique}?${query}`;
}

function records(url: string): Record<string, unknown>[] {
  return readLog(proxy.logFile).filter((r) => r.event === 'request' && r.url === url);
}

/** Requests at once until every one of the 4 threads has answered `url` from the cache (its memo is warm). */
async function warmEveryThread(t: Test, url: string): Promise<void> {
  const hitThreads = (): Set<unknown> => new Set(records(url).filter((r) => r.cache === 'HIT').map((r) => r.thread));
  for (let i = 0; i < 20 && hitThreads().size < 4; i++) {
    const before = records(url).length;
    await Promise.all(Array.from({ length: 8 }, () => get(url)));
    await eventually(() => records(url).length >= before + 8, 'the hits’ records');
  }
  t.equal(hitThreads().size, 4, 'every thread has answered it from the cache');
}

/** A head without what differs between two answers of one entry (Age, Date) or between connections. */
function comparableHead(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!/^(age|date|connection|keep-alive)$/i.test(raw[i]!)) out.push(`${raw[i]}: ${raw[i + 1]}`);
  return out;
}

t.test('a plainly fresh hit is answered by the worker: the same bytes, Age, Cache-Status, logged HIT', async (t) => {
  const p = path('cc=max-age%3D60&etag=x1');
  const url = origin.url(p);
  const miss = await get(url);
  const before = direct();
  const hits = await Promise.all(Array.from({ length: 6 }, () => get(url)));
  t.equal(direct() - before, 6, 'six hits, all answered directly');
  t.equal(origin.count(p), 1, 'one origin request');
  for (const h of hits) {
    t.equal(h.status, 200);
    t.equal(h.sha, miss.sha, 'the same bytes');
    t.equal(h.headers['cache-status'], 'proxyd; hit');
    t.match(h.headers.age, /^\d+$/, 'Age');
    t.equal(h.headers['content-length'], String(miss.body.length));
    t.match(h.headers.via, /^1\.1 proxyd-/, 'our Via');
  }
  // The long way (a request directive sends it through undici's interceptor) gives the same answer.
  const beforeLong = direct();
  const long = await get(url, { headers: { 'cache-control': 'max-stale=10' } });
  t.equal(direct(), beforeLong, 'a request with its own directives goes the long way');
  t.equal(long.headers['cache-status'], 'proxyd; hit', 'and is a hit there');
  t.same(comparableHead(hits[0]!.rawHeaders), comparableHead(long.rawHeaders), 'the same head both ways (Age and Date aside)');
  t.equal(long.sha, miss.sha);
  const head = await get(url, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body.length, 0, 'HEAD: no body');
  t.equal(head.headers['content-length'], String(miss.body.length), 'HEAD: the stored GET’s length');
  t.equal(direct() - beforeLong, 1, 'the HEAD answered directly');
  await eventually(() => records(url).length === 9, 'every record');
  t.same(records(url).map((r) => r.cache), ['MISS', ...Array(8).fill('HIT')]);
  const hitRecord = records(url).find((r) => r.cache === 'HIT' && r.method === 'GET')!;
  t.equal(hitRecord.status, 200);
  t.equal(hitRecord.down, miss.body.length, 'bytes down logged');
});

t.test('Age is computed for each answer', async (t) => {
  const p = path('cc=max-age%3D60');
  const url = origin.url(p);
  await get(url);
  await new Promise((r) => setTimeout(r, 2100));
  const before = direct();
  const h = await get(url);
  t.equal(direct() - before, 1);
  t.ok(Number(h.headers.age) >= 2, `Age ${h.headers.age} after 2 s`);
});

t.test('never from a remembered entry: a Vary mismatch, a stale entry, a no-cache request, Range', async (t) => {
  const v = path('cc=max-age%3D60&vary=Accept-Language');
  const vUrl = origin.url(v);
  const en = await get(vUrl, { headers: { 'accept-language': 'en' } });
  const en2 = await get(vUrl, { headers: { 'accept-language': 'en' } });
  t.equal(en2.sha, en.sha);
  const before = direct();
  const fr = await get(vUrl, { headers: { 'accept-language': 'fr' } });
  t.equal(origin.count(v), 2, 'fr: to the origin');
  t.match(fr.body.toString(), /for Accept-Language=fr/, 'fr: the fr answer, not the remembered en one');
  const fr2 = await get(vUrl, { headers: { 'accept-language': 'fr' } });
  t.equal(fr2.sha, fr.sha);
  t.equal(direct() - before, 1, 'the second fr is a direct hit');

  // max-age=3: fresh for 2–3 s after it is stored (the origin's Date has whole seconds), stale after 4 s.
  const s = path('cc=max-age%3D3&etag=s1');
  const sUrl = origin.url(s);
  await get(sUrl);
  const warm = direct();
  await get(sUrl);
  t.equal(direct() - warm, 1, 'fresh: a direct hit');
  await new Promise((r) => setTimeout(r, 4100));
  const stale = await get(sUrl);
  t.equal(origin.count(s), 2, 'stale: the origin is asked');
  t.not(stale.headers['cache-status'], 'proxyd; hit');

  const n = path('cc=max-age%3D60&etag=n1');
  const nUrl = origin.url(n);
  await get(nUrl);
  await get(nUrl);
  const noCache = await get(nUrl, { headers: { 'cache-control': 'no-cache' } });
  t.equal(origin.count(n), 2, 'no-cache: the origin is asked');
  t.equal(noCache.headers['cache-status'], 'proxyd; fwd=stale; fwd-status=304');
  await get(nUrl, { headers: { pragma: 'no-cache' } });
  t.equal(origin.count(n), 3, 'Pragma: no-cache too');

  const ranged = await get(nUrl, { headers: { range: 'bytes=0-3' } });
  t.equal(ranged.status, 206, 'Range: a 206 the long way');
  t.equal(ranged.body.toString(), 'body');
});

t.test('an entry the response marks no-cache is never answered directly', async (t) => {
  const p = path('cc=no-cache&etag=nc');
  const url = origin.url(p);
  await get(url);
  const before = direct();
  await get(url);
  await get(url);
  t.equal(direct(), before);
  t.equal(origin.count(p), 3, 'revalidated every time');
});

t.test('PURGE and an unsafe method through any thread: no thread answers from what it remembered (10 rounds)', async (t) => {
  for (let round = 0; round < 10; round++) {
    const p = path('cc=max-age%3D60');
    const url = origin.url(p);
    await get(url); // body 1
    await warmEveryThread(t, url);
    // Invalidate through one thread, then ask through every thread at once: nobody may send body 1.
    const by = round % 2 === 0 ? 'PURGE' : 'POST';
    const inval = await get(url, { method: by });
    t.equal(inval.status, 200, `round ${round}: ${by} answered`);
    const after = await Promise.all(Array.from({ length: 12 }, () => get(url)));
    const bodies = new Set(after.map((a) => a.body.toString().split(' ')[1]));
    t.notOk(bodies.has('1'), `round ${round}: after ${by}, no answer is the old body (got bodies ${[...bodies].join(', ')})`);
    t.ok(after.every((a) => a.status === 200), `round ${round}: all answered`);
  }
});

t.test('a replaced entry is seen by every thread (a no-cache refetch stores a new answer)', async (t) => {
  const p = path('cc=max-age%3D60');
  const url = origin.url(p);
  await get(url); // body 1
  await warmEveryThread(t, url);
  const fresh = await get(url, { headers: { 'cache-control': 'no-cache' } }); // no validator: refetched and stored anew
  t.match(fresh.body.toString(), /^body 2 /);
  const after = await Promise.all(Array.from({ length: 12 }, () => get(url)));
  t.ok(after.every((a) => a.body.toString().startsWith('body 2 ')), 'every thread answers with the new entry');
});

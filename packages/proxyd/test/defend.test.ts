// The proxy defends itself (issue 16): per-client rate limits shared by every thread, per-client
// connection limits at accept, detectors that ban, bans enforced at accept, and the admin's view of them.
// Real threads, real sockets; each client binds its own loopback address (127.0.0.2, 127.0.0.3, …), and
// every proxy here exempts only 127.0.0.1 from bans (the default exempts all of loopback).
import t from 'tap';
import net from 'node:net';
import { startAdminServer } from '../src/admin/admin-server.ts';
import { agentFrom, flood, getVia } from './helpers/clients.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { eventually, readLog, startTestProxy, type TestProxy } from './helpers/proxy.ts';
import { exchange } from './helpers/raw.ts';

const EXEMPT = { banExempt: ['127.0.0.1/32'] };

let origin: Origin;
t.before(async () => {
  origin = await startOrigin();
});
t.teardown(() => origin.close());

/** The 'ban' records of a proxy's log. */
function bans(proxy: TestProxy): Record<string, unknown>[] {
  return readLog(proxy.logFile).filter((r) => r.event === 'ban');
}

/** A CONNECT from `localAddress` on a connection of its own: the proxy's answer head, or '' if it closed without one. */
async function connectFrom(port: number, localAddress: string, target: string): Promise<string> {
  const { text } = await exchange(port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`, 3000, localAddress);
  return text.split('\r\n')[0] ?? '';
}

t.test('a flood from one client gets 429s with Retry-After while another client is served', async (t) => {
  const proxy = await startTestProxy(t, { ...EXEMPT, rateLimit: 20, rateBurst: 20, logLevel: 'info' });
  t.teardown(() => proxy.close(500));
  const url = origin.url('/hello');
  const quiet = agentFrom('127.0.0.3', 1);
  t.teardown(() => quiet.destroy());
  async function quietClient(n: number): Promise<number[]> {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = await getVia(proxy.address.port, url, quiet);
      t.equal(a.status, 200, `the other client's request ${i + 1} is served`);
      ms.push(a.ms);
      await new Promise((r) => setTimeout(r, 60)); // 10 requests in ~0.6 s: inside its own limit
    }
    return ms;
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const alone = await quietClient(5);
  const [hit, during] = await Promise.all([flood(proxy.address.port, url, { localAddress: '127.0.0.2', requests: 600 }), quietClient(5)]);
  const allowedMax = 20 + Math.ceil((hit.ms / 1000) * 20) + 1;
  t.ok(hit.ok >= 20 && hit.ok <= allowedMax, `the flooder got ${hit.ok} 200s in ${Math.round(hit.ms)} ms (burst 20 + 20/s: at most ${allowedMax})`);
  t.equal(hit.ok + hit.limited, 600, `and ${hit.limited} 429s, nothing else`);
  t.same([...hit.retryAfter], ['1'], 'each 429 says Retry-After: 1');
  t.comment(`the other client's median latency: ${median(alone).toFixed(2)} ms alone, ${median(during).toFixed(2)} ms during the flood (ratio ${(median(during) / median(alone)).toFixed(2)})`);
  t.ok(proxy.shared.stats.get('rateLimited') >= hit.limited, 'Stats counts the limited requests');
});

t.test('a client that keeps sending after its 429s is banned: its keep-alive connections close, new ones are refused at accept', async (t) => {
  const proxy = await startTestProxy(t, { ...EXEMPT, rateLimit: 10, rateBurst: 10, banRateLimited: 30, workers: 2, logLevel: 'info' });
  t.teardown(() => proxy.close(500));
  const url = origin.url('/hello');
  // Four keep-alive connections from 127.0.0.4, as fast as they go, bounded at 400 requests in all.
  const flooder = agentFrom('127.0.0.4', 4);
  t.teardown(() => flooder.destroy());
  const got = { ok: 0, limited: 0, closedAfter: 0, failed: 0 };
  let sent = 0;
  async function lane(): Promise<void> {
    while (sent < 400) {
      sent++;
      try {
        const a = await getVia(proxy.address.port, url, flooder);
        if (a.status === 200) got.ok++;
        else if (a.status === 429) {
          got.limited++;
          if (a.headers.connection === 'close') got.closedAfter++;
        }
      } catch {
        got.failed++; // closed at accept once banned
        if (got.failed >= 20) return;
      }
    }
  }
  const started = performance.now();
  await Promise.all([lane(), lane(), lane(), lane()]);
  const allowedMax = 10 + Math.ceil(((performance.now() - started) / 1000) * 10) + 1;
  t.ok(got.ok >= 10 && got.ok <= allowedMax, `the burst was served (${got.ok} × 200; burst 10 + 10/s: at most ${allowedMax})`);
  t.ok(got.limited >= 30, `then 429s (${got.limited}) until the 30th in the window banned it`);
  t.ok(got.closedAfter >= 1, `answers after the ban say Connection: close (${got.closedAfter})`);
  t.ok(got.failed >= 1, `its new connections are closed at accept (${got.failed} failed)`);
  await eventually(() => bans(proxy).length === 1, 'the ban is logged');
  t.match(bans(proxy), [{ client: '127.0.0.4', detector: 'rate-limited', threshold: 30 }], 'one ban line, by the rate-limited detector');
  t.equal(proxy.shared.stats.get('bansRateLimited'), 1, 'counted once');
  t.equal((await exchange(proxy.address.port, `GET ${url} HTTP/1.1\r\nHost: x\r\n\r\n`, 3000, '127.0.0.4')).text, '', 'a new connection from it is closed at accept');
  const other = agentFrom('127.0.0.5', 1);
  t.teardown(() => other.destroy());
  t.equal((await getVia(proxy.address.port, url, other)).status, 200, 'another client is served');
});

t.test('the limit is per process, not per thread: 4 workers admit what 1 worker admits', async (t) => {
  const admitted: number[] = [];
  for (const workers of [1, 4]) {
    // 30 at once, then one a minute: the flood (a second or two) earns at most one more.
    const proxy = await startTestProxy(t, { ...EXEMPT, workers, rateLimit: 1 / 60, rateBurst: 30, logLevel: 'info' });
    const result = await flood(proxy.address.port, origin.url('/hello'), { localAddress: '127.0.0.2', requests: 300, parallel: 16 });
    await proxy.close(500);
    t.equal(result.ok + result.limited, 300, `--workers ${workers}: every request answered 200 or 429`);
    admitted.push(result.ok);
  }
  t.ok(admitted.every((n) => n >= 30 && n <= 31), `200s with --workers 1 and 4: ${admitted.join(' and ')} (burst 30, +1 if the minute ticked)`);
});

t.test('a CONNECT scan over 50 ports is banned once, and then closed at accept without a permit or a log line', async (t) => {
  const proxy = await startTestProxy(t, { ...EXEMPT, connectPorts: [[443, 443]], logLevel: 'debug' });
  t.teardown(() => proxy.close(500));
  const answers: string[] = [];
  for (let port = 1; port <= 50; port++) answers.push(await connectFrom(proxy.address.port, '127.0.0.4', `127.0.0.1:${port}`));
  t.match(answers[0], /403 Forbidden/, 'the first probes are refused 403 (port policy)');
  const firstSilent = answers.indexOf('');
  t.ok(firstSilent > 10 && firstSilent <= 30, `after ${firstSilent} probes the scanner's connections are closed unanswered`);
  t.ok(answers.slice(firstSilent).every((a) => a === ''), 'and every probe after that');
  await eventually(() => bans(proxy).length === 1, 'the ban is logged');
  const [ban] = bans(proxy);
  t.match(ban, { client: '127.0.0.4', key: '127.0.0.4', detector: 'scan', banTime: '10m', offence: 1 }, 'one ban line: who, why, how long');

  const { stats } = proxy.shared;
  // Connection ids are handed out at accept, one per accepted connection: the knocks get ids above this.
  const before = { admitted: stats.get('admitted'), refused: stats.get('bannedRefused'), lastId: stats.get('accepted') };
  for (let i = 0; i < 10; i++) t.equal(await connectFrom(proxy.address.port, '127.0.0.4', '127.0.0.1:443'), '', `knock ${i + 1}: closed at accept`);
  t.equal(stats.get('admitted'), before.admitted, 'no permit was taken for them');
  t.equal(stats.get('bannedRefused') - before.refused, 10, 'each counted as refused at accept');
  t.equal(stats.get('accepted') - before.lastId, 10, 'and accepted (then closed) ten times');
  await new Promise((r) => setTimeout(r, 300)); // the logger writes in batches: give it time to show anything
  t.same(readLog(proxy.logFile).filter((r) => typeof r.conn === 'number' && r.conn > before.lastId), [], 'and not one log line for them, even at debug');
  t.equal(bans(proxy).length, 1, 'still one ban line');
  t.match(await connectFrom(proxy.address.port, '127.0.0.5', '127.0.0.1:443'), /200 Connection Established|502/, 'another client still gets through');
});

t.test('a password guesser spread over two worker threads is banned', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tempDir } = await import('./helpers/proxy.ts');
  const file = join(tempDir(), 'htpasswd');
  writeFileSync(file, 'bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n'); // bob:password
  const proxy = await startTestProxy(t, { ...EXEMPT, workers: 2, authFile: file, logLevel: 'info' });
  t.teardown(() => proxy.close(500));
  const statuses: number[] = [];
  // A new connection per guess, each kept open: the pool gives a new task to the thread with the fewest,
  // so the guesses alternate between the two threads.
  const agents: ReturnType<typeof agentFrom>[] = [];
  t.teardown(() => agents.forEach((a) => a.destroy()));
  for (let i = 0; i < 15; i++) {
    const agent = agentFrom('127.0.0.6', 1);
    agents.push(agent);
    try {
      statuses.push((await getVia(proxy.address.port, origin.url('/hello'), agent, { 'Proxy-Authorization': `Basic ${Buffer.from(`bob:guess${i}`).toString('base64')}` })).status);
    } catch {
      statuses.push(0); // closed at accept: banned
    }
  }
  t.same(statuses.slice(0, 9), Array(9).fill(407), 'nine wrong passwords: 407 each');
  t.equal(statuses[9], 429, 'the tenth: 429, and the ban begins');
  t.same(statuses.slice(10), Array(5).fill(0), 'then connections are closed at accept');
  await eventually(() => bans(proxy).length === 1, 'the ban is logged');
  const failures = readLog(proxy.logFile).filter((r) => r.event === 'auth-failed' && r.why === 'invalid');
  t.ok(new Set(failures.map((r) => r.thread)).size >= 2, `the guesses were checked by ${new Set(failures.map((r) => r.thread)).size} threads, counted as one`);
  t.match(bans(proxy), [{ client: '127.0.0.6', detector: 'auth-failures', count: 10 }]);
  const good = agentFrom('127.0.0.7', 1);
  t.teardown(() => good.destroy());
  t.equal((await getVia(proxy.address.port, origin.url('/hello'), good, { 'Proxy-Authorization': `Basic ${Buffer.from('bob:password').toString('base64')}` })).status, 200, 'another client logs in');
});

t.test('malformed requests are banned; the ban expires; the second ban lasts twice as long', async (t) => {
  const proxy = await startTestProxy(t, { ...EXEMPT, banBadRequests: 5, banTimeMs: 1000, logLevel: 'info' });
  t.teardown(() => proxy.close(500));
  const garbage = async () => (await exchange(proxy.address.port, 'HELLO THERE\r\n\r\n', 3000, '127.0.0.8')).text.split('\r\n')[0];
  const first = [];
  for (let i = 0; i < 7; i++) first.push(await garbage());
  t.same(first.slice(0, 5), Array(5).fill('HTTP/1.1 400 Bad Request'), 'five malformed requests: 400 each');
  t.same(first.slice(5), ['', ''], 'then closed at accept');
  await eventually(() => proxy.limits.bans().length === 0, 'the ban runs out', 5000);
  // The window (a minute) still holds its five: one more bad request bans it again, for twice as long.
  t.equal(await garbage(), 'HTTP/1.1 400 Bad Request', 'after the ban the client is answered again');
  await eventually(() => bans(proxy).length === 2, 'its next bad request, inside the same window, bans it again');
  t.equal(await garbage(), '', 'closed at accept');
  t.same(bans(proxy).map((b) => [b.detector, b.banTime, b.offence]), [['bad-requests', '1s', 1], ['bad-requests', '2s', 2]], 'doubling for a repeat offender');
  const left = proxy.limits.bans()[0]!.leftMs;
  t.ok(left > 1000 && left <= 2000, `the second ban has ${left} ms left`);
});

t.test('/api/bans lists bans and POST /api/bans/lift ends one; /metrics counts them', async (t) => {
  const proxy = await startTestProxy(t, { ...EXEMPT, banBadRequests: 3, logLevel: 'info', admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
  });
  for (let i = 0; i < 3; i++) await exchange(proxy.address.port, 'NONSENSE\r\n\r\n', 3000, '127.0.0.9');
  t.equal((await exchange(proxy.address.port, 'GET / HTTP/1.1\r\n\r\n', 3000, '127.0.0.9')).text, '', 'banned');
  const base = `http://127.0.0.1:${admin.address.port}`;
  const listed = (await (await fetch(`${base}/api/bans`)).json()) as { bans: { key: string; detector: string; leftMs: number }[] };
  t.match(listed.bans, [{ key: '127.0.0.9', detector: 'bad-requests' }], '/api/bans lists it');
  t.ok(listed.bans[0]!.leftMs > 590_000, 'with the time left');
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.match(metrics, /proxyd_bans_active 1\b/);
  t.match(metrics, /proxyd_bans_total\{detector="bad-requests"\} 1\b/);
  t.match(metrics, /proxyd_connections_refused_total\{reason="banned"\} 1\b/);
  t.match(metrics, /proxyd_limiter_cas_retries_total \d+/);
  t.equal((await fetch(`${base}/api/bans/lift`, { method: 'POST', body: 'key=127.0.0.9', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 415, 'a form post is refused (JSON only)');
  const lift = await fetch(`${base}/api/bans/lift`, { method: 'POST', body: JSON.stringify({ key: '127.0.0.9' }), headers: { 'content-type': 'application/json' } });
  t.same([lift.status, await lift.json()], [200, { key: '127.0.0.9', lifted: true }], 'lifted');
  t.equal((await fetch(`${base}/api/bans/lift`, { method: 'POST', body: JSON.stringify({ key: '127.0.0.9' }), headers: { 'content-type': 'application/json' } })).status, 404, 'lifting it again: 404');
  t.match((await exchange(proxy.address.port, `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.9')).text, /^HTTP\/1.1 200/, 'the client is served again');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'unban' && r.key === '127.0.0.9'), 'the lift is logged');
});

t.test('--max-conns-per-client and --conn-rate refuse at accept with 429', async (t) => {
  const proxy = await startTestProxy(t, { ...EXEMPT, maxConnsPerClient: 2, logLevel: 'info' });
  t.teardown(() => proxy.close(500));
  const open = (): Promise<net.Socket> =>
    new Promise((resolve) => {
      const s = net.connect({ port: proxy.address.port, host: '127.0.0.1', localAddress: '127.0.0.10' }, () => resolve(s));
      s.on('error', () => {});
    });
  const held = [await open(), await open()];
  await eventually(() => proxy.shared.stats.get('admitted') >= 2, 'both admitted');
  const third = await exchange(proxy.address.port, `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\n\r\n`, 3000, '127.0.0.10');
  t.match(third.text, /^HTTP\/1.1 429 Too Many Requests[\s\S]*X-Proxyd-Refusal: TOO_MANY_CONNECTIONS/, 'a third connection: 429 TOO_MANY_CONNECTIONS');
  t.match((await exchange(proxy.address.port, `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.11')).text, /^HTTP\/1.1 200/, 'another client is not affected');
  held[0]!.destroy();
  await eventually(async () => /^HTTP\/1.1 200/.test((await exchange(proxy.address.port, `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.10')).text), 'one closed: a new one is served');
  held[1]!.destroy();
  t.ok(proxy.shared.stats.get('connCapRefused') >= 1, 'counted in Stats');

  await proxy.reload({ ...proxy.options, maxConnsPerClient: 0, connRate: 5 });
  const answers = await Promise.all(Array.from({ length: 12 }, () => exchange(proxy.address.port, `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.12')));
  const limited = answers.filter((a) => /X-Proxyd-Refusal: CONN_RATE_LIMITED/.test(a.text)).length;
  t.ok(limited >= 5 && limited <= 7, `after a reload to --conn-rate 5: 12 connections at once, ${limited} refused 429 CONN_RATE_LIMITED`);
});

t.test('behind a load balancer (PROXY protocol) limits and bans apply to the client the header names', async (t) => {
  const proxy = await startTestProxy(t, {
    proxyProtocol: 'on',
    proxyProtocolFrom: ['127.0.0.1/32'],
    allowClient: ['203.0.113.0/24'],
    banBadRequests: 3,
    banExempt: ['none'],
    logLevel: 'info',
  });
  t.teardown(() => proxy.close(500));
  const via = (client: string, request: string) => exchange(proxy.address.port, `PROXY TCP4 ${client} 127.0.0.1 40000 ${proxy.address.port}\r\n${request}`, 3000);
  for (let i = 0; i < 3; i++) t.match((await via('203.0.113.9', 'NONSENSE\r\n\r\n')).text, /^HTTP\/1.1 400/, `malformed request ${i + 1} from 203.0.113.9: 400`);
  await eventually(() => bans(proxy).length === 1, 'the ban is logged');
  t.match(bans(proxy), [{ client: '203.0.113.9', key: '203.0.113.9', detector: 'bad-requests' }], 'the client of the header is banned, not the balancer');
  t.equal((await via('203.0.113.9', `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text, '', 'its next connection is closed once the header is read');
  t.match((await via('203.0.113.10', `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text, /^HTTP\/1.1 200/, 'another client through the same balancer is served');
  t.ok(proxy.shared.stats.get('bannedRefused') >= 1, 'counted as refused');
});

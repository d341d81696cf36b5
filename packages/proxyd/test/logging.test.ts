// The log path: every thread's events reach the file through the ring; a ring too small for the load
// drops records, and every dropped record is counted and reported — nothing is lost silently.
import t from 'tap';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, readLog } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('with a tiny ring under load: records in the file + records dropped = records written by all threads', async (t) => {
  const proxy = await startTestProxy(t, { logRingBytes: 1024, logLevel: 'debug' });
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => curl(['--proxy', proxy.url, origin.url(`/hello?i=${i}`)])));
  t.same(results.map((r) => r.status), Array(60).fill(200), 'a full log ring never blocks or fails a request');
  const { ring } = proxy.shared;
  await proxy.close(1000);
  const records = readLog(proxy.logFile);
  const fromRing = records.filter((r) => r.event !== 'log-records-dropped' && r.event !== 'status');
  const reportedDrops = records.filter((r) => r.event === 'log-records-dropped').reduce((n, r) => n + Number(r.dropped), 0);
  t.ok(ring.dropped > 0, `the ring overflowed: ${ring.dropped} records dropped`);
  t.equal(reportedDrops, ring.dropped, 'every drop is reported in the log');
  // The 'stopped' record is written after the last drop report, so count what the ring accepted.
  t.equal(fromRing.length, ring.written, `every accepted record reached the file (${fromRing.length})`);
});

t.test('a status line appears while the proxy is busy', async (t) => {
  const proxy = await startTestProxy(t, { statusIntervalMs: 100, logLevel: 'info' });
  for (let i = 0; i < 5; i++) {
    await curl(['--proxy', proxy.url, origin.url('/hello')]);
    await new Promise((r) => setTimeout(r, 60));
  }
  await new Promise((r) => setTimeout(r, 250));
  await proxy.close(1000);
  const status = readLog(proxy.logFile).filter((r) => r.event === 'status');
  t.ok(status.length >= 1, `${status.length} status lines`);
  t.match(status.at(-1), { accepted: Number, requests: Number, active: Number, waiting: Number });
  t.equal(status.at(-1)!.requests, 5);
});

t.test('the dashboard counts a request under its destination host, however the target was written', async (t) => {
  const { hostOf } = await import('../src/logger/format.ts');
  const cases: [Record<string, unknown>, string | undefined][] = [
    [{ url: 'http://Example.COM/path?q=1' }, 'example.com'],
    [{ url: 'http://example.com:8080/x' }, 'example.com'],
    [{ url: 'http://example.com' }, 'example.com'],
    [{ url: 'http://example.com?q' }, 'example.com'],
    [{ url: 'http://[::1]:8080/x' }, '[::1]'],
    [{ target: 'example.org:443' }, 'example.org'],
    [{ target: '[2001:db8::1]:443' }, '[2001:db8::1]'],
    [{ url: 'http:///nohost' }, undefined],
    [{ event: 'status' }, undefined],
  ];
  for (const [record, host] of cases) t.equal(hostOf(record), host, JSON.stringify(record));
  // The same answers as the WHATWG URL parser gives for the http:// forms.
  for (const [record, host] of cases) if (typeof record.url === 'string' && host) t.equal(new URL(record.url).hostname, host);
});

t.test('the logger writes in batches: each record is one JSON line in the file and one readable line on stdout, in order', async (t) => {
  const { startCliProxy } = await import('./helpers/proxy.ts');
  const { readFileSync } = await import('node:fs');
  const proxy = await startCliProxy(t, ['--workers', '2', '--log-level', 'info', '--status-interval', '0']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const N = 200; // concurrent: many records reach the logger in one wake-up
  const results = await Promise.all(Array.from({ length: N }, (_, i) => curl(['--proxy', proxy.url, origin.url(`/hello?batch=${i}`)])));
  t.same(results.map((r) => r.status), Array(N).fill(200));
  t.equal(await proxy.stop('SIGTERM'), 0);
  const lines = readFileSync(proxy.logFile, 'utf8').split('\n');
  t.equal(lines.at(-1), '', 'the file ends with a newline');
  const records = lines.slice(0, -1).map((line) => JSON.parse(line) as Record<string, unknown>);
  const requests = records.filter((r) => r.event === 'request');
  t.same(new Set(requests.map((r) => r.url)).size, N, `all ${N} requests are in the file, one line each`);
  for (const r of records) {
    if (typeof r.time !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(r.time)) return t.fail(`time is not an ISO string: ${JSON.stringify(r)}`);
  }
  t.match(requests[0], { level: 'info', method: 'GET', status: 200, thread: Number, conn: Number, client: String }, 'fields survive the time being rewritten');
  // stdout: one readable line per request, in the file's order.
  const readable = proxy.stdout().split('\n').filter((line) => / info  request /.test(line));
  t.equal(readable.length, N, `${N} readable request lines on stdout`);
  const order = (text: string) => /batch=(\d+)/.exec(text)?.[1];
  t.same(readable.map(order), requests.map((r) => order(String(r.url))), 'stdout and the file agree on the order');
  t.match(readable[0], /^\d\d:\d\d:\d\d\.\d{3} info  request 127\.0\.0\.1:\d+ GET http:\/\/127\.0\.0\.1:\d+\/hello\?batch=\d+ 200 /);
});

t.test('with stdout on /dev/null (where the logger makes no readable lines) the file still gets every record', async (t) => {
  const { startCliProxy } = await import('./helpers/proxy.ts');
  const proxy = await startCliProxy(t, ['--workers', '1', '--log-level', 'info', '--status-interval', '0'], {}, { stdoutToDevNull: true });
  t.teardown(() => proxy.stop('SIGKILL'));
  const N = 100;
  const results = await Promise.all(Array.from({ length: N }, (_, i) => curl(['--proxy', proxy.url, origin.url(`/hello?quiet=${i}`)])));
  t.same(results.map((r) => r.status), Array(N).fill(200));
  t.equal(await proxy.stop('SIGTERM'), 0, 'a clean exit');
  const records = readLog(proxy.logFile);
  const requests = records.filter((r) => r.event === 'request');
  t.equal(new Set(requests.map((r) => r.url)).size, N, `all ${N} requests are in the file`);
  t.ok(records.some((r) => r.event === 'stopped'), 'down to the last record');
  t.ok(requests.every((r) => typeof r.time === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(r.time)), 'every time an ISO string');
  t.equal(proxy.stderr(), '', 'nothing on stderr');
});

t.test('readable lines and ISO times', async (t) => {
  const { readableLine, isoTime } = await import('../src/logger/format.ts');
  t.equal(
    readableLine({ time: '2026-11-26T09:33:31.882Z', level: 'info', thread: 1, event: 'request', conn: 7, client: '127.0.0.1:5000', method: 'GET', url: 'http://a/', status: 200, why: 'two words', gone: null, skipped: undefined, ms: 0.4 }),
    '09:33:31.882 info  request 127.0.0.1:5000 GET http://a/ 200 conn=7 why="two words" ms=0.4',
    'time, level, event, then the first fields in a fixed order, then the rest as key=value (quoted when they hold spaces)',
  );
  t.equal(readableLine({ event: 'x' }), ' info  x', 'a record without time or level');
  // The cached ISO time: the same answer as Date for the same, a neighbouring and an earlier millisecond.
  for (const ms of [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_001, 1_700_000_001_000, 1_600_000_000_000, 0]) {
    t.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
});

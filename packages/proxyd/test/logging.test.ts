// The log path: every thread's events reach the file through the ring; a ring too small for the load
// drops records, and every dropped record is counted and reported — nothing is lost silently.
import t from 'tap';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, readLog } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('with a tiny ring under load: records in the file + records dropped = records written by all threads', async (t) => {
  const proxy = await startTestProxy({ logRingBytes: 1024, logLevel: 'debug' });
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
  const proxy = await startTestProxy({ statusIntervalMs: 100, logLevel: 'info' });
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

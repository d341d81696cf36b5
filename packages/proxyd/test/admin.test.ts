// The admin server: Prometheus metrics that follow the traffic (every thread's work counts), the JSON
// and SSE APIs, health checks, and the rule that a public admin address needs authentication.
import t from 'tap';
import { startOrigin } from './helpers/origin.ts';
import { DEFAULTS } from '../src/config/options.ts';
import { startTestProxy, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { listenAdmin, startAdminServer } from '../src/admin/admin-server.ts';

const origin = await startOrigin();
t.teardown(() => origin.close());

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

t.test('the admin port taken before the proxy starts answers 503 "starting" until the admin server takes over', async (t) => {
  const listening = await listenAdmin({ host: '127.0.0.1', port: 0 });
  const port = (listening.address() as { port: number }).port;
  const early = await curl([`http://127.0.0.1:${port}/healthz`]);
  t.equal(early.status, 503, 'while the proxy starts: 503, not a request left hanging');
  t.equal(early.body.toString(), 'starting\n');
  t.match(early.headers, /retry-after: 1/i);
  const proxy = await startTestProxy(t, { workers: 1, admin: { host: '127.0.0.1', port } });
  const admin = (await startAdminServer(proxy, listening))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
  });
  t.equal(admin.address.port, port, 'the same port');
  const later = await curl([`http://127.0.0.1:${port}/healthz`]);
  t.equal(later.status, 200, 'then the admin server answers');
  t.equal(later.body.toString(), 'ok\n');
});

t.test('/metrics, /api/stats, /api/events, /healthz, /readyz', async (t) => {
  const proxy = await startTestProxy(t, { workers: 2, admin: { host: '127.0.0.1', port: 0 }, blocklistFile: undefined });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
  });
  const base = `http://127.0.0.1:${admin.address.port}`;
  // --raw: curl keeps the chunked framing, so that it counts the bytes as the proxy sent them.
  const answers = [];
  for (let i = 0; i < 5; i++) answers.push(await curl(['--raw', '--proxy', proxy.url, origin.url('/hello')]));
  answers.push(await curl(['--raw', '--proxy', proxy.url, 'http://127.0.0.1:25/']));
  answers.push(await curl(['--raw', '--proxy', proxy.url, 'http://127.0.0.1:1/']));
  t.same(answers.map((r) => r.status), [200, 200, 200, 200, 200, 403, 502]);
  // Bytes are counted when a connection closes, just before its permit is given back.
  await eventually(() => proxy.shared.stats.get('active') === 0, 'every connection closed');

  const m = await curl([`${base}/metrics`]);
  t.equal(m.status, 200);
  t.match(m.headers, /content-type: text\/plain; version=0\.0\.4/i);
  const text = m.body.toString();
  t.equal(metric(text, 'proxyd_requests_total{method="GET"}'), 7, 'requests by method, summed over both worker threads');
  t.equal(metric(text, 'proxyd_request_decisions_total{decision="allowed"}'), 5);
  t.equal(metric(text, 'proxyd_request_decisions_total{decision="blocked"}'), 1);
  t.equal(metric(text, 'proxyd_upstream_errors_total{kind="refused"}'), 1);
  t.equal(metric(text, 'proxyd_responses_total{code="2xx"}'), 5);
  t.equal(metric(text, 'proxyd_responses_total{code="4xx"}'), 1);
  t.equal(metric(text, 'proxyd_responses_total{code="5xx"}'), 1);
  const bytesReceived = answers.reduce((n, r) => n + Buffer.byteLength(r.headers) + r.body.length, 0);
  t.equal(metric(text, 'proxyd_bytes_sent_total'), bytesReceived, `bytes sent to clients: the ${bytesReceived} bytes curl received`);
  t.equal(metric(text, 'proxyd_permits'), DEFAULTS.maxClients, 'permits: the default --max-clients');
  t.equal(metric(text, 'proxyd_semaphore_wait_seconds_count'), 7, 'one wait observation per admitted connection');
  t.match(text, /^proxyd_semaphore_wait_seconds_bucket\{le="0\.001"\} 7$/m);
  t.match(text, /^proxyd_event_loop_delay_p99_seconds\{thread="\d+"\} /m, 'event-loop delay per thread');
  t.match(text, /^proxyd_log_records_dropped_total 0$/m);

  const stats = JSON.parse((await curl([`${base}/api/stats`])).body.toString());
  t.equal(stats.stats.requests, 7);
  t.equal(stats.semaphore.permits, DEFAULTS.maxClients);
  t.same(stats.workers.map((w: { threadId: number }) => w.threadId === 0), [true, false, false], 'the primary and two workers in the thread table');

  const events = await curl(['--max-time', '2', `${base}/api/events`], 3000);
  const first = /^data: (.*)$/m.exec(events.body.toString());
  t.ok(first, 'the event stream sends snapshots');
  t.equal(JSON.parse(first![1]!).stats.requests, 7);

  t.equal((await curl([`${base}/healthz`])).status, 200);
  t.equal((await curl([`${base}/readyz`])).status, 200);
  t.equal((await curl([`${base}/nope`])).status, 404);
});

t.test('a non-loopback admin address is refused without --auth-file', async (t) => {
  const proxy = await startTestProxy(t, { workers: 1, admin: { host: '0.0.0.0', port: 0 } });
  t.teardown(() => proxy.close(500));
  await t.rejects(startAdminServer(proxy), /not a loopback address: that needs --auth-file/);
});

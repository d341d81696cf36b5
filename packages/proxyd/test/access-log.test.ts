// The access log (issue 21): one line per request in Squid's native format or the combined format,
// read by Debian's GoAccess — its JSON report counts the same requests and clients as proxyd's own
// /api/analytics — and rotated as the JSON log is, with no line lost.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, tempDir } from './helpers/proxy.ts';
import { analyticsOf, expectedOf, sendPlan, type Planned } from './helpers/analytics.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';
import { combinedLine, squidLine } from '../src/logger/access-log.ts';
import type { RequestFacts } from '../src/logger/request-facts.ts';

const GOACCESS = '/usr/bin/goaccess';
/** What README gives for GoAccess and each format. */
const GOACCESS_FORMATS = {
  combined: ['--log-format=COMBINED'],
  squid: ['--log-format=%x.%^ %~%L %h %^/%s %b %m %U %^ %^ %^', '--date-format=%s', '--time-format=%s'],
};

const facts: RequestFacts = {
  time: Date.UTC(2026, 11, 1, 13, 4, 44, 123),
  decision: 'allowed',
  client: '127.0.0.2',
  host: 'shop.localhost',
  method: 'GET',
  target: 'http://shop.localhost:8000/a?b=c',
  status: 200,
  bytesUp: 0,
  bytesDown: 411,
  elapsedMs: 180.4,
  user: undefined,
  rule: undefined,
  cache: undefined,
};

t.test('the two formats, line by line', async (t) => {
  t.equal(squidLine(facts), '1796130284.123    180 127.0.0.2 TCP_MISS/200 411 GET http://shop.localhost:8000/a?b=c - HIER_DIRECT/shop.localhost -');
  t.equal(combinedLine(facts), '127.0.0.2 - - [01/Dec/2026:13:04:44 +0000] "GET http://shop.localhost:8000/a?b=c HTTP/1.1" 200 411 "-" "-"');
  const denied: RequestFacts = { ...facts, decision: 'blocked', status: 403, bytesDown: 0, rule: 'ads.localhost', user: 'ann' };
  t.equal(squidLine(denied), '1796130284.123    180 127.0.0.2 TCP_DENIED/403 0 GET http://shop.localhost:8000/a?b=c ann HIER_NONE/- -');
  t.equal(combinedLine(denied), '127.0.0.2 - ann [01/Dec/2026:13:04:44 +0000] "GET http://shop.localhost:8000/a?b=c HTTP/1.1" 403 - "-" "-"');
  const tunnel: RequestFacts = { ...facts, method: 'CONNECT', target: 'shop.localhost:443', bytesDown: 5000 };
  t.equal(squidLine(tunnel), '1796130284.123    180 127.0.0.2 TCP_TUNNEL/200 5000 CONNECT shop.localhost:443 - HIER_DIRECT/shop.localhost -');
  t.equal(squidLine({ ...facts, cache: 'HIT' }).split(' ').filter(Boolean)[3], 'TCP_HIT/200', "a cache tag becomes Squid's code");
  t.equal(combinedLine({ ...facts, target: 'http://x/"quoted"' }).includes('"GET http://x/\\x22quoted\\x22 HTTP/1.1"'), true, 'a quote inside the request is escaped as Apache does');
});

function goaccessJson(t: Test, file: string, format: keyof typeof GOACCESS_FORMATS): Promise<{ general: { total_requests: number }; hosts: { data: { data: string; hits: { count: number } }[] } }> {
  const out = join(tempDir(), 'report.json');
  return new Promise((resolve, reject) => {
    execFile(GOACCESS, [file, '--no-global-config', ...GOACCESS_FORMATS[format], '-o', out], { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) return reject(new Error(`goaccess failed: ${err.message}\n${stderr}`));
      if (!existsSync(out)) return reject(new Error(`goaccess wrote no report: ${stderr}`));
      resolve(JSON.parse(readFileSync(out, 'utf8')));
    });
  });
}

function plan(port: number): Planned[] {
  const p: Planned[] = [];
  for (let i = 0; i < 3; i++) p.push({ client: '127.0.0.2', host: 'shop.localhost', port, method: 'GET', bytes: 1234 });
  for (let i = 0; i < 2; i++) p.push({ client: '127.0.0.3', host: 'news.localhost', port, method: 'POST', bytes: 99 });
  for (let i = 0; i < 2; i++) p.push({ client: '127.0.0.4', host: 'ads.localhost', port, method: 'GET', bytes: 1, blockedBy: 'ads.localhost' });
  p.push({ client: '127.0.0.4', host: 'shop.localhost', port, method: 'GET', bytes: 50 });
  return p;
}

for (const format of ['combined', 'squid'] as const) {
  t.test(`--access-log-format ${format}: a line per request, and GoAccess counts what /api/analytics counts`, { skip: existsSync(GOACCESS) ? false : `${GOACCESS} is not installed` }, async (t) => {
    const origin = await startOrigin();
    t.teardown(() => origin.close());
    const dir = tempDir();
    const blocklist = join(dir, 'blocklist.txt');
    writeFileSync(blocklist, 'ads.localhost\n');
    const accessLog = join(dir, 'access.log');
    const proxy = await startTestProxy(t, { blocklistFile: blocklist, accessLog, accessLogFormat: format, admin: { host: '127.0.0.1', port: 0 }, analyticsFile: join(dir, 'a.sqlite') });
    const admin = (await startAdminServer(proxy))!;
    const sent = plan(origin.port);
    await sendPlan(proxy.url, sent);
    const report = await analyticsOf(admin.address.port, '24h', sent.length);
    await admin.close();
    await proxy.close(0); // flushes the access log
    const lines = readFileSync(accessLog, 'utf8').trim().split('\n');
    t.equal(lines.length, sent.length, `${sent.length} lines`);
    const shape = format === 'squid' ? /^\d+\.\d{3} +\d+ 127\.0\.0\.[234] TCP_(MISS|DENIED)\/(200|403) \d+ (GET|POST) http:\/\/\S+ - HIER_\w+\/\S+ -$/ : /^127\.0\.0\.[234] - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "(GET|POST) http:\/\/\S+ HTTP\/1\.1" (200|403) (\d+|-) "-" "-"$/;
    t.same(lines.filter((l) => !shape.test(l)), [], `every line has the ${format} shape`);

    const ga = await goaccessJson(t, accessLog, format);
    t.equal(ga.general.total_requests, report.totals.requests, `GoAccess: ${ga.general.total_requests} requests, as /api/analytics`);
    t.equal(report.totals.requests, sent.length);
    const gaHosts = new Map(ga.hosts.data.map((h) => [h.data, h.hits.count]));
    const apiClients = new Map(report.topClients.map((c) => [c.name, c.requests]));
    t.same(gaHosts, apiClients, 'GoAccess: the same clients with the same requests as /api/analytics');
    t.same(apiClients, new Map([...expectedOf(sent).clients].map(([c, v]) => [c, v.requests])), 'and what was sent');
  });
}

t.test('the access log rotates with --log-max-size and --log-max-files, and no line is lost', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const dir = tempDir();
  const accessLog = join(dir, 'access.log');
  const proxy = await startTestProxy(t, { accessLog, accessLogFormat: 'squid', logMaxBytes: 1500, logMaxFiles: 100, analytics: 'off' });
  const N = 40;
  const sent: Planned[] = Array.from({ length: N }, (_, i) => ({ client: `127.0.0.${2 + (i % 3)}`, host: `n${i}.localhost`, port: origin.port, method: 'GET', bytes: 10 }));
  await sendPlan(proxy.url, sent);
  await proxy.close(0);
  const files = readdirSync(dir).filter((f) => /^access\d*\.log$/.test(f));
  t.ok(files.length >= 3, `rotated: ${files.sort().join(', ')}`);
  // winston opens the next file as soon as a write fills the current one: the newest file may be empty.
  const hosts = files.flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '')).map((l) => /http:\/\/(n\d+)\.localhost/.exec(l)?.[1]);
  t.same(hosts.sort(), sent.map((_, i) => `n${i}`).sort(), `each of the ${N} requests in exactly one file`);
});

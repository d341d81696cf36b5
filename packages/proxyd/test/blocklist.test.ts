// The blocklist: parsing rules (pure), and blocking HTTP and CONNECT end to end, with live reload.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBlocklist } from '../src/policy/blocklist.ts';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, readLog, tempDir, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

t.test('a domain blocks itself and its subdomains, case-insensitively, trailing dot ignored', async (t) => {
  const list = parseBlocklist('# social\nfacebook.com\n  Instagram.COM.  # trailing comment\n\n');
  t.same(list.rules, ['facebook.com', 'instagram.com']);
  t.equal(list.match('facebook.com'), 'facebook.com');
  t.equal(list.match('www.facebook.com'), 'facebook.com');
  t.equal(list.match('A.B.FaceBook.Com.'), 'facebook.com');
  t.equal(list.match('notfacebook.com'), undefined);
  t.equal(list.match('facebook.com.evil.org'), undefined);
  t.equal(list.match('cdn.instagram.com'), 'instagram.com');
  t.equal(list.match('example.org'), undefined);
});

t.test('a bad line is reported with its number', async (t) => {
  t.throws(() => parseBlocklist('ok.com\nnot a domain\n'), /line 2: "not a domain" is not a domain name/);
  t.throws(() => parseBlocklist('http://x.com/\n'), /line 1/);
});

t.test('blocked HTTP and CONNECT get 403 naming the rule; SIGHUP-style reload changes the list live', async (t) => {
  const origin = await startOrigin();
  const file = join(tempDir(), 'blocklist.txt');
  writeFileSync(file, 'facebook.com\n');
  const proxy = await startTestProxy(t, { blocklistFile: file });
  t.teardown(async () => {
    await proxy.close(1000);
    await origin.close();
  });

  // These names would need DNS; a 403 (not 502) shows the check came before any lookup.
  const http = await curl(['--proxy', proxy.url, 'http://www.facebook.com/profile']);
  t.equal(http.status, 403);
  t.match(http.body.toString(), /blocklist.*rule "facebook\.com"/);
  const tunnel = await curl(['--proxy', proxy.url, 'https://m.facebook.com/']);
  t.match(tunnel.headers, /HTTP\/1\.1 403 Forbidden/);
  t.not(tunnel.code, 0, 'curl reports the refused tunnel');
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200, 'others pass');

  // Keep one connection open across the reload: it must survive.
  const { ProxyAgent, request } = await import('undici');
  const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: false }); // absolute-form, keep-alive
  t.equal((await request(origin.url('/hello'), { dispatcher: agent })).statusCode, 200);

  writeFileSync(file, 'facebook.com\n127.0.0.1\n');
  await proxy.reload();
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload'), 'reload logged');
  let blockedNow = 0;
  for (let i = 0; i < 50 && blockedNow === 0; i++) {
    const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
    if (r.status === 403) blockedNow++;
    else await new Promise((res) => setTimeout(res, 20));
  }
  t.equal(blockedNow, 1, 'the new rule applies to new requests');
  const kept = await request(origin.url('/hello'), { dispatcher: agent });
  t.equal(kept.statusCode, 403, 'the connection opened before the reload is still served, under the new rule');
  await kept.body.dump();

  writeFileSync(file, 'facebook.com\nthis is not a domain\n');
  await proxy.reload();
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload-failed'), 'failed reload logged');
  const failed = readLog(proxy.logFile).find((r) => r.event === 'reload-failed')!;
  t.match(failed.error, /line 2/, 'the log says why');
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 403, 'the previous list stays in force');
  await agent.close();

  const blocked = readLog(proxy.logFile).filter((r) => r.event === 'blocked');
  t.ok(blocked.some((r) => r.rule === 'facebook.com' && r.method === 'CONNECT'), 'blocked CONNECT logged with its rule');
  t.ok(blocked.some((r) => r.rule === 'facebook.com' && r.method === 'GET'), 'blocked GET logged with its rule');
});

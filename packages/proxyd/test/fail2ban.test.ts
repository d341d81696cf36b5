// The shipped fail2ban filter (config/fail2ban/filter.d/proxyd.conf) matches proxyd's ban lines — every
// one, and nothing else — in a real log written by a proxy that the test made ban two clients. Checked
// with Debian's fail2ban-regex, the tool an operator would use.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { eventually, readLog, startTestProxy } from './helpers/proxy.ts';
import { exchange } from './helpers/raw.ts';

const FILTER = fileURLToPath(new URL('../../../config/fail2ban/filter.d/proxyd.conf', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const tool = spawnSync('fail2ban-regex', ['--help'], { encoding: 'utf8' });

t.test('fail2ban-regex finds each ban line of a real log with the shipped filter', { skip: tool.status === 0 ? false : 'fail2ban-regex is not installed (apt-get install fail2ban)' }, async (t) => {
  const proxy = await startTestProxy(t, { banExempt: ['127.0.0.1/32'], banBadRequests: 3, connectPorts: [[443, 443]], logLevel: 'debug' });
  for (let i = 0; i < 4; i++) await exchange(proxy.address.port, 'BOGUS\r\n\r\n', 3000, '127.0.0.30'); // bad requests
  for (let port = 1; port <= 30; port++) await exchange(proxy.address.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`, 3000, '127.0.0.31'); // a scan
  await exchange(proxy.address.port, `CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n`, 3000, '127.0.0.32'); // an ordinary client
  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'ban').length === 2, 'two bans logged');
  await proxy.close(500);
  const records = readLog(proxy.logFile);
  const banned = records.filter((r) => r.event === 'ban').map((r) => r.client);
  t.same(banned.sort(), ['127.0.0.30', '127.0.0.31'], 'the log holds two ban lines');

  const run = spawnSync('fail2ban-regex', ['-v', '--print-all-matched', proxy.logFile, FILTER], { encoding: 'utf8' });
  t.equal(run.status, 0, `fail2ban-regex exits 0${run.status ? `: ${run.stderr}` : ''}`);
  const lines = /Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed/.exec(run.stdout);
  t.ok(lines, 'fail2ban-regex prints its summary');
  t.equal(Number(lines?.[1]), records.length, `it read all ${records.length} lines`);
  t.equal(Number(lines?.[3]), 2, 'and matched exactly the two ban lines');
  // -v lists each failure as "|  <host>  <date>" under the regex that found it.
  const hosts = [...run.stdout.matchAll(/^\|\s+(\d+\.\d+\.\d+\.\d+)\s+\w{3} \w{3} /gm)].map((m) => m[1]);
  t.same(hosts.sort(), ['127.0.0.30', '127.0.0.31'], 'the hosts it would ban: the two banned clients, no other');
  t.equal(Number(/\[(\d+)\] Year-Month-DayT24hour/.exec(run.stdout)?.[1]), records.length, 'the filter\'s datepattern reads the time of every line');
  if (!t.passing()) {
    mkdirSync(ARTIFACTS, { recursive: true });
    copyFileSync(proxy.logFile, `${ARTIFACTS}fail2ban-proxy.log`);
    t.comment(run.stdout);
  }
});

// The open-file budget (issue 20): proxyd reads its open-file limit at start, says how many clients fit
// and warns when --max-clients and its queue do not; near the limit it refuses newcomers at accept (503
// OPEN_FILES, one log line per episode, a counter) while everyone already connected is still served,
// before any connect fails with EMFILE. The proxy runs under `prlimit --nofile=200:200` (soft and hard:
// Node raises a soft limit to the hard one at start).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { FdBudget, parseOpenFileLimit } from '../src/primary/fd-budget.ts';
import { startEchoServer } from './helpers/origin.ts';
import { eventually, readLog, startCliProxy } from './helpers/proxy.ts';
import { openTunnelClient, type TunnelClient } from './helpers/tunnel-client.ts';
import { curl } from './helpers/curl.ts';

t.test('the limit is read from /proc/<pid>/limits; the budget is arithmetic on held and waiting clients', async (t) => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \nMax processes             95148                95148                processes \nMax open files            1024                 524288               files     \n';
  t.equal(parseOpenFileLimit(limits), 1024, 'the soft limit');
  t.equal(parseOpenFileLimit(limits.replace('1024 ', 'unlimited ')), undefined, 'unlimited: no budget');
  t.equal(parseOpenFileLimit(''), undefined, 'not there (not Linux): no budget');
  const budget = new FdBudget(1000, 36, () => 0); // reserve 36 + 64 + 10 = 110: 890 descriptors for clients (a kernel that does not count)
  t.equal(budget.reserve, 110);
  t.equal(budget.clients, 445);
  t.ok(budget.hasRoom(444, 0), 'one more client (two descriptors) fits beside 444');
  t.notOk(budget.hasRoom(445, 0), 'not beside 445');
  t.notOk(budget.hasRoom(400, 89), 'a waiting client counts one descriptor');
  t.equal(FdBudget.needed(512, 1024), 2048, 'every permit held (2 each) and a full queue (1 each)');
  // The kernel's count corrects the estimate: 300 upstream connections more than the clients account for.
  let kernel = 36 + 2 * 100 + 300 + 1; // + 1: the newcomer being decided on, open already at accept
  const counted = new FdBudget(1000, 36, () => kernel);
  t.equal(counted.inUse(100, 0), 500, '2 × 100 estimated, 300 more seen by the kernel');
  t.ok(counted.hasRoom(294, 0), 'until the next reading (100 ms) the correction stays: 588 + 300 + 2 fit in 890');
  t.notOk(counted.hasRoom(295, 0), '590 + 300 + 2 do not');
  kernel = 36 + 2 * 100 + 1;
  await new Promise((r) => setTimeout(r, 120));
  t.equal(counted.inUse(100, 0), 200, 'read again after 100 ms: nothing unseen any more');
  const unknown = new FdBudget(undefined, 36);
  t.ok(unknown.hasRoom(100_000, 100_000), 'no known limit: never refuses');
});

t.test('under a limit of 200: start line and warning, clean 503s at accept, counters, one log line, no EMFILE', async (t) => {
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const proxy = await startCliProxy(t, ['--workers', '1', '--max-clients', '150', '--max-waiting', '10', '--connect-ports', '1-65535', '--log-level', 'info'], {}, { wrap: ['prlimit', '--nofile=200:200', '--'] });
  t.teardown(() => proxy.stop('SIGKILL'));
  const proxyLimits = readFileSync(`/proc/${proxy.child.pid}/limits`, 'utf8');
  t.equal(parseOpenFileLimit(proxyLimits), 200, 'the proxy runs under the limit (prlimit exec-ed node)');

  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'started'), 'the started record'); // written in batches
  const started = readLog(proxy.logFile).find((r) => r.event === 'started');
  t.match(started?.openFiles, /^limit 200: room for \d+ clients at 2 descriptors each \(\d+ kept for the proxy\)$/, 'the started record says how many clients fit');
  const room = Number(/room for (\d+)/.exec(String(started?.openFiles))?.[1]);
  t.ok(room > 10 && room < 100, `room for ${room} clients`);
  // Three channels, each in its own time: the log (the logger thread writes in batches), stdout and
  // stderr (their own pipes; the banner comes once start-up returns, after the 'started' record).
  const banner = /^open files: limit 200: room for/m;
  const warning = /warning: --max-clients 150 and --max-waiting 10 need up to [\d,]+ open files, but the limit is 200: .*ulimit -n .*LimitNOFILE=/;
  const logged = () => readLog(proxy.logFile).some((r) => r.event === 'open-files-warning' && r.level === 'warn');
  await eventually(() => banner.test(proxy.stdout()) && warning.test(proxy.stderr()) && logged(), 'the banner, the warning on stderr and its log record');
  t.match(proxy.stdout(), banner, 'the banner says it too');
  t.match(proxy.stderr(), warning, 'a warning on stderr names the fix');
  t.ok(logged(), 'and in the log');

  // Idle tunnels, a few at a time, until one is refused (bounded: the limit is 200).
  const open: TunnelClient[] = [];
  let refused: TunnelClient | undefined;
  for (let i = 0; i < 150 && !refused; i++) {
    const c = openTunnelClient(proxy.port, `127.0.0.1:${echo.port}`, `c${i}`);
    await eventually(() => c.head !== undefined || c.closed, `tunnel ${i} answered`);
    if (c.head?.startsWith('HTTP/1.1 200')) open.push(c);
    else refused = c;
  }
  t.teardown(() => {
    for (const c of open) c.socket.destroy();
  });
  t.ok(refused, `a client was refused after ${open.length} tunnels`);
  // Room − 1 here: each serving thread's libuv opens /dev/null at its first socket (its spare descriptor
  // for EMFILE), which the start count could not see. Down to room − 2 for a reading up to 100 ms old.
  t.ok(open.length >= room - 2 && open.length <= room, `${open.length} tunnels opened before the refusal (room for ${room})`);
  t.match(refused!.head, /^HTTP\/1\.1 503 Service Unavailable\r\n/, 'refused with a 503');
  t.match(refused!.head, /\r\nX-Proxyd-Refusal: OPEN_FILES\r\n/i, 'that names the open-file limit');
  t.match(refused!.head, /\r\nRetry-After: 1(\r\n|$)/i);
  await eventually(() => refused!.closed, 'the refused connection is closed');

  // More newcomers while full: refused too, and still one warning for the episode.
  for (let i = 0; i < 5; i++) {
    const c = openTunnelClient(proxy.port, `127.0.0.1:${echo.port}`, `more${i}`);
    await eventually(() => c.head !== undefined || c.closed, `newcomer ${i} answered`);
    t.match(c.head, /^HTTP\/1\.1 503 /, `newcomer ${i} refused`);
    c.socket.destroy();
  }
  const metricsUrl = `http://127.0.0.1:${/dashboard and metrics: http:\/\/127\.0\.0\.1:(\d+)\//.exec(proxy.stdout())![1]}/metrics`;
  const metrics = (await curl([metricsUrl])).body.toString();
  t.match(metrics, /^proxyd_fd_budget_refused_total 6$/m, 'the counter: six refused');
  t.match(metrics, /^proxyd_open_files_limit 200$/m);
  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'open-files-full').length === 1, 'the episode is logged');
  const full = readLog(proxy.logFile).filter((r) => r.event === 'open-files-full');
  t.equal(full.length, 1, 'one log line for the episode, not one per refused connection');
  t.match(full[0], { level: 'warn', limit: 200, message: /refusing new clients \(503\) at accept/ });

  // Everyone already connected is still served: bytes through every open tunnel.
  for (const c of open) c.socket.write(`ping ${c.name}\n`);
  await eventually(() => open.every((c) => c.body.includes(`ping ${c.name}\n`)), 'every open tunnel echoes');
  t.pass(`all ${open.length} open tunnels still relay`);

  // Room again: half close, a newcomer is served and the end of the episode is logged with its count.
  for (const c of open.splice(0, Math.ceil(open.length / 2))) c.socket.destroy();
  await eventually(async () => /^proxyd_tunnels_open (\d+)$/m.exec((await curl([metricsUrl])).body.toString())?.[1] === String(open.length), 'the closed tunnels are gone');
  const later = openTunnelClient(proxy.port, `127.0.0.1:${echo.port}`, 'later');
  open.push(later);
  await eventually(() => later.head !== undefined, 'the newcomer is answered');
  t.match(later.head, /^HTTP\/1\.1 200 /, 'with room again, a newcomer gets its tunnel');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'open-files-room'), 'room again is logged');
  t.match(readLog(proxy.logFile).find((r) => r.event === 'open-files-room'), { refused: 6 });

  const logText = readFileSync(proxy.logFile, 'utf8');
  t.notMatch(logText, /EMFILE/, 'no EMFILE anywhere in the log');
  t.notMatch(proxy.stderr(), /EMFILE/);
  t.equal(readLog(proxy.logFile).filter((r) => r.level === 'error').length, 0, 'no error records');
});

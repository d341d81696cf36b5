// The proxyd command itself: --help, --version, the runtime check, a clean SIGTERM that loses no log
// record, keep-alive connections ended through the drain, a second signal that cuts it short, and the
// admin server staying up through the drain.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { startOrigin } from './helpers/origin.ts';
import { DEFAULTS } from '../src/config/options.ts';
import { BIN, startCliProxy, readLog, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

function run(args: string[], execPath = process.execPath) {
  return spawnSync(execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

t.test('--help explains every flag with its default', async (t) => {
  const r = run(['--help']);
  t.equal(r.status, 0);
  for (const flag of ['--host', '--port', '--workers', '--max-clients', '--max-waiting', '--queue-timeout', '--idle-timeout', '--upstream-timeout', '--headers-timeout', '--connect-ports', '--blocked-http-ports', '--allow-client', '--allow-dest', '--auth-file', '--auth-realm', '--tls-cert', '--tls-key', '--max-header-size', '--max-url-length', '--blocklist', '--log-file', '--log-level', '--shutdown-grace', '--status-interval']) {
    t.match(r.stdout, flag, `${flag} is explained`);
  }
  t.match(r.stdout, `[default: ${DEFAULTS.port}]`, 'defaults are shown, a number as a number');
  t.match(r.stdout, /\[choices: "error", "warn", "info", "debug"\]/, 'choices are shown');
});

// Every way the command refuses to start (one line, exit 2) is in cli-errors.test.ts.

t.test('--version names the package version and the Node.js under it', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const r = run(['--version']);
  t.equal(r.status, 0);
  t.equal(r.stdout, `proxyd ${version} (Node.js ${process.versions.node})\n`);
  t.equal(r.stderr, '');
});

// The machine's own Node.js (20 on a fresh machine), found on the system PATH rather than the pinned one.
const systemNode = spawnSync('/usr/bin/env', ['PATH=/usr/local/bin:/usr/bin:/bin', 'node', '--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const systemNodeIsOld = /^v(?:2[0-3]|25)\.|^v24\.1?\d\.|^v26\.[0-4]\./.test(systemNode);

t.test('on an old Node.js, proxyd prints one line saying what it needs and exits 1', { skip: systemNodeIsOld ? false : `the system Node.js (${systemNode || 'none'}) is not an old one` }, async (t) => {
  const old = spawnSync('/usr/bin/env', ['PATH=/usr/local/bin:/usr/bin:/bin', 'node', BIN, '--help'], { encoding: 'utf8' });
  t.equal(old.status, 1);
  t.match(old.stderr, /^proxyd needs Node\.js >= 24\.20 .* transfer|hand an accepted socket to a worker thread/);
  t.equal(old.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('SIGTERM: stop accepting, finish, flush every log record, exit 0', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '2', '--log-level', 'info']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const N = 40;
  const results = await Promise.all(Array.from({ length: N }, (_, i) => curl(['--proxy', proxy.url, origin.url(`/hello?n=${i}`)])));
  t.same(results.map((r) => r.status), Array(N).fill(200));
  const code = await proxy.stop('SIGTERM');
  t.equal(code, 0, 'exit code 0');
  const logged = readLog(proxy.logFile).filter((r) => r.event === 'request' && String(r.url).includes('/hello?n='));
  t.equal(logged.length, N, `all ${N} requests are in the log file`);
  t.ok(readLog(proxy.logFile).some((r) => r.event === 'stopped'), 'the last record says it stopped');
  t.match(proxy.stdout(), /proxyd listening on http:\/\/127\.0\.0\.1:\d+/, 'says where it listens');
  t.match(proxy.stdout(), /SIGTERM: draining/);
});

t.test('SIGTERM with a tunnel still open: closed at the grace deadline, logged, still exit 0', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '1', '--shutdown-grace', '300ms', '--connect-ports', '1-65535']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const { openTunnelClient } = await import('./helpers/tunnel-client.ts');
  const holder = openTunnelClient(proxy.port, `127.0.0.1:${origin.port}`, 'holder');
  await eventually(() => holder.head !== undefined, 'the tunnel is open');
  t.match(holder.head, /200 Connection Established/);
  const started = Date.now();
  const code = await proxy.stop('SIGTERM');
  t.equal(code, 0);
  t.ok(Date.now() - started < 10_000, 'did not wait past the grace period');
  const records = readLog(proxy.logFile);
  const stopped = records.find((r) => r.event === 'stopped');
  t.equal(stopped?.closedAtDeadline, 1, 'one connection was closed at the deadline, and counted');
  t.ok(records.some((r) => r.event === 'tunnel' && r.target === `127.0.0.1:${origin.port}`), 'the tunnel closed at the deadline is in the log');
  holder.socket.destroy();
});

/** A TCP server that sends back what it gets: the far end of a tunnel the test holds open. */
async function startEchoServer(t: Test): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** GET on a connection of its own (no pool that outlives the admin server); the status, or the error code. */
function adminGet(port: number, path: string): Promise<{ status: number | string; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: err.code ?? err.message, body: '' }));
  });
}

t.test('SIGTERM: through the drain /readyz is 503 while /healthz and /metrics still answer; exit 0 once drained', async (t) => {
  const echoPort = await startEchoServer(t);
  const proxy = await startCliProxy(t, ['--workers', '1', '--shutdown-grace', '60s', '--connect-ports', '1-65535']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const adminPort = Number(/dashboard and metrics: http:\/\/127\.0\.0\.1:(\d+)\//.exec(proxy.stdout())?.[1]);
  t.ok(adminPort > 0, `the admin server listens on ${adminPort}`);
  t.same(await adminGet(adminPort, '/readyz'), { status: 200, body: 'ready\n' }, 'ready before the signal');

  const { openTunnelClient } = await import('./helpers/tunnel-client.ts');
  const holder = openTunnelClient(proxy.port, `127.0.0.1:${echoPort}`, 'holder');
  await eventually(() => holder.head !== undefined, 'the tunnel is open');
  t.match(holder.head, /200 Connection Established/);

  proxy.child.kill('SIGTERM');
  await eventually(() => proxy.stdout().includes('SIGTERM: draining'), 'the drain began');
  t.same(await adminGet(adminPort, '/readyz'), { status: 503, body: 'stopping\n' }, '/readyz: 503 during the drain');
  t.same(await adminGet(adminPort, '/healthz'), { status: 200, body: 'ok\n' }, '/healthz: still 200');
  const metrics = await adminGet(adminPort, '/metrics');
  t.equal(metrics.status, 200, '/metrics: still served');
  t.match(metrics.body, /proxyd_\w+/, 'with proxyd metrics in it');
  holder.socket.write('still here');
  await eventually(() => holder.body.includes('still here'), 'the held tunnel still carries bytes during the drain');
  t.equal(proxy.child.exitCode, null, 'not exited while the tunnel is open');

  holder.socket.destroy();
  t.equal(await proxy.exited, 0, 'exit 0 once the last connection closed, long before the 60s grace');
  t.match(proxy.stdout(), /proxyd: stopped\n/);
  t.notMatch(proxy.stdout(), /closed at the deadline/, 'nothing was cut off');
  t.equal((await adminGet(adminPort, '/healthz')).status, 'ECONNREFUSED', 'the admin server is closed after the proxy');
});

/** GET an absolute URL through the proxy on a keep-alive agent: the status and the Connection header. */
function proxiedGet(proxyPort: number, url: string, agent: http.Agent): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: proxyPort, path: url, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

t.test('SIGTERM with keep-alive clients: idle connections closed, "Connection: close" while draining, no wait for the grace', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '1', '--shutdown-grace', '60s', '--log-level', 'info']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const idle = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const busy = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => (idle.destroy(), busy.destroy()));
  t.match(await proxiedGet(proxy.port, origin.url('/hello?who=idle'), idle), { status: 200, connection: 'keep-alive' }, 'the idle client: one request, then its connection stays open');
  t.match(await proxiedGet(proxy.port, origin.url('/hello?who=busy&n=0'), busy), { status: 200, connection: 'keep-alive' });

  const started = Date.now();
  proxy.child.kill('SIGTERM');
  await eventually(() => proxy.stdout().includes('SIGTERM: draining'), 'the drain began');
  // The busy client's connection is still open: its next request is answered, and ends the connection.
  t.match(await proxiedGet(proxy.port, origin.url('/hello?who=busy&n=1'), busy), { status: 200, connection: 'close' }, 'a request during the drain: answered with "Connection: close"');
  t.equal(await proxy.exited, 0, 'exit 0');
  const tookMs = Date.now() - started;
  t.ok(tookMs < 10_000, `stopped in ${tookMs} ms, not after the 60 s grace: the idle connection was closed`);
  t.notMatch(proxy.stdout(), /closed at the deadline/, 'nothing was cut off');
  const records = readLog(proxy.logFile);
  t.equal(records.filter((r) => r.event === 'request' && String(r.url).includes('/hello?who=')).length, 3, 'all three requests are in the log');
  t.match(records.find((r) => r.event === 'stopped'), { closedAtDeadline: 0 });
});

t.test('a second SIGTERM during the drain ends the grace at once (a repeat within a second is the same stop): the open tunnel is cut and logged, exit 0', async (t) => {
  const echoPort = await startEchoServer(t);
  const proxy = await startCliProxy(t, ['--workers', '1', '--shutdown-grace', '60s', '--connect-ports', '1-65535']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const { openTunnelClient } = await import('./helpers/tunnel-client.ts');
  const holder = openTunnelClient(proxy.port, `127.0.0.1:${echoPort}`, 'holder');
  t.teardown(() => holder.socket.destroy());
  await eventually(() => holder.head !== undefined, 'the tunnel is open');
  proxy.child.kill('SIGTERM');
  proxy.child.kill('SIGTERM'); // as npm forwards a Ctrl-C the terminal sent too: the same stop
  await eventually(() => proxy.stdout().includes('SIGTERM: draining'), 'the drain began');
  await new Promise((r) => setTimeout(r, 1300));
  t.equal(proxy.child.exitCode, null, 'the first signal (and its repeat at once) waits for the open tunnel');
  t.notMatch(proxy.stdout(), /again/);
  const started = Date.now();
  proxy.child.kill('SIGTERM');
  t.equal(await proxy.exited, 0, 'exit 0');
  const tookMs = Date.now() - started;
  t.ok(tookMs < 10_000, `stopped ${tookMs} ms after the second signal, not after the 60 s grace`);
  t.match(proxy.stdout(), /proxyd: SIGTERM again: closing 1 open connection now\n/, 'it says what the second signal does');
  t.match(proxy.stdout(), /stopped \(1 connection closed at the deadline\)/);
  const records = readLog(proxy.logFile);
  t.match(records.find((r) => r.event === 'stopping-now'), { level: 'warn', active: 1 }, 'and logs it');
  t.ok(records.some((r) => r.event === 'tunnel' && r.target === `127.0.0.1:${echoPort}`), 'the cut tunnel is in the log');
  await eventually(() => holder.closed, 'the client sees its tunnel closed');
});

t.test('SIGHUP reloads the blocklist through the CLI', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tempDir } = await import('./helpers/proxy.ts');
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const file = join(tempDir(), 'block.txt');
  writeFileSync(file, '# nothing yet\n');
  const proxy = await startCliProxy(t, ['--workers', '1', '--blocklist', file]);
  t.teardown(() => proxy.stop('SIGKILL'));
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200);
  writeFileSync(file, '127.0.0.1\n');
  proxy.child.kill('SIGHUP');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload'), 'reload logged');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'policy-applied' || r.event === 'reload'), 'applied');
  let status = 0;
  for (let i = 0; i < 50 && status !== 403; i++) status = (await curl(['--proxy', proxy.url, origin.url('/hello')])).status;
  t.equal(status, 403, 'blocked after SIGHUP');
  t.equal(await proxy.stop('SIGTERM'), 0);
});

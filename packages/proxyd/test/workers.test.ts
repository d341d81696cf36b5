// The thread model under load and failure: connections spread over the pool, the same handler on the
// primary with --workers 0, and a worker that dies mid-connection gives its permits back exactly once.
import http from 'node:http';
import t from 'tap';
import { request, ProxyAgent } from 'undici';
import { startOrigin, startEchoServer } from './helpers/origin.ts';
import { startTestProxy, readLog, eventually } from './helpers/proxy.ts';
import { openTunnelClient } from './helpers/tunnel-client.ts';
import { curl } from './helpers/curl.ts';


const origin = await startOrigin();
const echo = await startEchoServer();
t.teardown(async () => {
  await origin.close();
  await echo.close();
});

t.test('many concurrent clients are spread over several worker threads', async (t) => {
  const proxy = await startTestProxy(t, { workers: 3, maxClients: 64 });
  t.teardown(() => proxy.close(1000));
  // 48 clients, each its own connection, each making 5 requests while all are open at once.
  const agents = Array.from({ length: 48 }, () => new ProxyAgent({ uri: proxy.url, proxyTunnel: false }));
  const statuses = await Promise.all(
    agents.map(async (agent, i) => {
      const got: number[] = [];
      for (let k = 0; k < 5; k++) {
        const res = await request(origin.url(`/hello?c=${i}&k=${k}`), { dispatcher: agent });
        await res.body.dump();
        got.push(res.statusCode);
      }
      return got;
    }),
  );
  await Promise.all(agents.map((a) => a.close()));
  t.same(statuses.flat(), Array(240).fill(200), 'all 240 requests answered 200');
  await proxy.close(1000);
  const threads = new Set(readLog(proxy.logFile).filter((r) => r.event === 'request').map((r) => r.thread));
  t.ok(threads.size >= 2, `requests were served by ${threads.size} different worker threads: ${[...threads].join(', ')}`);
  t.notOk(threads.has(0), 'none on the primary thread');
});

t.test('--workers 0 serves on the primary thread with the same handler', async (t) => {
  const proxy = await startTestProxy(t, { workers: 0 });
  t.teardown(() => proxy.close(1000));
  const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'hello from origin\n');
  const tunnel = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'inline');
  await eventually(() => tunnel.head !== undefined, 'tunnel answered');
  tunnel.socket.write('x\n');
  await eventually(() => tunnel.body === 'x\n', 'tunnel relays');
  tunnel.socket.destroy();
  await proxy.close(1000);
  const requests = readLog(proxy.logFile).filter((r) => r.event === 'request' || r.event === 'tunnel');
  t.ok(requests.length >= 2);
  t.ok(requests.every((r) => r.thread === 0), 'served by thread 0, the primary');
});

t.test('a long keep-alive connection: listeners do not pile up per request (no MaxListenersExceededWarning)', async (t) => {
  // --workers 0 serves in this process, so a listener leaked on the client socket per request shows up
  // here as Node's warning (found by an allocation profile: one 'close' listener per request, never removed).
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const proxy = await startTestProxy(t, { workers: 0, logLevel: 'error' });
  t.teardown(() => proxy.close(1000));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const sockets = new Set<unknown>();
  for (let i = 0; i < 40; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.address.port, path: origin.url('/hello'), agent }, (res) => {
        sockets.add(req.socket);
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    if (status !== 200) t.fail(`request ${i}: ${status}`);
  }
  t.equal(sockets.size, 1, '40 requests on one connection');
  await new Promise((r) => setTimeout(r, 50)); // warnings are emitted on the next tick
  t.same(warnings.filter((w) => w.includes('MaxListeners')), [], 'no listener leak warning');
});

t.test('a worker that dies mid-connection: its permits come back exactly once, others keep being served', async (t) => {
  const proxy = await startTestProxy(t, { workers: 2, maxClients: 4, maxWaiting: 10 });
  t.teardown(() => proxy.close(1000));
  const { semaphore, stats } = proxy.shared;
  // Open tunnels on both workers, then make one worker die.
  const tunnels = Array.from({ length: 3 }, (_, i) => openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, `t${i}`));
  await eventually(() => tunnels.every((c) => c.head !== undefined), 'three tunnels open');
  t.equal(semaphore.held, 3);
  const crash = openTunnelClient(proxy.address.port, 'crash-worker.proxyd.test:443', 'crash');
  await eventually(() => crash.closed, 'the crashing connection is gone');
  await eventually(() => stats.get('workerErrors') >= 1, 'the dead worker is noticed');
  // Close whatever survived, and check that every permit is back: none lost, none released twice.
  for (const c of tunnels) c.socket.destroy();
  await eventually(() => semaphore.held === 0, 'every permit is back');
  t.equal(semaphore.free, 4, 'exactly 4 free (a double release would have thrown, a lost one would show 3)');
  t.equal(stats.get('active'), 0, 'active gauge back to 0');
  t.comment(`the crash took ${stats.get('workerErrors')} connection(s) with it (the crashing one and any tunnel on that worker)`);
  // The pool replaced the worker: the proxy keeps serving.
  for (let i = 0; i < 6; i++) t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200, `request ${i} after the crash`);
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'worker-error'), 'worker error logged');
});

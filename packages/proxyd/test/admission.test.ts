// Admission at the semaphore: K permits, a FIFO of waiters, 503 for a full queue or a slow one, and
// idle connections released to the next waiter. State is read from the shared Stats and the log.
import t from 'tap';
import { startEchoServer } from './helpers/origin.ts';
import { startTestProxy, readLog, eventually, type TestProxy } from './helpers/proxy.ts';
import { openTunnelClient, type TunnelClient } from './helpers/tunnel-client.ts';

const echo = await startEchoServer();
t.teardown(() => echo.close());
const target = `127.0.0.1:${echo.port}`;

/** Open clients one by one, each only after the proxy has accepted the previous (a known arrival order). */
async function openInOrder(proxy: TestProxy, names: string[]): Promise<TunnelClient[]> {
  const clients: TunnelClient[] = [];
  for (const name of names) {
    const accepted = proxy.shared.stats.get('accepted');
    clients.push(openTunnelClient(proxy.address.port, target, name));
    await eventually(() => proxy.shared.stats.get('accepted') > accepted, `${name} accepted`);
  }
  return clients;
}

const answered = (c: TunnelClient | undefined) => c?.head !== undefined;

t.test('K=2 and five tunnels: 2 active, 3 waiting; each close admits the next in arrival order', async (t) => {
  const proxy = await startTestProxy(t, { maxClients: 2, maxWaiting: 10, queueTimeoutMs: 20_000 });
  t.teardown(() => proxy.close(500));
  const [a, b, c, d, e] = await openInOrder(proxy, ['a', 'b', 'c', 'd', 'e']);
  const { stats, semaphore } = proxy.shared;
  await eventually(() => answered(a!) && answered(b!), 'a and b admitted');
  await eventually(() => semaphore.waiting === 3, 'three in the semaphore\'s queue');
  t.equal(semaphore.held, 2, 'semaphore: 2 permits held');
  t.equal(stats.get('active'), 2, 'Stats: 2 active');
  t.equal(stats.get('waiting'), 3, 'Stats: 3 waiting, as the semaphore says');
  t.match(a!.head, /200 Connection Established/);
  t.same([c, d, e].map(answered), [false, false, false], 'c, d, e are held at the semaphore, unanswered');
  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'queued').length === 3, 'three "queued" log lines');
  const queued = readLog(proxy.logFile).filter((r) => r.event === 'queued');
  t.same(queued.map((r) => r.waiting), [1, 2, 3], 'the log shows the queue growing');

  a!.socket.destroy();
  await eventually(() => answered(c!), 'c admitted after a closed');
  t.same([d, e].map(answered), [false, false], 'd and e still wait: only one permit came back');
  b!.socket.destroy();
  await eventually(() => answered(d!), 'd admitted after b closed');
  t.notOk(answered(e!), 'e still waits');
  c!.socket.destroy();
  await eventually(() => answered(e!), 'e admitted last');
  t.ok(c!.answeredAt! <= d!.answeredAt! && d!.answeredAt! <= e!.answeredAt!, 'admitted in arrival order: c, d, e');
  // The tunnels work once admitted: the bytes a waiter sent while queued were kept.
  e!.socket.write('still here\n');
  await eventually(() => e!.body.includes('still here'), 'e tunnel relays');
  d!.socket.destroy();
  e!.socket.destroy();
  await eventually(() => stats.get('active') === 0 && semaphore.free === 2, 'every permit back');
  t.equal(stats.get('waiting'), 0);
});

t.test('a full queue and a queue timeout are answered 503 with Retry-After', async (t) => {
  const proxy = await startTestProxy(t, { maxClients: 1, maxWaiting: 1, queueTimeoutMs: 400 });
  t.teardown(() => proxy.close(500));
  const [holder, waiter, extra] = await openInOrder(proxy, ['holder', 'waiter', 'extra']);
  await eventually(() => answered(extra!), 'the extra client is refused at once');
  t.match(extra!.head, /^HTTP\/1\.1 503 Service Unavailable/);
  t.match(extra!.head, /Retry-After: \d+/);
  t.match(extra!.head, /X-Proxyd-Refusal: QUEUE_FULL/);
  await eventually(() => answered(waiter!), 'the waiter is refused after the queue timeout');
  t.match(waiter!.head, /^HTTP\/1\.1 503 Service Unavailable/);
  t.match(waiter!.head, /X-Proxyd-Refusal: QUEUE_TIMEOUT/);
  t.match(waiter!.body, /no slot freed up in time/);
  t.match(holder!.head, /200/, `the holder is unaffected: ${holder!.head}`);
  const { stats, semaphore } = proxy.shared;
  t.equal(stats.get('queueFull'), 1);
  t.equal(stats.get('queueTimeouts'), 1);
  t.equal(semaphore.waiting, 0, 'the timed-out waiter left the queue');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'queue-timeout'), 'queue timeout logged');
  holder!.socket.destroy();
  await eventually(() => semaphore.free === 1, 'the permit is back');
});

t.test('an idle tunnel is released at the idle timeout and its slot goes to a waiter', async (t) => {
  const proxy = await startTestProxy(t, { maxClients: 1, maxWaiting: 5, queueTimeoutMs: 10_000, idleTimeoutMs: 600 });
  t.teardown(() => proxy.close(500));
  const [idle, next] = await openInOrder(proxy, ['idle', 'next']);
  await eventually(() => answered(idle!), 'idle admitted');
  t.notOk(answered(next!), 'next waits');
  await eventually(() => idle!.closed, 'the idle tunnel is closed by the proxy');
  await eventually(() => answered(next!), 'next admitted into the freed slot');
  t.match(next!.head, /200 Connection Established/);
  t.equal(proxy.shared.stats.get('idleReleases'), 1);
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'idle-release'), 'idle release logged');
  // An active tunnel is not idle: traffic keeps resetting the clock.
  for (let i = 0; i < 6; i++) {
    next!.socket.write('tick\n');
    await new Promise((r) => setTimeout(r, 200));
  }
  t.notOk(next!.closed, 'a tunnel with traffic every 200 ms survives 1.2 s with a 600 ms idle timeout');
  next!.socket.destroy();
});

t.test('idle keep-alive connections give their permits up while clients wait', async (t) => {
  const { startOrigin } = await import('./helpers/origin.ts');
  const { ProxyAgent, request } = await import('undici');
  const { curl } = await import('./helpers/curl.ts');
  const origin = await startOrigin();
  const proxy = await startTestProxy(t, { maxClients: 1, maxWaiting: 5, queueTimeoutMs: 10_000, idleTimeoutMs: 60_000 });
  t.teardown(async () => {
    await proxy.close(500);
    await origin.close();
  });
  const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: false });
  const first = await request(origin.url('/hello'), { dispatcher: agent });
  await first.body.dump();
  t.equal(proxy.shared.semaphore.held, 1, 'the idle keep-alive connection holds the only permit');
  const started = Date.now();
  const waiter = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  t.equal(waiter.status, 200, 'the waiting client is served');
  t.ok(Date.now() - started < 5_000, `within ${Date.now() - started} ms, not after the 60 s idle timeout`);
  t.equal(proxy.shared.stats.get('queued'), 1, 'it did have to queue');
  await agent.close();
});

// A client that gives up while it waits for a permit (a CONNECT sent, then closed) cannot be seen
// leaving by the primary, which may not read a socket it will hand over. It is admitted in its turn,
// and its tunnel must then end at once — not hold the permit until the idle timeout.
import t from 'tap';
import { startEchoServer } from './helpers/origin.ts';
import { startTestProxy, eventually } from './helpers/proxy.ts';
import { openTunnelClient } from './helpers/tunnel-client.ts';

t.test('a CONNECT client that left while queued gives its permit back as soon as it is admitted', async (t) => {
  const echo = await startEchoServer();
  const proxy = await startTestProxy(t, { workers: 1, maxClients: 1, maxWaiting: 10, queueTimeoutMs: 20_000, idleTimeoutMs: 120_000 });
  t.teardown(async () => {
    await proxy.close(500);
    await echo.close();
  });
  const { stats, semaphore } = proxy.shared;
  const holder = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'holder');
  await eventually(() => holder.head !== undefined, 'holder admitted');
  const quitter = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'quitter');
  await eventually(() => semaphore.waiting === 1, 'quitter queued');
  quitter.socket.destroy(); // gives up while queued: its CONNECT and its FIN wait in the kernel
  const next = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'next');
  await eventually(() => semaphore.waiting === 2, 'next queued behind it');

  holder.socket.destroy();
  // The quitter is admitted, its tunnel opens and must close right away, so that "next" gets the permit
  // well within the 2-minute idle timeout.
  await eventually(() => next.head !== undefined, 'next admitted after the quitter passed through', 5000);
  t.match(next.head, /^HTTP\/1\.1 200 /);
  t.equal(stats.get('admitted'), 3, 'holder, quitter, next each admitted once');
  next.socket.destroy();
  await eventually(() => semaphore.held === 0 && stats.get('tunnels') === 0, 'every permit back, no tunnel left');
});

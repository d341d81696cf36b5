// HAProxy's agent check (--agent-check): the reply follows the semaphore (up N% with N the free share),
// says "drain" once SIGTERM starts the grace period; and a real HAProxy, polling it, sets proxyd's
// weight from it — read back from HAProxy's own stats socket — and stops sending it new clients
// during the drain while its open tunnel finishes.
import t from 'tap';
import net from 'node:net';
import { agentReply } from '../src/primary/agent-check.ts';
import { startEchoServer } from './helpers/origin.ts';
import { openTunnelClient, type TunnelClient } from './helpers/tunnel-client.ts';
import { eventually, readLog, startCliProxy } from './helpers/proxy.ts';
import { freePort, haproxyCommand, haproxyMissing, startHaproxy } from './helpers/haproxy.ts';

t.test('the reply: down while starting, up with the free share (at least 1%), drain when stopping', async (t) => {
  t.equal(agentReply('starting', 10, 10), 'down');
  t.equal(agentReply('serving', 10, 10), 'up 100%');
  t.equal(agentReply('serving', 37, 100), 'up 37%');
  t.equal(agentReply('serving', 0, 512), 'up 1%', 'a full proxyd keeps a turn');
  t.equal(agentReply('draining', 10, 10), 'drain');
});

/** One line from a TCP agent (what HAProxy reads). */
function askAgent(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}


t.test('behind HAProxy: the weight follows free permits, and SIGTERM drains', { skip: haproxyMissing }, async (t) => {
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const agentPort = await freePort();
  const proxy = await startCliProxy(t, ['--workers', '2', '--max-clients', '10', '--connect-ports', '1-65535', '--agent-check', `127.0.0.1:${agentPort}`, '--shutdown-grace', '5s']);
  t.teardown(() => proxy.stop('SIGKILL'));
  t.equal(await askAgent(agentPort), 'up 100%\n', 'idle: all ten permits free');
  const started = () => readLog(proxy.logFile).find((r) => r.event === 'started');
  await eventually(() => started() !== undefined, 'started record');
  t.equal(started()?.agentCheck, `127.0.0.1:${agentPort}`, 'the started record says where the agent answers');

  const front = await freePort();
  const haproxy = await startHaproxy(t, `frontend fe\n  bind 127.0.0.1:${front}\n  default_backend be\nbackend be\n  server a 127.0.0.1:${proxy.port} weight 100 check inter 200ms agent-check agent-port ${agentPort} agent-inter 200ms\n`, [front]);
  const weight = async () => Number((await haproxyCommand(haproxy.dir, 'get weight be/a')).split(' ')[0]);
  await eventually(async () => (await weight()) === 100, 'HAProxy weight 100 while idle', 10_000);

  // Nine tunnels hold nine of the ten permits (directly to proxyd, so HAProxy's own traffic is not counted).
  const tunnels: TunnelClient[] = [];
  for (let i = 0; i < 9; i++) tunnels.push(openTunnelClient(proxy.port, `127.0.0.1:${echo.port}`, `t${i}`));
  t.teardown(() => tunnels.forEach((c) => c.socket.destroy()));
  await eventually(() => tunnels.every((c) => c.head !== undefined), 'nine tunnels established');
  t.equal(await askAgent(agentPort), 'up 10%\n', 'one permit of ten free');
  await eventually(async () => (await weight()) === 10, 'HAProxy follows: weight 10', 10_000);
  t.pass(`HAProxy's weight for proxyd: ${await weight()} (initial 100)`);
  for (const c of tunnels.slice(1)) c.socket.destroy();
  await eventually(async () => (await weight()) === 90, 'eight tunnels closed: weight 90', 10_000);

  // SIGTERM: the grace period starts with one tunnel still open; the agent says drain, HAProxy drains.
  proxy.child.kill('SIGTERM');
  await eventually(async () => (await askAgent(agentPort).catch(() => '')) === 'drain\n', 'the agent says drain', 5_000);
  await eventually(() => /Server be\/a enters drain state/.test(haproxy.output()), 'HAProxy puts proxyd in drain state (its own log says so)', 10_000);
  t.equal(tunnels[0]!.closed, false, 'the open tunnel is still served during the drain');
  tunnels[0]!.socket.destroy();
  t.equal(await proxy.exited, 0, 'proxyd stops once its last tunnel is gone');
});

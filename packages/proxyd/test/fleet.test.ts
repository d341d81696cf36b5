// The fleet, all on loopback: a real HAProxy in TCP mode (send-proxy-v2, agent-check) in front of two
// proxyd processes (A and B, each a process of its own: proxies of one test process would share one
// BroadcastChannel name), sharing bans and rate limits through a real redis-server (--redis). One run,
// in order:
//   addresses     clients bound to 127.0.0.2 and 127.0.0.3 appear under their own addresses in both
//                 instances' logs and admin APIs
//   fleet ban     a client banned by A is refused by B (the delay measured, asserted within the poll)
//   fleet rate    one client spread over A and B gets about one --rate-limit in total, not two
//   store away    redis-server stopped: both keep serving and limiting locally, /metrics says the store
//                 is down, logged once; started again: a new ban on A reaches B again, and its lift
//                 on B reaches A
//   weights       A's permits nearly all held: HAProxy's weight for A falls (read from its stats socket)
//   drain         SIGTERM to A: the agent says drain, HAProxy moves new clients to B, a stream of
//                 requests through HAProxy sees no failure, A's open tunnel finishes within the grace
// Trust (refused headers) and fuzzing are proxy-protocol.test's; one instance's weights in detail are
// agent-check.test's.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { startEchoServer, startOrigin } from './helpers/origin.ts';
import { exchange } from './helpers/raw.ts';
import { eventually, readLog, startCliProxy, type CliProxy } from './helpers/proxy.ts';
import { freePort, haproxyCommand, haproxyMissing, startHaproxy } from './helpers/haproxy.ts';
import { redisMissing, startRedis } from './helpers/redis.ts';


/** GET `url` through the proxy at `port` on a new connection from `from`: the status (0: no answer). */
function getFrom(port: number, from: string, url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, localAddress: from, path: url, headers: { host: new URL(url).host, connection: 'close' }, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Bytes to an instance directly, as a balancer would send them: a PROXY v1 header naming `client` first. */
function asBalancer(proxy: CliProxy, client: string, bytes: string): Promise<{ text: string; closedByPeer: boolean }> {
  return exchange(proxy.port, `PROXY TCP4 ${client} 127.0.0.1 40000 ${proxy.port}\r\n${bytes}`, 3000);
}

/** The admin server's base URL, from the start-up banner. */
function adminOf(proxy: CliProxy): string {
  return `http://127.0.0.1:${/dashboard and metrics: http:\/\/127\.0\.0\.1:(\d+)/.exec(proxy.stdout())![1]}`;
}

async function metricsOf(proxy: CliProxy): Promise<string> {
  return (await fetch(`${adminOf(proxy)}/metrics`)).text();
}

t.test('two proxyd behind HAProxy share bans and rate limits through Redis', { skip: haproxyMissing || redisMissing, timeout: 90_000 }, async (t) => {
  const started = Date.now();
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const redis = await startRedis(t, await freePort());
  const [agentA, agentB, front] = [await freePort(), await freePort(), await freePort()];
  const common = ['--workers', '1', '--proxy-protocol', 'on', '--proxy-protocol-from', '127.0.0.1/32', '--redis', redis.url, '--rate-limit', '10/s', '--rate-burst', '5', '--ban-bad-requests', '3', '--ban-exempt', 'none', '--connect-ports', '1-65535', '--log-level', 'info', '--cache', 'off', '--analytics', 'off']; // no SQLite files: a lighter start-up
  // One after the other: two start-ups at once on a busy 2-core machine can pass the helper's 20 s bound.
  const a = await startCliProxy(t, [...common, '--agent-check', `127.0.0.1:${agentA}`, '--max-clients', '10', '--shutdown-grace', '5s']);
  const b = await startCliProxy(t, [...common, '--agent-check', `127.0.0.1:${agentB}`]);
  t.teardown(() => a.stop('SIGKILL'));
  t.teardown(() => b.stop('SIGKILL'));
  const log = (p: CliProxy, event: string) => readLog(p.logFile).filter((r) => r.event === event);
  await eventually(() => log(a, 'fleet-store-up').length === 1 && log(b, 'fleet-store-up').length === 1, 'both instances connected to the store');
  t.same([...log(a, 'fleet-store-down'), ...log(b, 'fleet-store-down')], [], 'neither called the store down while connecting');

  const haproxy = await startHaproxy(
    t,
    `frontend fe\n  bind 127.0.0.1:${front}\n  default_backend fleet\n` +
      `backend fleet\n  balance roundrobin\n  retries 3\n  option redispatch\n` +
      `  server a 127.0.0.1:${a.port} send-proxy-v2 weight 100 agent-check agent-port ${agentA} agent-inter 200ms\n` +
      `  server b 127.0.0.1:${b.port} send-proxy-v2 weight 100 agent-check agent-port ${agentB} agent-inter 200ms\n`,
    [front],
  );
  const weight = async (server: string) => Number((await haproxyCommand(haproxy.dir, `get weight fleet/${server}`)).split(' ')[0]);
  await eventually(async () => (await weight('a')) === 100 && (await weight('b')) === 100, 'HAProxy: both servers up at weight 100');

  // ---- addresses ---------------------------------------------------------------------------------
  const clientsIn = (p: CliProxy) => new Set(log(p, 'request').map((r) => String(r.client).split(':')[0]));
  for (let i = 0; i < 12 && ![a, b].every((p) => clientsIn(p).has('127.0.0.2') && clientsIn(p).has('127.0.0.3')); i++) {
    // Round robin alternates the instances: the order alternates too, so each client reaches both.
    for (const from of i % 2 ? ['127.0.0.3', '127.0.0.2'] : ['127.0.0.2', '127.0.0.3']) t.equal(await getFrom(front, from, origin.url(`/hello?from=${from}`)), 200, `${from} through HAProxy: 200`);
    await new Promise((r) => setTimeout(r, 60)); // the logger writes in batches
  }
  for (const [name, p] of [['A', a], ['B', b]] as const) {
    t.ok(clientsIn(p).has('127.0.0.2') && clientsIn(p).has('127.0.0.3'), `${name}'s log names 127.0.0.2 and 127.0.0.3, not HAProxy (${[...clientsIn(p)].sort().join(', ')})`);
    const stats = await (await fetch(`${adminOf(p)}/api/stats`)).text();
    t.ok(stats.includes('"127.0.0.2"') && stats.includes('"127.0.0.3"'), `${name}'s /api/stats (the dashboard's clients) lists both by address`);
    // The logger thread sends its top clients to the primary once a second.
    await eventually(async () => /proxyd_top_client_requests\{client="127\.0\.0\.2"\} \d+/.test(await metricsOf(p)) && /proxyd_top_client_requests\{client="127\.0\.0\.3"\} \d+/.test(await metricsOf(p)), `${name}'s /metrics names 127.0.0.2 and 127.0.0.3`, 5000);
    t.pass(`${name}'s /metrics names both clients (proxyd_top_client_requests)`);
  }
  t.match(await metricsOf(a), /^proxyd_fleet_store_up 1$/m, 'A: /metrics says the store is up');

  // ---- a fleet-wide ban --------------------------------------------------------------------------
  /** Ban `client` on A (three malformed requests), then poll B until it refuses the client: the delay. */
  const banThroughA = async (client: string): Promise<number> => {
    for (let i = 0; i < 3; i++) t.match((await asBalancer(a, client, 'NONSENSE\r\n\r\n')).text, /^HTTP\/1.1 400/, `malformed request ${i + 1} from ${client} to A: 400`);
    const bannedAt = Date.now();
    const request = `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    let refused = false;
    while (!refused && Date.now() - bannedAt < 3000) {
      refused = (await asBalancer(b, client, request)).text === '';
      if (!refused) await new Promise((r) => setTimeout(r, 25));
    }
    const delay = Date.now() - bannedAt;
    t.ok(refused, `B refuses ${client} ${delay} ms after A banned it (the fleet's bound: 1 s)`);
    return delay;
  };
  const firstDelay = await banThroughA('127.0.0.4');
  t.ok(firstDelay < 1500, `within a second, give or take the poll: ${firstDelay} ms`);
  t.equal(await getFrom(front, '127.0.0.4', origin.url('/hello')), 0, 'the banned client through HAProxy: refused, whichever instance it reaches');
  await eventually(() => log(b, 'ban').some((r) => r.client === '127.0.0.4' && r.fleet === true), "B's log has the fleet ban line");
  const fleetBan = log(b, 'ban').find((r) => r.client === '127.0.0.4')!;
  t.match(fleetBan, { level: 'warn', key: '127.0.0.4', detector: 'bad-requests' }, 'in the ban line\'s shape (fail2ban reads it)');
  t.match(String(fleetBan.origin), new RegExp(`:${a.port}$`), `B's ban line names its origin, A (${String(fleetBan.origin)})`);
  await eventually(() => log(a, 'ban').some((r) => r.client === '127.0.0.4'), "A's own ban line (its logger writes in batches)");
  t.equal(log(a, 'ban').filter((r) => r.client === '127.0.0.4').length, 1, 'A logged its own ban once (no echo)');
  t.equal(log(b, 'ban').filter((r) => r.client === '127.0.0.4').length, 1, 'B logged the fleet ban once');
  const bBans = (await (await fetch(`${adminOf(b)}/api/bans`)).json()) as { bans: { key: string; origin: string }[] };
  t.match(bBans.bans, [{ key: '127.0.0.4', origin: 'fleet' }], "B's /api/bans shows the ban came from the fleet");

  // ---- the fleet's rate limit --------------------------------------------------------------------
  // 10/s, burst 5, per client: one instance alone would let through 5 + 10 × seconds. The client sends
  // 40/s through HAProxy for 3 s (round robin: half to each instance); without the fleet store each
  // instance would pass its own 5 + 10 × 3, about twice the limit in all.
  const rateStart = Date.now();
  const statuses: number[] = [];
  const sends: Promise<void>[] = [];
  for (let i = 0; i < 120; i++) {
    sends.push(getFrom(front, '127.0.0.6', origin.url(`/hello?rate=${i}`)).then((s) => void statuses.push(s)));
    await new Promise((r) => setTimeout(r, 25));
  }
  await Promise.all(sends);
  const seconds = (Date.now() - rateStart) / 1000;
  const ok = statuses.filter((s) => s === 200).length;
  const limited = statuses.filter((s) => s === 429).length;
  const oneLimit = 5 + 10 * seconds;
  t.equal(ok + limited, 120, 'every request answered 200 or 429');
  await eventually(() => log(a, 'request').some((r) => String(r.url).includes('rate=')) && log(b, 'request').some((r) => String(r.url).includes('rate=')), 'both instances served some of them');
  t.ok(ok <= oneLimit * 1.3 + 3, `fleet total ${ok} allowed in ${seconds.toFixed(2)} s: at most about one limit (${oneLimit.toFixed(0)}), not two (${(2 * oneLimit).toFixed(0)})`);
  t.ok(ok >= oneLimit * 0.6, `and not far below it: ${ok} ≥ 60% of ${oneLimit.toFixed(0)}`);
  t.comment(`fleet rate: ${ok} allowed, ${limited} refused 429 over ${seconds.toFixed(2)} s; one limit ${oneLimit.toFixed(1)}, two ${(2 * oneLimit).toFixed(1)}`);

  // ---- the store goes away, and comes back -------------------------------------------------------
  await redis.stop();
  await eventually(async () => /^proxyd_fleet_store_up 0$/m.test(await metricsOf(a)) && /^proxyd_fleet_store_up 0$/m.test(await metricsOf(b)), 'both /metrics say the store is down', 5000);
  for (const from of ['127.0.0.2', '127.0.0.3']) t.equal(await getFrom(front, from, origin.url('/hello?still')), 200, `store down: ${from} is still served`);
  for (const [name, p, from] of [['A', a, '127.0.0.10'], ['B', b, '127.0.0.7']] as const) {
    const flood = await Promise.all(Array.from({ length: 20 }, () => asBalancer(p, from, `GET ${origin.url('/hello?flood')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)));
    const floodLimited = flood.filter((f) => /^HTTP\/1.1 429/.test(f.text)).length;
    // 20 sent together; on a loaded machine they may spread over a second, so the burst of 5 plus a few.
    t.ok(floodLimited >= 5 && flood.filter((f) => /^HTTP\/1.1 200/.test(f.text)).length >= 5, `store down: ${name} still limits locally (20 at once: ${floodLimited} refused 429)`);
  }
  await new Promise((r) => setTimeout(r, 500)); // a few reconnect attempts fail meanwhile
  for (const [name, p] of [['A', a], ['B', b]] as const) {
    const down = log(p, 'fleet-store-down');
    t.equal(down.length, 1, `${name} logged the loss once`);
    t.match(String(down[0]?.message), /limiting locally/);
    t.match(await metricsOf(p), /^proxyd_fleet_errors_total [1-9]\d*$/m, `${name} counts the errors`);
  }
  await redis.start();
  await eventually(() => log(a, 'fleet-store-up').length === 2 && log(b, 'fleet-store-up').length === 2, 'both logged the store back', 8000);
  t.match(String(log(b, 'fleet-store-up')[1]?.message), /fleet store back/);
  const healedDelay = await banThroughA('127.0.0.8');
  t.ok(healedDelay < 1500, `after the store came back, a new ban reaches B again in ${healedDelay} ms`);
  // A lift on B (of a ban B got from the fleet) reaches A, where the ban was made.
  const lift = await fetch(`${adminOf(b)}/api/bans/lift`, { method: 'POST', body: JSON.stringify({ key: '127.0.0.8' }), headers: { 'content-type': 'application/json' } });
  t.equal(lift.status, 200, "B's /api/bans/lift ends the fleet ban there");
  await eventually(() => log(a, 'unban').some((r) => r.key === '127.0.0.8' && /^fleet/.test(String(r.by))), "A lifts it too, and logs who lifted it", 3000);
  t.match((await asBalancer(a, '127.0.0.8', `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text, /^HTTP\/1.1 200/, 'A serves the client again');

  // ---- weights follow capacity -------------------------------------------------------------------
  // Nine tunnels to A (directly, as the balancer would open them, for nine clients: one client's burst is
  // five) hold nine of its ten permits.
  const tunnels: net.Socket[] = [];
  t.teardown(() => tunnels.forEach((s) => s.destroy()));
  const answered: string[] = [];
  for (let i = 0; i < 9; i++) {
    const socket = net.connect(a.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.once('data', (d: Buffer) => answered.push(d.toString('latin1')));
    socket.write(`PROXY TCP4 127.0.1.${i + 1} 127.0.0.1 41000 ${a.port}\r\nCONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    tunnels.push(socket);
  }
  await eventually(() => answered.length === 9, 'nine tunnels established');
  t.ok(answered.every((h) => h.startsWith('HTTP/1.1 200')), 'all nine answered 200');
  await eventually(async () => (await weight('a')) === 10, "HAProxy's weight for A falls to 10 (one permit of ten free)");
  t.equal(await weight('b'), 100, 'B keeps 100');
  for (const s of tunnels.splice(1)) s.destroy();
  await eventually(async () => (await weight('a')) === 90, 'eight tunnels closed: A back to 90');

  // ---- the drain ---------------------------------------------------------------------------------
  const tunnel = tunnels[0]!;
  const stream: { n: number; status: number; at: number }[] = [];
  let streaming = true;
  const streamDone = (async () => {
    for (let n = 0; streaming && n < 200; n++) {
      stream.push({ n, status: await getFrom(front, '127.0.0.5', origin.url(`/hello?drain=${n}`)), at: Date.now() });
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  await new Promise((r) => setTimeout(r, 500));
  const termAt = Date.now();
  a.child.kill('SIGTERM');
  await eventually(() => /Server fleet\/a .*drain/i.test(haproxy.output()), 'HAProxy puts A in drain state (its own log says so)', 5000);
  const drainSeenAt = Date.now();
  // The open tunnel still carries bytes during the drain.
  const echoed = new Promise<string>((resolve) => tunnel.once('data', (d: Buffer) => resolve(d.toString())));
  tunnel.write('still here');
  t.equal(await echoed, 'still here', "A's open tunnel still carries bytes during the drain");
  await new Promise((r) => setTimeout(r, 1000));
  tunnel.destroy();
  const code = await a.exited;
  const exitMs = Date.now() - termAt;
  streaming = false;
  await streamDone;
  t.equal(code, 0, `A exits cleanly ${exitMs} ms after SIGTERM, its tunnel done (grace 5 s)`);
  t.ok(exitMs < 5000, 'within the grace period');
  await eventually(() => log(a, 'stopped').length === 1, "A's stopped record");
  t.equal(log(a, 'stopped')[0]!.closedAtDeadline, 0, 'nothing was cut at the deadline');
  t.ok(stream.length >= 10, `${stream.length} requests streamed through HAProxy across the drain`);
  t.same(stream.filter((s) => s.status !== 200), [], 'every one of them answered 200');
  const afterDrain = stream.filter((s) => s.at > drainSeenAt + 300).map((s) => `/hello?drain=${s.n}`);
  await eventually(() => afterDrain.every((path) => log(b, 'request').some((r) => String(r.url).endsWith(path))), 'B logged them');
  t.ok(afterDrain.length > 0 && afterDrain.every((path) => !log(a, 'request').some((r) => String(r.url).endsWith(path))), `the ${afterDrain.length} requests after HAProxy drained A all went to B`);
  t.comment(`fleet test: first ban reached B in ${firstDelay} ms, after the store's return in ${healedDelay} ms; whole run ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

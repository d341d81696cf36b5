// Behind a load balancer: the PROXY protocol v1/v2 reader against headers built by proxy-protocol-js,
// on hand-made edge cases (LOCAL, UNKNOWN, TLVs, oversized, every truncation) and under fuzzing; then
// proxyd with --proxy-protocol on behind a real HAProxy (send-proxy-v2 and send-proxy), where clients
// bound to 127.0.0.2 and 127.0.0.3 appear under their own addresses, and the trust rules: only the
// balancers may connect, each connection must start with a header, in time, and the client ACL applies
// to the header's address.
import t from 'tap';
import net from 'node:net';
import pp from 'proxy-protocol-js';
import { parseProxyHeader, V1_MAX, V2_MAX } from '../src/worker/proxy-protocol.ts';
import { startOrigin } from './helpers/origin.ts';
import { curl } from './helpers/curl.ts';
import { eventually, readLog, startCliProxy } from './helpers/proxy.ts';
import { freePort, haproxyMissing, startHaproxy } from './helpers/haproxy.ts';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A small deterministic generator (mulberry32), so that a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('headers built by proxy-protocol-js: the source address and the header length, v1 and v2, IPv4 and IPv6', async (t) => {
  const next = random(7);
  const byte = () => Math.floor(next() * 256);
  const port = () => Math.floor(next() * 65536);
  const payload = Buffer.from('GET http://example.test/ HTTP/1.1\r\n\r\n');
  let checked = 0;
  for (let i = 0; i < 200; i++) {
    const v4 = [byte(), byte(), byte(), byte()];
    const v6 = Array.from({ length: 16 }, byte);
    const [sp, dp] = [port(), port()];
    const v6text = new net.SocketAddress({ address: Array.from({ length: 8 }, (_, g) => ((v6[2 * g]! << 8) | v6[2 * g + 1]!).toString(16)).join(':'), family: 'ipv6' }).address;
    const cases: [string, Buffer, string][] = [
      ['v1 TCP4', Buffer.from(new pp.V1ProxyProtocol(pp.INETProtocol.TCP4, new pp.Peer(v4.join('.'), sp), new pp.Peer('10.0.0.1', dp)).build()), v4.join('.')],
      ['v1 TCP6', Buffer.from(new pp.V1ProxyProtocol(pp.INETProtocol.TCP6, new pp.Peer(v6text, sp), new pp.Peer('::1', dp)).build()), v6text],
      ['v2 IPv4', Buffer.from(new pp.V2ProxyProtocol(pp.Command.PROXY, pp.TransportProtocol.STREAM, new pp.IPv4ProxyAddress(pp.IPv4Address.createFrom(v4 as [number, number, number, number]), sp, pp.IPv4Address.createFrom([10, 0, 0, 1]), dp)).build()), v4.join('.')],
      ['v2 IPv6', Buffer.from(new pp.V2ProxyProtocol(pp.Command.PROXY, pp.TransportProtocol.STREAM, new pp.IPv6ProxyAddress(pp.IPv6Address.createFrom(v6 as never), sp, pp.IPv6Address.createFrom(Array(16).fill(0) as never), dp)).build()), v6text],
    ];
    for (const [what, header, address] of cases) {
      const parsed = parseProxyHeader(Buffer.concat([header, payload]));
      if (parsed.kind !== 'header' || parsed.length !== header.length || parsed.source?.address !== address || parsed.source.port !== sp) {
        t.fail(`${what} ${address}:${sp}: ${JSON.stringify(parsed)}`);
      } else checked++;
    }
  }
  t.equal(checked, 800, 'all 800 headers read exactly, the client bytes after them untouched');
});

t.test('edge cases of the spec', async (t) => {
  const v2 = (command: number, family: number, body: Buffer) => Buffer.concat([SIGNATURE, Buffer.from([0x20 | command, family]), Buffer.from([body.length >> 8, body.length & 0xff]), body]);
  const ipv4Block = Buffer.from([203, 0, 113, 7, 10, 0, 0, 1, 0x1f, 0x90, 0x00, 0x50]);
  t.match(parseProxyHeader(v2(0, 0x11, ipv4Block)), { kind: 'header', version: 2, source: undefined }, 'LOCAL (a health check): the connection keeps its own address');
  t.match(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'header', version: 1, length: 15, source: undefined }, 'v1 UNKNOWN');
  // An NLB's TLV (0xEA, its VPC endpoint id) and a CRC32C one: skipped, the address still read.
  const tlvs = Buffer.concat([Buffer.from([0xea, 0x00, 0x17, 0x01]), Buffer.from('vpce-0123456789abcdef0', 'latin1'), Buffer.from([0x03, 0x00, 0x04, 1, 2, 3, 4])]);
  t.match(parseProxyHeader(v2(1, 0x11, Buffer.concat([ipv4Block, tlvs]))), { kind: 'header', length: 16 + 12 + tlvs.length, source: { address: '203.0.113.7', port: 8080 } }, 'TLVs are skipped');
  t.match(parseProxyHeader(v2(1, 0x11, Buffer.concat([ipv4Block, Buffer.from([0xea, 0x00, 0x40, 1])]))), { kind: 'invalid', why: /TLV runs past/ }, 'a TLV longer than the header');
  t.match(parseProxyHeader(v2(1, 0x11, Buffer.concat([ipv4Block, Buffer.from([0xea, 0x00])]))), { kind: 'invalid', why: /TLV header cut short/ });
  t.match(parseProxyHeader(v2(1, 0x11, ipv4Block.subarray(0, 8))), { kind: 'invalid', why: /too short/ }, 'an address block shorter than its family');
  t.match(parseProxyHeader(v2(1, 0x31, Buffer.alloc(216))), { kind: 'invalid', why: /unix/ }, 'unix sockets are not served');
  t.match(parseProxyHeader(v2(1, 0x12, ipv4Block)), { kind: 'invalid', why: /not a TCP stream/ }, 'UDP is not served');
  t.match(parseProxyHeader(v2(2, 0x11, ipv4Block)), { kind: 'invalid', why: /command 2/ });
  t.match(parseProxyHeader(Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])])), { kind: 'invalid', why: /at most/ }, `a v2 header over ${V2_MAX} bytes is refused before it is read`);
  t.match(parseProxyHeader(Buffer.from(`PROXY TCP4 1.2.3.4 5.6.7.8 1 2${' '.repeat(V1_MAX)}\r\n`)), { kind: 'invalid', why: /longer than 107/ });
  t.match(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(V1_MAX)}`)), { kind: 'invalid', why: /longer than 107/ }, 'no line end within 107 bytes');
  t.match(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')), { kind: 'invalid', why: /CRLF/ });
  t.match(parseProxyHeader(Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 2\r\n')), { kind: 'invalid', why: /not TCP4/ }, 'an address of the other family');
  t.match(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')), { kind: 'invalid', why: /port/ });
  t.match(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 0080 2\r\n')), { kind: 'invalid', why: /port/ }, 'a port with a leading zero');
  t.match(parseProxyHeader(Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')), { kind: 'invalid', why: /not TCP4, TCP6 or UNKNOWN/ });
  t.match(parseProxyHeader(Buffer.from('GET http://example.test/ HTTP/1.1\r\n')), { kind: 'invalid', why: 'no PROXY header' }, 'a plain request');
  t.match(parseProxyHeader(Buffer.from('PROXZ')), { kind: 'invalid', why: 'no PROXY header' });

  // Every prefix of a valid header is "incomplete" — never a verdict from half a header.
  const whole = [Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 40000 8080\r\n'), v2(1, 0x21, Buffer.alloc(36, 1)), v2(1, 0x11, Buffer.concat([ipv4Block, tlvs]))];
  for (const header of whole) {
    const verdicts = new Set<string>();
    for (let n = 0; n < header.length; n++) verdicts.add(parseProxyHeader(header.subarray(0, n)).kind);
    t.same([...verdicts], ['incomplete'], `all ${header.length} prefixes of a ${header[0] === 0x50 ? 'v1' : 'v2'} header wait for more`);
  }
});

t.test('fuzz: random, mutated and truncated headers never throw, never claim more than they got', async (t) => {
  const seed = Number(process.env.PROXYD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.comment(`fuzz seed ${seed} (PROXYD_FUZZ_SEED=${seed} replays it)`);
  const next = random(seed);
  const seeds = [
    Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 40000 8080\r\nGET / HTTP/1.1\r\n'),
    Buffer.from('PROXY TCP6 2001:db8::7 ::1 40000 8080\r\n'),
    Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 0x12, 203, 0, 113, 7, 10, 0, 0, 1, 0x9c, 0x40, 0x1f, 0x90, 0xea, 0x00, 0x03, 1, 2, 3])]),
    Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x21, 0x00, 0x24]), Buffer.alloc(36, 7)]),
  ];
  const kinds: Record<string, number> = { incomplete: 0, invalid: 0, header: 0 };
  const started = performance.now();
  for (let i = 0; i < 20_000; i++) {
    let input: Buffer;
    const mode = i % 3;
    if (mode === 0) input = Buffer.from(Array.from({ length: Math.floor(next() * 300) }, () => Math.floor(next() * 256)));
    else {
      input = Buffer.from(seeds[Math.floor(next() * seeds.length)]!);
      for (let m = Math.floor(next() * 4); m >= 0; m--) input[Math.floor(next() * input.length)] = Math.floor(next() * 256);
      if (mode === 2) input = input.subarray(0, Math.floor(next() * input.length));
    }
    let verdict;
    try {
      verdict = parseProxyHeader(input);
    } catch (err) {
      t.fail(`input ${input.toString('hex')} threw ${(err as Error).message}`);
      break;
    }
    kinds[verdict.kind]!++;
    if (verdict.kind === 'header' && verdict.length > input.length) t.fail(`input ${input.toString('hex')} claimed ${verdict.length} bytes`);
    if (verdict.kind === 'incomplete' && input.length > V2_MAX) t.fail(`input ${input.toString('hex')} still incomplete past ${V2_MAX} bytes`);
  }
  t.comment(`20,000 inputs in ${Math.round(performance.now() - started)} ms: ${JSON.stringify(kinds)}`);
  t.ok(kinds.header! > 0 && kinds.invalid! > 0 && kinds.incomplete! > 0, 'the fuzzer reached every verdict');
});

t.test('proxyd behind HAProxy (send-proxy-v2 and send-proxy): each client under its own address', { skip: haproxyMissing }, async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '2', '--proxy-protocol', 'on', '--proxy-protocol-from', '127.0.0.1/32', '--log-level', 'debug']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const [v2Port, v1Port] = [await freePort(), await freePort()];
  await startHaproxy(
    t,
    `frontend v2\n  bind 127.0.0.1:${v2Port}\n  default_backend proxyd_v2\n` +
      `frontend v1\n  bind 127.0.0.1:${v1Port}\n  default_backend proxyd_v1\n` +
      `backend proxyd_v2\n  server a 127.0.0.1:${proxy.port} send-proxy-v2\n` +
      `backend proxyd_v1\n  server a 127.0.0.1:${proxy.port} send-proxy\n`,
    [v2Port, v1Port],
  );
  const through = (port: number, from: string, path: string) => curl(['--interface', from, '--proxy', `http://127.0.0.1:${port}`, origin.url(path)]);
  const [a, b] = await Promise.all([through(v2Port, '127.0.0.2', '/hello?from=2'), through(v1Port, '127.0.0.3', '/hello?from=3')]);
  t.equal(a.status, 200, a.stderr);
  t.equal(b.status, 200, b.stderr);
  const requests = () => readLog(proxy.logFile).filter((r) => r.event === 'request');
  await eventually(() => requests().length === 2, 'both requests logged');
  const clientOf = (path: string) => String(requests().find((r) => String(r.url).endsWith(path))?.client);
  t.match(clientOf('from=2'), /^127\.0\.0\.2:\d+$/, 'v2: the client bound to 127.0.0.2, not HAProxy');
  t.match(clientOf('from=3'), /^127\.0\.0\.3:\d+$/, 'v1: the client bound to 127.0.0.3');
  const headers = readLog(proxy.logFile).filter((r) => r.event === 'proxy-header');
  // (HAProxy also opened one connection per frontend for the readiness probe of startHaproxy.)
  t.equal(headers.find((r) => String(r.client).startsWith('127.0.0.2:'))?.version, 2, 'send-proxy-v2: version 2');
  t.equal(headers.find((r) => String(r.client).startsWith('127.0.0.3:'))?.version, 1, 'send-proxy: version 1');
  t.ok(headers.every((r) => String(r.via).startsWith('127.0.0.1:')), 'each through the balancer at 127.0.0.1');
});

/** Connect from `from` to proxyd, send `bytes`, and say whether proxyd closed on us, and what it answered. */
function rawFrom(from: string, port: number, bytes: Buffer | string, timeoutMs = 5000): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
    let text = '';
    let closed = false;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('end', () => (closed = true));
    socket.on('error', () => (closed = true));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed, ms: performance.now() - started });
    });
    if (bytes.length) socket.write(bytes);
  });
}

t.test('trust: only the balancers connect, with a header, in time; the ACL judges the real client', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '2', '--proxy-protocol', 'on', '--proxy-protocol-from', '127.0.0.1/32', '--proxy-protocol-timeout', '500ms']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const request = `GET ${origin.url('/hello')} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`;

  const notBalancer = await rawFrom('127.0.0.2', proxy.port, `PROXY TCP4 127.0.0.9 127.0.0.1 4000 ${proxy.port}\r\n${request}`);
  t.ok(notBalancer.closed && notBalancer.text === '', 'a PROXY header from outside --proxy-protocol-from: closed, unanswered');
  const noHeader = await rawFrom('127.0.0.1', proxy.port, request);
  t.ok(noHeader.closed && noHeader.text === '', 'the balancer without a header: closed, unanswered');
  const slow = await rawFrom('127.0.0.1', proxy.port, 'PROXY TCP4 127.0.0.9');
  t.ok(slow.closed && slow.ms < 4000, `half a header, then silence: closed after ${Math.round(slow.ms)} ms (timeout 500 ms)`);

  const privateClient = await rawFrom('127.0.0.1', proxy.port, `PROXY TCP4 10.1.2.3 127.0.0.1 4000 ${proxy.port}\r\n${request}`);
  t.match(privateClient.text, /^HTTP\/1\.1 200 /, 'a client in a private range (allowed by default) is served');
  const outside = await rawFrom('127.0.0.1', proxy.port, `PROXY TCP4 203.0.113.9 127.0.0.1 4000 ${proxy.port}\r\n${request}`);
  t.ok(outside.closed && outside.text === '', 'a public client outside --allow-client is refused, by its real address');
  const health = await rawFrom('127.0.0.1', proxy.port, Buffer.concat([SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00]), Buffer.from(request)]));
  t.match(health.text, /^HTTP\/1\.1 200 /, 'LOCAL: the balancer speaking for itself is served as itself');

  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'proxy-header-refused').length === 2, 'two refused headers logged');
  // The logger thread writes in batches: wait for the last records too (client-denied, the requests).
  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'client-denied').length === 2 && readLog(proxy.logFile).filter((r) => r.event === 'request').length === 2, 'the denials and both requests logged');
  const log = readLog(proxy.logFile);
  t.match(log.filter((r) => r.event === 'proxy-header-refused').map((r) => r.why), ['no PROXY header', /no complete header within 500 ms/]);
  t.ok(log.some((r) => r.event === 'client-denied' && r.why === 'not a load balancer of --proxy-protocol-from' && String(r.client).startsWith('127.0.0.2:')), 'the stranger is logged');
  t.ok(log.some((r) => r.event === 'client-denied' && String(r.client).startsWith('203.0.113.9:') && String(r.via).startsWith('127.0.0.1:')), 'the public client is logged under its own address, via the balancer');
  t.ok(log.some((r) => r.event === 'request' && String(r.client).startsWith('10.1.2.3:')), 'the private client is logged under its own address');
  const metrics = await curl([`http://127.0.0.1:${/dashboard and metrics: http:\/\/127\.0\.0\.1:(\d+)/.exec(proxy.stdout())![1]}/metrics`]);
  t.match(metrics.body.toString(), /^proxyd_proxy_protocol_refused_total 3$/m, 'three refusals counted: the stranger, no header, too slow');
});

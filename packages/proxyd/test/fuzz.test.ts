// Fuzz: random and mutated requests thrown at proxyd for a bounded time. It must never crash a thread,
// never leak a permit, and still serve a normal request afterwards. The seed is printed so that a
// failure can be replayed (FUZZ_SEED=…).
import t from 'tap';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { exchange } from './helpers/raw.ts';

const DURATION_MS = Number(process.env.FUZZ_MS ?? 6000);
const PARALLEL = 8;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a small seeded PRNG, so a run can be repeated exactly. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let r = Math.imul(s ^ (s >>> 15), 1 | s);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

t.test(`random and mutated requests for ${DURATION_MS} ms (seed ${seed})`, async (t) => {
  const origin = await startOrigin();
  const proxy = await startTestProxy(t, { workers: 2, headersTimeoutMs: 2000, upstreamTimeoutMs: 1000, logLevel: 'error', connectPorts: [[1, 65535]] });
  t.teardown(async () => {
    await proxy.close(1000);
    await origin.close();
  });
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const host = `127.0.0.1:${origin.port}`;
  const valid = [
    `GET http://${host}/hello HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\n\r\nhello`,
    `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET http://${host}/chunked HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    `HEAD http://${host}/bytes/100 HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    `GET http://${host}/ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhi`,
  ];
  const tokens = ['\r\n', '\r\n\r\n', ':', ' ', '\0', '\xff', 'Transfer-Encoding: chunked\r\n', 'Content-Length: 99999999999\r\n', 'Connection: close, Host, TE\r\n', '%00', 'http://', '[::1]', 'CONNECT', '0\r\n\r\n', 'FFFFFFFF\r\n'];

  function mutate(text: string): string {
    const chars = [...text];
    const edits = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < edits; i++) {
      const at = Math.floor(rand() * (chars.length + 1));
      switch (Math.floor(rand() * 5)) {
        case 0: chars.splice(at, 1); break; // delete
        case 1: chars.splice(at, 0, String.fromCharCode(Math.floor(rand() * 256))); break; // insert a byte
        case 2: chars.splice(at, 0, pick(tokens)); break; // insert a protocol token
        case 3: chars[at] = String.fromCharCode(Math.floor(rand() * 256)); break; // replace
        default: chars.splice(at, Math.floor(rand() * 20)); // cut a run
      }
    }
    return chars.join('');
  }
  function randomBytes(): Buffer {
    return Buffer.from(Array.from({ length: Math.floor(rand() * 400) }, () => Math.floor(rand() * 256)));
  }

  let sent = 0;
  const deadline = Date.now() + DURATION_MS;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (Date.now() < deadline && sent < 100_000) {
        sent++;
        const input = rand() < 0.2 ? randomBytes() : Buffer.from(mutate(pick(valid)), 'latin1');
        await exchange(proxy.address.port, input, 300);
      }
    }),
  );
  t.comment(`${sent} inputs sent`);
  t.ok(sent > 100, 'the fuzzer really ran');
  t.equal(proxy.shared.stats.get('workerErrors'), 0, 'no connection was lost to a dying worker');
  t.equal(proxy.shared.stats.get('workersStarted'), 2, 'no worker thread died and had to be replaced');
  await eventually(() => proxy.shared.semaphore.held === 0, 'every permit came back', 10_000);
  const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  t.equal(r.status, 200, 'a normal request is still served');
});

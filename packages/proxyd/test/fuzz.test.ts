// Fuzz: random and mutated requests thrown at proxyd. It must never crash a thread, never leak a
// permit, and still serve a normal request afterwards. Each seed makes the same inputs every time: a
// fixed list of seeds always runs, plus one random seed, printed, that a failure can be replayed with
// (PROXYD_FUZZ_SEED=<seed> replaces the random one; PROXYD_FUZZ_INPUTS sets how many inputs per seed).
import t from 'tap';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy, eventually, readLog } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { exchange } from './helpers/raw.ts';

const FIXED_SEEDS = [1, 2];
const RANDOM_SEED = Number(process.env.PROXYD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const INPUTS = Number(process.env.PROXYD_FUZZ_INPUTS ?? 400);
const PARALLEL = 8;
const WORKERS = 2;

/** mulberry32: a small seeded PRNG, so a run can be repeated exactly. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let r = Math.imul(s ^ (s >>> 15), 1 | s);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** The inputs for one seed, made before any is sent: the same seed gives the same inputs. */
function fuzzInputs(seed: number, count: number, host: string): Buffer[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
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
  const randomBytes = (): Buffer => Buffer.from(Array.from({ length: Math.floor(rand() * 400) }, () => Math.floor(rand() * 256)));
  return Array.from({ length: count }, () => (rand() < 0.2 ? randomBytes() : Buffer.from(mutate(pick(valid)), 'latin1')));
}

const origin = await startOrigin();
t.teardown(() => origin.close());

for (const seed of [...FIXED_SEEDS, RANDOM_SEED]) {
  const random = seed === RANDOM_SEED && !FIXED_SEEDS.includes(seed);
  t.test(`${INPUTS} random and mutated requests, seed ${seed}${random ? ' (random)' : ''}`, async (t) => {
    if (random) t.comment(`random seed ${seed}: replay with PROXYD_FUZZ_SEED=${seed}`);
    const proxy = await startTestProxy(t, { workers: WORKERS, headersTimeoutMs: 2000, upstreamTimeoutMs: 1000, logLevel: 'warn', connectPorts: [[1, 65535]] });
    t.teardown(() => proxy.close(1000));
    const { stats, semaphore } = proxy.shared;
    const inputs = fuzzInputs(seed, INPUTS, `127.0.0.1:${origin.port}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < inputs.length) await exchange(proxy.address.port, inputs[next++]!, 300);
      }),
    );
    await eventually(() => stats.get('accepted') === INPUTS, `the proxy accepted all ${INPUTS} connections (${stats.get('accepted')} so far)`);
    t.equal(stats.get('workerErrors'), 0, 'no connection was lost to a dying worker');
    t.equal(stats.get('workersStarted'), WORKERS, 'no worker thread died and had to be replaced');
    await eventually(() => semaphore.held === 0, 'every permit came back', 10_000);
    const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
    t.equal(r.status, 200, 'a normal request is still served');
    t.equal(r.body.toString(), 'hello from origin\n');
    await proxy.close(1000);
    // What was logged while it served (up to "stopping": see the shutdown test in workers.test.ts).
    const records = readLog(proxy.logFile);
    const serving = records.slice(0, records.findIndex((r) => r.event === 'stopping'));
    t.ok(serving.length < records.length, 'the log has its "stopping" record');
    t.same(serving.filter((r) => r.event === 'worker-error' || r.event === 'worker-crash'), [], 'no worker-error or worker-crash record');
  });
}

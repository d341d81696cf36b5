/**
 * The keep-alive clients of scale.ts, run in a child process of it (several of them: `--generators`), so
 * that the load generator does not share one event loop with the tunnels, the echo server and the
 * sampling, and so that it can be shown to keep up. Started with `fork`; everything comes over IPC:
 *
 *   ← { proxyPort, originPort, first, stride, total }   → { ready: true } once its connections are open
 *   ← { rampStart, rampMs, windowStart, windowEnd }  (epoch ms: the same clock in every process)
 *   ← { stop: settleMs }   → { result }  (counts, latencies of the window, the generator's own lateness)
 *
 * Client g (g = first, first + stride, …) makes its first request at rampStart + g·rampMs/total, then one
 * every second: open loop — a request due while the previous one is unanswered waits for it, and its
 * latency counts the wait. Cheap per request: raw sockets, a minimal response reader, and one timer for
 * all clients (clients bucketed by the millisecond of their phase) instead of one per client. Its own lateness — how long
 * after its due time a request went on the wire when nothing was waiting before it — is reported, so that
 * a run can tell a generator that fell behind from a proxy that did.
 */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

interface Config {
  proxyPort: number;
  originPort: number;
  first: number;
  stride: number;
  total: number;
}
interface Times {
  rampStart: number;
  rampMs: number;
  windowStart: number;
  windowEnd: number;
}

export interface GeneratorResult {
  due: number;
  ok: number;
  lateAnswers: number;
  failed: number;
  answered: number;
  closed: number;
  abandoned: number;
  unanswered: number;
  failures: [string, number][];
  latencies: number[];
  /** Requests of the window that went out with nothing queued before them (the send lag's samples). */
  sentFresh: number;
  /** NaN (null over IPC) when there were none. */
  sendLagP50: number | null;
  sendLagP99: number | null;
  loopDelayP99: number;
  cpuMs: number;
}

const messages: unknown[] = [];
const waiters: ((m: unknown) => void)[] = [];
process.on('message', (m) => (waiters.length ? waiters.shift()!(m) : messages.push(m)));
const next = <T>(): Promise<T> => new Promise<T>((resolve) => (messages.length ? resolve(messages.shift() as T) : waiters.push(resolve as (m: unknown) => void)));
const config = await next<Config>();
// Epoch ms → this process's performance.now() (finer, and monotonic); set once the times come.
const local = (epoch: number): number => performance.now() + (epoch - Date.now());
let rampStart = 0;
let windowStart = 0;
let windowEnd = 0;
const request = Buffer.from(`GET http://127.0.0.1:${config.originPort}/1k HTTP/1.1\r\nHost: 127.0.0.1:${config.originPort}\r\n\r\n`);

const count = { due: 0, ok: 0, lateAnswers: 0, failed: 0, answered: 0, closed: 0, abandoned: 0 };
const failures = new Map<string, number>();
const latencies: number[] = [];
const sendLags: number[] = [];
let stopping = false;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const cpuStart = process.cpuUsage();

interface Client {
  socket: net.Socket;
  start: number;
  /** Due times of requests not yet answered; the first is on the wire. */
  waiting: number[];
}
const clients: Client[] = [];
/** Clients by the millisecond of the second at which their requests fall due. */
const phases: Client[][] = Array.from({ length: 1000 }, () => []);

function send(c: Client, due: number): void {
  c.socket.write(request);
  if (due >= windowStart && due < windowEnd) sendLags.push(performance.now() - due);
}

function open(g: number): Client {
  const socket = net.connect(config.proxyPort, '127.0.0.1');
  socket.setNoDelay(true);
  const c: Client = { socket, start: 0, waiting: [] };
  let buf: Buffer = Buffer.alloc(0);
  const fail = (why: string): void => {
    for (const _ of c.waiting.splice(0)) {
      if (stopping) {
        count.abandoned++;
        continue;
      }
      count.failed++;
      failures.set(why, (failures.get(why) ?? 0) + 1);
    }
  };
  socket.on('error', (err) => fail(err.message));
  socket.on('close', () => {
    if (!stopping) count.closed++;
    fail('connection closed by the proxy');
  });
  socket.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      const headEnd = buf.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buf.subarray(0, headEnd).toString('latin1');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      let end: number;
      if (length) end = headEnd + 4 + Number(length[1]);
      else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
        const last = buf.indexOf('\r\n0\r\n\r\n', headEnd);
        end = last < 0 ? Infinity : last + 7;
      } else end = headEnd + 4;
      if (buf.length < end) return;
      buf = buf.subarray(end);
      const due = c.waiting.shift();
      if (due === undefined) return;
      count.answered++;
      const now = performance.now();
      if (!head.startsWith('HTTP/1.1 200')) {
        count.failed++;
        const why = head.slice(0, head.indexOf('\r\n'));
        failures.set(why, (failures.get(why) ?? 0) + 1);
      } else if (due >= windowStart && due < windowEnd) {
        count.ok++;
        latencies.push(now - due);
        if (now >= windowEnd) count.lateAnswers++;
      }
      if (c.waiting.length) c.socket.write(request); // queued behind this one: no send lag of its own
    }
  });
  return c;
}

const ids: number[] = [];
for (let g = config.first; g < config.total; g += config.stride) {
  clients.push(open(g));
  ids.push(g);
  if (clients.length % 100 === 0) await new Promise((r) => setImmediate(r)); // connects in batches
}
// Ready once every connection is up (or failed), bounded.
const connectBy = performance.now() + 60_000;
while (clients.some((c) => c.socket.connecting) && performance.now() < connectBy) await new Promise((r) => setTimeout(r, 50));
process.send!({ ready: true });
const times = await next<Times>();
rampStart = local(times.rampStart);
windowStart = local(times.windowStart);
windowEnd = local(times.windowEnd);
for (const [i, c] of clients.entries()) {
  c.start = rampStart + (ids[i]! * times.rampMs) / config.total;
  phases[Math.floor(c.start) % 1000]!.push(c);
}

// One timer: at each tick, every client whose phase (the millisecond of its start) lies between the last
// tick and now gets its due request, at its exact due time (a late tick makes the latency longer, and the
// send lag says so). A stall longer than a second gives each client every request it missed.
let last = performance.now();
function tick(): void {
  if (stopping) return;
  const now = performance.now();
  for (let t = Math.floor(last) + 1; t <= Math.floor(now); t++) {
    for (const c of phases[t % 1000]!) {
      const k = t - Math.floor(c.start); // a multiple of 1000
      if (k < 0) continue;
      const due = c.start + k;
      if (due >= windowStart && due < windowEnd) count.due++;
      c.waiting.push(due);
      if (c.waiting.length === 1) send(c, due);
    }
  }
  last = now;
  setTimeout(tick, 1);
}
setTimeout(tick, 1);

const { stop: settleMs } = await next<{ stop: number }>();
// Stop making requests; wait for those outstanding (bounded), then report and close.
stopping = true;
const outstanding = (): number => clients.reduce((n, c) => n + c.waiting.length, 0);
const settleBy = performance.now() + settleMs;
while (outstanding() > 0 && performance.now() < settleBy) await new Promise((r) => setTimeout(r, 100));
const unanswered = outstanding();
const cpu = process.cpuUsage(cpuStart);
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
};
const result: GeneratorResult = {
  ...count,
  unanswered,
  failures: [...failures],
  latencies,
  sentFresh: sendLags.length,
  sendLagP50: q(sendLags, 0.5),
  sendLagP99: q(sendLags, 0.99),
  loopDelayP99: loopDelay.percentile(99) / 1e6,
  cpuMs: (cpu.user + cpu.system) / 1000,
};
process.send!({ result }, () => {
  for (const c of clients) c.socket.destroy();
  process.exit(0);
});

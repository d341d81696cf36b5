/**
 * What handing an accepted socket to another thread costs, per connection, in processor time — the
 * design's price for "a primary that accepts, workers that serve" (DESIGN.md, issue 7). Three ways to
 * serve the same trivial connection (read one byte, answer "ok", close), side by side in one run:
 *
 *   inline   the accepting thread serves it itself (as proxyd --workers 0 does)
 *   port     the socket is moved to a worker thread with MessagePort.postMessage(…, [socket])
 *   piscina  the socket is moved with Piscina's pool.run({socket}, {transferList: [socket]}), as proxyd does
 *
 *   node scripts/bench/transfer-cost.ts [--seconds 4] [--rounds 3] [--parallel 32]
 *
 * Each way runs in a child process of its own (the load generator is this process, so its CPU is not
 * counted); rounds are interleaved after an unmeasured warm-up. CPU is utime+stime from
 * /proc/<pid>/task/<tid>/stat, grouped by thread: the accepting (main) thread, the worker thread, and
 * the rest (V8's GC helpers, libuv's pool). "port − inline" is the transfer itself; "piscina − port" is
 * Piscina's per-task bookkeeping. Loopback only; every child stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { isMainThread, MessageChannel, parentPort, Worker, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { cpuTicks } from './proc-stat.ts';

const MODES = ['inline', 'port', 'piscina'] as const;
type Mode = (typeof MODES)[number];
const TICK_US = 10_000; // Linux USER_HZ = 100

/** The connection's whole life on the serving side: one byte in, "ok" out, closed. */
function serveOne(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('data', () => socket.end('ok'));
    socket.on('error', () => {}); // a client gone early is fine here
    socket.on('close', () => resolve());
  });
}

/** Piscina's task (this file is also the pool's worker module). */
export default async function task({ socket }: { socket: net.Socket }): Promise<void> {
  await serveOne(socket);
}

if (!isMainThread && parentPort) {
  // "port" mode: sockets arrive on a MessagePort the main thread sends first.
  parentPort.once('message', (message: { port?: MessagePort }) => {
    message.port?.on('message', ({ socket }: { socket: net.Socket }) => void serveOne(socket));
  });
}

/** Child process: serve connections one way, print the port, answer CPU readings on stdin lines. */
async function serve(mode: Mode): Promise<void> {
  let handOver: (socket: net.Socket) => void;
  let stop = async (): Promise<void> => {};
  const self = new URL(import.meta.url);
  if (mode === 'inline') {
    handOver = (socket) => {
      socket.resume();
      void serveOne(socket);
    };
  } else if (mode === 'port') {
    const worker = new Worker(self);
    const { port1, port2 } = new MessageChannel();
    worker.postMessage({ port: port2 }, [port2]);
    handOver = (socket) => port1.postMessage({ socket }, [socket as never]);
    stop = async () => void (await worker.terminate());
  } else {
    const pool = new Piscina({ filename: self.href, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, atomics: 'disabled', concurrentTasksPerWorker: 100_000 });
    handOver = (socket) => void pool.run({ socket }, { transferList: [socket as never] });
    stop = () => pool.destroy();
  }
  let accepted = 0;
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    accepted++;
    handOver(socket);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as net.AddressInfo).port}\n`));
  process.stdin.setEncoding('utf8');
  let pending = '';
  process.stdin.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line === 'read') process.stdout.write(`read ${accepted} ${JSON.stringify(threadTicks())}\n`);
      if (line === 'quit') void stop().then(() => process.exit(0));
    }
  });
  process.stdin.on('end', () => void stop().then(() => process.exit(0))); // the driver is gone: so are we
}

/** CPU ticks per thread group of this process. */
function threadTicks(): Record<string, number> {
  const groups: Record<string, number> = { main: 0, worker: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    const task = `/proc/${process.pid}/task/${tid}`;
    let comm = '';
    try {
      comm = readFileSync(`${task}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended
    }
    const group = tid === String(process.pid) ? 'main' : comm === 'WorkerThread' ? 'worker' : 'other';
    groups[group]! += cpuTicks(`${task}/stat`);
  }
  return groups;
}

/** A server child, driven over stdin/stdout lines. */
class ServerChild {
  readonly child: ChildProcess;
  #lines: string[] = [];
  #waiters: ((line: string) => void)[] = [];
  readonly mode: Mode;
  constructor(mode: Mode) {
    this.mode = mode;
    this.child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', mode], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(line);
        else this.#lines.push(line);
      }
    });
  }
  next(timeoutMs = 10_000): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`transfer-cost: the ${this.mode} server did not answer`)), timeoutMs);
      this.#waiters.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  }
  async port(): Promise<number> {
    return Number((await this.next()).split(' ')[1]);
  }
  async read(): Promise<{ accepted: number; ticks: Record<string, number> }> {
    this.child.stdin!.write('read\n');
    const [, accepted, ticks] = (await this.next()).match(/^read (\d+) (.*)$/)!;
    return { accepted: Number(accepted), ticks: JSON.parse(ticks!) as Record<string, number> };
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.write('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** `parallel` clients, each: connect, send a byte, read to the end, close — until `ms` pass. */
async function connectLoop(port: number, parallel: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let done = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('x'));
      socket.resume();
      socket.setTimeout(5_000, () => socket.destroy());
      socket.on('error', () => {});
      socket.on('close', (hadError) => {
        if (!hadError) done++;
        resolve();
      });
    });
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (Date.now() < end) await one();
  }));
  return done;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' }, parallel: { type: 'string', default: '32' }, serve: { type: 'string' } } });
  if (values.serve !== undefined) {
    if (!MODES.includes(values.serve as Mode)) throw new Error(`--serve: one of ${MODES.join(', ')}`);
    return serve(values.serve as Mode);
  }
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const parallel = Number(values.parallel);
  if (!(seconds >= 1 && seconds <= 60 && Number.isInteger(rounds) && rounds >= 1 && rounds <= 20 && Number.isInteger(parallel) && parallel >= 1 && parallel <= 1000)) {
    console.error('transfer-cost: --seconds 1–60, --rounds 1–20, --parallel 1–1000');
    process.exit(2);
  }
  const servers = MODES.map((mode) => new ServerChild(mode));
  try {
    const ports = await Promise.all(servers.map((s) => s.port()));
    for (const port of ports) await connectLoop(port, parallel, 1_000); // warm-up, not measured
    const results = new Map<Mode, { perSecond: number; main: number; worker: number; other: number }[]>();
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const i = (k + round) % servers.length; // rotate the order
        const server = servers[i]!;
        const before = await server.read();
        const started = Date.now();
        await connectLoop(ports[i]!, parallel, seconds * 1_000);
        const elapsed = (Date.now() - started) / 1_000;
        const after = await server.read();
        const n = after.accepted - before.accepted;
        const per = (g: string) => ((after.ticks[g]! - before.ticks[g]!) * TICK_US) / n;
        const list = results.get(server.mode) ?? [];
        list.push({ perSecond: n / elapsed, main: per('main'), worker: per('worker'), other: per('other') });
        results.set(server.mode, list);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const fmt = (x: number) => x.toFixed(1);
    console.log(`\nCPU per connection, µs (median of ${rounds} rounds of ${seconds} s, ${parallel} parallel clients; min–max of the totals in brackets)\n`);
    console.log('| way | connections/s | accepting thread | worker thread | other threads | total |');
    console.log('|---|---|---|---|---|---|');
    const totals = new Map<Mode, number>();
    for (const mode of MODES) {
      const list = results.get(mode)!;
      const total = list.map((r) => r.main + r.worker + r.other);
      totals.set(mode, median(total));
      console.log(`| ${mode} | ${Math.round(median(list.map((r) => r.perSecond))).toLocaleString('en-US')} | ${fmt(median(list.map((r) => r.main)))} | ${fmt(median(list.map((r) => r.worker)))} | ${fmt(median(list.map((r) => r.other)))} | ${fmt(median(total))} (${fmt(Math.min(...total))}–${fmt(Math.max(...total))}) |`);
    }
    console.log(`\nthe transfer (port − inline): ${fmt(totals.get('port')! - totals.get('inline')!)} µs; Piscina's bookkeeping (piscina − port): ${fmt(totals.get('piscina')! - totals.get('port')!)} µs`);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

if (isMainThread) await main();

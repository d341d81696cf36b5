// Load generators for the proxy benchmark: wrk for HTTP (absolute-form through a proxy, via a Lua
// script), and small Node.js clients for the CONNECT measures. Loopback only, bounded in time.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export interface WrkResult {
  requestsPerSec: number;
  bytesPerSec: number;
  p99Ms: number;
  errors: number;
}

function parseDurationMs(text: string): number {
  const m = /([\d.]+)(us|ms|s|m)/.exec(text);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function parseBytes(text: string): number {
  const m = /([\d.]+)(B|KB|MB|GB)/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as 'B'];
}

/** wrk -t1 -cN against `url`, through `proxyPort` when given (absolute-form), else direct. */
export function wrk(opts: { url: string; proxyPort?: number; connections: number; seconds: number; close?: boolean; dir: string }): Promise<WrkResult> {
  const u = new URL(opts.url);
  const script = join(opts.dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  const path = opts.proxyPort ? opts.url : `${u.pathname}${u.search}`;
  writeFileSync(
    script,
    `wrk.headers["Host"] = "${u.host}"\n${opts.close ? 'wrk.headers["Connection"] = "close"\n' : ''}request = function() return wrk.format("GET", "${path}") end\n`,
  );
  const target = opts.proxyPort ? `http://127.0.0.1:${opts.proxyPort}` : `${u.protocol}//${u.host}`;
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', '-s', script, target], { timeout: (opts.seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(new Error(`wrk failed: ${err.message}`));
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
      const transfer = parseBytes(/Transfer\/sec:\s+(\S+)/.exec(stdout)?.[1] ?? '');
      const p99 = parseDurationMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
      const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const errors = non2xx + (sockErr ? Number(sockErr[1]) + Number(sockErr[3]) + Number(sockErr[4]) : 0);
      const total = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
      if (errors > total * 0.01) return reject(new Error(`wrk: ${errors} of ${total} requests failed against ${target}${path} — not a valid measurement`));
      resolve({ requestsPerSec: rps, bytesPerSec: transfer, p99Ms: p99, errors });
    });
  });
}

/** Open a TCP connection through a CONNECT proxy (or directly when proxyPort is undefined). */
export function tunnel(proxyPort: number | undefined, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort ?? port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.once('error', reject);
    if (proxyPort === undefined) return void socket.once('connect', () => resolve(socket));
    socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(buf)) return reject(new Error(`CONNECT refused: ${buf.split('\r\n')[0]}`));
      if (end + 4 < buf.length) socket.unshift(Buffer.from(buf.slice(end + 4), 'latin1'));
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** CONNECT setups per second: `parallel` loops of connect, CONNECT, GET /1k, read, close. */
export async function connectSetups(proxyPort: number | undefined, originPort: number, parallel: number, seconds: number): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  const request = `GET /1k HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
  async function loop(): Promise<void> {
    while (Date.now() < deadline) {
      const socket = await tunnel(proxyPort, '127.0.0.1', originPort);
      await new Promise<void>((resolve, reject) => {
        socket.on('data', () => {});
        socket.once('end', () => resolve());
        socket.once('error', reject);
        socket.write(request);
      });
      socket.destroy();
      done++;
    }
  }
  const started = Date.now();
  await Promise.all(Array.from({ length: parallel }, loop));
  return done / ((Date.now() - started) / 1000);
}

/** CONNECT bulk: bytes per second downloaded through one tunnel from a sink that streams for `seconds`. */
export async function connectBulk(proxyPort: number | undefined, blasterPort: number, seconds: number): Promise<number> {
  const socket = await tunnel(proxyPort, '127.0.0.1', blasterPort);
  let bytes = 0;
  const started = Date.now();
  socket.on('data', (d: Buffer) => (bytes += d.length));
  socket.write(`${seconds}\n`);
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return bytes / ((Date.now() - started) / 1000);
}

/** A TCP server that, asked "N\n", streams 64 KiB chunks for N seconds and closes. */
export function startBlaster(): Promise<{ port: number; close(): void }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      const until = Date.now() + Number(d.toString().trim()) * 1000;
      const pump = (): void => {
        while (Date.now() < until) if (!s.write(chunk)) return void s.once('drain', pump);
        s.end();
      };
      pump();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })));
}

/** Open `count` idle tunnels; resolves with them (caller closes). */
export async function idleTunnels(proxyPort: number, originPort: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => tunnel(proxyPort, '127.0.0.1', originPort)));
    sockets.push(...batch);
  }
  return sockets;
}

export interface FixedRateResult {
  /** Requests scheduled (rate × seconds) and answered 2xx. */
  sent: number;
  ok: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Open-loop load at a fixed rate: request i is due at start + i / rate, whatever happened to the ones
 * before it, over `connections` keep-alive connections (an undici Pool, one request at a time on each).
 * Latency is measured from the time a request was DUE, not from when a connection was free to send it:
 * a request that waits because the proxy is slow counts that wait (no coordinated omission, unlike a
 * closed-loop client such as wrk, or hey, whose workers send only after the previous answer). The
 * generator's own lateness is in the number too; the "direct" row shows how much that is.
 * Through `proxyPort` when given (absolute-form request targets), else to the origin itself.
 */
export async function fixedRate(opts: { url: string; proxyPort?: number; rate: number; connections: number; seconds: number }): Promise<FixedRateResult> {
  const { Pool } = await import('undici');
  const u = new URL(opts.url);
  const pool = new Pool(opts.proxyPort ? `http://127.0.0.1:${opts.proxyPort}` : u.origin, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const path = opts.proxyPort ? opts.url : `${u.pathname}${u.search}`;
  const total = Math.round(opts.rate * opts.seconds);
  const latencies = new Float64Array(total);
  let ok = 0;
  let errors = 0;
  let settled = 0;
  let allSettled!: () => void;
  const done = new Promise<void>((r) => (allSettled = r));
  const send = (due: number): void => {
    pool
      .request({ method: 'GET', path, headers: { host: u.host } })
      .then(async (res) => {
        await res.body.dump({ limit: Infinity });
        if (res.statusCode >= 200 && res.statusCode < 300) latencies[ok++] = performance.now() - due;
        else errors++;
      })
      .catch(() => errors++)
      .finally(() => {
        if (++settled === total) allSettled();
      });
  };
  const start = performance.now() + 20;
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (next < total && start + (next * 1000) / opts.rate <= now) send(start + (next++ * 1000) / opts.rate);
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 20);
  });
  const timeout = setTimeout(allSettled, 30_000); // bounded: a proxy that stops answering ends the run
  await done;
  clearTimeout(timeout);
  await pool.destroy();
  const sorted = latencies.slice(0, ok).sort();
  const at = (q: number): number => (ok ? sorted[Math.min(ok - 1, Math.floor(q * ok))]! : NaN);
  if (errors + (total - settled) > total * 0.01) throw new Error(`fixed rate: ${errors} errors, ${total - settled} unanswered of ${total} requests through ${opts.proxyPort ?? 'direct'} — not a valid measurement`);
  return { sent: total, ok, errors, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: ok ? sorted[ok - 1]! : NaN };
}

// Helpers for the parent-proxy tests (parents-*.test.ts): a child proxyd with parents, proxyd parents
// in this process, requests and tunnels through them, and the child's metrics.
import type { Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { startTestProxy, type TestProxy } from './proxy.ts';
import { parseParent, type ParentSpec } from '../../src/upstream/parent-spec.ts';
import type { ProxyOptions } from '../../src/config/options.ts';
import { createMetrics } from '../../src/admin/metrics.ts';

export const metricsOf = (p: TestProxy): Promise<string> => createMetrics(p).metrics();

/** Keep-alive connections to the proxy under test (destroy it in the file's teardown). */
export const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });

export function parent(text: string): ParentSpec {
  const p = parseParent(text);
  if (!p.ok) throw new Error(p.problem);
  return p.value;
}

/** GET `url` through the proxy on `port` (absolute form, keep-alive): status and body. */
export function get(port: number, url: string, agent: http.Agent | false = keepAlive): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: url, agent, headers: { host: new URL(url).host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
  });
}

/** Run `count` requests, `parallel` at a time. */
export async function many(count: number, parallel: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) await one(next++);
  }));
}

/** Requests a proxyd parent has forwarded (its shared counters). */
export function served(p: TestProxy): number {
  return p.shared.stats.get('allowed');
}

export async function child(t: Test, parents: ParentSpec[], extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const proxy = await startTestProxy(t, { parents, logLevel: 'info', allowDest: ['127.0.0.0/8', '::1/128'], ...extra });
  t.teardown(() => proxy.close(0));
  return proxy;
}

export async function proxydParent(t: Test, extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const p = await startTestProxy(t, { workers: 1, admin: undefined, logLevel: 'info', allowDest: ['127.0.0.0/8', '::1/128'], ...extra });
  t.teardown(() => p.close(0));
  return p;
}

/** Open a tunnel through the proxy to `target`; resolves with the proxy's answer head and the socket. */
export function tunnel(port: number, target: string): Promise<{ head: string; socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve({ head: buf.subarray(0, end).toString('latin1'), socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.setTimeout(15_000, () => socket.destroy(new Error('tunnel answer timed out')));
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** Echo `bytes` through an open tunnel to an echo server; resolves with what came back. */
export function echoThrough(socket: net.Socket, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    socket.setTimeout(0);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes.length) resolve(Buffer.concat(chunks));
    });
    socket.write(bytes);
  });
}

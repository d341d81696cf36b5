/**
 * Measure proxyd's memory while a large download streams through it (a measurement, not a test):
 * starts an origin that serves N bytes, proxyd (the real CLI, as a child process), and curl; samples
 * proxyd's RSS from /proc every 50 ms. Loopback only; every process is stopped at the end.
 *
 *     node scripts/measure-download-rss.ts [--gib 1] [--workers 2]
 */
import { spawn, execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startOrigin } from '../packages/proxyd/test/helpers/origin.ts';
import { BIN } from '../packages/proxyd/test/helpers/proxy.ts';

const { values } = parseArgs({ options: { gib: { type: 'string', default: '1' }, workers: { type: 'string', default: '2' } } });
const bytes = Math.round(Number(values.gib) * 1024 ** 3);
if (!(bytes > 0)) {
  console.error('measure-download-rss: --gib must be a positive number');
  process.exit(2);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const origin = await startOrigin();
const proxy = spawn(process.execPath, [BIN, '--port', '0', '--workers', String(values.workers), '--log-file', '/dev/null', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
proxy.stdout.on('data', (d: Buffer) => (out += d));
const deadline = Date.now() + 20_000;
while (!/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) {
  if (Date.now() > deadline) throw new Error('proxyd did not start');
  await new Promise((r) => setTimeout(r, 20));
}
const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
await new Promise((r) => setTimeout(r, 500));
const idle = rssKiB(proxy.pid!);
let peak = idle;
const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(proxy.pid!))), 50);
const started = performance.now();
const result = await new Promise<string>((resolve) =>
  execFile('curl', ['-sS', '--max-time', '600', '-o', '/dev/null', '-w', '%{size_download} %{http_code}', '--proxy', `http://127.0.0.1:${port}`, origin.url(`/bytes/${bytes}`)], (err, stdout) => resolve(err ? `error: ${err.message}` : stdout)),
);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
proxy.kill('SIGTERM');
await new Promise((r) => proxy.once('exit', r));
await origin.close();
const [size, status] = result.split(' ');
console.log(`download: ${size} bytes, HTTP ${status}, ${seconds.toFixed(1)} s (${(Number(size) / 1e6 / seconds).toFixed(0)} MB/s)`);
console.log(`proxyd RSS: ${(idle / 1024).toFixed(1)} MiB idle → ${(peak / 1024).toFixed(1)} MiB peak during the download (+${((peak - idle) / 1024).toFixed(1)} MiB)`);

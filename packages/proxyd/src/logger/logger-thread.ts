/**
 * The logger thread: the one consumer of the shared LogRing. It sleeps on the ring's write sequence
 * (Atomics.waitAsync, so its event loop keeps running), drains every record the serving threads wrote,
 * and writes them through winston: JSON lines to the log file, a readable line on stdout (journald
 * reads it). Every few seconds while the proxy is busy it adds a status line from the shared Stats. It
 * counts records the ring had to drop and says so in the log.
 *
 * Messages from the primary: { type: 'flush' } drains everything, closes the log file and answers
 * { type: 'flushed' } — the last step of a clean shutdown.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import winston from 'winston';
import { LogRing } from '@proxyd/sync/log-ring';
import { Stats } from '@proxyd/sync/stats';
import { STAT_NAMES, type StatName } from '../shared/stats-names.ts';
import { hostOf, readableLine } from './format.ts';

export interface LoggerInit {
  ring: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  logFile: string;
  logLevel: string;
  logMaxBytes: number;
  logMaxFiles: number;
  statusIntervalMs: number;
}

const init = workerData as LoggerInit;
const ring = new LogRing(init.ring);
const stats = new Stats<StatName>(init.stats, STAT_NAMES);
const decoder = new TextDecoder();
/** Where the decoded record rides inside winston's info object. */
const RECORD = Symbol.for('proxyd.record');

// The readable lines go to stdout straight from this thread. A worker's process.stdout would post every
// write to the primary as a message for it to write out (measured: that hop was a fifth of this thread's
// time at 10k requests/s); a file stream on fd 1 writes from the libuv pool and batches what queues up
// (writev). Node keeps stdio pipes and TTYs blocking on Linux, so these writes never see EAGAIN.
const stdout = fs.createWriteStream('', { fd: 1, autoClose: false });
let stdoutFailed = false;
stdout.on('error', () => (stdoutFailed = true)); // stdout gone (closed pipe): the log file still has it all

const logger = winston.createLogger({
  level: init.logLevel,
  transports: [
    new winston.transports.File({
      filename: init.logFile,
      format: winston.format.printf((info) => JSON.stringify(info[RECORD])),
      // Rotation: proxy.log is always the newest; full files move to proxy1.log … proxyN.log (oldest dropped).
      ...(init.logMaxBytes > 0 ? { maxsize: init.logMaxBytes, maxFiles: init.logMaxFiles, tailable: true } : {}),
    }),
    new winston.transports.Stream({ stream: stdout, format: winston.format.printf((info) => readableLine(info[RECORD] as Record<string, unknown>)) }),
  ],
});

let written = 0;
let droppedReported = 0;
let stopping = false;

function writeRecord(record: Record<string, unknown>): void {
  const level = typeof record.level === 'string' ? record.level : 'info';
  logger.log({ level, message: String(record.event ?? ''), [RECORD]: { ...record, time: new Date(Number(record.time)).toISOString() } });
  written++;
}

// Aggregates for the dashboard, kept here, off the serving threads: requests per destination host and
// per client address, and the last lines. Sent to the primary once a second; the maps are bounded.
const hosts = new Map<string, number>();
const clients = new Map<string, number>();
/** The last records shown on the dashboard, kept raw: formatted once a second, not once per record. */
const recent: Record<string, unknown>[] = [];
const MAX_KEYS = 5000;

function bump(map: Map<string, number>, key: string): void {
  if (!map.has(key) && map.size >= MAX_KEYS) return;
  map.set(key, (map.get(key) ?? 0) + 1);
}

function aggregate(record: Record<string, unknown>): void {
  if (record.event === 'request' || record.event === 'tunnel' || record.event === 'blocked') {
    const host = hostOf(record);
    if (host) bump(hosts, host);
    if (typeof record.client === 'string') bump(clients, record.client.replace(/:\d+$/, ''));
  }
  if (record.event !== 'status' && record.level !== 'debug') {
    recent.push(record);
    if (recent.length > 30) recent.shift();
  }
}

function top(map: Map<string, number>): [string, number][] {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, 10);
}

const summaryTimer = setInterval(() => {
  const lines = recent.map((record) => readableLine({ ...record, time: new Date(Number(record.time)).toISOString() }));
  parentPort!.postMessage({ type: 'summary', topHosts: top(hosts), topClients: top(clients), recent: lines });
}, 1000);

function onRecord(bytes: Uint8Array): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(decoder.decode(bytes)) as Record<string, unknown>;
  } catch {
    record = { time: Date.now(), level: 'warn', event: 'log-record-unreadable', bytes: bytes.byteLength };
  }
  aggregate(record);
  writeRecord(record);
}

function reportDrops(): void {
  const dropped = ring.dropped;
  if (dropped === droppedReported) return;
  writeRecord({ time: Date.now(), level: 'warn', event: 'log-records-dropped', dropped: dropped - droppedReported, droppedTotal: dropped, why: 'the log ring was full' });
  droppedReported = dropped;
}

let lastStatusKey = '';
function statusLine(): void {
  const s = stats.snapshot();
  const key = `${s.active}/${s.waiting}/${s.accepted}/${s.requests}`;
  if (key === lastStatusKey) return; // quiet while nothing changes
  lastStatusKey = key;
  writeRecord({
    time: Date.now(),
    level: 'info',
    event: 'status',
    active: s.active,
    waiting: s.waiting,
    tunnels: s.tunnels,
    accepted: s.accepted,
    requests: s.requests,
    blocked: s.blocked,
    queueTimeouts: s.queueTimeouts + s.queueFull,
    idleReleases: s.idleReleases,
    upMB: Math.round(s.bytesUp / 1e4) / 100,
    downMB: Math.round(s.bytesDown / 1e4) / 100,
    logDropped: ring.dropped,
  });
}

const statusTimer = init.statusIntervalMs > 0 ? setInterval(statusLine, init.statusIntervalMs) : undefined;

// While records keep coming, drain in batches every BATCH_MS instead of sleeping on the ring: writers
// then find the logger awake and skip the notify (log-ring.ts), and each wake-up here does a batch's
// work. The ring holds far more than BATCH_MS of records at any rate the proxy reaches.
const BATCH_MS = 10;

async function drainLoop(): Promise<void> {
  while (!stopping) {
    const drained = ring.drain(onRecord);
    reportDrops();
    if (drained > 0) await new Promise((resolve) => setTimeout(resolve, BATCH_MS));
    else await ring.waitForRecords(1000); // holds a timer while waiting: this thread stays alive
  }
}

async function flushAndClose(): Promise<void> {
  stopping = true;
  clearInterval(statusTimer);
  clearInterval(summaryTimer);
  ring.drain(onRecord);
  reportDrops();
  const finished = new Promise<void>((resolve) => logger.on('finish', () => resolve()));
  logger.end();
  await finished;
  // winston's File transport may still be flushing its stream after 'finish'; stdout too.
  const stdoutFlushed = stdoutFailed ? Promise.resolve() : new Promise<void>((resolve) => stdout.end(resolve));
  await Promise.all([stdoutFlushed, new Promise((r) => setTimeout(r, 50))]);
  parentPort!.postMessage({ type: 'flushed', written, dropped: ring.dropped });
  parentPort!.close();
}

parentPort!.on('message', (message: { type: string; level?: string }) => {
  if (message.type === 'flush') void flushAndClose();
  if (message.type === 'level' && message.level) {
    logger.level = message.level;
    for (const transport of logger.transports) transport.level = message.level;
  }
});

void drainLoop();

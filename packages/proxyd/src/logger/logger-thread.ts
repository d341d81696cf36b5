/**
 * The logger thread: the one consumer of the shared LogRing. It sleeps on the ring's write sequence
 * (Atomics.waitAsync, so its event loop keeps running), drains every record the serving threads wrote,
 * and writes them through winston: JSON lines to the log file, a readable line on stdout (journald
 * reads it; none when stdout is /dev/null), a batch at a time: one winston call for all the records of
 * one wake-up (see writeBatch).
 * Every few seconds while the proxy is busy it adds a status line from the shared Stats. It counts
 * records the ring had to drop and says so in the log.
 *
 * It also counts the traffic for the analytics over days (analytics.ts: hourly counts in a SQLite
 * file) and writes the access log in Squid's or the combined format (access-log.ts), from the same
 * records: the serving threads write nothing more for them.
 *
 * It says { type: 'ready' } once its files are open (the log, the access log, the analytics).
 * Messages from the primary: { type: 'flush' } drains everything, closes the log file and answers
 * { type: 'flushed' } — the last step of a clean shutdown. { type: 'analytics', range } drains, saves
 * the hours being counted and answers with the report for that range.
 */
import { parentPort, workerData } from 'node:worker_threads';
import winston from 'winston';
import { LogRing } from '@proxyd/sync/log-ring';
import { Stats } from '@proxyd/sync/stats';
import { STAT_NAMES, type StatName } from '../memory/stats-names.ts';
import { LEVEL_RANK, type EventLevel } from '../memory/event-log.ts';
import { addressOf, hostOf, isoTime, readableLine } from './format.ts';
import { openStdout } from './stdout.ts';
import { passThrough } from './pass-through.ts';
import { filesOpen } from './files-open.ts';
import { AccessLog } from './access-log.ts';
import { Analytics } from './analytics.ts';
import { requestFacts } from './request-facts.ts';
import type { AnalyticsRequest, LoggerInit, LoggerMessage, ToLogger } from '../messages/logger-messages.ts';
import { settleHeapSoon } from '../memory/settle-heap.ts';

const init = workerData as LoggerInit;
settleHeapSoon(); // one collection once this thread's modules are loaded (memory/settle-heap.ts)
const ring = new LogRing(init.ring);
const stats = new Stats<StatName>(init.stats, STAT_NAMES);
/** Where a batch's text rides inside winston's info object: JSON lines for the file, readable lines for stdout. */
const FILE_LINES = Symbol.for('proxyd.fileLines');
const READABLE_LINES = Symbol.for('proxyd.readableLines');

const stdout = openStdout(); // undefined when stdout is /dev/null: then no readable lines are made
let stdoutFailed = false;
stdout?.on('error', () => (stdoutFailed = true)); // stdout gone (closed pipe): the log file still has it all

const logger = winston.createLogger({
  format: passThrough(),
  transports: [
    new winston.transports.File({
      filename: init.logFile,
      format: winston.format.printf((info) => info[FILE_LINES] as string),
      // Rotation: proxy.log is always the newest; full files move to proxy1.log … proxyN.log (oldest dropped).
      ...(init.logMaxBytes > 0 ? { maxsize: init.logMaxBytes, maxFiles: init.logMaxFiles, tailable: true } : {}),
    }),
    ...(stdout ? [new winston.transports.Stream({ stream: stdout, format: winston.format.printf((info) => info[READABLE_LINES] as string) })] : []),
  ],
});

// A transport that fails (the disk gone, a file it cannot open): said on stderr, which journald keeps;
// unhandled, it would end this thread.
logger.on('error', (err: Error) => process.stderr.write(`proxyd: the log file ${init.logFile}: ${err.message}\n`));

let written = 0;
let droppedReported = 0;
let stopping = false;

// The batch being gathered. Winston's per-call cost (its stream pipeline, a format pass per transport)
// was most of this thread's time at one call per record (measured: 7 µs a record through winston
// against 3 µs to format it); one call per batch pays it once per wake-up. Each transport still
// appends its end-of-line, so a batch is its lines joined by "\n". BATCH_BYTES bounds a batch, which
// keeps size-based rotation fine-grained (a file may pass --log-max-size by at most one batch).
const BATCH_BYTES = 64 * 1024;
let fileLines = '';
let readableLines = '';

/** Hand the gathered batch to winston. */
function writeBatch(): void {
  accessLog?.writeBatch();
  if (fileLines === '') return;
  // The batch is logged at the most severe level so that winston's level check always passes: each
  // record was checked against the current level when it joined the batch (addRecord).
  logger.log({ level: 'error', message: '', [FILE_LINES]: fileLines, [READABLE_LINES]: readableLines });
  fileLines = '';
  readableLines = '';
}

/**
 * Add one record to the batch: a JSON line for the file (time as an ISO string) and a readable line.
 * `json` is the record's text as the ring held it, when it has one: its line is then that text with
 * the time replaced, instead of a second JSON.stringify.
 */
function addRecord(record: Record<string, unknown>, json?: string): void {
  const ms = record.time;
  const time = isoTime(typeof ms === 'number' && Number.isFinite(ms) ? ms : Date.now());
  record.time = time; // before the level test: the dashboard's recent lines show every record's time
  // The shared level (Stats "logLevel", set by the primary, SIGHUP included) is the one every thread's
  // EventLog filters by; the logger's own records (status, drops) pass the same test.
  const level = typeof record.level === 'string' ? record.level : 'info';
  if (!(LEVEL_RANK[level as EventLevel] <= stats.get('logLevel'))) return;
  // A number literal holds no `,"`, so when the text opens with a numeric time the first `,"` ends it.
  const rest = json !== undefined && typeof ms === 'number' && json.startsWith('{"time":') ? json.indexOf(',"') : -1;
  const line = rest > 0 ? `{"time":"${time}"${json!.slice(rest)}` : JSON.stringify(record);
  fileLines += fileLines === '' ? line : `\n${line}`;
  if (stdout) readableLines += readableLines === '' ? readableLine(record) : `\n${readableLine(record)}`;
  written++;
  if (fileLines.length >= BATCH_BYTES) writeBatch();
}

/** Write a record this thread makes itself (status, drops) at once. */
function writeRecord(record: Record<string, unknown>): void {
  addRecord(record);
  writeBatch();
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
    if (typeof record.client === 'string') bump(clients, addressOf(record.client));
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
  const lines = recent.map((record) => readableLine(record)); // their time is already an ISO string (addRecord)
  parentPort!.postMessage({ type: 'summary', topHosts: top(hosts), topClients: top(clients), recent: lines } satisfies LoggerMessage);
}, 1000);

// The analytics and the access log, when they are on. A store that cannot be opened (a bad path, a
// corrupt file) turns the analytics off with an error record: the log goes on.
const accessLog = init.accessLog ? new AccessLog({ ...init.accessLog, maxBytes: init.logMaxBytes, maxFiles: init.logMaxFiles }) : undefined;
let analytics: Analytics | undefined;
let analyticsError: string | undefined;
if (init.analyticsFile !== undefined) {
  try {
    analytics = new Analytics(init.analyticsFile, init.analyticsRetentionHours);
  } catch (err) {
    analyticsError = `${init.analyticsFile}: ${(err as Error).message}`;
  }
}
/** Hours being counted are saved this often (and before a query, and at shutdown). */
const ANALYTICS_SAVE_MS = 5_000;
const analyticsTimer = analytics ? setInterval(saveAnalytics, ANALYTICS_SAVE_MS) : undefined;

function saveAnalytics(): void {
  try {
    analytics?.flush();
  } catch (err) {
    writeRecord({ time: Date.now(), level: 'error', event: 'analytics-error', error: (err as Error).message });
  }
}

/** A traffic record (request, tunnel, refusal) into the analytics and the access log. */
function countRequest(record: Record<string, unknown>, time: number): void {
  if (!analytics && !accessLog) return;
  const facts = requestFacts(record, time);
  if (facts === undefined) return;
  analytics?.add(facts);
  accessLog?.add(facts);
}

/** Count everything written so far (drain the ring), save, and answer with the report. */
function answerAnalytics(request: AnalyticsRequest): void {
  let answer: LoggerMessage;
  try {
    if (stopping) throw new Error('proxyd is stopping'); // the store is being closed
    if (!analytics) throw new Error(analyticsError ?? 'analytics are off (--analytics off)');
    ring.drainText(onRecord);
    writeBatch();
    answer = { type: 'analytics', id: request.id, report: analytics.report(request.range) };
  } catch (err) {
    answer = { type: 'analytics', id: request.id, report: undefined, error: (err as Error).message };
  }
  parentPort!.postMessage(answer);
}

/** One record, as the ring held it (decoded in place: LogRing.drainText). */
function onRecord(json: string): void {
  let record: Record<string, unknown> | null = null;
  try {
    record = JSON.parse(json) as Record<string, unknown> | null;
  } catch {} // not JSON: reported as unreadable below
  if (typeof record !== 'object' || record === null) {
    return addRecord({ time: Date.now(), level: 'warn', event: 'log-record-unreadable', bytes: Buffer.byteLength(json) });
  }
  const time = typeof record.time === 'number' ? record.time : Date.now(); // before addRecord makes it a string
  addRecord(record, json);
  aggregate(record);
  countRequest(record, time);
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

// While records keep coming, drain in batches instead of sleeping on the ring: writers then find the
// logger awake and skip the notify (log-ring.ts), and each wake-up here does a batch's work. A wake-up
// costs about 270 µs of this thread's CPU whatever it carries (winston's stream pipeline, a file write,
// timers): at 4,000 records a second, 10 ms batches cost 13.5 µs a record and 40 ms ones 8.4
// (scripts/bench/logger-drain.ts, issue 20). So a busy proxy (a batch of BUSY_RECORDS or more, 2,500
// records a second) is drained every BUSY_BATCH_MS, and it stays so until it falls under 500 a second;
// a quiet one every BATCH_MS, so that its lines reach the file at once, as people and tests expect.
// The ring holds far more than BUSY_BATCH_MS of records at any rate the proxy reaches (4 MiB: over a
// second at 10,000 a second). A flush (shutdown) and an analytics query drain first.
const BATCH_MS = 10;
const BUSY_BATCH_MS = 50;
const BUSY_RECORDS = 25;

async function drainLoop(): Promise<void> {
  while (!stopping) {
    const drained = ring.drainText(onRecord);
    writeBatch();
    reportDrops();
    if (drained > 0) await new Promise((resolve) => setTimeout(resolve, drained >= BUSY_RECORDS ? BUSY_BATCH_MS : BATCH_MS));
    else await ring.waitForRecords(1000); // holds a timer while waiting: this thread stays alive
  }
}

async function flushAndClose(): Promise<void> {
  stopping = true;
  clearInterval(statusTimer);
  clearInterval(summaryTimer);
  clearInterval(analyticsTimer);
  ring.drainText(onRecord);
  writeBatch();
  reportDrops();
  try {
    analytics?.close();
  } catch (err) {
    writeRecord({ time: Date.now(), level: 'error', event: 'analytics-error', error: (err as Error).message });
  }
  const accessLogClosed = accessLog?.end();
  const finished = new Promise<void>((resolve) => logger.on('finish', () => resolve()));
  logger.end();
  await Promise.all([finished, accessLogClosed]);
  // winston's File transport may still be flushing its stream after 'finish'; stdout too.
  const stdoutFlushed = !stdout || stdoutFailed ? Promise.resolve() : new Promise<void>((resolve) => stdout.end(resolve));
  await Promise.all([stdoutFlushed, new Promise((r) => setTimeout(r, 50))]);
  parentPort!.postMessage({ type: 'flushed', written, dropped: ring.dropped } satisfies LoggerMessage);
  parentPort!.close();
}

parentPort!.on('message', (message: ToLogger) => {
  if (message.type === 'flush') void flushAndClose();
  else if (message.type === 'analytics') answerAnalytics(message);
});

// Ready once the files are open: the primary counts the descriptors the proxy holds after this.
void Promise.all([filesOpen(logger), accessLog?.opened]).then(() => parentPort!.postMessage({ type: 'ready' } satisfies LoggerMessage));
if (analyticsError !== undefined) writeRecord({ time: Date.now(), level: 'error', event: 'analytics-error', error: analyticsError, kept: 'the log; analytics are off until the next start' });
void drainLoop();

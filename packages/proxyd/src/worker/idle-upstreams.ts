// Idle pooled upstream sockets are the first descriptors given back when the process nears its
// open-file limit (issue 20). The open-file budget (primary/fd-budget.ts) counts two descriptors per
// client — its socket and one upstream socket — but an upstream pool keeps more: a connection stays open
// for reuse after its answer (4 s, or what the origin's Keep-Alive says, up to 60 s), also when its client
// has left, and under load undici opens a new connection while the pooled ones are between an answer and
// their 'drain'. Measured (scale.ts, before this): 7,280 pooled connections to one origin for 4,000
// keep-alive clients, and 502s from EMFILE on the connects that followed. Closing an idle one costs the
// next request to that origin a connect; an EMFILE costs a client its answer.
//
// "Idle" is undici's own: a socket whose client has nothing queued or running is unref()ed, and ref()ed
// again when a request comes (undici 7, lib/dispatcher/client-h1.js, resumeH1). `track` watches those two
// calls on each socket this thread dials, so the set holds exactly the sockets undici would not miss.
// Destroying one is what the origin closing it would be: undici sees the close with no request on it and
// dials again for the next.
//
// All of this thread's idle sockets are given back at once when the process holds within 2 × headroom of
// its limit (limits/open-files.ts), i.e. before the primary starts refusing clients at accept (within
// 1 × headroom). That is checked before each new upstream connect, and every 250 ms while this thread
// has idle sockets (for another thread's connects: threads share one descriptor table). And a connect
// that fails with EMFILE or ENFILE gives them back before dialling again (upstream-pool.ts).
//
// Each give-back is counted (`upstreamIdleClosed`, proxyd_upstream_idle_closed_total) and logged at warn
// with how many sockets went and how many descriptors were open: a proxy that keeps doing this is sized
// too close to its limit (raise LimitNOFILE, or lower --max-clients).
import type net from 'node:net';
import { headroom, kernelDescriptorCount, readOpenFileLimit } from '../limits/open-files.ts';
import type { SharedState } from '../memory/shared-state.ts';

const CHECK_MS = 250;

const idle = new Set<net.Socket>();
let watcher: NodeJS.Timeout | undefined;
/** Give back idle sockets once this many descriptors are open (undefined: no limit known, or a kernel that does not count). */
let highWater: number | undefined | null = null; // null: not read yet
/** Where give-backs are counted and logged (set once per thread at start; tests of this module alone may leave it unset). */
let report: SharedState | undefined;

/** Count and log each give-back in this shared state (called once when the thread starts serving). */
export function reportGiveBacksTo(shared: SharedState): void {
  report = shared;
}

/** Watch a pooled socket's ref()/unref(): unref()ed by undici means idle. */
export function track(socket: net.Socket): void {
  const unref = socket.unref.bind(socket);
  const ref = socket.ref.bind(socket);
  socket.unref = () => {
    if (!socket.destroyed) idle.add(socket);
    startWatching();
    return unref();
  };
  socket.ref = () => {
    idle.delete(socket);
    return ref();
  };
  socket.once('close', () => idle.delete(socket));
}

/** Why idle sockets were given back, for the log line. */
export type GiveBackReason = 'near-limit' | 'emfile';

/** Close every idle pooled socket of this thread; how many were closed. */
export function giveBackIdle(reason: GiveBackReason): number {
  const n = idle.size;
  if (n === 0) return 0;
  for (const socket of idle) socket.destroy();
  idle.clear();
  if (report) {
    report.stats.add('upstreamIdleClosed', n);
    report.log.write({ event: 'upstream-idle-closed', level: 'warn', closed: n, reason, openFiles: kernelDescriptorCount(), limit: readOpenFileLimit() });
  }
  return n;
}

/**
 * Before a new upstream connect: when the process is already at the high-water mark, give back the idle
 * sockets first (a stat of /proc/self/fd, a few µs beside a connect), so that connects do not outrun the
 * 250 ms check up to the limit itself (measured, scale.ts: 20,000 of 20,000 open between two checks).
 */
export function beforeConnect(): void {
  if (idle.size > 0 && readHighWater() !== undefined && kernelDescriptorCount() >= highWater!) giveBackIdle('near-limit');
}

/** Is this a failure to get a descriptor (process or system table full)? */
export function isOutOfDescriptors(err: NodeJS.ErrnoException | null | undefined): boolean {
  return err?.code === 'EMFILE' || err?.code === 'ENFILE';
}

function readHighWater(): number | undefined {
  if (highWater === null) {
    const limit = readOpenFileLimit();
    highWater = limit === undefined || kernelDescriptorCount() === 0 ? undefined : limit - 2 * headroom(limit);
  }
  return highWater;
}

function startWatching(): void {
  if (watcher) return;
  const level = readHighWater();
  if (level === undefined) return;
  watcher = setInterval(() => {
    if (idle.size === 0) {
      clearInterval(watcher); // nothing to give back: no reading until a socket is idle again
      watcher = undefined;
      return;
    }
    if (kernelDescriptorCount() >= level) giveBackIdle('near-limit');
  }, CHECK_MS);
  watcher.unref();
}

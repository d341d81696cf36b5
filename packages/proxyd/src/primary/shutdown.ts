// Shutdown (SIGTERM/SIGINT): stop accepting, close connections still waiting for a permit, let admitted
// ones finish up to the grace period, then have each serving thread close what is left (so every
// connection is still logged as it ends), end the threads, and flush the log last.
// Through the grace period the serving threads end keep-alive connections (the shared gauge "draining"):
// "Connection: close" on each response, and idle ones closed (worker/idle-connections.ts), so a browser's
// idle pool does not hold the stop for the whole grace period. A second signal ends the grace at once
// (Grace.hurry): what is open is closed by its thread and logged as cut.
import type net from 'node:net';
import type { CloseAll } from '../messages/policy-channel.ts';
import type { PrimaryState } from './primary-state.ts';
import type { LoggerThread } from './start-logger.ts';

/** The end of the grace period, which a second signal brings forward to now. */
export class Grace {
  #deadline = Infinity;
  #hurried = false;

  start(graceMs: number): void {
    this.#deadline = Date.now() + graceMs;
  }

  get deadline(): number {
    return this.#deadline;
  }

  get hurried(): boolean {
    return this.#hurried;
  }

  hurry(): void {
    this.#hurried = true;
    this.#deadline = Math.min(this.#deadline, Date.now());
  }
}

export async function shutdown(state: PrimaryState, server: net.Server, logger: LoggerThread, graceMs: number, grace = new Grace()): Promise<{ closedAtDeadline: number }> {
  const { semaphore, stats, log } = state.shared;
  log.write({ event: 'stopping', active: semaphore.held, waiting: semaphore.waiting, graceMs });
  stats.set('draining', 1);
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of state.queued) socket.destroy(); // still queued: never admitted
  if (!grace.hurried) grace.start(graceMs);
  await settled(state, () => grace.deadline, 25);
  const closedAtDeadline = semaphore.held;
  // Hurried: close-all also when no permit is held, so that tunnels still closing are waited for below.
  if (closedAtDeadline > 0 || grace.hurried) {
    if (grace.hurried && closedAtDeadline > 0) log.write({ event: 'stopping-now', level: 'warn', active: closedAtDeadline, why: 'a second stop signal' });
    state.policy.postMessage({ type: 'close-all' } satisfies CloseAll);
    const closeDeadline = Date.now() + 2000;
    await settled(state, () => closeDeadline, 10);
  }
  // A worker may have given a permit back before this thread has read its task's result; ending the
  // pool first would fail that task and log a clean connection as lost. Read them all first (bounded).
  await Promise.race([Promise.allSettled([...state.tasks]), new Promise((r) => setTimeout(r, 2000))]);
  await state.serving.close(); // ends the worker threads
  await stopped;
  log.write({ event: 'stopped', closedAtDeadline, accepted: stats.get('accepted'), requests: stats.get('requests') });
  state.policy.close();
  await logger.flush();
  return { closedAtDeadline };
}

/**
 * Poll until no permit is held, or the deadline passes (a bounded wait, on the event loop); then, for at
 * most a second more, until no tunnel is open. A tunnel gives its permit back when its client side closes
 * and writes its record only once its origin side has closed too: ending the threads in between would
 * lose the record. (Bounded all the same: a gauge that went wrong must not hold a shutdown.)
 */
async function settled(state: PrimaryState, deadline: () => number, everyMs: number): Promise<void> {
  const { semaphore, stats } = state.shared;
  while (semaphore.held > 0 && Date.now() < deadline()) await new Promise((r) => setTimeout(r, everyMs));
  const tunnelsDeadline = Math.min(deadline(), Date.now() + 1000);
  while (stats.get('tunnels') > 0 && Date.now() < tunnelsDeadline) await new Promise((r) => setTimeout(r, everyMs));
}

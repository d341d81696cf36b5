// Shutdown (SIGTERM/SIGINT): stop accepting, close connections still waiting for a permit, let admitted
// ones finish up to the grace period, then have each serving thread close what is left (so every
// connection is still logged as it ends), end the threads, and flush the log last.
import type net from 'node:net';
import type { CloseAll } from '../messages/policy-channel.ts';
import type { PrimaryState } from './primary-state.ts';
import type { LoggerThread } from './start-logger.ts';

export async function shutdown(state: PrimaryState, server: net.Server, logger: LoggerThread, graceMs: number): Promise<{ closedAtDeadline: number }> {
  const { semaphore, stats, log } = state.shared;
  log.write({ event: 'stopping', active: semaphore.held, waiting: semaphore.waiting, graceMs });
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of state.queued) socket.destroy(); // still queued: never admitted
  await settled(state, Date.now() + graceMs, 25);
  const closedAtDeadline = semaphore.held;
  if (closedAtDeadline > 0) {
    state.policy.postMessage({ type: 'close-all' } satisfies CloseAll);
    await settled(state, Date.now() + 2000, 10);
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
async function settled(state: PrimaryState, deadline: number, everyMs: number): Promise<void> {
  const { semaphore, stats } = state.shared;
  while (semaphore.held > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, everyMs));
  const tunnelsDeadline = Math.min(deadline, Date.now() + 1000);
  while (stats.get('tunnels') > 0 && Date.now() < tunnelsDeadline) await new Promise((r) => setTimeout(r, everyMs));
}

// At accept: is there room under the open-file limit for one more client (fd-budget.ts)? If not, 503
// OPEN_FILES with Retry-After, as for a full queue, and a counter. The log says it once per episode — a
// warning when the first client is refused, a line when there is room again with how many were refused
// meanwhile — not once per connection (a client per refused connection is "debug").
import type net from 'node:net';
import type { AcceptedConnection, PrimaryState } from './primary-state.ts';
import { refuseAtAccept } from './refuse-raw.ts';

/** There is room again once the count is this far below the budget (so one close does not end an episode). */
const ROOM_AGAIN = 0.9;

/** True when the client may go on; false when it was refused here. */
export function passFdBudget(state: PrimaryState, socket: net.Socket, conn: AcceptedConnection): boolean {
  const { semaphore, stats, log } = state.shared;
  const budget = state.fdBudget;
  const held = semaphore.held;
  const waiting = semaphore.waiting;
  if (budget.hasRoom(held, waiting)) {
    if (budget.episode && budget.inUse(held, waiting) <= budget.budget * ROOM_AGAIN) {
      log.write({ event: 'open-files-room', refused: budget.episode.refused, lastedMs: Date.now() - budget.episode.since, active: held, waiting });
      budget.episode = undefined;
    }
    return true;
  }
  stats.add('fdBudgetRefused');
  if (!budget.episode) {
    budget.episode = { since: Date.now(), refused: 0 };
    log.write({
      event: 'open-files-full',
      level: 'warn',
      limit: budget.limit,
      reserve: budget.reserve,
      active: held,
      waiting,
      message: `refusing new clients (503) at accept: ${held} active and ${waiting} waiting fill the open-file limit of ${budget.limit} (2 descriptors per client, ${budget.reserve} kept for the proxy); raise it with \`ulimit -n\` or LimitNOFILE=, or lower --max-clients`,
    });
  }
  budget.episode.refused++;
  log.write({ event: 'open-files-refused', level: 'debug', conn: conn.id, client: conn.client });
  if (!budget.mayAnswerRefusal()) {
    socket.destroy(); // many refusals are still closing: no descriptor for one more answer
    return false;
  }
  budget.refusalOpened();
  socket.once('close', () => budget.refusalClosed());
  refuseAtAccept(socket, 'OPEN_FILES', `open-file limit ${budget.limit}`, 1000);
  return false;
}

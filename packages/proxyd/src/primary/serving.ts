// Where admitted connections go: a Piscina pool of worker threads (the socket is transferred), or —
// with --workers 0 — the same connection task run on the primary thread itself.
import type net from 'node:net';
import v8 from 'node:v8';
import { Piscina } from 'piscina';
import type { ProxyOptions } from '../config/options.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { ConnectionTask, ServeInit, ServingSetup } from '../messages/serve-init.ts';
import { TASK_FILE } from './thread-files.ts';


export type { ServingSetup } from '../messages/serve-init.ts';

/** V8's young generation is three semi-spaces' worth (two semi-spaces and a new large-object space): 8 MiB semi-spaces. */
const WORKER_YOUNG_GENERATION_MB = 24;

export interface Serving {
  /** Settles when the connection has ended (its value is of no use: nothing comes back per connection). */
  serve(task: ConnectionTask): Promise<unknown>;
  /** Threads serving, for the log. */
  readonly threads: number;
  close(): Promise<void>;
}

export async function startServing(shared: SharedState, options: ProxyOptions, setup: ServingSetup): Promise<Serving> {
  const init: ServeInit = { buffers: shared.buffers, options, ...setup, testHooks: process.env.PROXYD_TEST_HOOKS === '1' };
  if (options.workers === 0) {
    // This thread serves everything: let its young generation grow again as V8 would (bin/proxyd.js fixes
    // it at 1 MiB semi-spaces, enough for a primary that only accepts; GC would cost ~4x per request).
    v8.setFlagsFromString('--semi-space-growth-factor=2');
    const task = (await import(TASK_FILE.href)) as {
      init(data: typeof init): void;
      default(task: ConnectionTask): Promise<unknown>;
    };
    task.init(init);
    const sockets = new Set<net.Socket>();
    return {
      serve(t) {
        sockets.add(t.socket);
        return task.default(t).finally(() => sockets.delete(t.socket));
      },
      threads: 0,
      async close() {
        for (const socket of sockets) socket.destroy();
      },
    };
  }
  const pool = new Piscina({
    filename: TASK_FILE.href,
    minThreads: options.workers,
    maxThreads: options.workers,
    idleTimeout: Infinity,
    // A task is a connection that may live for hours: each worker runs many at once, and an idle worker
    // must never sleep in Atomics.wait (that would freeze every tunnel it holds). The semaphore, not
    // Piscina's queue, decides who waits: with this many tasks per worker the pool never queues.
    atomics: 'disabled',
    concurrentTasksPerWorker: options.maxClients,
    // No run/wait-time histograms: nothing reads pool.histogram, and keeping them cost every connection
    // three clock reads and three histogram records, and the worker a timing field in its reply.
    recordTiming: false,
    workerData: init,
    // Each worker's young generation starts at 1 MiB semi-spaces and grows with its load up to 8 MiB (a
    // 16 MiB new space): smaller ones scavenge so often that GC time per request grows (1 MiB paused the
    // workers ~4x as long per request; 4 MiB took ~15 MiB off RSS after load but cost 10-50% more CPU per
    // keep-alive request, variants-cpu.ts), larger ones V8 fills and keeps (issue 20, bin/proxyd.js).
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
  });
  // A worker that dies cannot count down what it held: retire its row and subtract its tunnels, once
  // Piscina has let it go (on the next turn, when it is no longer among pool.threads).
  pool.on('workerDestroy', () => setImmediate(() => retireDeadWorkers(shared, pool)));
  await allWorkersReady(shared, options.workers);
  return {
    serve(t) {
      const transferList = [t.socket as never];
      const task = pool.run(t, { transferList });
      // Piscina keeps the transfer list with the task until it ends (hours, for a tunnel), and with it this
      // thread's husk of the socket (~1 KiB with its stream states). Once the handle has left (the socket
      // is destroyed here at the transfer), the list is of no more use: empty it. A task still queued keeps it.
      if (t.socket.destroyed) transferList.length = 0;
      return task;
    },
    threads: options.workers,
    close: () => pool.destroy(),
  };
}

/**
 * Wait until every worker has loaded the task module and attached the shared memory (each counts itself
 * in Stats "workersStarted"), so the first clients are not kept waiting. Piscina marks its first
 * workers ready before they load anything, so its own event cannot tell us.
 */
async function allWorkersReady(shared: SharedState, workers: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (shared.stats.get('workersStarted') < workers) {
    if (Date.now() > deadline) {
      throw new Error(`only ${shared.stats.get('workersStarted')} of ${workers} worker threads started within ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

function retireDeadWorkers(shared: SharedState, pool: Piscina): void {
  const live = new Set(pool.threads.map((worker) => worker.threadId));
  const { tunnels } = shared.workers.retire(live);
  if (tunnels > 0) shared.stats.add('tunnels', -tunnels);
}

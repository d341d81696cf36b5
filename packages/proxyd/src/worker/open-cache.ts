// This thread's way into the shared cache: its own connection to the one store file, the shared in-flight
// table, and the dispatcher that plain HTTP goes through (cache/cache-layer.ts).
import { cachingDispatcher } from '../cache/cache-layer.ts';
import { SharedStore } from '../cache/shared-store.ts';
import type { ServeContext } from './context.ts';
import { LazyDispatcher } from './lazy-dispatcher.ts';

/** Followers wait this much longer than the upstream timeout before presuming a silent leader dead. */
const PATIENCE_MARGIN_MS = 2_000;

export function openCache(ctx: Omit<ServeContext, 'cache'>, file: string | undefined): { dispatcher: LazyDispatcher; store: SharedStore } | undefined {
  if (file === undefined) return undefined;
  const { stats, log, inFlight } = ctx.shared;
  const store = new SharedStore({
    file,
    maxBytes: ctx.options.cacheMaxBytes,
    maxObjectBytes: ctx.options.cacheMaxObjectBytes,
    counters: stats,
    presence: ctx.shared.cachePresence,
    onError: (err, doing) => log.write({ event: 'cache-error', level: 'error', error: `${doing}: ${err.message}; the cache is bypassed where it fails (further errors are only counted)` }),
  });
  // Made with the first plain-HTTP request, as the upstream pool it wraps (lazy-dispatcher.ts).
  const dispatcher = new LazyDispatcher(() => cachingDispatcher(ctx.upstream.real, {
    store,
    inFlight,
    deny: () => ctx.options.cacheDeny,
    patienceMs: () => ctx.options.upstreamTimeoutMs + PATIENCE_MARGIN_MS,
  }));
  return { dispatcher, store };
}

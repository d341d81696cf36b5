// Plain HTTP's route: through the parents (parent-http.ts), refused when none may be used and
// --never-direct is on, or direct (the caller dispatches to the origin itself).
import type { Dispatcher } from 'undici';
import type { ConnectionInfo, ServeContext } from '../worker/context.ts';
import { refuseResponse } from '../worker/refuse.ts';
import { mayRetry, ViaParents, type ForwardHandler } from './parent-http.ts';
import { refuseForRoute } from './parent-refusals.ts';

interface ForwardRequest {
  exchange: ForwardHandler & { readonly res: import('node:http').ServerResponse; failed: boolean };
  options: Dispatcher.DispatchOptions;
  /** The absolute-form target as the client sent it: what the parent receives. */
  target: string;
  host: string;
  hasBody: boolean;
}

/** False when the request goes direct. */
export function forwardViaParents(ctx: ServeContext, conn: ConnectionInfo, f: ForwardRequest): boolean {
  const retry = mayRetry(f.options.method, f.hasBody);
  const route = ctx.parents.route(f.host, retry);
  if (route.kind === 'direct') return false;
  if (route.kind === 'none') {
    refuseForRoute(ctx, conn, f.options.method, f.target);
    f.exchange.failed = true; // answered here: the exchange logs nothing more
    refuseResponse(f.exchange.res, 'PARENT_DOWN');
    return true;
  }
  new ViaParents({ ctx, conn, inner: f.exchange, direct: f.options, target: f.target, order: route.order, retry }).start();
  return true;
}

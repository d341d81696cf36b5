// A parent answered, or failed to: update its health in the shared table (parent-table.ts) and log the
// transitions, each once — by the thread whose compare-and-swap made it.
import type { ConnectionInfo, ServeContext } from '../worker/context.ts';

export function noteParentAnswer(ctx: ServeContext, index: number): void {
  if (!ctx.shared.parents.succeeded(index)) return;
  ctx.shared.log.write({ event: 'parent-up', level: 'warn', parent: ctx.options.parents[index]!.name });
}

export function noteParentFailure(ctx: ServeContext, conn: ConnectionInfo, index: number, err: NodeJS.ErrnoException): void {
  const { options, shared } = ctx;
  const parent = options.parents[index]!.name;
  const markedDown = shared.parents.failed(index, Date.now(), { downAfter: options.parentDownAfter, retryMs: options.parentRetryMs });
  shared.log.write({ event: 'parent-failed', level: 'info', conn: conn.id, parent, error: err.code ?? err.message });
  if (markedDown) shared.log.write({ event: 'parent-down', level: 'warn', parent, failures: options.parentDownAfter, retryMs: options.parentRetryMs });
}

// Whether debug records are written now (Stats "logLevel", which SIGHUP may change). EventLog.write drops a
// record below the level before encoding it, but the caller has built the record object by then: on the
// paths that run once per connection (accept, hand-over, close) the check comes first, so that a proxy
// logging at info allocates nothing for records it will not write.
import { LEVEL_RANK } from './event-log.ts';
import type { SharedState } from './shared-state.ts';

export function debugLogged(shared: SharedState): boolean {
  return shared.stats.get('logLevel') >= LEVEL_RANK.debug;
}

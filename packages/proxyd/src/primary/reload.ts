// Reload (SIGHUP): apply new options and re-read the blocklist and the auth file. What can change live
// does, for new requests (every serving thread gets the new policy on the BroadcastChannel); what cannot
// is logged as needing a restart. A bad file keeps everything as it was.
import { splitReload } from '../config/split-reload.ts';
import type { ProxyOptions } from '../config/options.ts';
import { LEVEL_RANK } from '../memory/event-log.ts';
import type { PolicyUpdate } from '../messages/policy-channel.ts';
import { parseBlocklist } from '../policy/blocklist.ts';
import { createClientAcl } from '../policy/client-acl.ts';
import { loadBlocklist, loadUsers } from './load-files.ts';
import type { Users } from '../policy/htpasswd.ts';
import type { PrimaryState } from './primary-state.ts';
import { listChange, plural } from './words.ts';

export async function reloadProxy(state: PrimaryState, next: ProxyOptions): Promise<void> {
  const { stats, log } = state.shared;
  const { applied, changedLive, needRestart } = splitReload(state.options, next);
  try {
    const blocklist = applied.blocklistFile ? await loadBlocklist(applied.blocklistFile) : parseBlocklist('');
    const users = applied.authFile ? await loadUsers(applied.authFile) : undefined;
    const changed = [...changedLive, ...fileChanges(state, blocklist.rules, users)];
    state.acl = createClientAcl(applied.allowClient, users !== undefined);
    state.options = applied;
    state.users = users;
    state.blocklist = blocklist.rules;
    state.policy.postMessage({ type: 'policy', blocklist: blocklist.rules, users: users ? [...users] : undefined, options: applied } satisfies PolicyUpdate);
    stats.set('logLevel', LEVEL_RANK[applied.logLevel]); // every thread, the logger too, reads it there
    log.write({
      event: 'reload',
      changed: changed.join(', ') || 'nothing',
      blocklist: applied.blocklistFile ?? 'none',
      domains: blocklist.rules.length,
      users: users?.size,
      clients: state.acl.describe(),
    });
    if (needRestart.length) {
      log.write({ event: 'reload-needs-restart', level: 'warn', keys: needRestart.join(','), why: 'these options take effect at the next start' });
    }
  } catch (err) {
    reloadFailed(state, (err as Error).message);
  }
}

/** Log that a reload could not be applied (a bad config file or a bad file it names). */
export function reloadFailed(state: PrimaryState, message: string): void {
  state.shared.log.write({ event: 'reload-failed', level: 'error', error: message, kept: 'the running configuration' });
}

/** What the re-read files changed, even when their names did not: "blocklist +2 −1", "users +1 −0, 1 new password". */
function fileChanges(state: PrimaryState, blocklist: readonly string[], users: Users | undefined): string[] {
  const out: string[] = [];
  const domains = listChange(state.blocklist, blocklist);
  if (domains) out.push(`blocklist ${domains}`);
  const names = listChange([...(state.users?.keys() ?? [])], [...(users?.keys() ?? [])]);
  let newPasswords = 0;
  for (const [user, hash] of users ?? []) if (state.users?.has(user) && state.users.get(user) !== hash) newPasswords++;
  if (names || newPasswords) out.push(`users ${names ?? '+0 −0'}${newPasswords ? `, ${plural(newPasswords, 'new password')}` : ''}`);
  return out;
}

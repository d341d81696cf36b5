// The BroadcastChannel on which the primary sends policy changes (SIGHUP reload) to serving threads.
export const POLICY_CHANNEL = 'proxyd:policy';

export interface PolicyUpdate {
  blocklist: readonly string[];
  /** htpasswd entries, when authentication is on. */
  users?: [string, string][];
}

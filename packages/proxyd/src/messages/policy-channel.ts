import type { ProxyOptions } from '../config/options.ts';

// The BroadcastChannel on which the primary talks to every serving thread at once: policy changes
// (SIGHUP reload) and the last step of a shutdown.
export const POLICY_CHANNEL = 'proxyd:policy';

export interface PolicyUpdate {
  type: 'policy';
  blocklist: readonly string[];
  /** htpasswd entries, when authentication is on. */
  users?: [string, string][];
  /** The options now in force (only live-changeable ones differ from the start). */
  options?: ProxyOptions;
}

/** Shutdown past its grace period: close every connection now, so each is logged as it ends. */
export interface CloseAll {
  type: 'close-all';
}

export type ChannelMessage = PolicyUpdate | CloseAll;

// What a SIGHUP reload may change: each option's `live` in the table decides.
import { OPTION_LIST, type OptionName } from './option-table.ts';
import type { ProxyOptions } from './options.ts';

/**
 * Split a reload into what applies now and what waits for a restart: the result keeps every
 * restart-only field (and every internal one) at its running value.
 */
export function splitReload(running: ProxyOptions, next: ProxyOptions): { applied: ProxyOptions; changedLive: OptionName[]; needRestart: OptionName[] } {
  const applied: Record<string, unknown> = { ...running };
  const changedLive: OptionName[] = [];
  const needRestart: OptionName[] = [];
  for (const { name, field, live } of OPTION_LIST) {
    if (JSON.stringify(running[field]) === JSON.stringify(next[field])) continue;
    if (live) {
      applied[field] = next[field];
      changedLive.push(name);
    } else needRestart.push(name);
  }
  return { applied: applied as ProxyOptions, changedLive, needRestart };
}

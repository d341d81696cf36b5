// The process's open-file limit and how many descriptors it has open, as Linux tells them: read by the
// primary's budget (primary/fd-budget.ts) and by each serving thread's idle upstream sockets
// (worker/idle-upstreams.ts). Threads share one descriptor table, so each reads the same numbers.
import { readFileSync, statSync } from 'node:fs';

/** The soft "Max open files" of /proc/<pid>/limits text; undefined when unlimited or not there. */
export function parseOpenFileLimit(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
}

/** This process's open-file limit, or undefined where /proc is not there (not Linux) or says unlimited. */
export function readOpenFileLimit(): number | undefined {
  try {
    return parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Open descriptors as the kernel counts them (Linux 6.2+: the size of /proc/self/fd), or 0 when it does not say. */
export function kernelDescriptorCount(): number {
  try {
    return statSync('/proc/self/fd').size;
  } catch {
    return 0;
  }
}

/**
 * Descriptors kept free beyond what the proxy held at start: 64, plus 1% of the limit for what grows
 * with traffic and the budget does not count one by one (pooled upstream sockets, DNS, admin clients).
 * The primary refuses newcomers once less than this is left; serving threads give back their idle
 * upstream sockets once less than twice this is left, so that idle sockets go before clients are refused.
 */
export function headroom(limit: number): number {
  return 64 + Math.floor(limit / 100);
}

// Durations on the command line and in config: "500ms", "30s", "2m", "1h", or a bare number of seconds.
// No zod here: the worker threads use formatDuration (limits/), and zod is ~3 MiB of heap per isolate
// (issue 20); the option type is in duration-type.ts.
import type { Parsed } from './option-type.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// Node's timers hold at most 2^31-1 ms (24.8 days); a longer timeout would fire at once.
const MAX_MS = 2 ** 31 - 1;

/** Parse a duration into whole milliseconds (rounded). Zero only with `allowZero`. */
export function parseDuration(text: string, { allowZero = false } = {}): Parsed<number> {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) return { ok: false, value: text, problem: 'is not a duration (use e.g. 500ms, 30s, 2m, 1h)' };
  const ms = Math.round(Number(match[1]) * UNITS[match[2] ?? 's']!);
  if (!(ms <= MAX_MS)) return { ok: false, value: text, problem: 'is too long (at most 24 days)' };
  if (ms === 0 && !allowZero) return { ok: false, problem: `must be at least 1ms, got "${text}"` };
  return { ok: true, value: ms };
}

/** 1500 → "1500ms", 90_000 → "90s", 120_000 → "2m": the largest unit that is exact. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
